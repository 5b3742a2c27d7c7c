"""tl.compile's check of a replay against eager on the third call: a call that raises leaves the check to the next
one, a refusal stays eager until what the step depended on changes, and a native step whose rounding differs from
eager beyond the check's tolerance hands the signature to the numpy replay when that agrees (a larger difference
is reported as the native code's)."""

import numpy as np
import pytest
from capture_helpers import mse_sgd_step

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


@pytest.mark.parametrize("native", [False, True])
def test_a_call_that_raises_during_the_check_leaves_the_check_to_the_next_call(native):
    model = nn.Linear(3, 3, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def step(x, y):
        calls.append(1)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) / len(calls)  # a Python number the replay would freeze
        loss.backward()
        opt.step()
        return loss

    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 3, 8)
    compiled(x, y)
    compiled(x, y)
    weight = model.weight.data.copy()
    with pytest.raises(ValueError, match="class indices must lie in"):
        compiled(x, np.where(np.arange(8) == 0, 7, y))  # a bad label, which the caller catches
    np.testing.assert_array_equal(model.weight.data, weight)  # the state the call started from
    with pytest.raises(tl.CaptureError, match="disagrees with eager"):
        compiled(x, y)
    assert not compiled._replays


def _validating_step(seed, refuse_after_eval):
    """A step that trains, then evaluates in eval mode and reads the result into Python (refused at the trace),
    switching the modes itself: back to training at its end, or left in eval mode."""
    model = nn.Sequential(
        nn.Linear(3, 4, rng=np.random.default_rng(seed)),
        nn.BatchNorm1d(4),
        nn.Linear(4, 1, rng=np.random.default_rng(seed)),
    )
    opt = optim.SGD(model.parameters(), lr=0.1)
    scores = []

    def step(x, y, xv):
        model.train()
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        if not refuse_after_eval:
            scores.append(loss.item())
        loss.backward()
        opt.step()
        model.eval()
        with tl.no_grad():
            val = model(xv)
        if refuse_after_eval:
            scores.append(val.mean().item())
            model.train()
        return loss

    return model, step, scores


@pytest.mark.parametrize("user_train", [False, True], ids=["", "train() before each call"])
@pytest.mark.parametrize("refuse_after_eval", [True, False], ids=["refused in eval", "refused before eval"])
def test_a_refused_step_that_switches_modes_itself_stays_eager(refuse_after_eval, user_train):
    """Once refused, the step runs eagerly: the modes the refusal left (mid-step) or a call leaves are not a
    change that traces it again."""
    model, step, scores = _validating_step(0, refuse_after_eval)
    compiled = tl.compile(step)
    rng = np.random.default_rng(1)
    x, y, xv = rng.standard_normal((8, 3)), rng.standard_normal((8, 1)), rng.standard_normal((4, 3))
    refusals = 0
    for _ in range(9):
        if user_train:
            model.train()
        try:
            compiled(x, y, xv)
        except tl.CaptureError:
            refusals += 1
    assert refusals == 1 and not compiled._replays
    assert len(scores) == 8  # every call but the refused one ran to its end, eagerly


def _batch_norm_step(seed, optimizer):
    """Linear, batch norm, tanh, linear: the first bias's gradient cancels to rounding noise, which Adagrad and
    RMSprop scale up to steps of the learning rate's size."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(3, 5, rng=rng), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2, rng=rng))
    opt = optimizer(model.parameters())

    return model, mse_sgd_step(model, opt)


@pytest.mark.parametrize(
    "optimizer",
    [lambda p: optim.Adagrad(p, lr=0.1), lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5)],
    ids=["adagrad", "rmsprop"],
)
def test_a_step_that_amplifies_rounding_is_not_refused(optimizer):
    """Whichever backend runs it, the step is captured; the numpy replay, when it runs, equals eager exactly."""
    (model, step), (eager_model, eager_step) = _batch_norm_step(0, optimizer), _batch_norm_step(0, optimizer)
    compiled = tl.compile(step)
    rng = np.random.default_rng(1)
    x, y = tl.tensor(rng.standard_normal((8, 3))), tl.tensor(rng.standard_normal((8, 2)))
    for _ in range(8):
        ours, theirs = compiled(x, y), eager_step(x, y)
    assert compiled._replays and compiled.backend.startswith(("native", "numpy ("))
    if compiled.backend != "native":
        assert ours.item() == theirs.item()
        for a, b in zip(model.state_dict().values(), eager_model.state_dict().values()):
            np.testing.assert_array_equal(a, b)


class _FaultyNative:
    """Stands in for a native step: the numpy replay's results, then ``fault`` changes them."""

    def __init__(self, numpy_run, fault):
        self.numpy_run, self.fault = numpy_run, fault

    def __call__(self, *args):
        self.numpy_run(*args)
        self.fault()


def _with_faulty_native(fault):
    """A batch-norm step traced (numpy replay) and an eager twin, two calls in, before the check; the replay then
    runs as a stand-in native step whose results ``fault(model, entry)`` changes."""
    (model, step), (eager_model, eager_step) = (
        _batch_norm_step(0, lambda p: optim.SGD(p, lr=0.1)),
        _batch_norm_step(0, lambda p: optim.SGD(p, lr=0.1)),
    )
    compiled = tl.compile(step, native=False)
    rng = np.random.default_rng(1)
    x, y = tl.tensor(rng.standard_normal((8, 3))), tl.tensor(rng.standard_normal((8, 2)))
    for _ in range(2):
        compiled(x, y)
        eager_step(x, y)
    (entry,) = compiled._replays.values()
    entry.native = _FaultyNative(entry.replay.run, lambda: fault(model, entry))
    entry.replay.run = entry.native
    return compiled, entry, (model, eager_model), (lambda: compiled(x, y), lambda: eager_step(x, y))


def _nudge_gradient(model, entry):
    """Sums that round differently: one gradient off by 1e-7 of its size (beyond the check's 1e-9)."""
    next(buffer for t, buffer in entry.grads if t is model[0].weight)[...] *= 1 + 1e-7


def _miscompile_update(model, entry):
    """A kernel that computes something else: a parameter's update off by 0.5."""
    model[0].weight.data[0, 0] += 0.5


def _assert_same_state(models):
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_when_native_rounding_fails_the_check_the_numpy_replay_runs_if_it_agrees():
    compiled, entry, models, (call, eager_call) = _with_faulty_native(_nudge_gradient)
    for _ in range(6):
        assert call().item() == eager_call().item()
    assert compiled.backend.startswith("numpy (native results differed from eager by rounding beyond")
    assert entry.native is None and compiled._replays
    _assert_same_state(models)


def test_a_native_difference_beyond_rounding_is_reported_and_the_numpy_replay_runs_if_it_agrees():
    compiled, entry, models, (call, eager_call) = _with_faulty_native(_miscompile_update)
    with pytest.raises(tl.CaptureError, match=r"native code disagrees with eager execution \(array \d+, max diff"):
        call()
    eager_call()
    assert compiled.backend.startswith("numpy (native code disagreed with eager")
    assert entry.native is None and compiled._replays
    for _ in range(4):
        assert call().item() == eager_call().item()
    _assert_same_state(models)


def test_a_module_assigned_after_a_refusal_made_mid_step_traces_the_step_again():
    """A refusal while the step had switched modes itself knows no modes yet; an assignment since (the dropout
    that caused it replaced) is a change all the same, and the step is traced again."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(5, 8, rng=rng), nn.ReLU(), nn.Dropout(0.5, rng=rng), nn.Linear(8, 3, rng=rng))
    opt = optim.SGD(model.parameters(), lr=0.05)
    model.eval()

    def step(x, y):
        model.train()
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        model.eval()
        return loss

    compiled = tl.compile(step)
    x, y = tl.tensor(rng.standard_normal((16, 5))), tl.tensor(rng.standard_normal((16, 3)))
    compiled(x, y)
    with pytest.raises(tl.CaptureError, match="random"):
        compiled(x, y)
    setattr(model, "2", nn.Identity())  # the dropout, replaced
    for _ in range(4):
        compiled(x, y)
    assert compiled._replays
