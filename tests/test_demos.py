"""The demos run as a user runs them (a fresh interpreter, from another folder) and print what they promise."""

import pathlib
import subprocess
import sys

import pytest

DEMOS = pathlib.Path(__file__).resolve().parent.parent / "demos"


def run_demo(name: str, tmp_path: pathlib.Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(DEMOS / name), *args], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_quickstart(tmp_path):
    out = run_demo("quickstart.py", tmp_path)
    assert "neuron: o = 0.7071, do/dw1 = 1.0000, do/dw2 = 0.0000" in out  # micrograd's numbers
    losses = [float(line.split("loss : ")[1].split()[0]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 3 and losses[-1] < losses[0]  # the manual in-place SGD loop trains
    assert out.rstrip().endswith("gradcheck of the network w.r.t. its first weight: True")


def test_lab1_trains_the_labs_network_to_full_accuracy(tmp_path):
    out = run_demo("lab1.py", tmp_path)
    assert "epoch 20000 loss :" in out and "Accuracy(%): 100.0" in out


@pytest.mark.parametrize("name", ["graphs.py", "explain.py"])
def test_picture_demos_write_their_files(name, tmp_path):
    out = run_demo(name, tmp_path, *([str(tmp_path / "pages")] if name == "explain.py" else []))
    written = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("wrote ")]
    assert written and all(pathlib.Path(p).stat().st_size > 1000 for p in written)
