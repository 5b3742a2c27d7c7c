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
