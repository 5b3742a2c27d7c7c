"""torch's spellings on Tensor (dim=, keepdim=, correction=, unbiased=, max(dim=), view, numel, clamp, amax, amin):
the same program written for torch gives torch's values and gradients, ties and bounds included; both spellings
of one parameter are refused; and the spellings work in a step under tl.compile."""

import numpy as np
import pytest
import torch
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab.nn import functional as F

# integers from a small range: ties within every slice, and values on the clamp bounds
X = np.random.default_rng(0).integers(-3, 4, size=(3, 4, 5)).astype(np.float64)
WEIGHTS = np.random.default_rng(1).normal(size=120)  # a loss that tells every element apart


def _functional(lib):
    return F if lib is tl else torch.nn.functional


def _weighted(out):
    """A scalar whose gradient tells every element of ``out`` apart."""
    w = WEIGHTS[: out.numel()].reshape(tuple(out.shape))
    return (out * (torch.tensor(w) if isinstance(out, torch.Tensor) else w)).sum()


# each takes the library (tl or torch) and a (3, 4, 5) tensor, and is written as torch code
PROGRAMS = {
    "sum(dim=1)": lambda lib, x: x.sum(dim=1),
    "sum(dim=(0, 2), keepdim=True)": lambda lib, x: x.sum(dim=(0, 2), keepdim=True),
    "sum(1, keepdim=True)": lambda lib, x: x.sum(1, keepdim=True),
    "mean(dim=-1)": lambda lib, x: x.mean(dim=-1),
    "mean(dim=[0, 1], keepdim=True)": lambda lib, x: x.mean(dim=[0, 1], keepdim=True),
    "logsumexp(dim=1)": lambda lib, x: x.logsumexp(dim=1),
    "logsumexp(dim=0, keepdim=True)": lambda lib, x: x.logsumexp(dim=0, keepdim=True),
    "norm(dim=1)": lambda lib, x: x.norm(dim=1),
    "norm(p=1, dim=2, keepdim=True)": lambda lib, x: x.norm(p=1, dim=2, keepdim=True),
    "softmax(dim=1)": lambda lib, x: x.softmax(dim=1),
    "log_softmax(dim=0)": lambda lib, x: x.log_softmax(dim=0),
    "F.softmax(x, dim=2)": lambda lib, x: _functional(lib).softmax(x, dim=2),
    "F.log_softmax(x, dim=1)": lambda lib, x: _functional(lib).log_softmax(x, dim=1),
    "cat(dim=1)": lambda lib, x: lib.cat([x, x * 2], dim=1),
    "stack(dim=2)": lambda lib, x: lib.stack([x, x * 2], dim=2),
    "var(dim=1)": lambda lib, x: x.var(dim=1),
    "var(dim=None)": lambda lib, x: x.var(dim=None),
    "var(dim=(0, 2), keepdim=True)": lambda lib, x: x.var(dim=(0, 2), keepdim=True),
    "var(dim=1, unbiased=False)": lambda lib, x: x.var(dim=1, unbiased=False),
    "var(dim=2, correction=2)": lambda lib, x: x.var(dim=2, correction=2),
    "var(correction=0)": lambda lib, x: x.var(correction=0),
    "var(unbiased=True)": lambda lib, x: x.var(unbiased=True),
    "var(keepdim=True)": lambda lib, x: x.var(keepdim=True),
    "std(dim=0)": lambda lib, x: x.std(dim=0),
    "std(dim=1, correction=0, keepdim=True)": lambda lib, x: x.std(dim=1, correction=0, keepdim=True),
    "amax(dim=1)": lambda lib, x: x.amax(dim=1),
    "amax(dim=(0, 2), keepdim=True)": lambda lib, x: x.amax(dim=(0, 2), keepdim=True),
    "amax()": lambda lib, x: x.amax(),
    "amin(dim=-1)": lambda lib, x: x.amin(dim=-1),
    "amin(1, True)": lambda lib, x: x.amin(1, True),
    "max(dim=1).values": lambda lib, x: x.max(dim=1).values,
    "max(2, keepdim=True)[0]": lambda lib, x: x.max(2, keepdim=True)[0],
    "min(dim=0).values": lambda lib, x: x.min(dim=0).values,
    "min(dim=-1, keepdim=True)[0]": lambda lib, x: x.min(dim=-1, keepdim=True)[0],
    "clamp(min=0)": lambda lib, x: x.clamp(min=0),
    "clamp(max=1)": lambda lib, x: x.clamp(max=1),
    "clamp(-1, 2)": lambda lib, x: x.clamp(-1, 2),
    "clamp(min=2, max=-1)": lambda lib, x: x.clamp(min=2, max=-1),
    "view(-1)": lambda lib, x: x.view(-1),
    "view(4, 15)": lambda lib, x: x.view(4, 15),
    "view((3, 2, 10))": lambda lib, x: x.view((3, 2, 10)),
    "permute then view splitting a dim": lambda lib, x: x.permute(2, 1, 0).view(5, 2, 2, 3),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_values_and_gradients_match_torch(name):
    ours, theirs = tl.tensor(X, requires_grad=True), tleaf(X)
    out, expected = PROGRAMS[name](tl, ours), PROGRAMS[name](torch, theirs)
    assert_same(out, expected)
    _weighted(out).backward()
    _weighted(expected).backward()
    assert_same(ours.grad, theirs.grad)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_dim_indices_match_torch(name, dim, keepdim):
    ours = getattr(tl.tensor(X), name)(dim=dim, keepdim=keepdim)
    expected = getattr(torch.tensor(X), name)(dim=dim, keepdim=keepdim)
    assert_same(ours.values, expected.values)
    assert ours.indices.dtype == np.int64
    np.testing.assert_array_equal(ours.indices.data, expected.indices.numpy())  # ties: the first, as torch's


def test_max_dim_of_nan_and_of_0d_match_torch():
    a = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, 0.0]])
    for data, dim in ((a, 1), (np.array(4.0), 0), (np.array(4.0), -1)):
        ours, theirs = tl.tensor(data, requires_grad=True), tleaf(data)
        got, expected = ours.max(dim=dim), theirs.max(dim=dim)
        assert_same(got.values, expected.values)
        np.testing.assert_array_equal(got.indices.data, expected.indices.numpy())
        got.values.sum().backward()
        expected.values.sum().backward()
        assert_same(ours.grad, theirs.grad)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("args", [(1,), (-1, True), (0, False)])
def test_max_min_positional_dim_is_torchs(op, args):
    """A ported ``output.max(1)[1]`` must be the indices, not the second value: positional dims are torch's."""
    ours, theirs = tl.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    got, expected = getattr(ours, op)(*args), getattr(theirs, op)(*args)
    assert_same(got[0], expected[0])
    np.testing.assert_array_equal(got[1].data, expected[1].numpy())
    got[0].sum().backward()
    expected[0].sum().backward()
    assert_same(ours.grad, theirs.grad)


def test_max_min_numpy_keywords_give_the_values_only():
    t = tl.tensor(X)
    np.testing.assert_array_equal(t.max(axis=1).data, X.max(axis=1))
    np.testing.assert_array_equal(t.min(axis=(0, 2), keepdims=True).data, X.min(axis=(0, 2), keepdims=True))


def test_var_std_numpy_spellings_keep_ddof_0():
    t = tl.tensor(X)
    np.testing.assert_allclose(t.var(1).data, X.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(t.std(axis=1, ddof=0).data, X.std(axis=1), rtol=1e-12)
    np.testing.assert_allclose(t.var(dim=1, ddof=0).data, X.var(axis=1), rtol=1e-12)  # ddof given: as given
    np.testing.assert_allclose(t.var().data, X.var(), rtol=1e-12)


def test_clamp_gradient_is_clips_and_clamp_s():
    grads = []
    for how in ("clamp", "clip", "clamp_"):
        x = tl.tensor(X, requires_grad=True)
        if how == "clamp":
            out = x.clamp(min=-1, max=2)
        elif how == "clip":
            out = x.clip(-1, 2)
        else:
            out = (x * 1).clamp_(min=-1, max=2)
        _weighted(out).backward()
        grads.append(x.grad.data)
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], grads[2])
    assert (grads[0][X == -1] != 0).all() and (grads[0][X == 2] != 0).all()  # the bounds are inside, as torch's


def test_argmax_argmin_dim_match_torch():
    for name in ("argmax", "argmin"):
        for dim, keepdim in ((1, False), (-1, True), (0, None)):
            kw = {} if keepdim is None else {"keepdim": keepdim}
            ours = getattr(tl.tensor(X), name)(dim=dim, **kw)
            np.testing.assert_array_equal(ours, getattr(torch.tensor(X), name)(dim=dim, **kw).numpy())


def test_numel():
    for shape in ((3, 4, 5), (), (2, 0)):
        n = tl.zeros(shape).numel()
        assert n == torch.zeros(shape).numel() and type(n) is int


def test_view_shares_memory():
    x = tl.tensor(X.copy())
    v = x.view(-1)
    v[0] = 100.0
    assert x.data[0, 0, 0] == 100.0


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda x: x.transpose(0, 2), (-1,)),
        (lambda x: x.permute(1, 0, 2), (12, 5)),
        (lambda x: x[:, 1:3], (6, 5)),
        (lambda x: x[:, :, 1:4], (12, 3)),
        (lambda x: x.transpose(1, 2), (3, 5, 2, 2)),
    ],
)
def test_view_refuses_where_torch_does(make, shape):
    """torch's view refuses a shape that needs a copy, and so does ours; where torch's succeeds, ours does too."""
    try:
        expected = make(torch.tensor(X)).view(shape)
    except RuntimeError:
        expected = None
    ours = make(tl.tensor(X))
    if expected is None:
        with pytest.raises(RuntimeError, match=r"view: shape .* needs a copy.*use reshape"):
            ours.view(shape)
    else:
        assert_same(ours.view(shape), expected)


def test_amax_shares_ties_evenly_and_max_dim_gives_one():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    ours = tl.tensor(a, requires_grad=True)
    ours.amax(dim=1).sum().backward()
    np.testing.assert_allclose(ours.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    ours.grad = None
    ours.max(dim=1).values.sum().backward()
    np.testing.assert_array_equal(ours.grad.data, [[0, 1, 0], [1, 0, 0]])


x34 = tl.tensor(np.ones((3, 4)))


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: x34.sum(axis=1, dim=1), "axis=1 .*dim=1"),
        (lambda: x34.sum(keepdims=True, keepdim=True), "keepdims=True .*keepdim=True"),
        (lambda: x34.mean(axis=0, dim=1), "axis=0 .*dim=1"),
        (lambda: x34.max(axis=0, dim=1), "axis=0 .*dim=1"),
        (lambda: x34.min(keepdims=True, dim=1, keepdim=False), "keepdims=True .*keepdim=False"),
        (lambda: x34.var(axis=0, dim=1), "axis=0 .*dim=1"),
        (lambda: x34.std(keepdims=True, keepdim=True), "keepdims=True .*keepdim=True"),
        (lambda: x34.var(ddof=1, correction=1), "ddof=1 .*correction=1"),
        (lambda: x34.std(ddof=0, unbiased=True), "ddof=0 .*unbiased=True"),
        (lambda: x34.var(correction=1, unbiased=False), "correction=1 and unbiased=False"),
        (lambda: x34.norm(2, 1, dim=0), "axis=1 .*dim=0"),
        (lambda: x34.logsumexp(axis=1, dim=1), "axis=1 .*dim=1"),
        (lambda: x34.argmax(axis=1, dim=0), "axis=1 .*dim=0"),
        (lambda: x34.argmin(keepdims=True, keepdim=True), "keepdims=True .*keepdim=True"),
        (lambda: x34.softmax(0, dim=1), "axis=0 .*dim=1"),
        (lambda: x34.log_softmax(axis=0, dim=0), "axis=0 .*dim=0"),
        (lambda: F.softmax(x34, 0, dim=1), "axis=0 .*dim=1"),
        (lambda: F.log_softmax(x34, axis=1, dim=0), "axis=1 .*dim=0"),
        (lambda: tl.cat([x34, x34], axis=1, dim=0), "axis=1 .*dim=0"),
        (lambda: tl.stack([x34, x34], axis=1, dim=1), "axis=1 .*dim=1"),
    ],
)
def test_both_spellings_are_refused(call, names):
    with pytest.raises(TypeError, match=names):
        call()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: x34.max(dim=(0, 1)), ValueError, r"max: dim must be one axis .*\(3, 4\).*amax"),
        (lambda: x34.min(dim=2), ValueError, r"min: dim must be one axis .*\(3, 4\), got 2"),
        (lambda: x34.max(keepdim=True), TypeError, "max: keepdim= goes with a dim"),
        (lambda: tl.zeros(2, 0).max(dim=1), ValueError, r"max: dim 1 of the tensor of shape \(2, 0\) has size 0"),
        (lambda: x34.clamp(), TypeError, r"clamp: at least one of min and max .*\(3, 4\)"),
        (lambda: x34.view(np.float32), TypeError, "view: takes a shape of ints"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("native", [False, True])
def test_torch_spellings_in_a_compiled_step(native):
    """A step written with torch's spellings replays with torch's values and gradients, call after call."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 5))

    def loss_of(x, w):
        y = x @ w
        return (
            y.max(dim=1).values.sum()
            + y.var(dim=0, correction=0.5).sum()
            + y.view(-1).clamp(min=0).sum()
            + y.amax(dim=1).sum()
            + y.softmax(dim=1).mean(dim=0).sum()
        )

    w = tl.tensor(w0, requires_grad=True)

    @tl.compile(native=native)
    def step(x):
        w.grad = None
        loss = loss_of(x, w)
        loss.backward()
        return loss

    for _ in range(5):
        x = rng.normal(size=(3, 4))
        got = step(x)
        theirs = tleaf(w0)
        expected = loss_of(torch.tensor(x), theirs)
        expected.backward()
        np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-12)
        np.testing.assert_allclose(w.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert not step.backend.startswith("eager")  # replayed, not refused
