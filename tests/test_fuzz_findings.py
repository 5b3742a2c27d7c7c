"""What differential fuzzing against PyTorch (tests/test_fuzz.py) found, each reproducer a test: gradients at
infinite and NaN values, masks, variance, softmax and cross-entropy extremes, and dtype promotion as torch.

Values come from torch (the tests' oracle) wherever torch defines them, never copied from our own output.
"""

import warnings

import numpy as np
import pytest
import torch
from engine_helpers import leaf
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

Tensor = tl.Tensor


@pytest.mark.parametrize(
    "mask",
    [
        lambda t: t.relu(),
        lambda t: t.clip(0.0, None),
        lambda t: t.clip(-0.5, 0.5),
        lambda t: tl.maximum(t, 0.0) if isinstance(t, Tensor) else torch.maximum(t, torch.zeros(())),
        lambda t: tl.minimum(t, 0.0) if isinstance(t, Tensor) else torch.minimum(t, torch.zeros((), dtype=t.dtype)),
        lambda t: (
            tl.where(np.array([False, True, True]), t, 0.0)
            if isinstance(t, Tensor)
            else torch.where(torch.tensor([False, True, True]), t, 0.0)
        ),
    ],
    ids=["relu", "clip lo", "clip", "maximum", "minimum", "where"],
)
def test_masking_ops_keep_an_infinite_gradient_out_of_the_masked_places(mask):
    """relu(x) ** 0.5 has an infinite gradient where relu(x) = 0; the masked places get 0 (as torch), not NaN."""
    x_np = np.array([-1.0, 0.25, 2.0])
    x, tx = leaf(x_np), tleaf(x_np)
    (mask(x).abs() ** 0.5).sum().backward()
    (mask(tx).abs() ** 0.5).sum().backward()
    assert_same(x.grad, tx.grad)


def test_compile_of_a_tensor_exponent_does_not_read_values_while_tracing():
    w = Tensor(np.array([0.0, 0.5, 2.0]), requires_grad=True)
    p = Tensor(np.array([2.0, 0.0, 1.5]), requires_grad=True)

    def step():
        w.grad = p.grad = None
        loss = (w**p).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step)
    for _ in range(4):
        compiled()
    tw, tp = tleaf(w.data), tleaf(p.data)
    (tw**tp).sum().backward()
    assert_same(w.grad, tw.grad)
    assert_same(p.grad, tp.grad)


def test_flatten_of_a_single_axis_is_the_tensor_itself_as_in_torch():
    """torch returns self when start_dim == end_dim, so retain_grad on it is the leaf's own gradient."""
    x, tx = leaf([0.5, -2.0]), tleaf([0.5, -2.0])
    assert x.flatten(0, 0) is x and tx.flatten(0, 0) is tx
    assert x.flatten(-1) is x


def test_an_error_in_a_users_forward_keeps_the_users_frame():
    """The op's one-line sentence names the op and shapes; its cause is the user's error, with the frame where it
    was raised, so a traceback still points at the user's code."""
    import traceback

    class Broken(tl.Function):
        @staticmethod
        def forward(ctx, x):
            return x.reshape(7)  # the user's bug

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(ValueError, match=r"^Broken: .*\(input shapes: \(2, 3\)\)$") as info:
        Broken.apply(tl.tensor(np.ones((2, 3)), requires_grad=True))
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(f.name == "forward" and f.line == "return x.reshape(7)  # the user's bug" for f in frames)


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.relu(),
        lambda t: t.abs(),
        lambda t: tl.maximum(t, t[::-1]) if isinstance(t, Tensor) else torch.maximum(t, t.flip(0)),
        lambda t: tl.minimum(t, t[::-1]) if isinstance(t, Tensor) else torch.minimum(t, t.flip(0)),
    ],
    ids=["relu", "abs", "maximum", "minimum"],
)
def test_gradients_at_nan_inputs_follow_torch(op):
    """torch: relu'(NaN) = 1, abs'(NaN) = 0 (its sign of NaN is 0), and both sides of a maximum or minimum
    with a NaN get the whole gradient."""
    x_np = np.array([np.nan, 1.0, -1.0, 0.0, 2.0])
    x, tx = leaf(x_np), tleaf(x_np)
    (op(x) * np.arange(1.0, 6.0)).sum().backward()
    (op(tx) * torch.arange(1.0, 6.0, dtype=torch.float64)).sum().backward()
    assert_same(x.grad, tx.grad)


def test_a_zero_exponent_sends_zeros_back_even_under_a_nan_gradient():
    """As torch: x ** 0 (a number) has slope 0, so a NaN arriving from above (the unbiased variance of one value)
    gives a zero gradient, not NaN * 0; also at x = 0, and for the first derivative of a recorded backward."""
    for value in (0.0, 0.5, -2.0):
        x = tl.tensor(np.array(value), requires_grad=True)
        (x**0).var(ddof=1).backward()  # the variance of one value is NaN, and so is its gradient
        assert x.grad.item() == 0.0
        x = tl.tensor(np.array(value), requires_grad=True)
        (g,) = tl.grad((x**0 * np.nan).sum(), x, create_graph=True)
        assert g.item() == 0.0


@pytest.mark.parametrize("values", [[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan], [1.0, 3.0, 3.0]])
@pytest.mark.parametrize("name", ["max", "min"])
def test_a_full_max_or_min_holding_nan_sends_the_gradient_to_the_nans_as_torch(name, values):
    """torch's max() and min() of everything share the gradient among the NaNs when the result is NaN (and among
    tied extremes otherwise); it used to be NaN everywhere."""
    ours = tl.Tensor(np.array(values), requires_grad=True)
    getattr(ours, name)().backward()
    ref = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    getattr(ref, name)().backward()
    np.testing.assert_array_equal(ours.grad.data, ref.grad.numpy())


def test_std_of_constant_inputs_has_a_zero_gradient_as_torch():
    """sqrt's slope is infinite at 0: torch's std masks it, so a constant row gives 0, not NaN."""
    rows = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    ours = tl.Tensor(rows, requires_grad=True)
    ours.std(axis=1, ddof=1).sum().backward()
    ref = torch.tensor(rows, requires_grad=True)
    ref.std(dim=1).sum().backward()
    np.testing.assert_allclose(ours.grad.data, ref.grad.numpy(), rtol=1e-12, atol=0)
    assert np.all(ours.grad.data[0] == 0)
    assert gradcheck(lambda t: t.std(axis=1, ddof=1), [tl.Tensor(rows[1:], requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropy_equals_torch_at_the_extremes(dtype):
    """Values and both gradients as torch's binary_cross_entropy, with p at 0, 1, within an ulp of them and
    inside: each log capped at -100, the gradient in p floored at p (1 - p) = 1e-12, the target's uncapped."""
    p = np.array([0.0, 1.0, 1e-20, 1e-17, 1.0 - 1e-16, 0.0, 0.3, 0.9999, 1e-8]).astype(dtype)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.2, 1.0, 1.0]).astype(dtype)
    ours_p, ours_y = tl.Tensor(p, requires_grad=True), tl.Tensor(y, requires_grad=True)
    loss = F.binary_cross_entropy(ours_p, ours_y, reduction="none")
    loss.sum().backward()
    ref_p, ref_y = torch.tensor(p, requires_grad=True), torch.tensor(y, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy(ref_p, ref_y, reduction="none")
    ref.sum().backward()
    assert loss.dtype == dtype
    np.testing.assert_array_equal(loss.data, ref.detach().numpy())
    np.testing.assert_array_equal(ours_p.grad.data, ref_p.grad.numpy())
    np.testing.assert_allclose(ours_y.grad.data, ref_y.grad.numpy(), rtol=1e-6 if dtype == np.float32 else 1e-12)
    inside = [tl.Tensor(np.array([0.2, 0.7, 0.5]), requires_grad=True), tl.Tensor(np.array([0.1, 1.0, 0.0]))]
    assert gradcheck(F.binary_cross_entropy, inside) and gradgradcheck(F.binary_cross_entropy, inside)


def test_clip_clamp_and_fill_take_tensor_constants_as_torch():
    x = np.array([0.5, 3.0, -1.0])
    ours = tl.Tensor(x, requires_grad=True)
    out = (ours * 1.0).clip(tl.Tensor(np.array(0.0)), tl.Tensor(np.array(1.0)))
    out.sum().backward()
    ref = torch.tensor(x, requires_grad=True)
    (ref * 1.0).clip(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(out.data, np.clip(x, 0.0, 1.0))
    np.testing.assert_array_equal(ours.grad.data, ref.grad.numpy())
    np.testing.assert_array_equal(tl.Tensor(x.copy()).clamp_(tl.Tensor(np.array(2.0))).data, [2.0, 3.0, 2.0])
    np.testing.assert_array_equal(tl.Tensor(x.copy()).fill_(tl.Tensor(np.array(7.0))).data, [7.0, 7.0, 7.0])
    with pytest.raises(TypeError, match=r"^Clip: lo is a Tensor that requires grad, which this op takes as a constant"):
        ours.clip(tl.Tensor(np.array(0.0), requires_grad=True), 1.0)


@pytest.mark.parametrize("ddof", [2, 3])
def test_a_variance_without_degrees_of_freedom_is_infinite_as_torch(ddof):
    """count - ddof <= 0 divides by zero as torch's correction does: inf, and NaN only for constant inputs."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the correction leaves no degrees of freedom
        ours = tl.Tensor(np.array([1.0, 2.0])).var(ddof=ddof).item()
        ref = torch.tensor([1.0, 2.0], dtype=torch.float64).var(correction=ddof).item()
        constant = tl.Tensor(np.array([2.0, 2.0])).var(ddof=ddof).item()
    assert ours == ref == np.inf and np.isnan(constant)


@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("other", [np.int32, np.int64, np.bool_])
def test_a_float_tensor_with_an_integer_or_bool_one_keeps_its_float_dtype_as_torch(float_dtype, other):
    """torch promotes by kind first: float32 * int64 is float32 (numpy says float64), values and gradients too."""
    x = np.array([1.5, -2.0, 3.0], dtype=float_dtype)
    k = np.array([1, 0, 2]).astype(other)
    ops = {
        "add": (lambda a, b: a + b),
        "mul": (lambda a, b: a * b),
        "div": (lambda a, b: a / (b + 1)),
        "maximum": (lambda a, b: tl.maximum(a, b) if isinstance(a, tl.Tensor) else torch.maximum(a, b)),
    }
    for name, op in ops.items():
        if other is np.bool_ and name in ("div", "maximum"):
            continue  # torch refuses bool + 1 and maximum of float and bool differently from numpy; not compared
        ours, ref = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = op(ours, tl.Tensor(k, dtype=other)), op(ref, torch.tensor(k))
        assert out.dtype == np.dtype(str(expected.dtype).replace("torch.", "")), name
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-6)
        out.sum().backward()
        expected.sum().backward()
        assert ours.grad.dtype == float_dtype
        np.testing.assert_allclose(ours.grad.data, ref.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
def test_a_float_matrix_times_an_integer_one_keeps_its_float_dtype_as_the_other_operators(float_dtype):
    """The README's rule for `@` too (torch refuses mixed-dtype matmul, so numpy's float product is the oracle)."""
    x = np.array([[1.5, -2.0, 3.0]], dtype=float_dtype)
    k = np.array([[1, 0], [2, 1], [0, 3]], dtype=np.int64)
    ints = tl.Tensor(k, dtype=np.int64)
    for product, expected in [(lambda t: t @ ints, x @ k.astype(float_dtype)), (lambda t: ints.T @ t.T, k.T @ x.T)]:
        ours = tl.Tensor(x, requires_grad=True)
        out = product(ours)
        assert out.dtype == float_dtype
        np.testing.assert_allclose(out.data, expected.astype(float_dtype), rtol=1e-6)
        out.sum().backward()
        assert ours.grad.dtype == float_dtype


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    "values", [[np.inf, 0.0], [np.inf, np.inf], [-np.inf, -np.inf], [np.nan, 1.0], [-np.inf, 2.0, 1.0]]
)
def test_softmax_of_infinite_inputs_matches_torch(name, values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns of inf - inf, torch does not
        ours = getattr(F, name)(leaf(values), 0)
    assert_same(ours, getattr(torch, name)(tleaf(values), 0))


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("values", [[2.0, np.inf], [np.inf, 2.0], [2.0, -np.inf], [1.0, 2.0, np.inf], [3.0, 3.0]])
def test_variance_gradient_at_infinite_inputs_matches_torch(name, values):
    """The fuzzer's stack(x, 0 ** x).var() with x = -1: torch's var_backward is 2 (x - mean) / (n - 1) · G."""
    ours, theirs = leaf(values), tleaf(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns of inf - inf, torch does not
        getattr(ours, name)(ddof=1).backward()
    getattr(theirs, name)().backward()
    assert_same(ours.grad, theirs.grad)


@pytest.mark.parametrize(
    "values, axis, ddof",
    [([1.0, 3.0], None, 2), ([1.0, 3.0], 0, 2), ([2.0], None, 1), (2.0, None, 1), ([1.0, 3.0], None, 3)],
)
def test_variance_gradient_without_degrees_of_freedom_matches_torch(values, axis, ddof):
    """Over everything torch sends G · inf back (NaN where x is the mean); over named axes 2 (x - mean) / 0 · G."""
    ours, theirs = leaf(values), tleaf(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "degrees of freedom is <= 0"
        (ours.var(axis=axis, ddof=ddof) * 3.0).backward()
        (theirs.var(dim=axis, correction=ddof) * 3.0).backward()
    assert_same(ours.grad, theirs.grad)


def test_variance_of_a_nan_variance_sends_inf_back_as_torch():
    """The fuzzer's var(var(x, ddof=1), ddof=1) of one value: the inner var is NaN, which is not its own mean."""
    ours, theirs = leaf(2.0), tleaf(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "degrees of freedom is <= 0"
        inner, tinner = ours.var(ddof=1), theirs.var()
        inner.retain_grad()
        tinner.retain_grad()
        (inner.var(ddof=1) * 3.0).backward()
        (tinner.var() * 3.0).backward()
    assert_same(inner.grad, tinner.grad)


@pytest.mark.parametrize("make", ["x ** 0", "y.fill_(2.0)", "y.zero_()"])
def test_a_constant_zero_derivative_does_not_require_grad_under_create_graph_as_torch(make):
    """x ** 0 and fill_ send zeros that depend on nothing (torch's zeros_like), even when the gradient arriving
    requires grad (here through abs, whose recorded gradient does): found as stack(x ** 0).abs()."""
    results = []
    for lib in (tl, torch):
        x = lib.tensor(np.array([0.5, -2.0]), requires_grad=True)
        y = x * 1
        out = eval(make, {}, {"x": x, "y": y})  # a fixed expression per case
        loss = (out.abs() * 3.0).sum()
        (g,) = (tl.grad if lib is tl else torch.autograd.grad)(loss, x, create_graph=True, allow_unused=True)
        results.append((g.requires_grad, np.asarray(g.detach().data if lib is tl else g.detach())))
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
