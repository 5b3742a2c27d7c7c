"""The package as users get it: the wheel built from this checkout, installed into fresh virtual environments
without extras and with [all], and used from a folder outside the source tree, so nothing here can pass on the
checkout's own files."""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and two environments (still part of make test)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PLOTS_HINT = "pip install 'tinygrad-lab[plots]'"
EXTRAS = {"viz": ["graphviz"], "plots": ["matplotlib", "tqdm"], "data": ["scikit-learn"]}
NUMPY_ONLY_FILES = {"model.npz", "metrics.json", "history.json"}
FIGURES = {"comparison.png", "learning_curve.png", "decision_boundary.png"}
TRAIN = ["train", "--task", "xor", "--epochs", "2000", "--out", "run"]
# What the checkout holds beside the package; none of it belongs in the wheel.
NOT_SHIPPED = ("tests", "benchmarks", "demos")


def quickstart_blocks() -> list[str]:
    """The Python blocks of the README's Quickstart section, as a new user copies them."""
    section = README.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """One wheel per test run, built from a copy of the checkout so no stale build/ folder can leak into it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "tinygrad_lab", src / "tinygrad_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):  # what the build reads besides the package
        shutil.copy(ROOT / name, src / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (built,) = (tmp / "dist").glob("tinygrad_lab-*.whl")
    return built


def clean_env() -> dict[str, str]:
    """The environment without anything that could put the checkout or another site on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


class Installed:
    """A fresh virtual environment for the wheel (with `extras`), and a working folder outside the tree."""

    def __init__(self, root: Path, wheel: Path, extras: str):
        self.venv, self.cwd = root / "venv", root / "work"
        self.cwd.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(self.venv)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        self.python = self.venv / "bin" / "python"
        # This environment's pip (and its cache) installs into the new one, which needs no pip of its own;
        # the install runs in the background until wait() (so two environments fill at once).
        self._pip = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(self.python),
                "install",
                "--quiet",
                "--no-compile",
                f"{wheel}{extras}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )

    def wait(self) -> Installed:
        _, stderr = self._pip.communicate(timeout=900)
        assert self._pip.returncode == 0, stderr
        return self

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=self.cwd, capture_output=True, text=True, env=clean_env(), timeout=600)

    def python_code(self, code: str) -> subprocess.CompletedProcess:
        return self.run(str(self.python), "-c", code)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(str(self.venv / "bin" / "tinygrad-lab"), *args)

    def distributions(self) -> set[str]:
        done = self.python_code(
            "import importlib.metadata as m; "
            "print('\\n'.join(sorted({d.metadata['Name'].lower() for d in m.distributions()})))"
        )
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())


@pytest.fixture(scope="module")
def installs(wheel, tmp_path_factory) -> dict[str, Installed]:
    """The wheel installed twice, side by side: without extras (numpy only) and with [all]."""
    started = {
        "bare": Installed(tmp_path_factory.mktemp("bare"), wheel, ""),
        "full": Installed(tmp_path_factory.mktemp("full"), wheel, "[all]"),
    }
    return {name: env.wait() for name, env in started.items()}


@pytest.fixture(scope="module")
def bare(installs) -> Installed:
    return installs["bare"]


@pytest.fixture(scope="module")
def full(installs) -> Installed:
    return installs["full"]


# ---- the wheel itself ------------------------------------------------------------------------------------------------


def test_wheel_holds_the_package_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert {n.split("/")[0] for n in names} == {"tinygrad_lab", dist_info}
    assert not [n for n in names if n.split("/")[0] in NOT_SHIPPED or "__pycache__" in n]
    modules = {
        f"tinygrad_lab/{p.relative_to(ROOT / 'tinygrad_lab').as_posix()}"
        for p in (ROOT / "tinygrad_lab").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules <= set(names), sorted(modules - set(names))
    assert "tinygrad_lab/py.typed" in names  # users' type checkers read the hints


def test_wheel_has_its_license_and_readable_metadata(wheel):
    archive = zipfile.ZipFile(wheel)
    dist_info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    assert archive.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    meta = email.message_from_string(archive.read(f"{dist_info}/METADATA").decode("utf-8"))
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == README.strip()  # the long description is the README, unmangled
    required = meta.get_all("Requires-Dist")
    assert [r for r in required if "extra ==" not in r] == ["numpy>=1.26"]  # numpy is the only runtime need
    assert set(meta.get_all("Provides-Extra")) == {*EXTRAS, "dev", "all"}
    entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "tinygrad-lab = tinygrad_lab.lab.cli:main" in entry_points


# ---- installed without extras: numpy only ----------------------------------------------------------------------------


def test_bare_install_has_numpy_only_and_imports_from_the_venv(bare):
    assert bare.distributions() == {"tinygrad-lab", "numpy"}
    done = bare.python_code("import tinygrad_lab, sys; print(tinygrad_lab.__file__); print(sys.prefix)")
    assert done.returncode == 0, done.stderr
    module_file, prefix = (Path(line).resolve() for line in done.stdout.splitlines())
    assert prefix == bare.venv.resolve()
    assert module_file.is_relative_to(prefix / "lib") and not module_file.is_relative_to(ROOT)


@pytest.mark.parametrize("index", range(len(quickstart_blocks())))
def test_quickstart_runs_with_numpy_only(bare, index):
    run_quickstart(bare, quickstart_blocks()[index])


def run_quickstart(env: Installed, block: str) -> None:
    """Run one README block as a script in the install's work folder; `print(...)  # x` lines must print x."""
    script = env.cwd / "quickstart.py"
    script.write_text(block)
    done = env.run(str(env.python), str(script))
    assert done.returncode == 0, done.stderr
    for expected in re.findall(r"^print\(.*\)[ \t]+#[ \t]*(.+)$", block, flags=re.M):
        assert expected.strip() in done.stdout


def test_train_without_plots_keeps_the_run_and_says_what_it_skipped(bare):
    done = bare.cli(*TRAIN)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name for p in (bare.cwd / "run").iterdir()} == NUMPY_ONLY_FILES
    notes = [line for line in (done.stdout + done.stderr).splitlines() if PLOTS_HINT in line]
    assert len(notes) == 1, done.stdout + done.stderr
    metrics = json.loads((bare.cwd / "run" / "metrics.json").read_text())
    assert metrics["epochs"] <= 2000 and metrics["config"]["task"] == "xor"
    predicted = bare.cli("predict", "--model", "run/model.npz")  # predict needs numpy only
    assert predicted.returncode == 0, predicted.stderr
    assert "Accuracy(%)" in predicted.stdout


def test_report_without_plots_refuses_in_one_line_before_any_work(bare):
    done = bare.cli("report", "--quick", "--out", "rep")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and PLOTS_HINT in lines[0], lines
    rep = bare.cwd / "rep"
    assert not rep.exists() or not any(rep.iterdir())


def test_graph_needs_no_graphviz_package(bare):
    done = bare.cli(
        "graph",
        "--task",
        "xor",
        "--hidden",
        "4",
        "4",
        "--view",
        "backward",
        "--after-epochs",
        "20",
        "--out",
        "graph.svg",
    )
    assert done.returncode == 0, done.stderr
    assert "<svg" in (bare.cwd / "graph.svg").read_text()  # drawn by Graphviz's dot program


def test_viz_draw_without_its_extra_names_it(bare):
    done = bare.python_code(
        "import tinygrad_lab as tl\nfrom tinygrad_lab import viz\n"
        "try:\n    viz.draw(tl.tensor(1.0) * 2)\nexcept ImportError as err:\n    print(err)"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'tinygrad-lab[viz]'" in done.stdout


# ---- installed with [all] --------------------------------------------------------------------------------------------


def test_full_install_brings_every_extra(full):
    assert {name for names in EXTRAS.values() for name in names} <= full.distributions()


@pytest.mark.parametrize("index", range(len(quickstart_blocks())))
def test_quickstart_runs_with_every_extra(full, index):
    run_quickstart(full, quickstart_blocks()[index])


def test_train_with_every_extra_writes_the_figures_too(full):
    done = full.cli(*TRAIN)
    assert done.returncode == 0, done.stderr
    out = full.cwd / "run"
    assert {p.name for p in out.iterdir()} == NUMPY_ONLY_FILES | FIGURES
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in FIGURES)
    assert PLOTS_HINT not in done.stdout + done.stderr
