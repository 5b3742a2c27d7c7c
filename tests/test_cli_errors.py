"""The CLI under failure: runtime errors as one line with exit code 1, limits on sizes as usage errors,
model metadata checked before anything is built, a run's folder written whole or not at all (Ctrl-C
included), divergence with its own exit code, and each command without its optional extras."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lab import files
from tinygrad_lab.lab import cli, plots, runs, train
from tinygrad_lab.lab.config import MAX_EPOCH_POINTS, MAX_EPOCHS, MAX_LAYERS, MAX_PARAMETERS, MAX_WIDTH, build_model

OUTPUTS = ["comparison.png", "learning_curve.png", "decision_boundary.png", "model.npz", "history.json", "metrics.json"]

RUN = [sys.executable, "-m", "tinygrad_lab"]
SMALL = ["--task", "xor", "--epochs", "5", "--quiet", "--no-compile"]


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def one_error_line(err):
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "run"
    assert cli.main(["train", *SMALL, "--out", str(out)]) == 0
    return out / "model.npz"


# ---- limits: usage errors (exit code 2) naming the limit, checked before any work --------------------------------


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--epochs", "1000000000000"], f"--epochs: must be at most {MAX_EPOCHS:,} (the limit on a run's length)"),
        (["--epochs", "99999999999999999999999999"], f"must be at most {MAX_EPOCHS:,}"),
        (
            ["--task", "circle", "--epochs", str(MAX_EPOCH_POINTS // 200 + 1)],
            f"epochs x data points must be at most {MAX_EPOCH_POINTS:,}",
        ),
        (["--hidden", "100000000"], f"--hidden: must be at most {MAX_WIDTH:,} (the limit on a layer's width)"),
        (["--hidden", "5000", "5000"], f"at most {MAX_PARAMETERS:,} parameters (the limit on a model's size)"),
        (["--hidden", *["1"] * (MAX_LAYERS + 1)], f"at most {MAX_LAYERS} hidden layers"),
    ],
)
def test_sizes_over_the_limits_are_usage_errors(argv, reason, tmp_path, capsys):
    code, out, err = run_cli(["train", *argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.splitlines()[-1].startswith("tinygrad-lab train: error: ") and reason in err.splitlines()[-1]
    assert out == "" and not (tmp_path / "o").exists()


def test_limits_of_the_other_commands(tmp_path, capsys):
    code, _, err = run_cli(["graph", "--after-epochs", "1000000000000", "--out", str(tmp_path / "g.svg")], capsys)
    assert code == 2 and "--after-epochs: must be at most" in err
    for flag in ("--epochs", "--seeds", "--workers"):
        code, _, err = run_cli(["report", flag, "10" * 10, "--out", str(tmp_path / "r")], capsys)
        assert code == 2 and f"argument {flag}: must be at most" in err
    assert not (tmp_path / "r").exists()


def test_the_limits_hold_in_a_real_process(tmp_path):
    for argv in (["--epochs", "1000000000000"], ["--hidden", "100000000"]):
        proc = subprocess.run(
            RUN + ["train", *argv, "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "(the limit on" in proc.stderr.splitlines()[-1]
    assert not (tmp_path / "o").exists()


# ---- runtime errors: one line, exit code 1, nothing half-written ----------------------------------------------------


def test_an_output_folder_that_cannot_be_created(capsys):  # /proc: Linux's, where nothing can be created
    code, out, err = run_cli(["train", *SMALL, "--out", "/proc/x"], capsys)
    assert code == 1 and out == ""  # refused before training: no accuracy printed
    assert one_error_line(err).startswith("error: /proc/x: cannot create it")


def test_model_npz_being_a_folder_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "model.npz").mkdir(parents=True)
    code, stdout, err = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 1 and stdout == ""
    assert (
        one_error_line(err) == f"error: {out / 'model.npz'}: is a folder; an output folder may hold only a run's files"
    )
    assert listing(out) == ["model.npz"] and listing(tmp_path) == ["run"]


def test_a_folder_holding_other_files_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 1 and "holds 'notes.txt', which is not a run's output" in one_error_line(err)
    assert listing(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_os_and_memory_errors_become_one_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"

    def disk_full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_json", disk_full)
    code, _, err = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 1 and one_error_line(err).endswith("history.json: No space left on device")
    assert listing(tmp_path) == []  # neither the run nor its staging folder

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB for an array")

    monkeypatch.setattr(runs, "run", no_memory)
    code, _, err = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 1 and one_error_line(err) == "error: out of memory: Unable to allocate 7.28 TiB for an array"
    assert listing(tmp_path) == []


def test_an_unexpected_exception_is_one_line(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected\nwith a second line")

    monkeypatch.setattr(runs, "run", broken)
    code, _, err = run_cli(["train", *SMALL, "--out", str(tmp_path / "run")], capsys)
    assert code == 1 and one_error_line(err) == "error: RuntimeError: something nobody expected"


# ---- a folder holds a whole run or none ----------------------------------------------------------------------------


def interrupt_at(monkeypatch, module, name, target):
    """Make module.name raise KeyboardInterrupt when it writes the file called target."""
    real = getattr(module, name)

    def writer(*args, **kwargs):
        path = next(a for a in args if isinstance(a, (str, os.PathLike)))
        if os.path.basename(path) == target:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, writer)


@pytest.mark.parametrize(
    "module, name, target",
    [
        (files, "write_json", "metrics.json"),  # the last file
        (files, "save_figure", "learning_curve.png"),  # after one figure
        (runs, "save_run", "model.npz"),
    ],
)
def test_ctrl_c_while_writing_leaves_no_run(module, name, target, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_at(monkeypatch, module, name, target)
    code, _, err = run_cli(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 130 and err == "interrupted\n"
    assert listing(tmp_path) == []


def test_ctrl_c_while_writing_keeps_the_previous_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", *SMALL, "--out", str(out)], capsys)[0] == 0
    before = snapshot(out)
    interrupt_at(monkeypatch, files, "write_json", "metrics.json")
    code, _, _ = run_cli(["train", *SMALL, "--seed", "7", "--out", str(out)], capsys)
    assert code == 130
    assert snapshot(out) == before and listing(tmp_path) == ["run"]


def test_a_rerun_replaces_the_whole_previous_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", *SMALL, "--out", str(out)], capsys)[0] == 0
    assert listing(out) == sorted(OUTPUTS)
    monkeypatch.setattr(plots, "available", lambda: False)  # the second run writes no figures
    code, _, err = run_cli(["train", *SMALL, "--seed", "7", "--out", str(out)], capsys)
    assert code == 0 and err.startswith("note: matplotlib is not installed")
    assert listing(out) == ["history.json", "metrics.json", "model.npz"]  # no figure of the old run is left
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 7
    assert listing(tmp_path) == ["run"]


def test_a_failed_swap_puts_the_previous_run_back(tmp_path, monkeypatch):
    old = tmp_path / "run"
    old.mkdir()
    (old / "metrics.json").write_text("old")
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new run's rename, after the old one was moved aside
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        with files.staged_folder(old, ["metrics.json"]) as stage:
            (stage / "metrics.json").write_text("new")
    assert len(calls) == 3 and listing(tmp_path) == ["run"] and (old / "metrics.json").read_text() == "old"


def test_staged_folder_publishes_with_normal_permissions(tmp_path):
    with files.staged_folder(tmp_path / "run", ["a.txt"]) as stage:
        files.write_text(stage / "a.txt", "x")
        assert not (tmp_path / "run").exists()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~umask
    assert listing(tmp_path) == ["run"] and listing(tmp_path / "run") == ["a.txt"]


# ---- divergence -----------------------------------------------------------------------------------------------------


def test_a_diverged_run_says_so_once_and_exits_3(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        RUN
        + ["train", "--lr", "1e10", "--activation", "none", "--epochs", "300", "--log-every", "100", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == cli.DIVERGED == 3
    assert "Warning" not in proc.stderr + proc.stdout
    history = json.loads((out / "history.json").read_text())
    first_bad = history["loss"].index(None) + 1  # to_dict writes a non-finite loss as null
    assert one_error_line(proc.stderr) == (
        f"error: the run diverged: its loss stopped being finite at epoch "
        f"{first_bad} (try a lower --lr); the run is in {out}"
    )
    assert history["diverged_at"] == first_bad
    assert json.loads((out / "metrics.json").read_text())["diverged_at_epoch"] == first_bad
    assert listing(out) == sorted(OUTPUTS)


def test_a_run_that_does_not_diverge_records_none(tmp_path, capsys):
    assert run_cli(["train", *SMALL, "--out", str(tmp_path / "run")], capsys)[0] == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["diverged_at_epoch"] is None


# ---- predict checks the metadata before building anything -----------------------------------------------------------


def with_meta(src, dst, change=None, arrays_change=None):
    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["__meta__"]))
    if change:
        change(meta)
    if arrays_change:
        arrays_change(arrays)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


@pytest.mark.parametrize(
    "change, arrays_change, reason",
    [
        (lambda m: m["config"].__setitem__("seed", "abc"), None, "'config.seed' must be an integer >= 0, got 'abc'"),
        (lambda m: m["config"].__setitem__("seed", -5), None, "'config.seed' must be an integer >= 0, got -5"),
        (lambda m: m["config"].__setitem__("seed", True), None, "'config.seed' must be an integer >= 0, got True"),
        (lambda m: m.__setitem__("config", [1, 2]), None, "'config' must be an object, got list"),
        (lambda m: m["config"].__setitem__("task", ["xor"]), None, "'config.task' must be one of linear, xor"),
        (
            None,
            lambda a: a.__setitem__("fc1.weight", np.full((2, 4), "abc")),
            "key 'fc1.weight' holds <U3 values, not real numbers",
        ),
        (
            None,
            lambda a: a.__setitem__("fc2.weight", np.where(np.eye(4, dtype=bool), np.nan, a["fc2.weight"])),
            "key 'fc2.weight' holds 4 NaN or infinite value(s): the model diverged, its outputs mean nothing",
        ),
        (
            lambda m: m["model"].__setitem__("hidden", [1e9, 1e9]),
            None,
            "'model.hidden' must be a non-empty list of integers >= 1, got [1000000000.0, 1000000000.0]",
        ),
        (
            lambda m: m["model"].__setitem__("hidden", [10**9, 10**9]),
            None,
            f"at most {MAX_WIDTH:,} (the limit on a layer's width)",
        ),
        (
            lambda m: m["model"].__setitem__("hidden", [1000, 1000, 1000]),
            None,
            f"at most {MAX_PARAMETERS:,} parameters",
        ),
        (lambda m: m["model"].__setitem__("hidden", []), None, "'model.hidden' must be a non-empty list"),
        (lambda m: m["model"].__setitem__("in_features", "2"), None, "'model.in_features' must be an integer >= 1"),
        (lambda m: m["model"].__setitem__("activation", "swish"), None, "'model.activation' must be one of sigmoid"),
        (lambda m: m["model"].__setitem__("bias", "yes"), None, "'model.bias' must be true or false, got 'yes'"),
    ],
)
def test_predict_rejects_bad_metadata_before_building(
    change, arrays_change, reason, model_file, tmp_path, monkeypatch, capsys
):
    bad = with_meta(model_file, tmp_path / "bad.npz", change, arrays_change)
    built = []
    real_build = build_model
    monkeypatch.setattr(runs, "build_model", lambda *a, **k: built.append(a) or real_build(*a, **k))
    code, out, err = run_cli(["predict", "--model", str(bad)], capsys)
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert line.startswith(f"error: {bad}: ") and reason in line
    if arrays_change is None:
        assert built == []  # refused from the metadata alone


def test_predict_still_reads_a_good_file(model_file, tmp_path, capsys):
    copy = with_meta(model_file, tmp_path / "same.npz")
    code, out, _ = run_cli(["predict", "--model", str(copy)], capsys)
    assert code == 0 and out.splitlines()[-1].startswith("Accuracy(%): ")


# ---- without the optional extras ------------------------------------------------------------------------------------


@pytest.fixture
def blocked(tmp_path):
    """Run the CLI in a subprocess where the named packages fail to import, as if not installed."""
    stubs = tmp_path / "stubs"

    def run(names, *argv, path=None):
        for name in names:
            (stubs / name).mkdir(parents=True, exist_ok=True)
            (stubs / name / "__init__.py").write_text(f'raise ImportError("No module named {name!r}")\n')
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")]))
        if path is not None:
            env["PATH"] = path
        return subprocess.run(RUN + list(argv), capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)

    return run


def test_train_and_predict_without_matplotlib(blocked, tmp_path):
    proc = blocked(["matplotlib"], "train", "--task", "xor", "--epochs", "50", "--out", "run")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert one_error_line(proc.stderr) == (
        "note: matplotlib is not installed, so comparison.png, learning_curve.png, decision_boundary.png were "
        "skipped; pip install 'tinygrad-lab[plots]' draws them"
    )
    assert listing(tmp_path / "run") == ["history.json", "metrics.json", "model.npz"]
    assert proc.stdout.splitlines()[-1] == "wrote model.npz, history.json, metrics.json to run"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    pred = blocked(["matplotlib", "tqdm", "graphviz"], "predict", "--model", "run/model.npz")
    assert pred.returncode == 0 and pred.stderr == ""
    assert pred.stdout.splitlines()[-1] == f"Accuracy(%): {train.format_accuracy(metrics['final_accuracy'])}"


def test_train_without_tqdm_is_silent(blocked, tmp_path):
    proc = blocked(["tqdm"], "train", "--task", "xor", "--epochs", "50", "--out", "run")
    assert proc.returncode == 0 and proc.stderr == ""
    assert listing(tmp_path / "run") == sorted(OUTPUTS)


def test_report_without_matplotlib_stops_before_any_work(blocked, tmp_path):
    proc = blocked(["matplotlib"], "report", "--quick", "--out", "rep")
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_error_line(proc.stderr) == (
        "error: report draws figures and needs matplotlib, which is not installed: pip install 'tinygrad-lab[plots]'"
    )
    assert listing(tmp_path) == ["stubs"]


def test_graph_without_the_graphviz_package(blocked, tmp_path):
    import shutil

    dot = shutil.which("dot")
    assert dot is not None, "make test installs Graphviz's dot"
    proc = blocked(["graphviz", "matplotlib"], "graph", "--out", "g.svg")
    assert proc.returncode == 0 and proc.stdout == "wrote g.svg\n" and proc.stderr == ""
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    no_dot = blocked(["graphviz"], "graph", "--out", "h.svg", path=os.path.dirname(sys.executable))
    assert no_dot.returncode == 1 and "Traceback" not in no_dot.stderr
    assert one_error_line(no_dot.stderr).startswith("error: h.svg: ") and "h.dot" in no_dot.stderr
    assert (tmp_path / "h.dot").read_text().startswith("digraph") and not (tmp_path / "h.svg").exists()
