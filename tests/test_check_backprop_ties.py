"""check_backprop at ties and kinks: elements at a kink are judged one by one against the gradients around them,
and together along yours minus autograd's, so a gradient that gives each of several tied maxima the whole of it
(each in its own range, not all at once) fails, while every convention's gradient (torch's too) passes."""

import numpy as np
import pytest
import torch

from tinygrad_lab.testing import check_backprop


@pytest.mark.parametrize(
    "grad, ok",
    [([0.5, 0.5, 0], True), ([1, 0, 0], True), ([0.3, 0.7, 0], True), ([1, 1, 0], False), ([0, 0, 0], False)],
)
def test_a_max_over_two_tied_values_shares_one_gradient(grad, ok):
    result = check_backprop(lambda x: np.max(x), [np.array([1.0, 1.0, 0.0])], [np.array(grad, dtype=float)])
    assert bool(result) is ok
    if not ok:
        assert result.rows[0].diagnosis.startswith("double counted at a kink: each element at a kink is in its range")


def test_a_tie_between_two_inputs_is_judged_across_them():
    def loss(a, b):
        return np.sum(np.maximum(a, b) * np.array([1.0, 3.0]))

    a = np.array([1.0, 2.0])
    both = check_backprop(loss, [a, a.copy()], [np.array([1.0, 3.0]), np.array([1.0, 3.0])], names=["a", "b"])
    assert not both and [row.ok for row in both.rows] == [False, False]
    assert "(with b)" in both.rows[0].diagnosis and "(with a)" in both.rows[1].diagnosis
    for ga, gb in [([0.5, 1.5], [0.5, 1.5]), ([1, 3], [0, 0]), ([1, 0], [0, 3])]:
        assert check_backprop(loss, [a, a.copy()], [np.array(ga, dtype=float), np.array(gb, dtype=float)])


def test_abs_at_0_takes_any_value_between_minus_1_and_1_in_each_element():
    w = np.array([0.0, 1.0, -2.0, 0.0])
    for at_0 in [(0, 0), (1, -1), (0.3, -0.9), (-1, 1)]:
        assert check_backprop(lambda w: np.abs(w).sum(), [w], [np.array([at_0[0], 1, -1, at_0[1]])])
    assert not check_backprop(lambda w: np.abs(w).sum(), [w], [np.array([1.1, 1, -1, 0])])


def pooled(seed):
    """Max pooling 2x2 over small integer images, so windows hold tied maxima, times weights of either sign."""
    rng = np.random.default_rng(seed)
    x, w = rng.integers(0, 3, (2, 1, 4, 4)).astype(float), rng.integers(-2, 3, (4,)).astype(float)

    def loss(x, w):
        windows = x.reshape(2, 1, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 1, 2, 2, 4)
        return np.sum(np.max(windows, axis=-1).reshape(2, 4) * w)

    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (torch.nn.functional.max_pool2d(xt, 2).reshape(2, 4) * wt).sum().backward()
    return loss, x, w, xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.parametrize("seed", range(4))
def test_max_pooling_passes_torchs_gradient_and_fails_the_whole_gradient_to_every_tied_maximum(seed):
    loss, x, w, dx, dw = pooled(seed)
    assert check_backprop(loss, [x, w], [dx, dw]), "torch routes each window's gradient to one maximum"
    mask = np.zeros_like(x)  # the classic backward: blk == blk.max() gets the window's whole gradient
    for n, i, j in np.ndindex(2, 2, 2):
        block = x[n, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
        mask[n, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = (block == block.max()) * w[2 * i + j]
    assert not np.allclose(mask, dx), "some window with a nonzero weight has a tie"
    result = check_backprop(loss, [x, w], [mask, dw], names=["x", "w"])
    assert not result and result.rows[0].diagnosis.startswith("double counted at a kink")
