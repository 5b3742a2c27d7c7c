"""Edge cases found by differential fuzzing against PyTorch and by bad input: each reproducer is a test.

Values come from torch (the tests' oracle) wherever torch defines them, so the expected numbers are
never copied from our own output.
"""

import warnings

import numpy as np
import pytest
import torch
from engine_helpers import leaf

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.testing import gradcheck, gradgradcheck

Tensor = tl.Tensor


def tleaf(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def assert_same(ours, theirs):
    """Our tensor against torch's: same shape, values equal to 1e-12 (NaN where torch has NaN)."""
    expected = theirs.detach().numpy()
    assert ours.shape == tuple(expected.shape)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12, atol=1e-15, equal_nan=True)


# ---- wrong gradients: ** at base 0 -----------------------------------------------------------------------------


@pytest.mark.parametrize("base, exponent", [(0.0, 2.0), (0.0, 0.0), (0.0, 3.5), (2.0, 0.0), (0.0, -1.0)])
def test_pow_gradients_at_base_zero_match_torch(base, exponent):
    a, b = leaf(base), leaf(exponent)
    (a**b).backward()
    ta, tb = tleaf(base), tleaf(exponent)
    (ta**tb).backward()
    assert_same(a.grad, ta.grad)
    assert_same(b.grad, tb.grad)


def test_pow_learnable_exponent_over_relu_zeros_is_finite_and_matches_torch():
    x_np, p_np = np.array([-1.0, 0.0, 0.5, 2.0]), 1.5
    x, p = leaf(x_np), leaf(p_np)
    (x.relu() ** p).sum().backward()
    tx, tp = tleaf(x_np), tleaf(p_np)
    (tx.relu() ** tp).sum().backward()
    assert np.isfinite(p.grad.data).all()
    assert_same(p.grad, tp.grad)
    assert_same(x.grad, tx.grad)


@pytest.mark.parametrize("base, exponent", [(0.0, 2.0), (0.0, 0.0)])
def test_pow_first_order_gradients_under_create_graph_are_torch_values(base, exponent):
    a, b = leaf(base), leaf(exponent)
    ga, gb = tl.grad(a**b, [a, b], create_graph=True)
    ta, tb = tleaf(base), tleaf(exponent)
    tga, tgb = torch.autograd.grad(ta**tb, [ta, tb], create_graph=True)
    assert_same(ga, tga)
    assert_same(gb, tgb)


@pytest.mark.parametrize("base, exponent", [(0.0, 2.0), (0.0, 0.0)])
def test_pow_second_order_gradients_at_base_zero_are_finite(base, exponent):
    """torch gives NaN here; the limits exist (d/da (a^b log a) -> 0 as a -> 0 for b >= 2) and we give them."""
    a, b = leaf(base), leaf(exponent)
    ga, gb = tl.grad(a**b, [a, b], create_graph=True)
    for g in (ga, gb):
        for second in tl.grad(g, [a, b], allow_unused=True, retain_graph=True):
            assert second is None or np.isfinite(second.data).all()


def test_pow_hessian_is_symmetric_where_the_exponent_is_zero():
    """d2/dadb of a^b at a = 1, b = 0 is 1 both ways; a mask over all of b == 0 would make one of them 0."""
    a, b = leaf([1.0, 2.0]), leaf([0.0, 0.0])
    ga, gb = tl.grad((a**b).sum(), [a, b], create_graph=True)
    (d_ga_db,) = tl.grad(ga.sum(), [b], retain_graph=True)
    (d_gb_da,) = tl.grad(gb.sum(), [a])
    np.testing.assert_allclose(d_ga_db.data, d_gb_da.data, rtol=1e-12)
    np.testing.assert_allclose(d_ga_db.data, 1.0 / np.array([1.0, 2.0]), rtol=1e-12)


@pytest.mark.parametrize("exponent", [np.array(0.0), "tensor"])
def test_a_zero_tensor_exponent_sends_zero_back_under_a_nan_gradient_as_torch(exponent):
    """Found by the fuzzer: x ** array(0.) then the unbiased variance of one value, whose gradient is NaN. torch's
    slope in the base is 0 wherever the exponent is 0, whatever arrives; ours too (the Hessian stays exact)."""
    x = tl.Tensor(np.array(0.7), requires_grad=True)
    as_tensor = isinstance(exponent, str)
    b = tl.Tensor(np.array(0.0), requires_grad=True) if as_tensor else exponent
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (x**b).var(ddof=1).backward()
        ref_x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        ref_b = torch.tensor(0.0, dtype=torch.float64, requires_grad=as_tensor)
        (ref_x**ref_b).var(correction=1).backward()
    assert x.grad.item() == ref_x.grad.item() == 0.0


def test_pow_with_zero_base_passes_gradgradcheck_where_smooth():
    """Away from the masked point the formula is the plain one: gradgradcheck at b in (1, 3), a = 0.5."""
    a, b = leaf([0.5, 1.5]), leaf([1.2, 2.5])
    assert gradcheck(lambda x, y: x**y, [a, b])
    assert gradgradcheck(lambda x, y: x**y, [a, b])


# ---- crashes where PyTorch works: size-0 axes -------------------------------------------------------------------


@pytest.mark.parametrize("op", ["mean", "var"])
@pytest.mark.parametrize("axis", [0, 1])
def test_mean_and_var_backward_over_a_size_zero_axis_match_torch(op, axis):
    x_np = np.zeros((0, 3))
    x = leaf(x_np)
    out = getattr(x, op)(axis=axis)
    out.sum().backward()
    tx = tleaf(x_np)
    tout = tx.mean(axis) if op == "mean" else tx.var(axis, correction=0)
    tout.sum().backward()
    assert_same(out, tout)
    assert_same(x.grad, tx.grad)


def test_flatten_beside_a_size_zero_axis():
    x = tl.tensor(np.zeros((0, 3)))
    assert x.flatten(1).shape == tuple(torch.zeros(0, 3).flatten(1).shape)
    assert x.flatten().shape == (0,)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_and_min_over_the_nonempty_axis_of_a_size_zero_tensor(op):
    x = leaf(np.zeros((0, 3)))
    out = getattr(x, op)(axis=1)
    assert out.shape == getattr(np.zeros((0, 3)), op)(axis=1).shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_over_the_size_zero_axis_is_a_sentence(op):
    with pytest.raises(ValueError, match=rf"{op} over a size-0 axis \(shape \(0, 3\), axis 0\)"):
        getattr(tl.tensor(np.zeros((0, 3))), op)(axis=0)


# ---- 0-d tensors take axis 0 and -1 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(0),
        lambda t: t.sum(-1),
        lambda t: t.max(0) if isinstance(t, Tensor) else t.amax(0),
        lambda t: t.min(-1) if isinstance(t, Tensor) else t.amin(-1),
        lambda t: t.mean(0),
        lambda t: t.logsumexp(0),
        lambda t: t.softmax(-1),
        lambda t: t.log_softmax(0),
        lambda t: t.squeeze(0),
        lambda t: t.flatten(0, -1),
        lambda t: t.swapaxes(0, -1),
    ],
    ids=[
        "sum0",
        "sum-1",
        "max0",
        "min-1",
        "mean0",
        "logsumexp0",
        "softmax-1",
        "log_softmax0",
        "squeeze0",
        "flatten",
        "swapaxes",
    ],
)
def test_zero_dim_tensor_accepts_axis_zero_and_minus_one_as_torch(call):
    x, tx = leaf(1.5), tleaf(1.5)
    out, tout = call(x), call(tx)
    assert_same(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_same(x.grad, tx.grad)


# ---- axis errors are one sentence naming the axis and the dimension -----------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tl.tensor(1.0).squeeze(1), "squeeze: axis 1 is out of bounds for a tensor of dimension 0"),
        (lambda: Tensor.ones(2, 3).swapaxes(0, 5), "swapaxes: axis 5 is out of bounds for a tensor of dimension 2"),
        (lambda: Tensor.ones(2, 3).flatten(0, 5), "flatten: axis 5 is out of bounds for a tensor of dimension 2"),
        (lambda: Tensor.ones(2, 3).flatten(7), "flatten: axis 7 is out of bounds for a tensor of dimension 2"),
        (lambda: Tensor.ones(2, 3).sum(2), "Sum: axis 2 is out of bounds for a tensor of dimension 2"),
        (lambda: tl.tensor(1.0).sum(1), "Sum: axis 1 is out of bounds for a tensor of dimension 0"),
        (lambda: Tensor.ones(2, 3).flatten(1, 0), "flatten: start_dim 1 comes after end_dim 0"),
    ],
    ids=["squeeze 0-d", "swapaxes", "flatten end", "flatten start", "sum", "sum 0-d", "flatten order"],
)
def test_axis_errors_are_one_line_naming_axis_and_dimension(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---- bad input gets a clear error -------------------------------------------------------------------------------


def test_grad_of_a_numpy_array_input_is_a_type_error():
    x = leaf([1.0])
    with pytest.raises(TypeError, match="tinygrad_lab.grad: input 0 is a ndarray, not a Tensor"):
        tl.grad((x * 2).sum(), [np.ones(1)])


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda p: optim.SGD([p], lr="0.1"), "lr"),
        (lambda p: optim.SGD([p], lr=0.1, momentum="0.9"), "momentum"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov="yes"), "nesterov"),
        (lambda p: optim.Adam([p], betas=(0.9, "0.99")), "beta2"),
        (lambda p: optim.Adam([p], eps=None), "eps"),
        (lambda p: optim.AdamW([p], weight_decay="0"), "weight_decay"),
        (lambda p: optim.RMSprop([p], alpha=[0.9]), "alpha"),
        (lambda p: optim.Adagrad([p], lr=True), "lr"),
    ],
    ids=[
        "sgd lr",
        "sgd momentum",
        "sgd nesterov",
        "adam beta2",
        "adam eps",
        "adamw wd",
        "rmsprop alpha",
        "adagrad lr bool",
    ],
)
def test_optimizer_hyperparameter_of_the_wrong_type_is_a_type_error_naming_it(make, name):
    with pytest.raises(TypeError) as info:
        make(leaf([1.0]))
    assert f": {name} " in str(info.value) and "must be" in str(info.value)


def test_optimizer_lr_set_to_a_string_later_is_a_type_error_and_keeps_the_old_value():
    opt = optim.SGD([leaf([1.0])], lr=0.1)
    with pytest.raises(TypeError, match="lr"):
        opt.lr = "0.5"
    assert opt.lr == 0.1


def test_load_state_dict_with_a_string_value_names_its_type():
    model = nn.Linear(2, 1)
    before = model.weight.data.copy()
    with pytest.raises(
        TypeError,
        match=r"'weight' has dtype <U3, which cannot be stored in the model's float64 "
        r"\(got a str\)",
    ):
        model.load_state_dict({"weight": "abc", "bias": np.zeros(1)})
    np.testing.assert_array_equal(model.weight.data, before)


# ---- semantics that follow torch ----------------------------------------------------------------------------


def test_second_backward_through_a_graph_that_saved_nothing_accumulates():
    x = leaf([1.0, 2.0])
    y = (x + 1).sum()
    y.backward()
    y.backward()
    tx = tleaf([1.0, 2.0])
    ty = (tx + 1).sum()
    ty.backward()
    ty.backward()
    assert_same(x.grad, tx.grad)


def test_second_backward_through_a_node_that_saved_values_still_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


@pytest.mark.parametrize("on_leaf", [True, False], ids=["leaf", "non-leaf"])
def test_hook_changing_the_gradient_dtype_raises(on_leaf):
    x = leaf([1.0, 2.0])
    h = x if on_leaf else x * 1.0
    h.register_hook(lambda g: g.astype(np.float32))
    with pytest.raises(RuntimeError, match="dtype float32, expected float64"):
        (h * 2).sum().backward()
    assert x.grad is None


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_cast_of_a_tensor_requiring_grad_leaves_the_graph(dtype):
    x = leaf([1.5, -2.0])
    y = x.astype(dtype)
    t = tleaf([1.5, -2.0]).to({np.int64: torch.int64, np.int32: torch.int32, np.bool_: torch.bool}[dtype])
    assert y.requires_grad is t.requires_grad is False
    np.testing.assert_array_equal(y.data, t.numpy())
    assert y.dtype == dtype


@pytest.mark.parametrize(
    "other",
    [
        lambda: np.array(2.5),
        lambda: Tensor(2.5),
        lambda: Tensor(2.5, requires_grad=True),
        lambda: np.array(2),
    ],
    ids=["0-d array", "0-d Tensor", "0-d Tensor requiring grad", "0-d int array"],
)
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "maximum", "where"])
def test_zero_dim_operand_does_not_promote_a_float32_tensor(other, op):
    fns = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "**": lambda a, b: a**b,
        "maximum": tl.maximum,
        "where": lambda a, b: tl.where(np.array([True, False]), a, b),
    }
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    for out in (fns[op](x, other()), fns[op](other(), x)):
        tx = torch.tensor([1.0, 2.0], dtype=torch.float32)
        o = other()
        to = torch.tensor(np.asarray(o.data if isinstance(o, Tensor) else o))
        expected = {"maximum": torch.maximum, "where": lambda a, b: torch.where(torch.tensor([True, False]), a, b)}.get(
            op, fns[op]
        )(tx, to)
        assert out.dtype == np.float32 == np.dtype(str(expected.dtype).removeprefix("torch."))
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_two_zero_dim_operands_promote_as_numpy_and_torch():
    a, b = Tensor(np.float32(1.0), dtype=np.float32), Tensor(2.0)
    assert (a * b).dtype == np.float64
    assert (torch.tensor(1.0) * torch.tensor(2.0, dtype=torch.float64)).dtype == torch.float64


def test_zero_dim_float64_operand_keeps_its_own_gradient_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    s = Tensor(3.0, requires_grad=True)
    (x * s).sum().backward()
    assert s.grad.dtype == np.float64 and x.grad.dtype == np.float32
    np.testing.assert_allclose(s.grad.data, 3.0)


@pytest.mark.parametrize("scalar", [np.float64(0.5), np.float32(0.5), np.int64(2)], ids=lambda s: type(s).__name__)
def test_compile_with_a_numpy_scalar_in_the_step_replays_as_eager(scalar):
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    x = Tensor(np.arange(3, dtype=np.float32), dtype=np.float32)

    def step(x):
        w.grad = None
        loss = ((x * w) * scalar).sum()
        loss.backward()
        return loss

    eager = step(x)
    compiled = tl.compile(step)
    outs = [compiled(x) for _ in range(5)]  # warm-up, trace, check, replays: the check must not raise
    for out in outs:
        assert out.dtype == eager.dtype == np.float32
        np.testing.assert_array_equal(out.data, eager.data)
    assert w.grad.dtype == np.float32
    assert not compiled._eager_only


def test_compile_check_compares_dtypes():
    """A replay whose output dtype differs from the eager step's is reported as a dtype mismatch."""
    from tinygrad_lab.capture import CaptureError

    w = Tensor(np.ones(3), requires_grad=True)

    def step(x):
        w.grad = None
        loss = (x * w).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step)
    x = Tensor(np.arange(3.0))
    compiled(x)
    compiled(x)  # traced
    entry = next(iter(compiled._replays.values()))
    entry.outputs = [o.astype(np.float32) for o in entry.outputs]  # as a replay that lost the dtype would
    with pytest.raises(CaptureError, match="has dtype float32 in the replay but float64 eagerly"):
        compiled(x)


# ---- found by tests/test_fuzz.py ------------------------------------------------------------------------------


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
