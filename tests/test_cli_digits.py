"""`tinygrad-lab train --task digits` end to end on a short schedule (the MLP and the CNN), predict on the test split,
and the digits' usage errors: models and losses that do not fit the task, and scikit-learn missing."""

import json
import os
import subprocess
import sys

import pytest

from tinygrad_lab.lab import cli, train

RUN = [sys.executable, "-m", "tinygrad_lab"]
FILES = ["confusion_matrix.png", "history.json", "learning_curve.png", "metrics.json", "misclassified.png", "model.npz"]


def run_cli(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def digits_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "run"
    proc = subprocess.run(
        RUN + ["train", "--task", "digits", "--model", request.param, "--epochs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return request.param, out, proc.stdout


def test_train_writes_the_run_and_logs_train_and_test_accuracy(digits_run):
    model, out, stdout = digits_run
    assert sorted(p.name for p in out.iterdir()) == FILES
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert metrics["config"]["model"] == model and metrics["config"]["batch_size"] == 64
    assert metrics["config"]["optimizer"] == "adam" and metrics["config"]["lr"] == 1e-3
    assert metrics["test_size"] == 359 and metrics["test_accuracy"] == history["final_val_accuracy"]
    assert 50 < metrics["test_accuracy"] <= 100  # two epochs already learn most digits
    lines = stdout.splitlines()
    for epoch in (1, 2):
        assert lines[epoch - 1] == train.format_log_line(
            epoch,
            history["loss"][epoch - 1],
            history["accuracy"][epoch - 1],
            history["val_accuracy"][epoch - 1],
            "test",
        )
    assert f"Test accuracy(%): {train.format_accuracy(metrics['test_accuracy'])}" in lines
    import matplotlib.image as mpimg

    for name in ("confusion_matrix.png", "learning_curve.png", "misclassified.png"):
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image[..., :3].std() > 0.02, name


def test_predict_evaluates_on_the_test_split(digits_run, capsys):
    _, out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    code, stdout, err = run_cli(["predict", "--model", str(out / "model.npz"), "--task", "digits"], capsys)
    assert code == 0 and err == ""
    assert stdout.splitlines() == [
        "test set of digits: 359 samples",
        f"Accuracy(%): {train.format_accuracy(metrics['test_accuracy'])}",
    ]


def test_predict_on_a_task_of_other_inputs_names_both(digits_run, capsys):
    model, out, _ = digits_run
    code, stdout, err = run_cli(["predict", "--model", str(out / "model.npz"), "--task", "xor"], capsys)
    takes = "64 inputs" if model == "mlp" else "inputs of shape (1, 8, 8)"
    assert code == 1 and stdout == ""
    assert err == f"error: {out / 'model.npz'}: the model takes {takes} but task 'xor' has 2\n"


@pytest.mark.parametrize(
    "argv, reason",
    [
        (
            ["--task", "xor", "--model", "cnn"],
            "model cnn needs images of shape (channels, height, width), but the inputs have shape (2,)",
        ),
        (
            ["--task", "digits", "--loss", "mse"],
            "task 'digits' has 10 classes as integer labels: use loss cross_entropy",
        ),
        (["--task", "xor", "--loss", "cross_entropy"], "loss cross_entropy needs integer class labels"),
        (["--task", "digits", "--hidden", "16", "16", "16", "16"], "too many for 8x8 images (at most 3)"),
        (["--task", "digits", "--batch-size", "0", "--hidden", "2000"], "activations, over the limit"),
        (["--task", "digits", "--batch-size", "1000000"], "--batch-size: must be at most 100,000"),
    ],
)
def test_what_does_not_fit_the_digits_is_a_usage_error(argv, reason, tmp_path, capsys):
    code, out, err = run_cli(["train", *argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == "" and not (tmp_path / "o").exists()
    assert err.splitlines()[-1].startswith("tinygrad-lab train: error: ") and reason in err.splitlines()[-1]


def test_without_scikit_learn(tmp_path):
    stub = tmp_path / "stubs" / "sklearn"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError(\"No module named 'sklearn'\")\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "stubs"), os.environ.get("PYTHONPATH", "")]))

    def run(*argv):
        return subprocess.run(RUN + list(argv), capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)

    message = "error: the digits task needs scikit-learn, which is not installed: pip install 'tinygrad-lab[data]'\n"
    for argv in (["train", "--task", "digits", "--out", "run"], ["report", "--quick", "--out", "rep"]):
        proc = run(*argv)
        assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stubs"]
    lab = run("train", "--task", "xor", "--epochs", "5", "--quiet", "--out", "xor")
    assert lab.returncode == 0 and lab.stderr == "" and (tmp_path / "xor" / "model.npz").is_file()


def test_graph_draws_the_digits_model_with_integer_labels(tmp_path, capsys):
    out = tmp_path / "g.svg"
    code, stdout, err = run_cli(
        ["graph", "--task", "digits", "--model", "mlp", "--after-epochs", "1", "--out", str(out)], capsys
    )
    assert (code, stdout, err) == (0, f"wrote {out}\n", "")
    assert ">LogSumExp<" in out.read_text() and ">ReLU<" in out.read_text()  # the loss and the hidden layer
