"""tinygrad_lab.nn.functional: each loss against an independent numpy formula, gradchecked in float64, stable at
the edges (probabilities 0 and 1, logits +-1e3), and strict about shapes."""

import warnings

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(1234)


def _t(array, requires_grad=True):
    return tl.tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad)


def _np_log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_activations_match_numpy():
    x = RNG.standard_normal((3, 4))
    t = _t(x)
    np.testing.assert_allclose(F.sigmoid(t).data, 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(F.tanh(t).data, np.tanh(x), rtol=1e-14)
    np.testing.assert_array_equal(F.relu(t).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.leaky_relu(t, 0.2).data, np.where(x > 0, x, 0.2 * x), rtol=1e-15)
    np.testing.assert_allclose(F.softmax(t, axis=0).data, np.exp(x) / np.exp(x).sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(
        F.log_softmax(t).data, np.log(np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)), rtol=1e-13
    )


# ---- mse ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_value_and_gradcheck(reduction):
    pred, target = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    expected = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction]((pred - target) ** 2)
    np.testing.assert_allclose(F.mse_loss(_t(pred), target, reduction=reduction).data, expected, rtol=1e-14)
    assert gradcheck(lambda p, y: F.mse_loss(p, y, reduction=reduction), [_t(pred), _t(target)])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_is_one_node_with_second_derivatives(reduction):
    pred, target = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    loss = F.mse_loss(_t(pred), _t(target), reduction=reduction)
    assert type(loss.grad_fn).__name__ == "MseLoss" and len(loss.grad_fn.inputs) == 2
    assert gradgradcheck(lambda p, y: F.mse_loss(p, y, reduction=reduction), [_t(pred), _t(target)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mse_loss_node_gives_the_composed_ops_numbers_bit_for_bit(dtype):
    pred, target = RNG.standard_normal((7, 3)).astype(dtype), RNG.standard_normal((7, 3)).astype(dtype)
    fused_p, fused_y = tl.tensor(pred, requires_grad=True), tl.tensor(target, requires_grad=True)
    plain_p, plain_y = tl.tensor(pred, requires_grad=True), tl.tensor(target, requires_grad=True)
    fused = F.mse_loss(fused_p, fused_y)
    diff = plain_p - plain_y
    plain = (diff * diff).mean()
    fused.backward()
    plain.backward()
    assert fused.dtype == plain.dtype == dtype
    np.testing.assert_array_equal(fused.data, plain.data)
    np.testing.assert_array_equal(fused_p.grad.data, plain_p.grad.data)
    np.testing.assert_array_equal(fused_y.grad.data, plain_y.grad.data)


def test_mse_gradient_is_the_labs_derivative():
    pred, y = RNG.random((6, 1)), RNG.random((6, 1))
    p = _t(pred)
    F.mse_loss(p, y).backward()
    np.testing.assert_allclose(p.grad.data, -2 * (y - pred) / y.size, rtol=1e-14)


# ---- binary cross-entropy -------------------------------------------------------------------------------------------


def test_binary_cross_entropy_value_and_gradcheck():
    p, y = RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3))
    expected = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    np.testing.assert_allclose(F.binary_cross_entropy(_t(p), y).item(), expected, rtol=1e-14)
    assert gradcheck(F.binary_cross_entropy, [_t(p), _t(y)])
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction="none"), [_t(p), _t(y)])


def test_binary_cross_entropy_at_probabilities_zero_and_one_is_finite():
    """torch's caps: each log term is at least -100, so confidently wrong costs 100 and confidently right 0, and the
    gradient's denominator p (1 - p) is at least 1e-12 (as a C float): finite, without a warning."""
    pred = _t([0.0, 1.0, 0.0, 1.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise", over="raise"):
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy(pred, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_array_equal(loss.data, [100.0, 100.0, 0.0, 0.0])
    np.testing.assert_allclose(pred.grad.data, [-1e12, 1e12, 0.0, 0.0], rtol=1e-7)
    loss32 = F.binary_cross_entropy(tl.tensor([0.0, 1.0], dtype="float32"), [1.0, 0.0], reduction="none")
    assert loss32.dtype == np.float32
    np.testing.assert_array_equal(loss32.data, [100.0, 100.0])


def test_binary_cross_entropy_refuses_predictions_outside_zero_one():
    for bad in ([1.5, 0.5], [-0.2, 0.5], [np.nan, 0.5]):
        with pytest.raises(ValueError, match=r"^binary_cross_entropy: every prediction must be a probability in"):
            F.binary_cross_entropy(_t(bad), [1.0, 0.0])


def test_binary_cross_entropy_refuses_targets_outside_zero_one_as_torch():
    for bad in ([2.0, 0.5], [-0.5, 1.0], [np.nan, 0.0]):
        with pytest.raises(ValueError, match=r"^binary_cross_entropy: every target must be in \[0, 1\], got"):
            F.binary_cross_entropy(_t([0.5, 0.5]), bad)
        with pytest.raises(ValueError, match=r"^binary_cross_entropy: every target must be in"):
            F.binary_cross_entropy(_t([0.5, 0.5]), tl.tensor(bad, requires_grad=True))
    assert F.binary_cross_entropy(_t([0.5, 0.5]), [0.0, 1.0]).item() > 0  # the bounds themselves are targets


def test_bce_with_logits_value_matches_independent_formula_and_gradchecks():
    x, y = RNG.standard_normal((4, 3)) * 3, RNG.uniform(0, 1, (4, 3))
    expected = np.mean(np.logaddexp(0.0, x) - x * y)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(_t(x), y).item(), expected, rtol=1e-14)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(_t(x), y).item(), F.binary_cross_entropy(_t(sig), y).item(), rtol=1e-12
    )
    assert gradcheck(F.binary_cross_entropy_with_logits, [_t(x), _t(y)])
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="sum"), [_t(x), _t(y)])


def test_bce_with_logits_gradient_is_sigmoid_minus_target_including_at_zero():
    x = np.array([0.0, 0.0, -2.0, 1.5, 0.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.3])
    logits = _t(x)
    F.binary_cross_entropy_with_logits(logits, y, reduction="sum").backward()
    np.testing.assert_allclose(logits.grad.data, 1 / (1 + np.exp(-x)) - y, rtol=1e-14)


def test_bce_with_logits_is_stable_at_large_logits():
    x = np.array([1e3, -1e3, 1e3, -1e3])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    logits = _t(x)
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise", over="raise"):
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_array_equal(loss.data, [1e3, 1e3, 0.0, 0.0])
    np.testing.assert_array_equal(logits.grad.data, [1.0, -1.0, 0.0, 0.0])


# ---- cross-entropy -----------------------------------------------------------------------------------------------


def test_cross_entropy_with_class_indices():
    logits, classes = RNG.standard_normal((6, 4)), np.array([0, 3, 1, 1, 2, 0])
    expected = -np.mean(_np_log_softmax(logits)[np.arange(6), classes])
    np.testing.assert_allclose(F.cross_entropy(_t(logits), classes).item(), expected, rtol=1e-14)
    z = _t(logits)
    F.cross_entropy(z, classes).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(z.grad.data, (softmax - np.eye(4)[classes]) / 6, rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda a: F.cross_entropy(a, classes), [_t(logits)])
    assert gradcheck(lambda a: F.cross_entropy(a, tl.tensor(classes, dtype=np.int64), reduction="none"), [_t(logits)])


def test_cross_entropy_with_probabilities():
    logits = RNG.standard_normal((5, 3))
    probs = RNG.dirichlet(np.ones(3), size=5)
    expected = -np.mean(np.sum(probs * _np_log_softmax(logits), axis=1))
    np.testing.assert_allclose(F.cross_entropy(_t(logits), probs).item(), expected, rtol=1e-14)
    assert gradcheck(F.cross_entropy, [_t(logits), _t(probs)])
    classes = np.array([2, 0, 1, 1, 0])
    np.testing.assert_allclose(
        F.cross_entropy(_t(logits), np.eye(3)[classes]).item(), F.cross_entropy(_t(logits), classes).item(), rtol=1e-14
    )


def test_cross_entropy_is_stable_at_large_logits():
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        loss = F.cross_entropy(_t([[1e3, -1e3], [-1e3, 1e3]]), np.array([1, 1]), reduction="none")
    np.testing.assert_array_equal(loss.data, [2e3, 0.0])


@pytest.mark.parametrize(
    "targets, match",
    [
        (np.array([0, 3]), r"class indices must lie in \[0, 3\), got values in \[0, 3\]"),
        (np.array([[0], [1]]), r"integer class targets must have shape \(2,\), got \(2, 1\)"),
        (
            np.array([0.0, 1.0]),
            r"logits have shape \(2, 3\) and targets of shape \(2,\) have dtype float64: class "
            r"indices must be integers",
        ),
        (np.array([[0.0, 1.0]]), r"prediction has shape \(2, 3\) but target has shape \(1, 2\)"),
        (np.array([True, False]), "integer class indices or float probabilities, got dtype bool"),
    ],
)
def test_cross_entropy_rejects_bad_targets(targets, match):
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(_t(np.zeros((2, 3))), targets)


def test_cross_entropy_wants_targets_that_fit_torchs_layouts_of_logits():
    with pytest.raises(ValueError, match=r"input has shape \(3,\), so integer class targets must have shape \(\), got"):
        F.cross_entropy(_t(np.zeros(3)), np.array([0]))  # (C,) logits are one sample: a 0-d target
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\), so integer class targets must have shape \(2, 4\)"):
        F.cross_entropy(_t(np.zeros((2, 3, 4))), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"input must have shape \(N, C\), \(C,\) or \(N, C, d1, ...\), got a 0-d"):
        F.cross_entropy(_t(np.float64(1.0)), np.array(0))


# ---- shapes, reductions, dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [F.mse_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_losses_refuse_to_broadcast_n1_against_n(loss):
    with pytest.raises(ValueError, match=r"prediction has shape \(4, 1\) but target has shape \(4,\)"):
        loss(_t(np.full((4, 1), 0.5)), np.ones(4))
    with pytest.raises(ValueError, match=r"prediction has shape \(4,\) but target has shape \(4, 1\)"):
        loss(_t(np.full(4, 0.5)), tl.tensor(np.ones((4, 1))))


@pytest.mark.parametrize("loss", [F.mse_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_unknown_reduction_lists_the_valid_ones(loss):
    with pytest.raises(ValueError, match="unknown reduction 'avg'; valid reductions: mean, sum, none"):
        loss(_t([0.5]), [1.0], reduction="avg")


def test_float32_prediction_gives_float32_loss_from_a_float64_target():
    pred = tl.tensor(np.full((3, 1), 0.25), dtype="float32", requires_grad=True)
    loss = F.mse_loss(pred, np.ones((3, 1)))
    loss.backward()
    assert loss.dtype == np.float32 and pred.grad.dtype == np.float32
    np.testing.assert_allclose(loss.item(), 0.75**2, rtol=1e-6)
