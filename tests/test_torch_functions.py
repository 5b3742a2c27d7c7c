"""torch's top-level functions on the tl namespace (tl.sum, tl.max, tl.matmul, tl.softmax, tl.from_numpy, ...):
a program written once with ``lib.f(x, ...)`` gives torch's values, dtypes and gradients with lib = tl; and a
ported evaluation loop runs unchanged."""

import numpy as np
import pytest
import torch
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab.testing import gradcheck

# integers from a small range: ties within every slice, and values on the clamp bounds
X = np.random.default_rng(0).integers(-3, 4, size=(3, 4, 5)).astype(np.float64)
Y = np.random.default_rng(1).normal(size=(5, 2))
WEIGHTS = np.random.default_rng(2).normal(size=120)  # a loss that tells every element apart


def _weighted(out):
    w = WEIGHTS[: out.numel()].reshape(tuple(out.shape))
    return (out * (torch.tensor(w) if isinstance(out, torch.Tensor) else w)).sum()


# each takes the library (tl or torch), a (3, 4, 5) leaf and a (5, 2) leaf, and is written as torch code
PROGRAMS = {
    "sum(x)": lambda lib, x, y: lib.sum(x),
    "sum(x, 1)": lambda lib, x, y: lib.sum(x, 1),
    "sum(x, dim=(0, 2), keepdim=True)": lambda lib, x, y: lib.sum(x, dim=(0, 2), keepdim=True),
    "mean(x, dim=0)": lambda lib, x, y: lib.mean(x, dim=0),
    "mean(x)": lambda lib, x, y: lib.mean(x),
    "var(x)": lambda lib, x, y: lib.var(x),
    "var(x, 1)": lambda lib, x, y: lib.var(x, 1),
    "var(x, 1, False)": lambda lib, x, y: lib.var(x, 1, False),
    "var(x, dim=2, correction=0, keepdim=True)": lambda lib, x, y: lib.var(x, dim=2, correction=0, keepdim=True),
    "std(x, dim=0)": lambda lib, x, y: lib.std(x, dim=0),
    "logsumexp(x, 1)": lambda lib, x, y: lib.logsumexp(x, 1),
    "max(x)": lambda lib, x, y: lib.max(x),
    "max(x, 1)[0]": lambda lib, x, y: lib.max(x, 1)[0],
    "max(x, dim=2, keepdim=True).values": lambda lib, x, y: lib.max(x, dim=2, keepdim=True).values,
    "max(x, other)": lambda lib, x, y: lib.max(x, x.flip(2) if lib is torch else x[:, :, ::-1]),
    "max(x, other=)": lambda lib, x, y: lib.max(x, other=x * 0.5),
    "min(x)": lambda lib, x, y: lib.min(x),
    "min(x, -1).values": lambda lib, x, y: lib.min(x, -1).values,
    "min(x, other)": lambda lib, x, y: lib.min(x, x * 0.5),
    "amax(x, 1)": lambda lib, x, y: lib.amax(x, 1),
    "amin(x, (0, 2), True)": lambda lib, x, y: lib.amin(x, (0, 2), True),
    "matmul(x, y)": lambda lib, x, y: lib.matmul(x, y),
    "matmul(x[0, 0], y)": lambda lib, x, y: lib.matmul(x[0, 0], y),
    "softmax(x, dim=1)": lambda lib, x, y: lib.softmax(x, dim=1),
    "softmax(x, -1)": lambda lib, x, y: lib.softmax(x, -1),
    "log_softmax(x, dim=0)": lambda lib, x, y: lib.log_softmax(x, dim=0),
    "clamp(x, 0, 1)": lambda lib, x, y: lib.clamp(x, 0, 1),
    "clamp(x, min=-1)": lambda lib, x, y: lib.clamp(x, min=-1),
    "clip(x, max=2)": lambda lib, x, y: lib.clip(x, max=2),
    "neg(x)": lambda lib, x, y: lib.neg(x),
    "add(x, 2, alpha=3)": lambda lib, x, y: lib.add(x, 2, alpha=3),
    "add(x, x, alpha=0.5)": lambda lib, x, y: lib.add(x, x * x, alpha=0.5),
    "sub(x, x*x, alpha=2)": lambda lib, x, y: lib.sub(x, x * x, alpha=2),
    "mul(x, x)": lambda lib, x, y: lib.mul(x, x),
    "div(x, 4)": lambda lib, x, y: lib.div(x, 4),
    "pow(x, 3)": lambda lib, x, y: lib.pow(x, 3),
    "flatten(x)": lambda lib, x, y: lib.flatten(x),
    "flatten(x, 1)": lambda lib, x, y: lib.flatten(x, 1),
    "reshape(x, (4, 15))": lambda lib, x, y: lib.reshape(x, (4, 15)),
    "transpose(x, 0, 2)": lambda lib, x, y: lib.transpose(x, 0, 2),
    "permute(x, (2, 0, 1))": lambda lib, x, y: lib.permute(x, (2, 0, 1)),
    "squeeze(x[:1])": lambda lib, x, y: lib.squeeze(x[:1]),
    "squeeze(x[:, :1], 1)": lambda lib, x, y: lib.squeeze(x[:, :1], 1),
    "unsqueeze(x, -1)": lambda lib, x, y: lib.unsqueeze(x, -1),
    "t(y)": lambda lib, x, y: lib.t(y),
    "index_select(x, 1, idx)": lambda lib, x, y: lib.index_select(x, 1, lib.tensor([2, 0, 2], dtype=lib.int64)),
    "masked_fill(x, x > 1, 0.0)": lambda lib, x, y: lib.masked_fill(x, x > 1, 0.0),
    "sort(x, 1, True)[0]": lambda lib, x, y: lib.sort(x, 1, True)[0],
    "topk(y, 1, dim=1).values": lambda lib, x, y: lib.topk(y, 1, dim=1).values,  # y: no ties to break otherwise
    "y[argsort(y[:, 0], descending=True)]": lambda lib, x, y: y[lib.argsort(y[:, 0], descending=True)],
    "cumsum(x, 2)": lambda lib, x, y: lib.cumsum(x, 2),
    "cumprod(x, 0)": lambda lib, x, y: lib.cumprod(x, 0),
    "flip(x, [0, 2])": lambda lib, x, y: lib.flip(x, [0, 2]),
    "roll(x, 1, 2)": lambda lib, x, y: lib.roll(x, 1, 2),
    "tril(y, -1)": lambda lib, x, y: lib.tril(y, -1),
    "triu(y)": lambda lib, x, y: lib.triu(y),
    "split(x, 2, 2)[1]": lambda lib, x, y: lib.split(x, 2, 2)[1],
    "chunk(x, 2, 1)[0]": lambda lib, x, y: lib.chunk(x, 2, 1)[0],
    "unbind(x, 1)[2]": lambda lib, x, y: lib.unbind(x, 1)[2],
    "repeat_interleave(y, 2, 0)": lambda lib, x, y: lib.repeat_interleave(y, 2, 0),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_values_and_gradients_match_torch(name):
    x, y, tx, ty = tl.tensor(X, requires_grad=True), tl.tensor(Y, requires_grad=True), tleaf(X), tleaf(Y)
    out, expected = PROGRAMS[name](tl, x, y), PROGRAMS[name](torch, tx, ty)
    assert_same(out, expected)
    _weighted(out).backward()
    _weighted(expected).backward()
    for ours, theirs in ((x, tx), (y, ty)):
        if theirs.grad is None:
            assert ours.grad is None
        else:
            assert_same(ours.grad, theirs.grad)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_are_boolean_tensors_outside_the_graph(op):
    x, tx = tl.tensor(X, requires_grad=True), tleaf(X)
    out, expected = getattr(tl, op)(x, 1.0), getattr(torch, op)(tx, 1.0)
    assert out.dtype == np.bool_ and not out.requires_grad and not expected.requires_grad
    np.testing.assert_array_equal(out.data, expected.numpy())


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"keepdim": True}])
def test_argmax_argmin_are_torchs_int64_indices(op, kwargs):
    out, expected = getattr(tl, op)(tl.tensor(X, requires_grad=True), **kwargs), getattr(torch, op)(tleaf(X), **kwargs)
    assert out.dtype == np.int64 and not out.requires_grad and out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(out.data, expected.numpy())


def test_max_min_with_a_dim_give_torchs_values_and_indices():
    x, tx = tl.tensor(X), torch.tensor(X)
    for op in ("max", "min"):
        got, expected = getattr(tl, op)(x, 1, True), getattr(torch, op)(tx, 1, True)
        assert_same(got.values, expected.values)
        assert got.indices.dtype == np.int64
        np.testing.assert_array_equal(got.indices.data, expected.indices.numpy())
    with pytest.raises(TypeError, match=r"^max: keepdim= goes with a dim"):
        tl.max(x, keepdim=True)


def test_gradients_of_the_functions_pass_gradcheck():
    a = np.random.default_rng(3).normal(size=(3, 4))
    b = np.random.default_rng(4).normal(size=(4, 2))
    fns = [
        lambda u, v: tl.matmul(u, v),
        lambda u, v: tl.max(u, 1).values * tl.sum(v),
        lambda u, v: tl.log_softmax(u, dim=0) + tl.mean(u * u, dim=0),
        lambda u, v: tl.sub(tl.t(v), u[:2], alpha=0.5) * tl.transpose(u, 0, 1)[:, :2].t(),
        lambda u, v: tl.var(u, 1) + tl.std(v, dim=0, keepdim=True).sum(),
    ]
    for fn in fns:
        assert gradcheck(fn, [tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)])


def test_numel_and_is_tensor_match_torch():
    assert tl.numel(tl.zeros(3, 4)) == torch.numel(torch.zeros(3, 4)) == 12
    assert tl.is_tensor(tl.zeros(2)) and not tl.is_tensor(np.zeros(2)) and not tl.is_tensor([1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_])
def test_from_numpy_shares_memory_and_dtype_as_torch(dtype):
    arr = np.arange(6).reshape(2, 3).astype(dtype)
    ours, theirs = tl.from_numpy(arr), torch.from_numpy(arr)
    assert ours.dtype == theirs.numpy().dtype == arr.dtype and not ours.requires_grad
    assert np.shares_memory(ours.data, arr) and np.shares_memory(theirs.numpy(), arr)
    arr[0, 0] = 1
    assert ours.data[0, 0] == theirs[0, 0].item() == 1


@pytest.mark.parametrize(
    "data",
    [[1, 2, 3], [[1.5, 2.0]], [True, False], 3, 2.5, np.arange(4), np.ones(3, dtype=np.float32)],
)
def test_as_tensor_keeps_the_datas_dtype_as_torch(data):
    ours, theirs = tl.as_tensor(data), torch.as_tensor(data)
    expected = theirs.numpy().dtype
    # torch's default float dtype is float32 for Python floats, ours float64 (README: differences from torch)
    python_floats = not isinstance(data, np.ndarray) and expected == np.float32
    assert ours.dtype == (np.float64 if python_floats else expected)
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    if isinstance(data, np.ndarray):
        assert np.shares_memory(ours.data, data)


def test_as_tensor_of_a_tensor_is_the_tensor_unless_the_dtype_differs():
    t, tt = tl.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    assert (tl.as_tensor(t) is t) == (torch.as_tensor(tt) is tt) is True
    cast, tcast = tl.as_tensor(t, dtype=tl.float32), torch.as_tensor(tt, dtype=torch.float32)
    assert cast.dtype == np.float32 and cast.requires_grad == tcast.requires_grad is True
    arr = np.arange(3.0)
    assert not np.shares_memory(tl.as_tensor(arr, dtype=tl.float32).data, arr)
    assert tl.as_tensor(arr, dtype=tl.long).dtype == np.int64


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: tl.sum(np.ones(3)), TypeError, r"^tl.sum: expected a Tensor, got ndarray"),
        (lambda: tl.max([1.0, 2.0]), TypeError, r"^tl.max: expected a Tensor, got list"),
        (lambda: tl.matmul(np.ones((2, 2)), tl.ones(2, 2)), TypeError, r"^tl.matmul: expected a Tensor, got ndarray"),
        (lambda: tl.from_numpy([1, 2]), TypeError, r"^tl.from_numpy: expected an np.ndarray, got list"),
        (lambda: tl.from_numpy(np.array(["a"])), TypeError, r"^tl.from_numpy: the data's dtype <U1 is not a number"),
        (lambda: tl.as_tensor(["a", "b"]), TypeError, r"^tl.as_tensor: the data's dtype <U1 is not a number"),
        (lambda: tl.as_tensor([1.0], device="cuda"), ValueError, r"^tl.as_tensor: device 'cuda' is not available"),
    ],
)
def test_bad_inputs_are_refused_naming_the_function(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_from_numpy_in_a_compiled_step_reads_each_calls_array():
    """Under tl.compile the array's values are copied when the step runs, so every replay sees its call's array."""
    w = tl.tensor(np.ones(3), requires_grad=True)

    def step(arr):
        w.grad = None
        loss = (w * tl.from_numpy(arr)).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step)
    rng = np.random.default_rng(5)
    for _ in range(4):
        arr = rng.normal(size=3)
        assert compiled(arr).item() == pytest.approx(arr.sum(), rel=1e-12)
        np.testing.assert_array_equal(w.grad.data, arr)
    assert compiled._replays


def _ported_eval(lib, X, y, W, b):
    """A torch evaluation loop's body, as written for torch."""
    logits = lib.matmul(X, W.t()).add(b)
    loss = -lib.log_softmax(logits, dim=1)[lib.arange(X.size(0)), y].mean()
    pred = logits.argmax(1, keepdim=True)
    correct = pred.eq(y.view_as(pred)).sum().item()
    accuracy = (lib.argmax(logits, dim=1) == y).float().mean()
    confident = lib.max(lib.softmax(logits, dim=1), 1)[0].double()
    return loss, correct, accuracy, confident


def test_a_ported_evaluation_loop_runs_and_matches_torch():
    rng = np.random.default_rng(6)
    X, y, W, b = rng.normal(size=(16, 5)), rng.integers(0, 3, size=16), rng.normal(size=(3, 5)), rng.normal(size=3)
    ours = _ported_eval(tl, tl.from_numpy(X), tl.from_numpy(y), tl.tensor(W, requires_grad=True), tl.tensor(b))
    tW = tleaf(W)
    theirs = _ported_eval(torch, torch.from_numpy(X), torch.from_numpy(y), tW, torch.from_numpy(b))
    assert_same(ours[0], theirs[0])
    assert ours[1] == theirs[1] and type(ours[1]) is int
    assert ours[2].dtype == np.float32 and ours[2].item() == theirs[2].item()
    assert_same(ours[3], theirs[3])
