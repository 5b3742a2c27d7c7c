"""The tinygrad-lab command end to end, and every bad input with its message and exit code."""

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

from tinygrad_lab import files
from tinygrad_lab.lab import cli, runs
from tinygrad_lab.lab.config import TrainConfig

LOG_LINE = re.compile(r"^epoch (\d+) loss : (\d+\.\d{8}) acc\(%\) : (\d+(?:\.\d{1,2})?)$")
OUTPUTS = ["comparison.png", "learning_curve.png", "decision_boundary.png", "model.npz", "history.json", "metrics.json"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run through main(), shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("cli") / "run"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(
            [
                "train",
                "--task",
                "linear",
                "--hidden",
                "4",
                "4",
                "--lr",
                "0.5",
                "--epochs",
                "300",
                "--log-every",
                "100",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
    return code, buf.getvalue(), out


def test_train_writes_every_output(trained):
    code, stdout, out = trained
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # and no temporary files
    import matplotlib.image as mpimg

    for name in OUTPUTS[:3]:
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0.05  # not a blank canvas
    assert f"to {out}" in stdout.splitlines()[-1]


def test_train_prints_the_training_steps_backend_once(trained, tmp_path, capsys):
    _, stdout, out = trained
    lines = [line for line in stdout.splitlines() if line.startswith("training step: ")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert lines == [f"training step: {metrics['backend']}"] and metrics["backend"] != "eager"
    assert cli.main(["train", "--task", "xor", "--epochs", "50", "--no-compile", "--out", str(tmp_path / "e")]) == 0
    assert "training step: eager\n" in capsys.readouterr().out


def test_metrics_and_history_match_the_printed_log(trained):
    _, stdout, out = trained
    lines = stdout.splitlines()
    logged = [LOG_LINE.match(line) for line in lines if LOG_LINE.match(line)]
    assert [int(m.group(1)) for m in logged] == [100, 200, 300]
    history = json.loads((out / "history.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert history["epochs"] == len(history["loss"]) == len(history["accuracy"]) == 300
    for m in logged:
        epoch = int(m.group(1))
        assert m.group(2) == f"{history['loss'][epoch - 1]:.8f}"
        assert float(m.group(3)) == round(history["accuracy"][epoch - 1], 2)
    printed = float(next(line for line in lines if line.startswith("Accuracy(%): ")).split(": ")[1])
    assert printed == round(metrics["final_accuracy"], 2) == round(history["final_accuracy"], 2)
    assert metrics["config"] == {
        "task": "linear",
        "hidden": [4, 4],
        "lr": 0.5,
        "epochs": 300,
        "activation": "sigmoid",
        "loss": "mse",
        "optimizer": "sgd",
        "seed": 3,
        "bias": False,
        "init": "randn",
        "model": "mlp",
        "batch_size": None,
    }
    assert metrics["epochs"] == 300
    assert metrics["epochs_to_100"] == history["epochs_to_100"]
    assert "pred_y:" in lines and "=====" in lines


def test_predict_reproduces_the_training_accuracy(trained, capsys):
    _, stdout, out = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert cli.main(["predict", "--model", str(out / "model.npz")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "pred_y:"
    assert printed[-1] == f"Accuracy(%): {round(metrics['final_accuracy'], 2)}"
    # the predictions equal the ones train printed
    start = stdout.splitlines().index("pred_y:")
    assert printed[:-1] == stdout.splitlines()[start : start + len(printed) - 1]


def test_predict_on_another_task_and_seed(trained, capsys):
    _, _, out = trained
    assert cli.main(["predict", "--model", str(out / "model.npz"), "--task", "xor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("Accuracy(%): ") and len(lines) == 1 + 21 + 2


def test_quiet_prints_only_the_accuracy(tmp_path, capsys):
    assert (
        cli.main(["train", "--task", "xor", "--epochs", "5", "--quiet", "--no-compile", "--out", str(tmp_path / "q")])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("Accuracy(%): ")
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["compiled"] is False


# ---- bad input: usage errors, exit code 2 -------------------------------------------------------------------------


def usage_error(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1], err


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--task", "nope"], "argument --task: invalid choice: 'nope'"),
        (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
        (["--lr", "0"], "argument --lr: must be a number > 0, got '0'"),
        (["--lr", "-0.1"], "argument --lr: must be a number > 0, got '-0.1'"),
        (["--lr", "nan"], "argument --lr: must be a number > 0, got 'nan'"),
        (["--lr", "fast"], "argument --lr: must be a number > 0, got 'fast'"),
        (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got '0'"),
        (["--epochs", "-5"], "argument --epochs: must be an integer >= 1, got '-5'"),
        (["--hidden", "4", "0"], "argument --hidden: must be an integer >= 1, got '0'"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["--loss", "bce", "--activation", "none"], "bce needs probabilities"),
    ],
)
def test_train_usage_errors(argv, reason, tmp_path, capsys):
    code, last, err = usage_error(["train", *argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert last.startswith("tinygrad-lab train: error: ")
    assert reason in last
    assert err[0].startswith("usage: tinygrad-lab train")
    assert not (tmp_path / "o").exists()


def test_missing_parent_of_out_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "out"
    code, last, _ = usage_error(["train", "--out", str(target)], capsys)
    assert code == 2
    assert f"the parent folder '{target.parent}' of '{target}' does not exist" in last
    file = tmp_path / "a_file"
    file.write_text("x")
    code, last, _ = usage_error(["report", "--out", str(file)], capsys)
    assert code == 2 and "exists and is not a folder" in last


def test_explain_writes_the_lab_networks_page(tmp_path, capsys):
    from tinygrad_lab.viz import explainer

    out = tmp_path / "backprop.html"
    code = cli.main(["explain", "--task", "xor", "--hidden", "2", "2", "--after-epochs", "20", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    html = out.read_text()
    assert "<svg" in html and "<script src" not in html
    payload = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    loss, model = runs.graph_root(TrainConfig(hidden=(2, 2), epochs=20), after_epochs=20)
    expected = explainer.page_data(loss, params=dict(model.named_parameters()))
    assert [s["op"] for s in payload["steps"]] == [s["op"] for s in expected["steps"]]
    code, last, _ = usage_error(["explain", "--out", str(tmp_path / "page.svg")], capsys)
    assert code == 2 and "must end in one of .html" in last


def test_graph_usage_errors(tmp_path, capsys):
    code, last, _ = usage_error(["graph", "--out", str(tmp_path / "g.txt")], capsys)
    assert code == 2 and "must end in one of .svg, .png, .pdf" in last
    code, last, _ = usage_error(["graph", "--view", "sideways", "--out", str(tmp_path / "g.svg")], capsys)
    assert code == 2 and "invalid choice: 'sideways'" in last


def test_real_exit_codes_through_python_m(tmp_path):
    run = [sys.executable, "-m", "tinygrad_lab"]
    bad = subprocess.run(
        run + ["train", "--task", "nope", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("tinygrad-lab train: error: argument --task")
    assert "Traceback" not in bad.stderr
    missing = subprocess.run(
        run + ["predict", "--model", str(tmp_path / "none.npz")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1
    assert missing.stderr == f"error: {tmp_path / 'none.npz'}: no such file\n"
    ok = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "train" in ok.stdout and "report" in ok.stdout


# ---- bad model files: exit code 1, one line on stderr, no traceback -------------------------------------------------


def model_error(path, capsys):
    code = cli.main(["predict", "--model", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    return code, captured.err


def rewrite(src, dst, change):
    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    np.savez(dst, **arrays)


def test_missing_model_file(tmp_path, capsys):
    code, err = model_error(tmp_path / "model.npz", capsys)
    assert code == 1 and err == f"error: {tmp_path / 'model.npz'}: no such file\n"


def test_corrupt_model_files(trained, tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive at all")
    code, err = model_error(garbage, capsys)
    assert code == 1 and err.startswith(f"error: {garbage}: not a .npz archive")
    assert err.count("\n") == 1
    truncated = tmp_path / "truncated.npz"
    whole = (trained[2] / "model.npz").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    code, err = model_error(truncated, capsys)
    assert code == 1 and err.startswith(f"error: {truncated}: ") and err.count("\n") == 1
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    code, err = model_error(folder, capsys)
    assert code == 1 and "is a directory" in err


def test_model_file_missing_a_key(trained, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    rewrite(trained[2] / "model.npz", bad, lambda a: a.pop("fc2.weight"))
    code, err = model_error(bad, capsys)
    assert code == 1
    assert err == f"error: {bad}: missing key 'fc2.weight' (the model needs shape (4, 4))\n"


def test_model_file_with_a_wrong_shape(trained, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    rewrite(trained[2] / "model.npz", bad, lambda a: a.__setitem__("fc2.weight", np.zeros((4, 3))))
    code, err = model_error(bad, capsys)
    assert code == 1
    assert err == f"error: {bad}: key 'fc2.weight' has shape (4, 3) in the file but the model needs (4, 4)\n"


def test_model_file_without_metadata(tmp_path, capsys):
    bad = tmp_path / "plain.npz"
    np.savez(bad, w=np.zeros(3))
    code, err = model_error(bad, capsys)
    assert code == 1 and err == f"error: {bad}: missing key '__meta__' (the metadata that rebuilds the model)\n"


def test_model_file_with_broken_metadata(trained, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    rewrite(trained[2] / "model.npz", bad, lambda a: a.__setitem__("__meta__", np.array("{not json")))
    code, err = model_error(bad, capsys)
    assert code == 1 and "does not hold JSON metadata" in err
    meta = json.loads(str(np.load(trained[2] / "model.npz")["__meta__"]))
    del meta["model"]["hidden"]
    rewrite(trained[2] / "model.npz", bad, lambda a: a.__setitem__("__meta__", np.array(json.dumps(meta))))
    code, err = model_error(bad, capsys)
    assert code == 1 and err == f"error: {bad}: metadata is missing key 'model.hidden'\n"


def _as_version(arrays, version, transpose):
    meta = json.loads(str(arrays["__meta__"]))
    meta["version"] = version
    arrays["__meta__"] = np.array(json.dumps(meta))
    for key in [k for k in arrays if k.endswith(".weight")] if transpose else []:
        arrays[key] = arrays[key].T.copy()


def test_version_1_model_files_hold_in_out_weights_and_still_predict(trained, tmp_path, capsys):
    old = tmp_path / "old.npz"  # as the first version wrote it: Linear weights (in_features, out_features)
    rewrite(trained[2] / "model.npz", old, lambda a: _as_version(a, 1, transpose=True))
    assert np.load(old)["fc3.weight"].shape == (4, 1)
    assert cli.main(["predict", "--model", str(trained[2] / "model.npz")]) == 0
    current = capsys.readouterr().out
    assert cli.main(["predict", "--model", str(old)]) == 0
    assert capsys.readouterr().out == current
    newer = tmp_path / "newer.npz"
    rewrite(trained[2] / "model.npz", newer, lambda a: _as_version(a, files.MODEL_VERSION + 1, transpose=False))
    code, err = model_error(newer, capsys)
    assert code == 1 and err == (
        f"error: {newer}: model file version {files.MODEL_VERSION + 1} is not one this "
        f"tinygrad-lab reads (1 to {files.MODEL_VERSION}); a newer tinygrad-lab may have "
        "written it\n"
    )


def test_model_file_is_a_zip_of_something_else(tmp_path, capsys):
    bad = tmp_path / "other.npz"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("readme.txt", "hello")
    code, err = model_error(bad, capsys)
    assert code == 1 and err.startswith(f"error: {bad}: ") and err.count("\n") == 1


def test_model_file_round_trips_through_files(tmp_path):
    from tinygrad_lab import nn

    model = nn.MLP(2, (3,), 1, rng=np.random.default_rng(0))
    files.save_model(tmp_path / "m.npz", model, {"model": {"hidden": [3]}})
    meta, arrays = files.read_model_file(tmp_path / "m.npz")
    assert meta["format"] == files.MODEL_FORMAT and meta["model"] == {"hidden": [3]}
    assert list(arrays) == list(model.state_dict())


# ---- graph --------------------------------------------------------------------------------------------------------


def test_graph_writes_a_readable_svg(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    code = cli.main(
        [
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
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "fc1.weight" in texts  # parameters carry their names
    png = tmp_path / "graph.png"
    assert cli.main(["graph", "--task", "linear", "--hidden", "2", "1", "--out", str(png)]) == 0
    import matplotlib.image as mpimg

    assert mpimg.imread(png).shape[0] > 10
