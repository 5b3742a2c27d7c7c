"""Pictures of a graph: ``draw`` (a graphviz.Digraph for Jupyter) and ``render`` (a file through Graphviz's dot)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tinygrad_lab import files
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.viz.dot import GRAPH_NAME, to_dot

#: Output formats ``render`` understands, by file suffix.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


class DotNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is missing; ``dot_path`` is where the DOT text was written instead."""

    def __init__(self, message: str, dot_path: Path):
        super().__init__(message)
        self.dot_path = dot_path


def draw(root: Tensor, **options: Any) -> Any:
    """``to_dot(root, **options)`` as a ``graphviz.Digraph`` (shows inline in Jupyter; ``.render()`` saves it)."""
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(
            "tinygrad_lab.viz.draw needs the graphviz Python package: pip install 'tinygrad-lab[viz]' "
            "(viz.to_dot works without it, and viz.render needs only Graphviz's dot program)"
        ) from err
    lines = to_dot(root, **options).split("\n")
    return graphviz.Digraph(name=GRAPH_NAME, body=[line + "\n" for line in lines[1:-2]])


def render(root: Tensor, path: str | os.PathLike, format: str | None = None, **options: Any) -> Path:
    """Write the graph to ``path`` as SVG, PNG or PDF (from the suffix, or ``format``) through Graphviz's ``dot``;
    ".dot"/".gv" write the DOT text itself. Options are those of ``to_dot``. Returns the path written.

    The file is written atomically (a temporary file in the same folder, then ``os.replace``). Where ``dot`` is
    missing, the DOT text is written beside ``path`` (same name, suffix .dot) and ``DotNotFoundError`` says how
    to install Graphviz.
    """
    path = Path(path)
    fmt = format if format is not None else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"render: cannot tell the format from {path.name!r}; use a suffix among "
            f"{', '.join(FORMATS)} or pass format='svg', 'png' or 'pdf'"
        )
    fmt = {"gv": "dot"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"render: format must be 'svg', 'png', 'pdf' or 'dot', got {format!r}")
    text = to_dot(root, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        files.write_text(path, text)
        return path
    exe = shutil.which("dot")
    proc = None
    if exe is not None:
        try:
            proc = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True, timeout=600)
        except OSError:
            proc = None
        if proc is not None and proc.returncode == 0:
            with files.atomic_write(path, "wb") as f:
                f.write(proc.stdout)
            return path
    if proc is None:
        dot_path = path.with_suffix(".dot") if path.suffix.lower() != ".dot" else path
        files.write_text(dot_path, text)
        raise DotNotFoundError(
            f"render: Graphviz's `dot` program was not found on PATH, so {path} was not written; the graph "
            f"was saved as DOT text to {dot_path}. Install Graphviz (Debian/Ubuntu: sudo apt-get install "
            "graphviz; macOS: brew install graphviz; conda: conda install -c conda-forge graphviz; Windows: "
            f"winget install graphviz), then run again, or run: dot -T{fmt} {dot_path} -o {path}",
            dot_path,
        )
    raise RuntimeError(
        f"render: dot -T{fmt} failed (exit code {proc.returncode}): {proc.stderr.decode('utf-8', 'replace').strip()}"
    )
