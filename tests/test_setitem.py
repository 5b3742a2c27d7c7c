"""Item assignment ``t[index] = value``: values and gradients against torch over every kind of index, torch's leaf
and view rules, gradcheck and gradgradcheck of the recorded write, and the same step under tl.compile."""

import numpy as np
import pytest
import torch
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.testing import gradcheck, gradgradcheck

X = np.random.default_rng(0).normal(size=(3, 4, 5))
V = np.random.default_rng(1).normal(size=(4,))
WEIGHTS = np.arange(60.0).reshape(3, 4, 5) / 10 + 1  # a loss that tells every element apart


def _mask(lib, values):
    return torch.tensor(values) if lib is torch else tl.tensor(values, dtype=bool)


# each writes into y (a copy of x, shape (3, 4, 5)) values computed from v (shape (4,)); lib is tl or torch
PROGRAMS = {
    "int and slice": lambda lib, y, v: y.__setitem__((0, slice(None), 1), v),
    "ints beside an index list (torch's layout)": lambda lib, y, v: y.__setitem__((1, slice(None), [0, 3]), v[:, None]),
    "boolean mask of y": lambda lib, y, v: y.__setitem__(y > 0, v.sum()),
    "boolean mask tensor": lambda lib, y, v: y.__setitem__(_mask(lib, [True, False, True]), v[0]),
    "index list, broadcast value": lambda lib, y, v: y.__setitem__((slice(None), [0, 2]), v[None, :2, None]),
    "ellipsis and a number": lambda lib, y, v: y.__setitem__((Ellipsis, 0), 3.0),
    "repeated integer arrays": lambda lib, y, v: y.__setitem__(([0, 2], [1, 1]), v[0]),
    "value with leading ones": lambda lib, y, v: y.__setitem__(1, v.reshape(1, 4, 1)),
    "two writes": lambda lib, y, v: (y.__setitem__(0, v[:, None] * v[0]), y.__setitem__((0, 2), v[1] * 3)),
    "negative integer and step": lambda lib, y, v: y.__setitem__((-1, slice(None, None, 2)), v[:2, None]),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_values_and_gradients_match_torch(name):
    results = []
    for lib in (tl, torch):
        x = tl.tensor(X, requires_grad=True) if lib is tl else tleaf(X)
        v = tl.tensor(V, requires_grad=True) if lib is tl else tleaf(V)
        y = x * 1
        PROGRAMS[name](lib, y, v)
        (y * (WEIGHTS if lib is tl else torch.tensor(WEIGHTS))).sum().backward()
        results.append((y, x.grad, v.grad))
    (y, x_grad, v_grad), (ty, tx_grad, tv_grad) = results
    assert_same(y, ty)
    assert_same(x_grad, tx_grad)
    if tv_grad is None:
        assert v_grad is None
    else:
        assert_same(v_grad, tv_grad)


@pytest.mark.parametrize("name", ["int and slice", "ints beside an index list (torch's layout)", "two writes"])
def test_recorded_assignment_passes_gradcheck_and_gradgradcheck(name):
    def fn(x, v):
        y = x * x
        PROGRAMS[name](tl, y, v * v)
        return y

    inputs = (tl.tensor(X, requires_grad=True), tl.tensor(V, requires_grad=True))
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_filling_a_buffer_row_by_row_gives_each_row_its_gradient():
    x = tl.tensor(X[0], requires_grad=True)
    out = tl.zeros_like(x)
    for i in range(len(x)):
        out[i] = x[i] * (i + 1)
    out.sum().backward()
    assert out.requires_grad and out.grad_fn is not None
    np.testing.assert_array_equal(x.grad.data, np.arange(1.0, 5.0)[:, None] * np.ones(5))


def test_a_leaf_that_requires_grad_refuses_it_in_grad_mode_and_takes_it_under_no_grad():
    w = tl.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="item assignment: a leaf Variable that requires grad"):
        w[0] = 5.0
    np.testing.assert_array_equal(w.data, np.ones(3))
    with tl.no_grad():
        w[0] = 5.0
    np.testing.assert_array_equal(w.data, [5.0, 1.0, 1.0])
    assert w._version == 1 and w.grad_fn is None


def test_a_write_through_a_view_changes_the_base_outside_the_graph():
    base = tl.zeros(3, 4)
    base[1][2] = 7.0  # base[1] is a view, as in torch
    assert base.data[1, 2] == 7.0 and base._version == 1


def test_a_value_of_the_wrong_shape_is_one_error_naming_both_shapes():
    y = tl.zeros(3, 4)
    with pytest.raises(ValueError, match=r"SetItem: .*\(5,\).*\(3, 4\), \(5,\)"):
        y[0] = tl.tensor(np.ones(5), requires_grad=True)
    np.testing.assert_array_equal(y.data, np.zeros((3, 4)))  # nothing written
    assert y._version == 0


def test_a_saved_view_written_later_raises_as_torch():
    x = tl.tensor(X[0], requires_grad=True)
    v = tl.tensor(V[:4], requires_grad=True)
    y = x * 1
    y[:, 2] = y[:, 0] * v[0]  # Mul saved the view y[:, 0]; the write bumps its version, as in torch
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def _buffer_step(seed):
    model = nn.Linear(3, 2, rng=np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        h = model(x)
        swapped = tl.zeros_like(h)
        swapped[:, 0] = h[:, 1]
        swapped[:, 1] = h[:, 0] * 2
        loss = (swapped * swapped).mean()
        loss.backward()
        opt.step()
        return loss

    return model, step


def test_compiled_step_with_item_assignment_equals_eager():
    x = tl.tensor(np.random.default_rng(2).normal(size=(5, 3)))
    (m1, eager), (m2, step) = _buffer_step(0), _buffer_step(0)
    compiled = tl.compile(step)
    for _ in range(5):
        np.testing.assert_allclose(compiled(x).data, eager(x).data, rtol=1e-12)
    assert compiled._replays
    np.testing.assert_allclose(m2.weight.data, m1.weight.data, rtol=1e-12)


@pytest.mark.parametrize(
    "index",
    [Ellipsis, slice(None), (slice(None), slice(None)), (Ellipsis, slice(None)), 0, (slice(None), 1), (None, Ellipsis)],
)
def test_create_graph_gradient_of_the_overwritten_value_requires_grad_as_torchs(index):
    """A write of every element (t[...] = v, t[:] = v) is torch's copy_ (zeros that depend on nothing, though the
    incoming 2 y depends on v); a partial write zeroes part of the incoming gradient, which still depends on x."""
    grads = []
    for lib in (tl, torch):
        x = tl.tensor(X[0], requires_grad=True) if lib is tl else tleaf(X[0])
        v = tl.tensor(V[0], requires_grad=True) if lib is tl else tleaf(V[0])
        y = x * 1
        y[index] = v
        loss = (y * y).sum()
        grads.append((tl.grad if lib is tl else torch.autograd.grad)(loss, x, create_graph=True)[0])
    ours, theirs = grads
    assert_same(ours, theirs)
    assert ours.requires_grad == theirs.requires_grad


def test_an_index_tensor_written_afterwards_does_not_move_the_gradient():
    """A reused index buffer: the nodes keep the index they were given (torch refuses the backward instead)."""
    x = tl.tensor(np.zeros(4), requires_grad=True)
    v = tl.tensor([1.0, 2.0], requires_grad=True)
    index = tl.tensor([0, 2], dtype=np.int64)
    y = x * 1
    y[index] = v
    picked = y[index]
    index[0] = 1
    ((y + picked.sum()) * np.array([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 0.0, 4.0] and v.grad.tolist() == [11.0, 13.0]  # picked.sum() adds 10
