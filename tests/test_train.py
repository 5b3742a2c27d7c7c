"""fit / train_step / History: exact against the lab's hand-written backprop, the lab's log format, early
stopping, progress bar rules, and the lab's settings reaching 100%."""

import io
import json
import math
import os
import re
import sys

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import files, nn, optim
from tinygrad_lab.capture import CompiledStep
from tinygrad_lab.lab import data, runs, train
from tinygrad_lab.lab.config import (
    MAX_EPOCH_POINTS,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_WIDTH,
    TrainConfig,
    build_model,
    model_spec,
    seeded_rngs,
    setup,
)
from tinygrad_lab.lab.reference import Network

LOG_LINE = re.compile(r"^epoch (\d+) loss : (\d+\.\d{8}) acc\(%\) : (\d+(?:\.\d{1,2})?)$")


def lab_model(seed=0, hidden=(4, 4)):
    return nn.MLP(2, hidden, 1, bias=False, init="randn", rng=np.random.default_rng(seed))


def reference_run(model, x, y, lr, epochs):
    """The lab's numpy network from the model's initial weights: per-epoch losses and accuracies."""
    net = Network(weights=tuple(a.T.copy() for a in model.state_dict().values()))  # (out, in) -> the lab's (in, out)
    losses, accs = [], []
    for _ in range(epochs):
        pred = net.forward(x)
        accs.append(100.0 * np.mean((pred > 0.5) == (y > 0.5)))
        losses.append(net.train_step(x, y, lr))
    return net, np.array(losses), np.array(accs)


@pytest.mark.parametrize("compile", [False, True])
def test_fit_matches_the_labs_backprop(compile):
    x, y = data.generate_xor_easy()
    model = lab_model(1)
    net, ref_loss, ref_acc = reference_run(model, x, y, lr=0.5, epochs=60)
    hist = train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.SGD(model.parameters(), lr=0.5),
        epochs=60,
        quiet=True,
        compile=compile,
    )
    assert hist.epochs == 60
    np.testing.assert_allclose(hist.loss, ref_loss, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hist.accuracy, ref_acc, rtol=1e-12)
    for got, want in zip(model.state_dict().values(), net.weights):
        np.testing.assert_allclose(got, want.T, rtol=1e-10, atol=1e-13)  # nn.Linear keeps (out, in)
    # final numbers come from one forward after the last update
    final = net.forward(x)
    assert math.isclose(hist.final_loss, float(np.mean((final - y) ** 2)), rel_tol=1e-10)
    assert math.isclose(hist.final_accuracy, 100.0 * np.mean((final > 0.5) == (y > 0.5)), rel_tol=1e-12)


def test_train_step_returns_loss_and_prediction_before_the_update():
    x, y = data.generate_xor_easy()
    model = lab_model(2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with tl.no_grad():
        before = model(tl.Tensor(x)).data.copy()
    loss, pred = train.train_step(model, tl.Tensor(x), tl.Tensor(y), F.mse_loss, opt)
    np.testing.assert_array_equal(pred.data, before)
    assert math.isclose(loss.item(), float(np.mean((before - y) ** 2)), rel_tol=1e-12)
    with tl.no_grad():
        after = model(tl.Tensor(x)).data
    assert not np.array_equal(after, before)


class CountingMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = lab_model(0)
        object.__setattr__(self, "calls", 0)

    def forward(self, x):
        object.__setattr__(self, "calls", self.calls + 1)
        return self.inner(x)


def test_accuracy_needs_no_second_forward():
    x, y = data.generate_xor_easy()
    model = CountingMLP()
    train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=25,
        quiet=True,
        compile=False,
    )
    assert model.calls == 25 + 1  # one forward per epoch, plus one to evaluate the trained model


def test_log_lines_in_the_labs_format():
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    out = io.StringIO()
    hist = train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=30,
        log_every=10,
        out=out,
        compile=False,
    )
    lines = out.getvalue().splitlines()
    logged = [LOG_LINE.match(line) for line in lines[:3]]
    assert all(logged), lines[:3]
    for m in logged:
        epoch = int(m.group(1))
        assert epoch in (10, 20, 30)
        assert m.group(2) == f"{hist.loss[epoch - 1]:.8f}"
        assert float(m.group(3)) == round(hist.accuracy[epoch - 1], 2)
    assert lines[3] == "pred_y:"
    assert lines[4].startswith("[[") and lines[-3].endswith("]]")
    assert len(lines) == 3 + 1 + 21 + 2  # log, header, one row per point, separator, accuracy
    assert lines[-2] == "====="
    assert lines[-1] == f"Accuracy(%): {round(hist.final_accuracy, 2)}"


def test_format_log_line_example_from_the_issue():
    assert train.format_log_line(1000, 0.13396498238975865, 96.0) == "epoch 1000 loss : 0.13396498 acc(%) : 96.0"
    assert train.format_log_line(5, 0.5, 100 * 12 / 21) == "epoch 5 loss : 0.50000000 acc(%) : 57.14"


def test_quiet_prints_nothing_and_log_every_zero_prints_no_lines():
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    out = io.StringIO()
    train.fit(
        model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=20, out=out, quiet=True
    )
    assert out.getvalue() == ""
    train.fit(
        model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=20, out=out, log_every=0
    )
    assert not any(LOG_LINE.match(line) for line in out.getvalue().splitlines())
    assert "Accuracy(%)" in out.getvalue()


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    import tqdm  # noqa: F401  (the bar is tqdm: the plots extra, which make test installs)

    x, y = data.generate_xor_easy()

    def run(out, **kw):
        model = lab_model(0)
        train.fit(
            model,
            x,
            y,
            loss=F.mse_loss,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=300,
            log_every=100,
            out=out,
            **kw,
        )
        return out.getvalue()

    assert "\r" not in run(io.StringIO())  # not a terminal: no bar
    term = run(FakeTerminal())
    assert "\r" in term and "epoch" in term  # a bar (tqdm redraws with \r) ...
    assert sum(bool(LOG_LINE.match(line.strip("\r"))) for line in term.splitlines()) >= 3  # ... and the log
    assert "\r" not in run(FakeTerminal(), quiet=True)
    assert "\r" not in run(FakeTerminal(), progress=False)
    assert "\r" in run(io.StringIO(), progress=True)


def test_no_tqdm_means_no_bar_and_no_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    out = FakeTerminal()
    hist = train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=300,
        log_every=100,
        out=out,
        progress=True,
    )
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and hist.epochs == 300
    assert [int(LOG_LINE.match(line).group(1)) for line in lines[:3]] == [100, 200, 300]
    assert lines[3] == "pred_y:"  # nothing about the bar between the log and the result


def test_diverged_at_is_the_first_epoch_whose_loss_is_not_finite():
    x, y = data.generate_xor_easy()
    model = nn.MLP(
        2, (4, 4), 1, bias=False, init="randn", activation="none", out_activation="none", rng=np.random.default_rng(0)
    )
    with np.errstate(all="ignore"):
        hist = train.fit(
            model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=1e10), epochs=40, quiet=True
        )
    finite = np.isfinite(hist.loss)
    assert not finite.all() and finite[0]
    assert hist.diverged_at == int(np.argmin(finite)) + 1
    assert train.History.from_dict(json.loads(json.dumps(hist.to_dict()))).diverged_at == hist.diverged_at
    model = lab_model(0)
    hist = train.fit(
        model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=40, quiet=True
    )
    assert hist.diverged_at is None
    # only the trained model's loss is not finite: the epoch after the last
    assert train._first_non_finite(np.array([0.5, 0.4]), math.nan) == 3
    assert train._first_non_finite(np.array([0.5, math.inf, math.nan]), math.nan) == 2


def test_until_stops_at_convergence():
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    hist = train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=5000,
        until=100.0,
        quiet=True,
    )
    assert hist.stopped_early
    assert hist.epochs == hist.epochs_to_100 < 5000
    assert hist.accuracy[-1] == 100.0 and all(a < 100.0 for a in hist.accuracy[:-1])

    calls = []
    model = lab_model(0)
    hist = train.fit(
        model,
        x,
        y,
        loss=F.mse_loss,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=100,
        until=lambda epoch, loss, acc: calls.append((epoch, loss, acc)) or epoch == 7,
        quiet=True,
    )
    assert hist.epochs == 7 and len(calls) == 7
    assert calls[3] == (4, hist.loss[3], hist.accuracy[3])


def test_epochs_to_100_is_the_first_epoch_at_100():
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    hist = train.fit(
        model, x, y, loss=F.mse_loss, optimizer=optim.Adam(model.parameters(), lr=0.05), epochs=400, quiet=True
    )
    first = next(i + 1 for i, a in enumerate(hist.accuracy) if a == 100.0)
    assert hist.epochs_to_100 == first
    model = lab_model(0)
    hist = train.fit(
        model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=1e-4), epochs=5, quiet=True
    )
    assert hist.epochs_to_100 is None


def test_accuracy_rules():
    assert train.accuracy(np.array([[0.2], [0.5], [0.51]]), np.array([[0.0], [0.0], [1.0]])) == 100.0
    assert train.accuracy(np.array([[0.9], [0.1]]), np.array([[0.0], [0.0]])) == 50.0
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 5.0, 0.0]])
    assert train.accuracy(logits, np.array([0, 2, 0])) == pytest.approx(200 / 3)
    assert train.accuracy(logits, np.eye(3)[[0, 2, 1]]) == 100.0


def test_multiclass_fit_uses_argmax():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)  # 3 classes
    model = nn.MLP(2, (8,), 3, activation="tanh", out_activation="none", rng=rng)
    hist = train.fit(
        model,
        x,
        np.eye(3)[labels],
        loss=F.cross_entropy,
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=150,
        quiet=True,
    )
    with tl.no_grad():
        pred = model(tl.Tensor(x)).data
    assert math.isclose(hist.final_accuracy, 100.0 * np.mean(pred.argmax(axis=1) == labels), rel_tol=1e-12)
    assert hist.final_accuracy > 90


def test_history_round_trip_and_json_safety():
    hist = train.History(
        loss=[0.5, math.nan, math.inf],
        accuracy=[50.0, 40.0, 30.0],
        epochs_to_100=None,
        wall_time=1.5,
        final_loss=math.nan,
        final_accuracy=30.0,
    )
    d = hist.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: non-finite values became null
    assert d["loss"] == [0.5, None, None] and d["epochs"] == 3
    back = train.History.from_dict(json.loads(text))
    assert back.loss[0] == 0.5 and math.isnan(back.loss[1]) and math.isnan(back.final_loss)
    assert back.accuracy == hist.accuracy and back.wall_time == 1.5


def test_fit_validates_its_arguments():
    x, y = data.generate_xor_easy()
    model = lab_model(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train.fit(model, x, y, loss=F.mse_loss, optimizer=opt, epochs=0)
    with pytest.raises(ValueError, match="log_every must be >= 0"):
        train.fit(model, x, y, loss=F.mse_loss, optimizer=opt, epochs=1, log_every=-1)


def test_select_step_is_the_single_switch():
    model = lab_model(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    eager, compiled = train.select_step(model, F.mse_loss, opt, compile=False)
    assert compiled is False and not isinstance(eager, CompiledStep)
    captured, compiled = train.select_step(model, F.mse_loss, opt, compile=True)
    assert compiled is True and isinstance(captured, CompiledStep)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        TrainConfig(task="nope")
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="bce needs probabilities"):
        TrainConfig(loss="bce", activation="none")
    cfg = TrainConfig(hidden=[3, 2])
    assert cfg.hidden == (3, 2)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_config_limits():
    with pytest.raises(ValueError, match=f"epochs must be at most {MAX_EPOCHS:,}"):
        TrainConfig(epochs=MAX_EPOCHS + 1)
    points = len(data.load_task("circle", 0)[0])
    most = MAX_EPOCH_POINTS // points
    TrainConfig(task="circle", epochs=most)
    with pytest.raises(ValueError, match=f"got {most + 1:,} x {points} on task 'circle'"):
        TrainConfig(task="circle", epochs=most + 1)
    with pytest.raises(ValueError, match=f"layer sizes must be at most {MAX_WIDTH:,}"):
        TrainConfig(hidden=(MAX_WIDTH + 1,))
    TrainConfig(hidden=(MAX_WIDTH,))
    # the count in the message is the built model's: 2 inputs, hidden 1000 x 1000, 1 output, with biases
    model = nn.MLP(2, (1000, 1000), 1, bias=True, rng=np.random.default_rng(0))
    params = sum(p.data.size for p in model.parameters())
    assert params > MAX_PARAMETERS
    with pytest.raises(ValueError, match=f"hidden 1000x1000 has {params:,}"):
        TrainConfig(hidden=(1000, 1000), bias=True)
    with pytest.raises(ValueError, match=f"at most {MAX_LAYERS} hidden layers"):
        TrainConfig(hidden=(1,) * (MAX_LAYERS + 1))


def test_same_seed_same_initial_weights_across_tasks():
    a = runs.run(TrainConfig(task="linear", epochs=1), quiet=True)
    b = runs.run(TrainConfig(task="xor", epochs=1), quiet=True)
    _, init = seeded_rngs(0)
    fresh = build_model(model_spec(a.config), init).state_dict()
    # one SGD step moved them, but they started from the same draw: compare the fresh draw's shapes and values
    assert list(fresh) == list(a.model.state_dict()) == list(b.model.state_dict())
    for k in fresh:
        assert np.abs(a.model.state_dict()[k] - fresh[k]).max() < 0.1
        assert np.abs(b.model.state_dict()[k] - fresh[k]).max() < 0.1


def test_save_and_load_model_round_trip(tmp_path):
    run = runs.run(TrainConfig(task="xor", hidden=(3, 2), activation="tanh", epochs=20), quiet=True)
    path = runs.save_run(tmp_path / "model.npz", run)
    model, meta = runs.load_model(path)
    assert meta["model"]["hidden"] == [3, 2] and meta["model"]["activation"] == "tanh"
    assert meta["config"]["epochs"] == 20
    for k, v in run.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    with tl.no_grad():
        np.testing.assert_array_equal(model(tl.Tensor(run.x)).data, run.predict())
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    files.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with files.atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    files.write_json(target, {"b": 1, "a": [1.5]})
    assert json.loads(target.read_text()) == {"a": [1.5], "b": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would have made it, not mkstemp's 0600


# ---- the lab's settings reach 100% ------------------------------------------------------------------------------


def test_lab_settings_reach_100_on_linear():
    """Sigmoid, MSE, SGD lr 0.1, hidden 4x4, no bias, at most the lab's 20000 epochs (stops at 100%)."""
    run = runs.run(TrainConfig(task="linear", seed=0), quiet=True, until=100.0)
    assert run.history.epochs_to_100 is not None and run.history.epochs_to_100 <= 20000
    assert run.history.accuracy[-1] == 100.0


def test_xor_reaches_100_fast_with_adam():
    run = runs.run(TrainConfig(task="xor", optimizer="adam", lr=0.1, epochs=2000, seed=0), quiet=True)
    assert run.history.final_accuracy == 100.0
    assert run.history.epochs_to_100 < 2000


@pytest.mark.slow
def test_lab_settings_reach_100_on_xor_full_length():
    """The lab's whole XOR run: 20000 epochs of SGD at lr 0.1."""
    run = runs.run(TrainConfig(task="xor", seed=0), quiet=True)
    assert run.history.epochs == 20000
    assert run.history.final_accuracy == 100.0
    assert run.history.loss[-1] < run.history.loss[0] / 5


def test_demo_lab1_runs_and_stays_short(tmp_path, monkeypatch, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "demos" / "lab1.py"
    assert len(path.read_text().splitlines()) < 60
    spec = importlib.util.spec_from_file_location("lab1_demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(demo, "EPOCHS", 2000)
    monkeypatch.setattr(demo, "OUT", tmp_path)
    demo.train("xor", *data.generate_xor_easy())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" loss")[0] for line in lines[:2]] == ["epoch 1000", "epoch 2000"]
    assert all(LOG_LINE.match(line) for line in lines[:2])
    assert "pred_y:" in lines and lines[-2] == "=====" and lines[-1].startswith("Accuracy(%): ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab1_xor_curve.png", "lab1_xor_result.png"]


@pytest.mark.parametrize("task", ["xor", "linear"])
def test_a_captured_full_batch_run_in_chunks_is_the_epoch_by_epoch_run(task):
    """With nothing to decide between epochs, fit runs chunks of epochs in one native call each and reads the
    accuracy off the kept predictions: the same history and log, line for line, as stepping epoch by epoch
    (which a stop rule that never fires forces)."""
    results = []
    for until in (None, lambda epoch, loss, acc: False):
        s = setup(TrainConfig(task=task, hidden=(4, 4)))
        out = io.StringIO()
        hist = train.fit(s[2], s[0], s[1], loss=s[4], optimizer=s[3], epochs=2500, out=out, log_every=500, until=until)
        results.append((hist, out.getvalue()))
    (chunked, log_a), (stepped, log_b) = results
    assert chunked.compiled and chunked.backend == stepped.backend
    assert chunked.loss == stepped.loss and chunked.accuracy == stepped.accuracy
    assert chunked.epochs_to_100 == stepped.epochs_to_100 and chunked.final_loss == stepped.final_loss
    assert log_a == log_b and log_a.count("\nepoch ") + log_a.startswith("epoch ") == 5
