"""tl.compile's check of a replay against eager on the third call: a call that raises leaves the check to the next
one, a refusal stays eager until what the step depended on changes, and a native step whose rounding differs from
eager beyond the check's tolerance hands the signature to the numpy replay when that agrees."""

import numpy as np
import pytest

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
