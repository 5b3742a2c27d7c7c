"""Edge cases against PyTorch: pow at base zero, size-0 axes, 0-d tensors, bad input with a one-line error, and
torch's semantics of backward, hooks and dtype promotion; each reproducer is a test (the fuzzer's finds are in
test_fuzz_findings.py).

Values come from torch (the tests' oracle) wherever torch defines them, so the expected numbers are
never copied from our own output.
"""

import warnings

import numpy as np
import pytest
import torch
from engine_helpers import leaf
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.testing import gradcheck, gradgradcheck

Tensor = tl.Tensor


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
        lambda t: t.max(axis=0) if isinstance(t, Tensor) else t.amax(0),
        lambda t: t.min(axis=-1) if isinstance(t, Tensor) else t.amin(-1),
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


@pytest.mark.parametrize(
    "index",
    [
        (1, slice(None), np.array([0, 3])),
        (slice(None), 1, np.array([0, 3])),
        (np.array([0, 1]), slice(None), 1),
        (np.array([1, 0]), 2, np.array([0, 3])),
        (1, Ellipsis, np.array([3, 3, 0])),
        (None, 1, slice(None), np.array([2, 1])),
        (1, np.array([True, False, True]), slice(1, 3)),
        (np.array([[0, 1], [1, 0]]), slice(None), 2),
        (0, [2, 0], [1, 1]),
        (np.array(1), slice(None), np.array([0, 3])),  # a 0-d integer array is an integer, as torch's 0-d tensor
        (1, slice(None), (0, 3)),  # a tuple inside the index is an index array
        (True, 1, slice(None), np.array([0, 3])),  # a boolean scalar: numpy's reading, which is torch's
    ],
    ids=repr,
)
def test_integers_beside_index_arrays_are_taken_first_as_torch(index):
    """numpy broadcasts x[1, :, [0, 3]]'s integer with the array and puts their axis first; torch takes the
    integer first (x[1][:, [0, 3]]). Values, shape and gradient (repeats accumulating) follow torch."""
    values = np.arange(24.0).reshape(2, 3, 4) / 7
    x, tx = leaf(values), tleaf(values)
    theirs = tx[tuple(torch.tensor(p) if isinstance(p, (np.ndarray, list)) else p for p in index)]
    ours = x[index]
    assert_same(ours, theirs)
    weights = np.random.default_rng(0).standard_normal(tuple(theirs.shape))
    (ours * Tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    assert gradgradcheck(lambda a: a[index] ** 2, [leaf(values)])


@pytest.mark.parametrize("axis", [1, (0, 1), (1, 2), -1, None])
def test_squeeze_leaves_an_axis_larger_than_one_as_torch(axis):
    values = np.arange(6.0).reshape(1, 3, 2, 1)
    x, tx = leaf(values), tleaf(values)
    ours, theirs = x.squeeze(axis), (tx.squeeze() if axis is None else tx.squeeze(axis))
    assert_same(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


class TwoOutputs(tl.Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2, a * 3


def test_the_differences_from_torch_the_readme_lists_hold():
    """README's "Where it differs from PyTorch": each item checked against torch, so the list stays true."""
    values = np.array([1.0, -2.0, 4.0])
    assert tl.tensor(values).var().item() == torch.tensor(values).var(correction=0).item()
    assert tl.tensor(values).var().item() != torch.tensor(values).var().item()
    assert tl.tensor([1, 2]).dtype == np.float64 and torch.tensor([1, 2]).dtype == torch.int64
    assert nn.Linear(2, 1).weight.dtype == np.float64 and torch.nn.Linear(2, 1).weight.dtype == torch.float32
    assert nn.Linear(2, 1)(tl.tensor(np.ones((1, 2), np.float32))).dtype == np.float64
    with pytest.raises(RuntimeError, match="dtype"):
        torch.nn.Linear(2, 1).double()(torch.ones(1, 2, dtype=torch.float32))
    np.testing.assert_array_equal(tl.tensor(values)[::-1].data, values[::-1])
    with pytest.raises(ValueError, match="step must be greater than zero"):
        torch.tensor(values)[::-1]
    a, b, ta, tb = leaf(values), leaf(values), tleaf(values), tleaf(values)
    a.register_hook(lambda g: g.mul_(10))
    ta.register_hook(lambda g: g.mul_(10))
    ((a + b) * values).sum().backward()
    ((ta + tb) * torch.tensor(values)).sum().backward()
    np.testing.assert_array_equal(b.grad.data, values)
    np.testing.assert_array_equal(tb.grad.numpy(), 10 * values)
    np.testing.assert_array_equal(leaf(values).numpy(), values)
    with pytest.raises(RuntimeError, match="requires grad"):
        tleaf(values).numpy()
    x, tx = leaf(values), tleaf(values)
    y, ty = x * 1, tx * 1
    z, tz = y.abs(), ty.abs()
    y.mul_(-1)
    ty.mul_(-1)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.sign(values))  # the values before the write
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tz.sum().backward()
    x, tx = leaf(values), tleaf(values)
    y, ty = x * 1, tx * 1
    y.exp_().mul_(3)
    ty.exp_().mul_(3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.exp(values), rtol=1e-12)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    assert hasattr(torch.nn.Module(), "half") and not hasattr(nn.Module(), "half")
    torch.nn.SiLU(inplace=True)
    with pytest.raises(ValueError, match="inplace=True is not supported"):
        nn.SiLU(inplace=True)
    with pytest.raises(TypeError):
        F.nll_loss(leaf(np.zeros((1, 3))), np.array([0]), None, None)  # torch's fourth is size_average
    ours_embedding, torch_embedding = nn.Embedding(4, 2, sparse=True), torch.nn.Embedding(4, 2, sparse=True)
    ours_embedding(np.array([1])).sum().backward()
    torch_embedding(torch.tensor([1])).sum().backward()
    assert ours_embedding.weight.grad.shape == (4, 2) and torch_embedding.weight.grad.is_sparse
    x32 = np.array([-3.75, -3.5, -3.25], dtype=np.float32)
    truth = torch.nn.functional.gelu(torch.tensor(x32, dtype=torch.float64)).numpy()
    ours_error = np.abs(F.gelu(tl.tensor(x32)).data - truth)
    torch_error = np.abs(torch.nn.functional.gelu(torch.tensor(x32)).numpy() - truth)
    assert np.all(ours_error < torch_error)  # erf in float64 for float32 input: closer than torch's float32 kernel
    not_yet = [
        lambda: nn.Conv2d(1, 1, 3, padding_mode="reflect"),
        lambda: nn.MaxPool2d(2, return_indices=True)(Tensor(np.ones((1, 4, 4)))),
        lambda: nn.Embedding(3, 2, max_norm=1.0),
        lambda: tl.tensor(values).norm(3),
        lambda: tl.jacobian(lambda a: a * 2, tl.tensor(values), vectorize=True),
        lambda: TwoOutputs.apply(leaf(values)),
    ]
    for call in not_yet:
        with pytest.raises((ValueError, TypeError, AttributeError)) as info:
            call()
        assert "\n" not in str(info.value)
