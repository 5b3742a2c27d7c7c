"""check_backprop / assert_backprop (tinygrad_lab/check_backprop.py): silent on correct hand-written gradients,
each classic mistake diagnosed by name, autograd itself cross-checked, and the demo's diagnoses."""

import copy
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lab.engine import ops
from tinygrad_lab.lab import data, reference
from tinygrad_lab.testing import assert_backprop, check_backprop
from tinygrad_lab.testing.check_backprop import BackpropCheckError

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAMES = ["w1", "w2", "w3"]


def lab_problem(n=100, seed=0, dtype=np.float64):
    """The lab network at its initial weights on the linear task: its loss, weights and hand-derived gradients."""
    x, y = data.generate_linear(n, rng=seed)
    net = reference.Network(rng=np.random.default_rng(seed))
    net.w1, net.w2, net.w3 = (w.astype(dtype) for w in net.weights)

    def loss(w1, w2, w3):
        trial = copy.copy(net)
        trial.w1, trial.w2, trial.w3 = w1, w2, w3
        return np.mean((y - trial.forward(x)) ** 2)

    net.forward(x.astype(dtype))
    return loss, list(net.weights), list(net.backpropagation(y.astype(dtype)))


def rows(result):
    return {row.name: row for row in result.rows}


def test_correct_gradients_pass_and_say_nothing_else():
    loss, ws, grads = lab_problem()
    result = check_backprop(loss, ws, grads, names=NAMES)
    assert result and all(row.ok and row.diagnosis == "ok" for row in result.rows)
    text = str(result)
    assert text.startswith("check_backprop: all 3 gradients agree (rtol=1e-05, atol=1e-08)")
    for word in ["factor", "sign", "transposed", "shape:", "zeros", "mismatch"]:
        assert word not in text
    assert re.search(r"^w2\s+\(4, 4\)\s", text, flags=re.M)  # a table row: name, shape, errors, worst element
    for true, given_ in zip(result.true_grads, grads):
        np.testing.assert_allclose(true, given_, rtol=1e-12, atol=1e-18)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_the_lab_networks_derived_gradients_always_pass(seed, n):
    loss, ws, grads = lab_problem(n, seed)
    assert check_backprop(loss, ws, grads, names=NAMES)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda g: 0.5 * g, "constant factor: your gradient is 0.5x (1/2) the true one"),
        (lambda g: 100 * g, "constant factor: your gradient is 100x the true one"),
        (lambda g: g / 100, "constant factor: your gradient is 0.01x (1/100) the true one"),
        (lambda g: -g, "flipped sign: your gradient is minus the true one"),
        (lambda g: 0 * g, "all zeros: your gradient is zero everywhere"),
        (lambda g: g.T, "transposed"),
        (lambda g: g[:-1], "wrong shape: yours is"),
    ],
)
@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_mistake_is_diagnosed_on_its_row_only(change, expected, index):
    loss, ws, grads = lab_problem()
    wrong = list(grads)
    wrong[index] = change(grads[index])
    result = check_backprop(loss, ws, wrong, names=NAMES)
    assert not result
    for k, name in enumerate(NAMES):
        row = rows(result)[name]
        assert row.ok == (k != index)
        if k == index:
            assert row.diagnosis.startswith(expected.split(":")[0]) and expected in row.diagnosis
            assert f"{name}: {row.diagnosis}" in str(result)


def test_a_square_matrix_transposed_is_named_though_the_shape_agrees():
    loss, ws, grads = lab_problem()
    assert grads[1].shape == (4, 4)
    row = rows(check_backprop(loss, ws, [grads[0], grads[1].T, grads[2]], names=NAMES))["w2"]
    assert (
        row.diagnosis
        == "transposed: your gradient is the true one transposed (the shape cannot tell for a square matrix)"
    )


def test_a_mismatch_names_the_worst_element_and_the_fraction_that_disagrees():
    loss, ws, grads = lab_problem()
    wrong = grads[1].copy()
    wrong[2, 3] += 0.01
    wrong[0, 1] -= 0.001
    result = check_backprop(loss, ws, [grads[0], wrong, grads[2]], names=NAMES)
    row = rows(result)["w2"]
    assert row.diagnosis == (
        f"mismatch: 2 of 16 elements (12%) disagree; worst at (2, 3): yours {wrong[2, 3]:.6g}, "
        f"true {grads[1][2, 3]:.6g}"
    )
    assert f"(2, 3): {wrong[2, 3]:.6g} vs {grads[1][2, 3]:.6g}" in str(result)
    assert row.max_abs == pytest.approx(0.01, rel=1e-9)


def test_the_derivative_taken_at_the_activations_input_is_a_mismatch():
    loss, ws, _ = lab_problem()
    x, y = data.generate_linear(100, rng=0)
    net = reference.Network(weights=ws)
    net.forward(x)
    net.z3 = net.z2 @ net.w3  # derivative_sigmoid fed the pre-activation
    result = check_backprop(loss, ws, list(net.backpropagation(y)), names=NAMES)
    assert [row.diagnosis.split(":")[0] for row in result.rows] == ["mismatch"] * 3


def test_float32_inputs_are_checked_in_float64_and_say_so():
    loss, ws, grads = lab_problem(dtype=np.float32)
    assert all(w.dtype == np.float32 for w in ws + grads)
    result = check_backprop(loss, ws, grads, names=NAMES)
    assert result
    assert "computed in float64 from w1 (float32), w2 (float32), w3 (float32)" in str(result)
    assert all(t.dtype == np.float64 for t in result.true_grads)
    wrong = check_backprop(loss, ws, [grads[0], -grads[1], grads[2]], names=NAMES)
    assert rows(wrong)["w2"].diagnosis.startswith("flipped sign")


def test_assert_backprop_in_a_pytest_suite():
    loss, ws, grads = lab_problem()
    assert_backprop(loss, ws, grads, names=NAMES)
    with pytest.raises(AssertionError) as err:
        assert_backprop(loss, ws, [grads[0], 0.5 * grads[1], grads[2]], names=NAMES)
    message = str(err.value)
    assert "1 of 3 gradients disagree" in message and "w2: constant factor: your gradient is 0.5x" in message
    assert "w1: ok" in message


def test_default_names_and_scalar_inputs():
    result = check_backprop(
        lambda a, b: np.sum(np.exp(a) * b),
        [np.array([0.5, -1.0]), 2.0],
        [2.0 * np.exp([0.5, -1.0]), np.sum(np.exp([0.5, -1.0]))],
    )
    assert result and [row.name for row in result.rows] == ["inputs[0]", "inputs[1]"]
    result = check_backprop(
        lambda a, b: np.sum(np.exp(a) * b),
        [np.array([0.5, -1.0]), 2.0],
        [np.exp([0.5, -1.0]), np.sum(np.exp([0.5, -1.0]))],
    )
    assert "inputs[0]: constant factor: your gradient is 0.5x (1/2)" in str(result)


def test_autograd_is_cross_checked_so_an_engine_bug_cannot_pass_a_wrong_gradient(monkeypatch):
    x = np.array([0.3, -0.2, 0.7])
    wrong = 2 * np.exp(x)  # the hand-written gradient makes the same mistake as the broken engine below
    monkeypatch.setattr(ops.Exp, "backward", staticmethod(lambda ctx, grad: 2 * grad * ctx.saved_tensors[0]))
    with pytest.raises(BackpropCheckError, match=r"autograd and finite differences disagree on d loss/d w"):
        check_backprop(lambda w: np.sum(np.exp(w)), [x], [wrong], names=["w"])


def test_a_loss_that_leaves_the_graph_is_refused_in_one_line():
    x = np.array([0.3, -0.2])
    with pytest.raises(BackpropCheckError, match=r"^check_backprop: loss returned float, not a Tensor") as err:
        check_backprop(lambda w: float(np.sum(w**2)), [x], [2 * x])
    assert "\n" not in str(err.value)
    with pytest.raises(BackpropCheckError, match="autograd and finite differences disagree"):
        check_backprop(lambda w: np.sum(w * w.numpy()), [x], [2 * x])  # half of the product left the graph
    with pytest.raises(RuntimeError, match="would drop its gradient"):
        check_backprop(lambda w: np.sum(np.ones(2).dot(w)), [x], [np.ones(2)])  # an ndarray method
    with pytest.raises(BackpropCheckError, match="must return a scalar, got shape"):
        check_backprop(lambda w: w * 2, [x], [2 * x])
    with pytest.raises(ValueError, match="2 inputs, 1 gradients and 2 names"):
        check_backprop(lambda a, b: np.sum(a * b), [x, x], [x])


def test_the_demo_passes_the_reports_network_and_diagnoses_three_mistakes():
    out = subprocess.run(
        [sys.executable, str(ROOT / "demos" / "check_backprop.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    sections = dict(re.findall(r"^== (.*?): (?:passes|fails)\n(.*?)(?=^== |\Z)", out, flags=re.S | re.M))
    assert len(sections) == 4
    as_printed, factor, at_input, transposed = sections.values()
    assert "all 3 gradients agree" in as_printed and "w1: ok\nw2: ok\nw3: ok" in as_printed
    assert out.count(": passes") == 1
    assert all(f"{w}: constant factor: your gradient is 0.5x (1/2) the true one" in factor for w in NAMES)
    assert all(f"{w}: mismatch: " in at_input for w in NAMES)
    assert "w2: transposed: your gradient is the true one transposed" in transposed
    assert "w1: ok" in transposed and "w3: ok" in transposed


def test_a_none_gradient_is_called_none():
    result = check_backprop(lambda w: np.sum(w**2), [np.ones((2, 2))], [None])
    assert not result and "your gradient is None" in result.rows[0].diagnosis


def test_the_exact_gradient_passes_at_the_minimum_of_a_large_loss():
    """Least squares at its optimum, loss about 1e9: the finite difference keeps the loss's rounding (about 0.1
    here, far above gradcheck's atol), which the cross-check allows for instead of calling the loss not smooth."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 3))
    y = x @ np.array([1.0, 2.0, 3.0]) + 1000 * rng.standard_normal(1000)
    w = np.linalg.lstsq(x, y, rcond=None)[0]

    def loss(w):
        return np.sum((x @ w - y) ** 2)

    assert check_backprop(loss, [w], [2 * x.T @ (x @ w - y)])
    wrong = check_backprop(loss, [w], [2 * x.T @ (x @ w - y) + 1.0])  # still told apart
    assert not wrong and wrong.rows[0].diagnosis.startswith("mismatch")


@pytest.mark.parametrize("b, wrong", [(np.array([1.0]), np.exp([1.0])), (np.float64(1.0), np.e)])
def test_one_wrong_element_is_a_wrong_value_not_a_constant_factor(b, wrong):
    """A fitted factor matches any single element, so it is no evidence of a scale mistake there."""
    row = check_backprop(lambda b: np.sum(np.exp(b) + b**2), [b], [wrong]).rows[0]
    assert row.diagnosis == f"wrong value: yours {np.e:.6g}, true {np.e + 2:.6g}"
    assert check_backprop(lambda b: np.sum(b**2), [b], [-2 * b]).rows[0].diagnosis.startswith("flipped sign")


def test_a_factor_needs_two_nonzero_true_elements():
    w = np.array([1.0, 0.0])  # the true gradient 3 w**2 is (3, 0): one element to fit a factor to
    row = check_backprop(lambda w: np.sum(w**3), [w], [np.array([1.0, 0.0])]).rows[0]
    assert row.diagnosis == "mismatch: 1 of 2 elements (50%) disagree; worst at (0): yours 1, true 3"
    w = np.array([1.0, 2.0])
    row = check_backprop(lambda w: np.sum(w**3), [w], [0.5 * 3 * w**2]).rows[0]
    assert row.diagnosis.startswith("constant factor: your gradient is 0.5x (1/2)")


# ---- kinks: where the loss is not differentiable, no gradient is the true one ----------------------------------


def relu_at_zero_bias():
    """A relu layer whose first input row is all zeros with a zero bias: z is exactly 0 there, relu's kink."""
    x, c = np.array([[0.0, 0.0], [1.0, 2.0], [0.5, -1.0]]), np.array([[3.0], [1.0], [2.0]])
    w, b = np.array([[1.0], [1.0]]), np.zeros(1)

    def loss(w, b):
        return np.sum(np.maximum(0, x @ w + b) * c)

    delta = (x @ w + b > 0) * c  # relu'(0) = 0, as torch.relu
    return loss, [w, b], [x.T @ delta, delta.sum(0)]


def test_at_a_relu_at_exactly_zero_any_value_between_the_gradients_around_it_passes():
    loss, inputs, grads = relu_at_zero_bias()
    result = check_backprop(loss, inputs, grads, names=["w", "b"])
    assert result and rows(result)["w"].diagnosis == "ok"
    b = rows(result)["b"]
    assert b.ok and b.kinks == 1 and b.max_abs == 0
    assert b.diagnosis.startswith("ok; 1 of 1 element at a kink of the loss")
    assert "any value between the gradients around it is valid: at (0) 1 to 4" in b.diagnosis  # relu'(0) = 0 to 1
    assert str(result).startswith(
        "check_backprop: all 2 gradients agree; 1 element at a kink judged against the gradients around it"
    )
    assert "bisected b down to its elements, where one-sided differences showed a kink" in str(result)
    for valid in [4.0, 2.5]:  # relu'(0) = 1, and 1/2 (torch.maximum's at a tie)
        assert check_backprop(loss, inputs, [grads[0], np.array([valid])])
    for wrong in [5.0, 4.0001, 0.9999, 0.5]:  # outside by more than rtol, whatever relu'(0) is taken to be
        row = check_backprop(loss, inputs, [grads[0], np.array([wrong])], names=["w", "b"]).rows[1]
        assert not row.ok and row.diagnosis.startswith(f"wrong value: yours {wrong:.6g}, true 1 to 4 (a kink)")


def zero_initialised_net():
    """A two-layer relu net with W1 = 0 and b1 = 0, as students often start: every pre-activation is exactly 0,
    so every element of W1 and b1 is at a kink; its gradients by hand with relu'(0) = c."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    w1, b1, w2 = np.zeros((4, 5)), np.zeros(5), rng.standard_normal((5, 2))

    def loss(w1, b1, w2):
        return np.mean((np.maximum(x @ w1 + b1, 0) @ w2 - y) ** 2)

    def backprop(c):
        z = x @ w1 + b1
        h = np.maximum(z, 0)
        d_out = 2 * (h @ w2 - y) / y.size
        dz = (d_out @ w2.T) * np.where(z == 0, c, z > 0)
        return [x.T @ dz, dz.sum(0), h.T @ d_out]

    return loss, [w1, b1, w2], backprop


@pytest.mark.parametrize("c", [0.0, 1.0, 0.5])
def test_a_zero_initialised_relu_net_passes_with_any_relu_derivative_at_0(c):
    """relu'(0) = 0 gives dW1 = 0, outside the one-sided slopes along a weight of W1 (which moves the rows of its
    input both ways): it is the gradient a hair away, where b1 is just below 0, and passes as it must."""
    loss, inputs, backprop = zero_initialised_net()
    result = check_backprop(loss, inputs, backprop(c), names=["W1", "b1", "W2"])
    assert result, str(result)
    assert [row.kinks for row in result.rows] == [20, 5, 0]


def test_a_zero_initialised_relu_net_with_garbage_gradients_fails():
    loss, inputs, backprop = zero_initialised_net()
    rng = np.random.default_rng(1)
    garbage = [rng.standard_normal((4, 5)), rng.standard_normal(5), backprop(0.0)[2]]
    result = check_backprop(loss, inputs, garbage, names=["W1", "b1", "W2"])
    assert not result and [row.ok for row in result.rows] == [False, False, True]
    assert rows(result)["W1"].diagnosis.startswith("mismatch: ")
    assert "elements at a kink of the loss" in rows(result)["W1"].diagnosis
    right = backprop(0.0)
    flipped = check_backprop(loss, inputs, [right[0] - 1.0, right[1], right[2]], names=["W1", "b1", "W2"])
    assert not rows(flipped)["W1"].ok


def test_relu_of_a_weight_at_0_takes_a_derivative_between_0_and_1():
    def loss(w):
        return np.sum(np.maximum(w, 0) * np.array([1.0, 2.0, 3.0]))

    w = np.array([0.0, 1.0, -1.0])
    for at_0 in [0.0, 0.3, 1.0]:
        assert check_backprop(loss, [w], [np.array([at_0, 2.0, 0.0])])
    row = check_backprop(loss, [w], [np.array([5.0, 2.0, 0.0])]).rows[0]
    assert not row.ok and row.kinks == 1
    assert row.diagnosis.startswith("mismatch: 1 of 3 elements (33%) disagree; worst at (0): yours 5, true 0 to 1")
    assert row.worst == "(0): 5 vs 0 to 1 (a kink)" and row.max_abs == pytest.approx(4.0, rel=1e-9)


def test_a_gradient_nonzero_only_at_a_kink_is_not_called_all_zeros():
    """The diagnoses read your value at a kink too: it is not replaced by 0 before they look."""

    def loss(w):
        return np.sum(np.maximum(w, 0) * np.array([1.0, 2.0, 3.0]))

    w = np.array([0.0, 1.0, 2.0])
    row = check_backprop(loss, [w], [np.array([5.0, 0.0, 0.0])]).rows[0]
    assert row.diagnosis.startswith("mismatch: 3 of 3 elements (100%) disagree; worst at (0): yours 5, true 0 to 1")
    assert check_backprop(loss, [w], [np.zeros(3)]).rows[0].diagnosis.startswith("all zeros")
    assert check_backprop(loss, [w], [-np.array([0.5, 2, 3])]).rows[0].diagnosis.startswith("flipped sign")
    row = check_backprop(loss, [w], [np.array([0.25, 1, 1.5])]).rows[0]  # half, also at the kink (0 to 1/2)
    assert row.diagnosis.startswith("constant factor: your gradient is 0.5x (1/2) the true one")
    row = check_backprop(loss, [w], [np.array([0.75, 1, 1.5])]).rows[0]  # not half at the kink
    assert row.diagnosis.startswith("mismatch: 2 of 3 elements (67%) disagree; worst at (2)")


def test_at_a_kink_a_wrong_gradient_elsewhere_is_still_diagnosed():
    loss, inputs, grads = relu_at_zero_bias()
    result = check_backprop(loss, inputs, [0.5 * grads[0], grads[1]], names=["w", "b"])
    assert not result
    assert rows(result)["w"].diagnosis.startswith("constant factor: your gradient is 0.5x (1/2)")
    assert rows(result)["b"].ok and str(result).startswith(
        "check_backprop: 1 of 2 gradients disagree; 1 element at a kink judged against the gradients around it"
    )


def test_a_max_over_tied_values_judges_the_tied_elements_between_the_gradients_around_them():
    x = np.array([[2.0, 2.0, 1.0], [0.5, 3.0, 1.0]])

    def loss(x):
        return np.sum(np.max(x, axis=1) * np.array([1.0, 2.0]))

    to_argmax = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # the tie routed to the first maximum
    row = check_backprop(loss, [x], [to_argmax]).rows[0]
    assert row.ok and row.kinks == 2
    assert row.diagnosis.startswith("ok; 2 of 6 elements at a kink")
    assert "at (0, 0) 0 to 1, at (0, 1) 0 to 1" in row.diagnosis
    assert check_backprop(loss, [x], [np.array([[0.5, 0.5, 0.0], [0.0, 2.0, 0.0]])])  # shared evenly
    row = check_backprop(loss, [x], [np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])]).rows[0]
    assert not row.ok
    assert row.diagnosis.startswith("mismatch: 1 of 6 elements (17%) disagree; worst at (0, 0): yours 2, true 0 to 1")
    wrong = to_argmax + np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    row = check_backprop(loss, [x], [wrong]).rows[0]
    assert not row.ok and row.diagnosis.startswith("mismatch: 1 of 6 elements (17%) disagree; worst at (1, 1)")


def test_strong_curvature_is_not_a_kink():
    """One-sided differences of step 1e-6 differ by about 1e-6 times the second derivative; the three-point
    formulas cancel that, so a smooth loss with a large second derivative is judged in full."""
    x = np.array([1e-3, 2e-3, 5e-4])  # d2/dx2 log x = -1/x**2, up to 4e6
    assert check_backprop(lambda x: np.sum(np.log(x)), [x], [1 / x]).rows[0].diagnosis == "ok"
    x = np.array([0.5, 0.7, -0.2])
    result = check_backprop(lambda x: np.sum(np.exp(30 * x)), [x], [30 * np.exp(30 * x)])
    assert result.rows[0].diagnosis == "ok"


def test_a_kink_the_gradients_a_hair_away_miss_is_found_by_bisection_off_those_they_found():
    """100 elements where autograd's gradients jump are judged from those gradients; a kink 1e-8 from the point,
    too far for them to see but shown by one-sided differences, is bisected for among the other elements."""
    w = np.zeros(101)
    w[100] = -1e-8
    result = check_backprop(lambda w: np.sum(np.maximum(w, 0)), [w], [np.zeros(101)], names=["w"])
    assert result and result.rows[0].kinks == 101
    assert "bisected w down to its elements" in str(result)
    assert not check_backprop(lambda w: np.sum(np.maximum(w, 0)), [w], [np.r_[np.zeros(100), 2.0]])


def test_a_kink_along_no_single_element_is_judged_from_the_gradients_around_it():
    """|a - b| - |a| - |b| at 0 is flat along each axis, kinked along (1, -1): autograd's gradients a hair away
    (0 or +-2) give the range, where bisecting finds no element."""

    def loss(v):
        return np.abs(v[0] - v[1]) - np.abs(v[0]) - np.abs(v[1])

    row = check_backprop(loss, [np.zeros(2)], [np.zeros(2)]).rows[0]
    assert row.ok and row.kinks >= 1 and "at (0) -2 to 2" in row.diagnosis
    assert not check_backprop(loss, [np.zeros(2)], [np.array([2.5, 0.0])])


def test_a_kink_smaller_than_finite_differences_can_tell_is_judged_against_both_sides():
    """A relu term worth 0.05 beside a slope of 100: one-sided differences of 100 and 100.05 agree within their
    error, but autograd's gradients a hair away differ, so relu'(0) = 0, 1 and torch's gradient all pass."""

    def loss(w):
        return np.sum(100 * w) + 0.05 * np.sum(np.maximum(w, 0))

    for w in [np.zeros(1), np.array([0.0, 1.0])]:
        for at_0 in [100.0, 100.05, 100.025]:
            result = check_backprop(loss, [w], [np.where(w > 0, 100.05, at_0)])
            assert result and result.rows[0].kinks == 1, str(result)
        assert not check_backprop(loss, [w], [np.where(w > 0, 100.05, 100.06)])
    assert not check_backprop(loss, [np.array([0.0, 1.0])], [np.array([100.0, 100.0])])


def test_an_mse_relu_net_with_one_preactivation_at_0_passes_either_relu_derivative():
    """1000 samples make one sample's share of the gradient too small for one-sided differences to show its kink
    (averaged by the mean), yet larger than rtol: it is found where autograd's gradients a hair away jump."""
    rng = np.random.default_rng(3)
    x, y = rng.integers(-3, 4, (1000, 2)).astype(float), rng.integers(0, 5, (1000, 1)).astype(float)
    x[0] = [-0.5, 0.0]  # its first pre-activation is -0.5 + 0.5 = 0
    w1, b1, w2 = np.array([[1.0, -1, 2], [1, 1, -1]]), np.array([0.5, 0.25, 0.25]), np.array([[1.0], [-1], [2]])

    def loss(w1, b1, w2):
        return np.mean((np.maximum(x @ w1 + b1, 0) @ w2 - y) ** 2)

    z = x @ w1 + b1
    for c in [0.0, 1.0]:
        d_out = 2 * (np.maximum(z, 0) @ w2 - y) / y.size
        dz = (d_out @ w2.T) * np.where(z == 0, c, z > 0)
        assert check_backprop(loss, [w1, b1, w2], [x.T @ dz, dz.sum(0), np.maximum(z, 0).T @ d_out])


def test_thousands_of_elements_at_a_kink_are_judged_in_a_few_dozen_losses():
    """Every weight of a zero 100 x 100 relu layer is at a kink: found where autograd's gradients a hair away jump,
    not by bisection (which gave up after 4096 directions, a minute later)."""
    calls = []

    def loss(w):
        calls.append(1)
        return np.sum(np.maximum(0, np.ones((5, 100)) @ w))

    w = np.zeros((100, 100))
    result = check_backprop(loss, [w], [np.zeros((100, 100))], names=["w"])  # relu'(0) = 0
    assert result and result.rows[0].kinks == 10000 and len(calls) < 100
    assert check_backprop(loss, [w], [5 * np.ones((100, 100))])  # relu'(0) = 1
    assert not check_backprop(loss, [w], [6 * np.ones((100, 100))])


def test_an_l1_penalty_at_a_thousand_zero_weights_is_judged_in_a_few_dozen_losses():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 100)), rng.standard_normal((64, 100))
    w = rng.standard_normal((100, 100)) * (rng.random((100, 100)) < 0.9)
    calls = []

    def loss(w):
        calls.append(1)
        return np.mean((x @ w - y) ** 2) + 1e-3 * np.sum(np.abs(w))

    smooth = 2 * x.T @ (x @ w - y) / y.size
    result = check_backprop(loss, [w], [smooth + 1e-3 * np.sign(w)])  # abs'(0) = 0, as torch
    assert result and result.rows[0].kinks == np.count_nonzero(w == 0) and len(calls) < 100
    assert check_backprop(loss, [w], [smooth + 1e-3 * np.where(w == 0, 1.0, np.sign(w))])  # abs'(0) = 1
    assert not check_backprop(loss, [w], [smooth + 1e-3 * np.where(w == 0, 2.0, np.sign(w))])


def test_the_kinks_of_a_large_input_are_found_by_bisection_in_a_few_losses():
    """A 100 x 100 weight with one tied row maximum: its two tied elements are located by halving the elements,
    not probed one by one, which would take 40000 losses."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((100, 100))
    w[0, 1] = w[0].max()
    calls = []

    def loss(w):
        calls.append(1)
        return np.sum(np.max(w, axis=1))

    even_share = (w == w.max(axis=1, keepdims=True)) / np.sum(w == w.max(axis=1, keepdims=True), axis=1, keepdims=True)
    result = check_backprop(loss, [w], [even_share])
    assert result and result.rows[0].kinks == 2
    # the one-sided slopes of a sum of 100 maxima keep its rounding: about 0 to 1 at each tied element
    ranges = re.search(r"at \(0, 1\) (\S+) to (\S+), at \(0, 79\) (\S+) to (\S+)$", result.rows[0].diagnosis)
    assert ranges and np.allclose([float(r.rstrip(",")) for r in ranges.groups()], [0, 1, 0, 1], atol=1e-6)
    assert len(calls) < 1000
    wrong = even_share.copy()
    wrong[0, 1] = 1.5
    assert not check_backprop(loss, [w], [wrong])


def test_every_element_of_a_1200_element_input_at_a_kink_is_judged():
    def loss(w):
        return np.sum(np.maximum(0, np.ones((5, 40)) @ w))

    w = np.zeros((40, 30))
    result = check_backprop(loss, [w], [np.zeros((40, 30))], names=["w"])  # relu'(0) = 0
    assert result and result.rows[0].kinks == 1200
    assert check_backprop(loss, [w], [5 * np.ones((40, 30))], names=["w"])  # relu'(0) = 1
    assert not check_backprop(loss, [w], [6 * np.ones((40, 30))], names=["w"])


def test_a_loss_that_is_not_deterministic_is_refused():
    """Noise makes one-sided differences disagree as a kink would: it is caught before it can pass as one."""
    rng = np.random.default_rng(0)
    with pytest.raises(BackpropCheckError, match=r"^check_backprop: the loss is not deterministic"):
        check_backprop(lambda w: np.sum(w**2) + 1e-3 * rng.standard_normal(), [np.ones(3)], [2 * np.ones(3)])


@pytest.mark.parametrize(
    "loss, value", [(lambda w: np.sum(np.log(w)), "nan"), (lambda w: np.sum(np.exp(1000 * w)), "inf")]
)
def test_a_loss_that_is_nan_or_inf_at_the_inputs_is_refused_in_one_line(loss, value):
    """Not as a loss that is not deterministic: nan differs from itself."""
    with np.errstate(all="ignore"), pytest.raises(BackpropCheckError) as err:
        check_backprop(loss, [np.array([-1.0, 2.0])], [np.array([-1.0, 0.5])])
    assert str(err.value).startswith(f"check_backprop: the loss is {value} at the inputs given")
    assert "\n" not in str(err.value) and "deterministic" not in str(err.value)


def test_a_kink_hidden_in_the_slopes_of_half_the_elements_is_still_found():
    """Along half of a large weight the loss's slope is large, and the error allowed for it (relative) can hide
    relu's unit jump that the whole direction showed: the halves are probed again across autograd's gradient."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 100))
    w = rng.standard_normal((100, 100))
    w[0, 0] = 0.0

    def loss(w):
        return np.sum(np.maximum(w, 0)) + np.sum(x @ w)

    result = check_backprop(loss, [w], [(w > 0) + x.sum(0)[:, None]])
    assert result and result.rows[0].kinks == 1 and "at (0, 0) " in result.rows[0].diagnosis
