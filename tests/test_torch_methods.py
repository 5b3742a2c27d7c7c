"""torch's Tensor methods a ported loop calls (conversions, queries, the operators by name, view_as and new_zeros
and kin) and argmax/argmin as int64 tensors: values, dtypes, identities and gradients against torch's; and the
numpy code that reads ``t.size`` or an argmax still running."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab import nn
from tinygrad_lab.nn import functional as F
from tinygrad_lab.testing import gradcheck

X = np.random.default_rng(0).normal(size=(3, 4)) * 3
W = np.random.default_rng(1).normal(size=(3, 4))  # a loss that tells every element apart


def np_dtype(torch_dtype):
    return torch.empty(0, dtype=torch_dtype).numpy().dtype


def assert_like_torch(ours, theirs):
    """Same shape, dtype, values and requires_grad as torch's result."""
    assert ours.dtype == np_dtype(theirs.dtype), (ours.dtype, theirs.dtype)
    assert ours.requires_grad == theirs.requires_grad
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())


def backward_like_torch(ours, theirs, x, tx):
    """Both results weighted by the same numbers, summed and differentiated: the leaves' gradients agree."""
    w = np.random.default_rng(2).normal(size=ours.shape)
    (ours * w.astype(ours.dtype)).sum().backward()
    (theirs * torch.tensor(w, dtype=theirs.dtype)).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-6)


# ---- conversions -----------------------------------------------------------------------------------------------

# each takes the library (tl or torch), a float64 leaf and a float32 tensor, written as torch code
CONVERSIONS = {
    "float()": lambda lib, x, o: x.float(),
    "double()": lambda lib, x, o: x.double(),
    "half()": lambda lib, x, o: x.half(),
    "long()": lambda lib, x, o: x.long(),
    "int()": lambda lib, x, o: x.int(),
    "bool()": lambda lib, x, o: x.bool(),
    "to(float32)": lambda lib, x, o: x.to(lib.float32),
    "to(dtype=lib.long)": lambda lib, x, o: x.to(dtype=lib.long),
    "to(lib.float)": lambda lib, x, o: x.to(lib.float),
    "to(lib.int)": lambda lib, x, o: x.to(lib.int),
    "to(lib.bool)": lambda lib, x, o: x.to(lib.bool),
    "to(lib.uint8)": lambda lib, x, o: x.to(lib.uint8),
    "to('cpu')": lambda lib, x, o: x.to("cpu"),
    "to('cpu', float32)": lambda lib, x, o: x.to("cpu", lib.float32),
    "to(device='cpu', dtype=half)": lambda lib, x, o: x.to(device="cpu", dtype=lib.half),
    "to(other)": lambda lib, x, o: x.to(o),
    "to(float64, copy=True)": lambda lib, x, o: x.to(lib.float64, copy=True),
    "type(float32)": lambda lib, x, o: x.type(lib.float32),
    "type('torch.LongTensor')": lambda lib, x, o: x.type("torch.LongTensor"),
    "type(double)": lambda lib, x, o: x.type(lib.double),
    "type_as(other)": lambda lib, x, o: x.type_as(o),
    "float().double()": lambda lib, x, o: x.float().double(),
    "long().float()": lambda lib, x, o: x.long().float(),
    "cpu()": lambda lib, x, o: x.cpu(),
}


@pytest.mark.parametrize("name", CONVERSIONS)
def test_conversions_match_torch(name):
    """dtype, values and requires_grad as torch's (float casts in the graph, integer and bool ones outside); the
    tensor itself where torch gives it back; the gradient through float casts as torch's."""
    x, tx = tl.tensor(X, requires_grad=True), tleaf(X)
    out = CONVERSIONS[name](tl, x, tl.tensor(X, dtype=np.float32))
    expected = CONVERSIONS[name](torch, tx, torch.tensor(X, dtype=torch.float32))
    assert_like_torch(out, expected)
    assert (out is x) == (expected is tx)
    if expected.requires_grad:
        backward_like_torch(out, expected, x, tx)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("method", ["float", "double", "long", "int", "bool", "half"])
def test_conversions_of_integer_and_bool_tensors_match_torch(dtype, method):
    values = np.array([[0, 1, 5], [7, 0, 2]])
    ours = tl.tensor(values, dtype=np_dtype(dtype))
    assert_like_torch(getattr(ours, method)(), getattr(torch.tensor(values, dtype=dtype), method)())


def test_type_names_are_torchs():
    for dtype in (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.int16, torch.int8):
        assert tl.zeros(2, dtype=np_dtype(dtype)).type() == torch.zeros(2, dtype=dtype).type()
    for dtype in (torch.uint8, torch.uint16, torch.uint32, torch.uint64, torch.bool):
        assert tl.zeros(2, dtype=np_dtype(dtype)).type() == torch.zeros(2, dtype=dtype).type()


def test_to_copy_gives_a_new_tensor_in_the_graph():
    x = tl.tensor(X, requires_grad=True)
    y = x.to(np.float64, copy=True)
    assert y is not x and not np.shares_memory(y.data, x.data) and y.grad_fn is not None
    assert gradcheck(lambda a: a.to(copy=True) * a.type_as(a), [tl.tensor(X, requires_grad=True)])


def test_dtype_names_are_numpys_types():
    assert tl.long is np.int64 and tl.float is np.float32 and tl.double is np.float64 and tl.half is np.float16
    assert tl.int is np.int32 and tl.bool is np.bool_ and tl.short is np.int16
    assert np_dtype(torch.float) == tl.float and np_dtype(torch.int) == tl.int and np_dtype(torch.long) == tl.long
    namespace: dict = {}
    exec("from tinygrad_lab import *", namespace)  # a star import keeps Python's float, int and bool
    assert "float" not in namespace and "int" not in namespace and "bool" not in namespace and "long" in namespace


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: x.to("cuda"), ValueError, r"^to: device 'cuda' is not available: .*'cpu'"),
        (lambda x: x.to("cuda:0", np.float32), ValueError, r"^to: device 'cuda:0'"),
        (lambda x: x.new_zeros(2, device="mps"), ValueError, r"^new_zeros: device 'mps'"),
        (lambda x: x.to(object), TypeError, r"^to: dtype object is not a number type"),
        (lambda x: x.to(np.str_), TypeError, r"^to: dtype <U0 is not a number type"),
        (lambda x: x.to(3.5), TypeError, r"^to: 3.5 is not a dtype"),
        (lambda x: x.to(np.float32, np.float64), TypeError, r"^to: got two dtypes"),
        (lambda x: x.to("cpu", "cpu"), TypeError, r"^to: got two devices"),
        (lambda x: x.to("cpu", np.float32, np.float32), TypeError, r"^to: takes a device and a dtype"),
        (lambda x: x.type("torch.cuda.FloatTensor"), TypeError, r"^type: 'torch.cuda.FloatTensor' is not a dtype"),
        (lambda x: x.type_as([1.0]), TypeError, r"^type_as: expected a Tensor, got list"),
        (lambda x: x.astype(np.longdouble).type(), TypeError, r"^type: dtype float128 has no torch type name"),
        (lambda x: x.new_zeros(2, dtype="no"), TypeError, r"^new_zeros: 'no' is not a dtype"),
    ],
)
def test_bad_conversions_are_refused_naming_the_method(call, error, message):
    with pytest.raises(error, match=message):
        call(tl.tensor(X))


# ---- queries ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (3, 4), (2, 0, 5)])
def test_dim_and_size_match_torch(shape):
    ours, theirs = tl.zeros(shape), torch.zeros(shape)
    assert ours.dim() == theirs.dim()
    assert ours.size() == theirs.size() and type(ours.size()) is tuple
    for d in range(-len(shape), len(shape)):
        assert ours.size(d) == theirs.size(d) == ours.size(dim=d)
    for d in (len(shape), -len(shape) - 1):
        with pytest.raises(IndexError):
            theirs.size(d)
        with pytest.raises(IndexError, match=rf"^size: dim {d} is out of range for a tensor of shape"):
            ours.size(d)
    assert ours.size == theirs.numel() == np.zeros(shape).size  # numpy's attribute stays the element count


def test_size_stays_numpys_int_for_numpy_code():
    t = tl.tensor(X)
    n = t.size
    assert isinstance(n, int) and n == 12 and n * 2 == 24 and n + 1 == 13 and 24 // n == 2 and -n == -12
    assert type(n * 2) is int and type(int(n)) is int
    assert np.size(t) == 12 and np.zeros(n).shape == (12,) and list(range(n)) == list(range(12))
    assert f"{n}" == str(n) == repr(n) == "12" and f"{n:>4}" == "  12" and "%d" % n == "12"  # noqa: UP031
    assert json.dumps({"n": n}) == '{"n": 12}'
    assert pickle.loads(pickle.dumps(n)) == 12 and type(pickle.loads(pickle.dumps(n))) is int
    assert type(copy.deepcopy(n)) is int and hash(n) == hash(12) and {n: 1}[12] == 1
    with pytest.raises(IndexError, match=r"^size: dim 0 is out of range for a tensor of shape \(\) \(no dim"):
        tl.tensor(1.0).size(0)
    with pytest.raises(IndexError, match=r"^size: dim 1.5 is out of range"):
        t.size(1.5)


def test_element_size_and_nbytes_match_torch():
    for dtype in (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.uint8, torch.bool):
        ours, theirs = tl.zeros(3, 4, dtype=np_dtype(dtype)), torch.zeros(3, 4, dtype=dtype)
        assert ours.element_size() == theirs.element_size() and ours.nbytes == theirs.nbytes


@pytest.mark.parametrize("shape", [(), (4,), (3, 4), (1, 4), (4, 1)])
def test_t_matches_torch(shape):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    x, tx = tl.tensor(a, requires_grad=True), tleaf(a)
    out, expected = x.t(), tx.t()
    assert_like_torch(out, expected)
    backward_like_torch(out, expected, x, tx)
    assert gradcheck(lambda v: v.t() * 2, [tl.tensor(a, requires_grad=True)])


def test_t_of_more_than_two_dims_is_refused():
    with pytest.raises(RuntimeError):
        torch.zeros(2, 3, 4).t()
    with pytest.raises(ValueError, match=r"^t: expects a tensor of at most 2 dims, got shape \(2, 3, 4\)"):
        tl.zeros(2, 3, 4).t()


# each makes a view (or not) of a (3, 4, 5) tensor, written as torch code
LAYOUTS = {
    "fresh": lambda x: x,
    "t-like transpose": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(1, 0, 2),
    "row": lambda x: x[1],
    "column": lambda x: x[:, 1],
    "strided": lambda x: x[::2],
    "narrowed last axis": lambda x: x[:, :, 1:3],
    "leading slice": lambda x: x[1:],
    "expand": lambda x: x[:, :1].expand(3, 4, 5),
    "size-1 axis moved": lambda x: x[:, :1].permute(1, 0, 2),
    "elementwise on a transposed": lambda x: x.transpose(0, 2) * 2,
    "contiguous() of a permuted": lambda x: x.permute(2, 0, 1).contiguous(),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_is_contiguous_and_contiguous_match_torch(name):
    a = np.random.default_rng(3).normal(size=(3, 4, 5))
    x, tx = tl.tensor(a, requires_grad=True), tleaf(a)
    view, tview = LAYOUTS[name](x), LAYOUTS[name](tx)
    assert view.is_contiguous() == tview.is_contiguous()
    out, expected = view.contiguous(), tview.contiguous()
    assert out.is_contiguous() and (out is view) == (expected is tview)
    assert_like_torch(out, expected)
    backward_like_torch(out, expected, x, tx)


def test_contiguous_copy_is_differentiable():
    a = np.random.default_rng(4).normal(size=(2, 3))
    assert gradcheck(lambda v: v.t().contiguous() * v.t(), [tl.tensor(a, requires_grad=True)])


def test_one_element_integer_tensors_are_indices_as_in_torch():
    names = ["a", "b", "c", "d"]
    for values in (np.array(2), np.array([2]), np.array([[2]])):
        assert names[tl.tensor(values, dtype=np.int64)] == names[torch.tensor(values)] == "c"
    assert list(range(tl.tensor(3, dtype=np.int32))) == [0, 1, 2]
    assert np.arange(10.0)[tl.tensor(4, dtype=np.int64)] == 4.0
    np.testing.assert_array_equal(np.arange(10.0)[tl.tensor([1, 5], dtype=np.int64)], [1.0, 5.0])
    for bad in (torch.tensor(2.0), torch.tensor([1, 2])):
        with pytest.raises(TypeError):
            names[bad]
    with pytest.raises(TypeError, match=r"^only an integer tensor of one element .*dtype float64 shape \(\)"):
        names[tl.tensor(2.0)]
    with pytest.raises(TypeError, match=r"^only an integer tensor of one element .*dtype int64 shape \(2,\)"):
        names[tl.tensor([1, 2], dtype=np.int64)]


# ---- the operators by name ----------------------------------------------------------------------------------------

# each takes a (3, 4) leaf and a (4,) leaf, written as torch code
ARITHMETIC = {
    "add": lambda x, y: x.add(y),
    "add(alpha=2)": lambda x, y: x.add(y, alpha=2),
    "add(scalar, alpha=-0.5)": lambda x, y: x.add(3.0, alpha=-0.5),
    "sub": lambda x, y: x.sub(y),
    "sub(alpha=3)": lambda x, y: x.sub(y, alpha=3),
    "mul": lambda x, y: x.mul(y),
    "mul(2).add(1)": lambda x, y: x.mul(2).add(1),
    "div": lambda x, y: x.div(y),
    "sub(1).div(2)": lambda x, y: x.sub(1).div(2),
    "pow(2)": lambda x, y: x.pow(2),
    "pow(tensor)": lambda x, y: x.abs().pow(y),
    "view_as": lambda x, y: x.reshape(12).view_as(x),
    "reshape_as": lambda x, y: x.t().reshape_as(x.reshape(2, 6)),
    "expand_as": lambda x, y: y.expand_as(x),
}


@pytest.mark.parametrize("name", ARITHMETIC)
def test_operator_methods_match_torch(name):
    b = np.random.default_rng(5).normal(size=4)
    x, y, tx, ty = tl.tensor(X, requires_grad=True), tl.tensor(b, requires_grad=True), tleaf(X), tleaf(b)
    out, expected = ARITHMETIC[name](x, y), ARITHMETIC[name](tx, ty)
    assert_same(out, expected)
    w = np.random.default_rng(6).normal(size=out.shape)
    (out * w).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for ours, theirs in ((x, tx), (y, ty)):
        if theirs.grad is None:
            assert ours.grad is None
        else:
            np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_shaped_like_another_tensor_is_differentiable():
    b = np.random.default_rng(11).normal(size=(3, 1))
    shaped = (tl.zeros(12), tl.zeros(4, 3), tl.zeros(2, 3, 4))
    fn = lambda u, v: u.view_as(shaped[0]).reshape_as(shaped[1]) * v.expand_as(shaped[2]).sum(0).t()
    assert gradcheck(fn, [tl.tensor(X, requires_grad=True), tl.tensor(b, requires_grad=True)])


def test_add_and_sub_with_alpha_are_differentiable():
    b = np.random.default_rng(7).normal(size=4)
    assert gradcheck(
        lambda u, v: u.add(v, alpha=2.5).sub(u * v, alpha=-1.5),
        [tl.tensor(X, requires_grad=True), tl.tensor(b, requires_grad=True)],
    )


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparison_methods_are_boolean_tensors_outside_the_graph_as_torch(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    x, tx = tl.tensor(a, requires_grad=True), tleaf(a)
    for other, tother in ((2.0, 2.0), (tl.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0]))):
        assert_like_torch(getattr(x, op)(other), getattr(tx, op)(tother))


def test_view_as_refuses_a_shape_that_needs_a_copy():
    with pytest.raises(RuntimeError):
        torch.tensor(X).t().view_as(torch.zeros(12))
    with pytest.raises(RuntimeError, match=r"^view: shape \(12,\) .* needs a copy"):
        tl.tensor(X).t().view_as(tl.zeros(12))
    with pytest.raises(TypeError, match=r"^expand_as: expected a Tensor, got tuple"):
        tl.tensor(X).expand_as((3, 4))


# each takes the library (tl or torch) and a tensor, written as torch code
NEW = {
    "new_zeros(3)": lambda lib, x: x.new_zeros(3),
    "new_zeros(2, 3)": lambda lib, x: x.new_zeros(2, 3),
    "new_zeros((2, 3))": lambda lib, x: x.new_zeros((2, 3)),
    "new_ones([2])": lambda lib, x: x.new_ones([2]),
    "new_full((2, 2), 7)": lambda lib, x: x.new_full((2, 2), 7),
    "new_full((3,), 1.75)": lambda lib, x: x.new_full((3,), 1.75),
    "new_tensor([1.7, -2.5])": lambda lib, x: x.new_tensor([1.7, -2.5]),
    "new_tensor([[1, 2]])": lambda lib, x: x.new_tensor([[1, 2]]),
    "new_tensor(x)": lambda lib, x: x.new_tensor(x),
    "new_zeros(2, dtype=int64)": lambda lib, x: x.new_zeros(2, dtype=lib.int64),
    "new_ones(2, dtype=float32, requires_grad=True)": lambda lib, x: x.new_ones(
        2, dtype=lib.float32, requires_grad=True
    ),
    "new_full([2], 3, dtype=bool)": lambda lib, x: x.new_full([2], 3, dtype=lib.bool),
    "new_tensor([2.5], dtype=float64, device='cpu')": lambda lib, x: x.new_tensor(
        [2.5], dtype=lib.float64, device="cpu"
    ),
}


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")  # torch's advice on new_tensor(tensor)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.int64, torch.int32, torch.bool])
@pytest.mark.parametrize("name", NEW)
def test_new_tensors_take_the_dtype_of_self_as_torch(name, dtype):
    a = np.array([[1.5, -2.0], [0.0, 3.0]])
    theirs = torch.tensor(a).to(dtype).requires_grad_(dtype.is_floating_point)
    ours = tl.tensor(theirs.detach().numpy(), dtype=np_dtype(dtype), requires_grad=dtype.is_floating_point)
    out, expected = NEW[name](tl, ours), NEW[name](torch, theirs)
    assert_like_torch(out, expected)
    assert out.grad_fn is None and expected.grad_fn is None
    assert not np.shares_memory(out.data, ours.data)


# ---- argmax and argmin -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}, {"keepdim": True}])
def test_argmax_argmin_are_int64_tensors_outside_the_graph_as_torch(op, kwargs):
    a = np.random.default_rng(8).integers(0, 3, size=(3, 4, 2)).astype(np.float64)  # ties: the first, as torch
    x, tx = tl.tensor(a, requires_grad=True), tleaf(a)
    assert_like_torch(getattr(x, op)(**kwargs), getattr(tx, op)(**kwargs))


def test_argmax_still_serves_numpy_code():
    rng = np.random.default_rng(9)
    logits, labels = rng.normal(size=(20, 3)), rng.integers(0, 3, size=20)
    pred = tl.tensor(logits).argmax(axis=1)
    assert np.mean(pred == labels) == np.mean(logits.argmax(axis=1) == labels)
    assert (pred == labels).float().mean().item() == pytest.approx(np.mean(logits.argmax(axis=1) == labels))
    np.testing.assert_array_equal(np.eye(3)[pred], np.eye(3)[logits.argmax(axis=1)])  # an ndarray indexed by it
    x = tl.tensor(logits, requires_grad=True)
    picked = x[np.arange(20), x.argmax(1)]  # a Tensor indexed by it: the gradient goes to the picked elements
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.eye(3)[logits.argmax(axis=1)])
    assert int(tl.tensor(logits[0]).argmax()) == int(logits[0].argmax())
    np.testing.assert_array_equal(np.bincount(pred, minlength=3), np.bincount(logits.argmax(axis=1), minlength=3))


@pytest.mark.parametrize("native", [False, True])
def test_a_compiled_step_with_torchs_spellings_replays_as_eager(native):
    """A step written with torch's spellings (size(0), long(), float(), an argmax accuracy, new_zeros) under
    tl.compile gives the eager step's loss, accuracy and parameters."""

    def build():
        model = nn.Linear(4, 3, rng=np.random.default_rng(0))

        def step(x, y):
            model.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y) + out.pow(2).sum().div(out.size(0)).mul(1e-3)
            loss = loss + out.new_zeros(out.size()).sum()
            loss.backward()
            with tl.no_grad():
                for p in model.parameters():
                    p.sub_(0.1 * p.grad)
            accuracy = (out.argmax(1) == y).float().mean()
            return loss, accuracy

        return model, step

    (model, step), (eager_model, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(10)
    for _ in range(5):
        x, y = tl.tensor(rng.normal(size=(8, 4))), tl.tensor(rng.integers(0, 3, size=8)).long()
        (loss, accuracy), (eager_loss, eager_accuracy) = compiled(x, y), eager_step(x, y)
        np.testing.assert_allclose(loss.data, eager_loss.data, rtol=1e-12)
        assert accuracy.item() == eager_accuracy.item() and accuracy.dtype == np.float32
    assert compiled._replays
    np.testing.assert_allclose(model.weight.data, eager_model.weight.data, rtol=1e-12)


@pytest.mark.parametrize("factory", ["zeros_like", "ones_like"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float32, np.float64])
def test_zeros_like_and_ones_like_keep_the_dtype_as_torchs(factory, dtype):
    values = np.array([[1, 0, 2]]).astype(dtype)
    ours, theirs = getattr(tl, factory)(tl.tensor(values, dtype=dtype)), getattr(torch, factory)(torch.tensor(values))
    assert ours.dtype == theirs.numpy().dtype and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.data, theirs.numpy())


@pytest.mark.parametrize(
    "program",
    [
        lambda lib, a, b: ~(a > 0),
        lambda lib, a, b: (a > 0) & (b > 0),
        lambda lib, a, b: (a > 0) | (b < 0),
        lambda lib, a, b: (a > 0) ^ (b > 0),
        lambda lib, a, b: True & (a > 0),
        lambda lib, a, b: a.long() & b.long(),
        lambda lib, a, b: ~a.long(),
        lambda lib, a, b: ((a > 0) & (b > 0)).any(dim=1),
        lambda lib, a, b: (a > 0).all(dim=0, keepdim=True),
        lambda lib, a, b: (a > 0).any(),
    ],
)
def test_mask_operators_and_any_all_give_torchs_tensors(program):
    """``~mask``, ``mask & other`` and ``mask.all(dim=1)`` were TypeErrors; ``.any()`` gave a numpy bool."""
    a, b = np.array([[1.0, -2.0, 0.0], [3.0, 5.0, -1.0]]), np.array([[2.0, 1.0, -3.0], [0.0, 4.0, 6.0]])
    ours, theirs = program(tl, tl.tensor(a), tl.tensor(b)), program(torch, torch.tensor(a), torch.tensor(b))
    assert isinstance(ours, tl.Tensor) and ours.dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_mask_operators_refuse_float_tensors_as_torch():
    with pytest.raises(TypeError, match=r"~: only for bool or integer tensors \(masks\), got float64 \(2,\)"):
        ~tl.tensor([1.0, 2.0])
    with pytest.raises(TypeError):
        ~torch.tensor([1.0, 2.0])
