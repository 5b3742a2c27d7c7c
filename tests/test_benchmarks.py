"""The benchmark suite runs: ``python -m benchmarks --smoke`` writes every table, every implementation passes
the check against the reference, and RESULTS.md's human-written Notes survive a rewrite. No timing is
asserted (speed is never a test)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package of the repo, not of the installed project
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.implementations import IMPLS  # noqa: E402
from benchmarks.problems import SIZES  # noqa: E402

DEFAULT_RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _sections(text: str, level: str) -> dict[str, str]:
    """Heading (without the #s) -> the text up to the next heading of the same level."""
    parts: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(level + " "):
            current = line[len(level) + 1 :].strip()
            parts[current] = ""
        elif current is not None:
            if line.startswith("#") and len(line) - len(line.lstrip("#")) <= len(level):
                current = None
            else:
                parts[current] += line + "\n"
    return parts


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    before = DEFAULT_RESULTS.read_bytes() if DEFAULT_RESULTS.exists() else None
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    after = DEFAULT_RESULTS.read_bytes() if DEFAULT_RESULTS.exists() else None
    return proc, out, before, after


def test_smoke_run_succeeds_and_leaves_results_md_alone(smoke):
    proc, out, before, after = smoke
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.exists()
    assert before == after


def test_every_implementation_has_a_row_at_every_size_and_passes_the_check(smoke):
    proc, out, _, _ = smoke
    text = out.read_text()
    sizes = {title.split(":")[0]: body for title, body in _sections(text, "###").items() if title[:2] in SIZES}
    assert sorted(sizes) == sorted(SIZES)
    for name, body in sizes.items():
        rows = [_cells(line) for line in body.splitlines() if line.startswith("| ") and "---" not in line][1:]
        for impl in IMPLS:
            matching = [r for r in rows if r[0].startswith(impl.label)]
            assert len(matching) == 1, (name, impl.label, rows)
            row = matching[0]
            if not impl.runs_at(name):
                assert row[2] == "n/a"
            elif impl.unavailable():
                assert row[2] == "not installed"
            elif impl.key == "reference":
                assert row[2].endswith("us") or row[2].endswith("ms")
            else:
                assert row[1].startswith("ok "), (name, row)  # the gradient check passed
                assert float(row[1].split()[1]) <= 1e-9
                assert "x" in row[4]  # timed, with a ratio to the reference
        assert "WRONG" not in body and "error" not in body
    assert "max |dw| after" in proc.stdout


def test_every_other_part_is_in_the_results(smoke):
    _, out, _, _ = smoke
    sections = _sections(out.read_text(), "##")
    for title in (
        "Machine",
        "Per-epoch time",
        "Targets",
        "Per-op overhead",
        "Memory",
        "The lab's full run",
        "Where the time goes",
        "Notes",
    ):
        assert title in sections, title
    assert "BLAS" in sections["Machine"]
    targets = sections["Targets"]
    assert targets.count("| first speed goals | eager |") == 4 and targets.count("| captured |") == 4
    assert targets.count("| native step goals | native |") == 4
    assert "| native step goals | eager | S1 | <= 2.5x |" in targets
    for op in ("sigmoid", "mul", "matmul", "sum"):
        assert f"| {op}" in sections["Per-op overhead"]
    memory_rows = [line for line in sections["Memory"].splitlines() if line.startswith("| S")]
    assert len(memory_rows) == 4 and not any("error" in line for line in memory_rows)
    assert "captured" in sections["The lab's full run"] and "eager" in sections["The lab's full run"]
    assert "fresh process, empty cache" in sections["The lab's full run"]
    assert "calls / epoch" in sections["Where the time goes"]
    assert sections["Notes"].strip() == "(to be written)"
    conv_rows = [line for line in sections["conv2d forward + backward against PyTorch"].splitlines() if "->" in line]
    assert len(conv_rows) == 2 and all(_cells(line)[3].endswith("x") for line in conv_rows)
    cnn_rows = [line for line in sections["The digits CNN's epoch against PyTorch"].splitlines() if "conv 16" in line]
    assert len(cnn_rows) == 1
    cells = _cells(cnn_rows[0])
    assert float(cells[1]) > 0 and float(cells[2]) > 0 and cells[3].endswith("x") and cells[4] in ("met", "NOT met")


def test_smoke_refuses_to_overwrite_the_committed_results():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(DEFAULT_RESULTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "never writes" in proc.stderr


def test_rewriting_results_keeps_the_notes(tmp_path):
    path = tmp_path / "RESULTS.md"
    results = report.Results(
        command="python -m benchmarks",
        date="today",
        machine={
            "cores": "2",
            "cpu": "cpu",
            "python": "3",
            "numpy": "2",
            "blas": ["openblas"],
            "OPENBLAS_CORETYPE": "(not set)",
            "libraries": {},
        },
        rounds=1,
        block_seconds=0.1,
        smoke=False,
    )
    report.write(results, path)
    assert path.read_text().endswith("## Notes\n\n(to be written)\n")
    path.write_text(path.read_text().replace("(to be written)", "Eager is slow because ...\n\n## Later\n\nmore"))
    report.write(results, path)
    text = path.read_text()
    assert text.splitlines().count("## Notes") == 1 and "Eager is slow because ..." in text and text.endswith("more\n")
    assert text.startswith("# Benchmark results")
