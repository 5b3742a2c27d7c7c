"""What the results were measured on: cores, CPU model, load, Python, numpy, BLAS and optional libraries."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from benchmarks.implementations import IMPLS, cpu_count


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas() -> list[str]:
    """One line per thread pool threadpoolctl finds (numpy's BLAS, OpenMP of other libraries)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed (pip install -e '.[dev]')"]
    lines = []
    for pool in threadpool_info():
        parts = [str(pool.get("internal_api", pool.get("user_api", "?"))), str(pool.get("version") or "")]
        if pool.get("architecture"):
            parts.append(f"arch {pool['architecture']}")
        if pool.get("threading_layer"):
            parts.append(f"threading {pool['threading_layer']}")
        parts.append(f"{pool.get('num_threads')} threads")
        parts.append(os.path.basename(str(pool.get("filepath", ""))))
        lines.append(", ".join(p for p in parts if p))
    return lines or ["no BLAS thread pool found"]


def library_versions() -> dict[str, str]:
    """Versions of the optional libraries (from their package metadata), or why they do not import."""
    from importlib import metadata

    versions = {}
    for impl in IMPLS:
        module = impl.module
        if not module or module in versions:
            continue
        why = impl.unavailable()
        try:
            versions[module] = why or metadata.version(module)
        except metadata.PackageNotFoundError:
            versions[module] = "installed"
    return dict(sorted(versions.items()))


def describe() -> dict[str, Any]:
    """The Machine section's facts, read before any benchmark runs (so the BLAS pools listed are numpy's,
    not those of libraries the benchmarks import later)."""
    return {
        "cores": f"{cpu_count()} usable ({os.cpu_count()} online)",
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
        "libraries": library_versions(),
        "load_start": _load(),
    }


def finish(info: dict[str, Any]) -> None:
    """Add the load average at the end of the run to ``info``."""
    start, end = info.get("load_start"), _load()
    info["load_end"] = end
    if start is not None and end is not None:
        info["load"] = (
            f"{start:.2f} at the start, {end:.2f} at the end (1-minute load average on "
            f"{cpu_count()} cores, this run included)"
        )


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def shared(info: dict[str, Any]) -> bool:
    """Whether other work shared the cores during the run: the run itself keeps about one core busy, so a
    1-minute load within half a core of all of them means something else wanted a core too."""
    loads = [v for v in (info.get("load_start"), info.get("load_end")) if v is not None]
    return bool(loads) and max(loads) >= cpu_count() - 0.5
