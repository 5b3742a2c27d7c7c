"""Shape ops, indexing, cat/stack, comparisons and dtypes: forward equals numpy's, backward passes gradcheck
(float64, default tolerances) over drawn shapes, and gradgradcheck where the second derivative exists."""

import numpy as np
import pytest
from engine_helpers import GG, PAIRS, SMALL, check, leaf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lab as tl
from tinygrad_lab import testing as tt
from tinygrad_lab.testing import gradcheck

Tensor = tl.Tensor


# ---- shape ops ---------------------------------------------------------------------------------------------------


@st.composite
def reshape_case(draw):
    shape = draw(SMALL)
    size = int(np.prod(shape))
    # a target shape made of the prime factors of size, in drawn groups, with size-1 axes sprinkled in
    factors = [p for n in [size] for p in _factors(n)]
    factors = draw(st.permutations(factors))
    target, i = [], 0
    while i < len(factors):
        j = draw(st.integers(i + 1, len(factors)))
        target.append(int(np.prod(factors[i:j])))
        i = j
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return draw(tt.arrays(shape)), tuple(target)


def _factors(n):
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@GG
@given(case=reshape_case())
def test_reshape(case):
    x, target = case
    t = leaf(x)
    np.testing.assert_array_equal(t.reshape(target).data, x.reshape(target))
    np.testing.assert_array_equal(t.reshape(*target).data, x.reshape(target))
    check(lambda u: u.reshape(target), t)


@GG
@given(case=reshape_case())
def test_view(case):
    x, target = case
    t = leaf(x)
    np.testing.assert_array_equal(t.view(target).data, x.reshape(target))
    np.testing.assert_array_equal(t.view(*target).data, x.reshape(target))
    assert np.shares_memory(t.view(target).data, t.data) or not x.size
    check(lambda u: u.view(target), t)


@GG
@given(data=st.data(), shape=SMALL)
def test_transpose_permute_T(data, shape):
    x = data.draw(tt.arrays(shape))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    t = leaf(x)
    np.testing.assert_array_equal(t.transpose(axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.permute(*axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.permute(axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.transpose().data, x.T)
    np.testing.assert_array_equal(t.T.data, x.T)
    check(lambda u: u.transpose(axes), t)
    check(lambda u: u.permute(axes), t)
    check(lambda u: u.T, t)


@GG
@given(data=st.data(), shapes=PAIRS)
def test_expand_broadcast_to(data, shapes):
    small = shapes[0]
    target = np.broadcast_shapes(*shapes)
    x = data.draw(tt.arrays(small))
    t = leaf(x)
    np.testing.assert_array_equal(t.expand(*target).data, np.broadcast_to(x, target))
    np.testing.assert_array_equal(t.expand(target).data, np.broadcast_to(x, target))
    np.testing.assert_array_equal(t.broadcast_to(target).data, np.broadcast_to(x, target))
    np.testing.assert_array_equal(tl.broadcast_to(t, target).data, np.broadcast_to(x, target))
    check(lambda u: u.expand(target), t)
    check(lambda u: tl.broadcast_to(u, target), t)


def test_expand_minus_one_keeps_axis():
    x = leaf([[1.0], [2.0]])
    assert x.expand(3, -1, 4).shape == (3, 2, 4)
    check(lambda u: u.expand(3, -1, 4), x)
    with pytest.raises(ValueError, match="Expand"):
        x.expand(-1, 2, 4)  # -1 on a new leading axis has no size to keep


def test_expand_gradient_counts_copies():
    x = leaf([[1.0], [2.0]])
    x.expand(3, 2, 4).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[12.0], [12.0]])


@GG
@given(data=st.data(), shape=tt.shapes(max_dims=4, max_side=2))
def test_squeeze_unsqueeze(data, shape):
    x = data.draw(tt.arrays(shape))
    t = leaf(x)
    np.testing.assert_array_equal(t.squeeze().data, np.squeeze(x))
    check(lambda u: u.squeeze(), t)
    ones = [i for i, s in enumerate(shape) if s == 1]
    if ones:
        axis = data.draw(st.sampled_from(ones))
        axis = data.draw(st.sampled_from([axis, axis - len(shape)]))
        np.testing.assert_array_equal(t.squeeze(axis).data, np.squeeze(x, axis))
        check(lambda u: u.squeeze(axis), t)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    np.testing.assert_array_equal(t.unsqueeze(axis).data, np.expand_dims(x, axis))
    check(lambda u: u.unsqueeze(axis), t)


def test_transpose_of_two_dims_swaps_them_as_torch():
    """Two ints name the axes to swap (torch), where numpy would read a permutation: on a matrix transpose(0, 1)
    is its transpose, not the identity permutation."""
    x = np.arange(24.0).reshape(2, 3, 4)
    for dims in [(0, 1), (1, 0), (0, 2), (-1, 1), (1, 1)]:
        torch_like = np.swapaxes(x, *dims)
        np.testing.assert_array_equal(tl.Tensor(x).transpose(*dims).data, torch_like)
    np.testing.assert_array_equal(tl.Tensor(x[0]).transpose(0, 1).data, x[0].T)
    np.testing.assert_array_equal(tl.Tensor(x).transpose(2, 0, 1).data, x.transpose(2, 0, 1))  # numpy's form
    check(lambda u: u.transpose(0, 2), leaf(x))


@GG
@given(data=st.data(), shape=tt.shapes(min_dims=1, max_dims=4, max_side=2))
def test_flatten(data, shape):
    x = data.draw(tt.arrays(shape))
    t = leaf(x)
    nd = len(shape)
    start = data.draw(st.integers(0, nd - 1))
    end = data.draw(st.integers(start, nd - 1))
    start = data.draw(st.sampled_from([start, start - nd]))
    end = data.draw(st.sampled_from([end, end - nd]))
    s, e = start % nd, end % nd
    expected_shape = shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :]
    np.testing.assert_array_equal(t.flatten(start, end).data, x.reshape(expected_shape))
    np.testing.assert_array_equal(t.flatten().data, x.ravel())
    check(lambda u: u.flatten(start, end), t)


def test_flatten_0d():
    t = leaf(3.0)
    assert t.flatten().shape == (1,)


# ---- indexing ----------------------------------------------------------------------------------------------------


@GG
@given(data=st.data(), shape=tt.shapes(min_dims=1, max_dims=3, max_side=3))
def test_getitem_basic(data, shape):
    """Slices (negative steps too), ints, None and Ellipsis."""
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    x = data.draw(tt.arrays(shape))
    t = leaf(x)
    np.testing.assert_array_equal(t[index].data, x[index])
    check(lambda u: u[index], t)


@GG
@given(data=st.data(), shape=tt.shapes(min_dims=1, max_dims=3, max_side=3))
def test_getitem_integer_arrays(data, shape):
    """Integer arrays, repeated indices included, alone or mixed with a slice."""
    index = data.draw(hnp.integer_array_indices(shape, result_shape=tt.shapes(max_dims=2, max_side=4)))
    x = data.draw(tt.arrays(shape))
    t = leaf(x)
    np.testing.assert_array_equal(t[index].data, x[index])
    check(lambda u: u[index], t)
    if len(shape) >= 2:
        mixed = (slice(None),) + index[1:]
        np.testing.assert_array_equal(t[mixed].data, x[mixed])
        check(lambda u: u[mixed], t)


@GG
@given(data=st.data(), shape=tt.shapes(min_dims=1, max_dims=3, max_side=3))
def test_getitem_boolean_mask(data, shape):
    mask = data.draw(hnp.arrays(np.bool_, shape))
    x = data.draw(tt.arrays(shape))
    t = leaf(x)
    np.testing.assert_array_equal(t[mask].data, x[mask])
    check(lambda u: u[mask], t)
    row_mask = mask.reshape(-1)[: shape[0]]
    np.testing.assert_array_equal(t[row_mask].data, x[row_mask])
    check(lambda u: u[row_mask], t)
    np.testing.assert_array_equal(t[t > 0].data, x[x > 0])  # a boolean Tensor as the mask
    check(lambda u: u[Tensor(x > 0, dtype=bool)], t)


def test_getitem_repeated_indices_accumulate():
    x = leaf([10.0, 20.0, 30.0, 40.0])
    idx = [0, 2, 0, 0, 3, 2]
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    x[idx].backward(g)
    expected = np.zeros(4)
    for i, gi in zip(idx, g):
        expected[i] += gi
    np.testing.assert_array_equal(x.grad.data, expected)  # [1+3+4, 0, 2+6, 5]
    y = leaf(np.arange(6.0).reshape(3, 2))
    y[np.array([[1, 1], [2, 1]])].sum().backward()
    np.testing.assert_array_equal(y.grad.data, [[0, 0], [3, 3], [1, 1]])


def test_getitem_int_and_iteration():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    rows = list(x)
    assert [r.shape for r in rows] == [(2,), (2,)]
    (rows[0] * 2 + rows[1][1]).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[2.0, 2.0], [0.0, 2.0]])


# ---- cat / stack -------------------------------------------------------------------------------------------------


@st.composite
def cat_case(draw, stack=False):
    base = list(draw(tt.shapes(min_dims=1, max_dims=3, max_side=3)))
    nd = len(base)
    n = draw(st.integers(1, 3))
    if stack:
        axis = draw(st.integers(-nd - 1, nd))
        shapes = [tuple(base)] * n
    else:
        axis = draw(st.integers(-nd, nd - 1))
        shapes = []
        for _ in range(n):
            s = list(base)
            s[axis] = draw(st.integers(1, 3))
            shapes.append(tuple(s))
    arrays = [draw(tt.arrays(s)) for s in shapes]
    constant = draw(st.integers(-1, n - 1))  # which input (if any) is a plain ndarray
    return arrays, axis, constant


@pytest.mark.parametrize("name", ["cat", "stack"])
@GG
@given(data=st.data())
def test_cat_stack(name, data):
    arrays, axis, constant = data.draw(cat_case(stack=name == "stack"))
    op, reference = (tl.cat, np.concatenate) if name == "cat" else (tl.stack, np.stack)
    tensors = [leaf(a) for a in arrays]
    out = op(tensors, axis=axis)
    np.testing.assert_array_equal(out.data, reference(arrays, axis=axis))
    check(lambda *ts: op(list(ts), axis=axis), *tensors)
    if constant >= 0 and len(arrays) > 1:
        inputs = [arrays[i] if i == constant else tensors[i] for i in range(len(arrays))]
        np.testing.assert_array_equal(op(inputs, axis=axis).data, reference(arrays, axis=axis))
        check(lambda *ts: op(list(ts), axis=axis), *inputs)


def test_cat_gradient_routes_slices():
    a, b = leaf([[1.0, 2.0]]), leaf([[3.0, 4.0], [5.0, 6.0]])
    g = np.arange(6.0).reshape(3, 2)
    tl.cat([a, b], axis=0).backward(g)
    np.testing.assert_array_equal(a.grad.data, g[:1])
    np.testing.assert_array_equal(b.grad.data, g[1:])


# ---- comparisons -------------------------------------------------------------------------------------------------

COMPARISONS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


@pytest.mark.parametrize("sym", list(COMPARISONS))
@settings(max_examples=15)
@given(data=st.data(), shapes=PAIRS)
def test_comparisons(sym, data, shapes):
    values = st.sampled_from([-1.0, 0.0, 0.5, 1.0])  # few values, so equality happens
    a = data.draw(tt.arrays(shapes[0], values))
    b = data.draw(tt.arrays(shapes[1], values))
    reference = COMPARISONS[sym]
    compare = eval(f"lambda x, y: x {sym} y")  # noqa: S307 (a fixed operator symbol)
    ta, tb = leaf(a), leaf(b)
    for left, right in [(ta, tb), (ta, b), (a, tb), (ta, 0.5), (0.5, tb)]:
        out = compare(left, right)
        assert isinstance(out, Tensor)
        assert out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        plain = [v.data if isinstance(v, Tensor) else v for v in (left, right)]
        np.testing.assert_array_equal(out.data, reference(*plain))


# ---- dtypes ------------------------------------------------------------------------------------------------------

F32_OPS = {
    "arith": lambda t: (t * 2.0 + 1.0 - t / 3.0) ** 2,
    "exp/log/sqrt": lambda t: (t.exp() + 1.0).log() + (t * t + 1.0).sqrt(),
    "activations": lambda t: t.sigmoid() + t.tanh() + t.relu() + t.leaky_relu() + t.abs() + t.clip(-0.5, 0.5),
    "reductions": lambda t: t.sum(axis=0) + t.mean(axis=0) + t.max(axis=0) + t.min(axis=0) + t.var(axis=0),
    "softmax": lambda t: t.softmax() + t.log_softmax() + t.logsumexp(axis=-1, keepdims=True),
    "matmul": lambda t: t @ t.T,
    "shape": lambda t: t.reshape(3, 2).T.expand(2, 2, 3)[:, 0, ::-1].flatten().unsqueeze(0).squeeze(),
    "index/cat/stack": lambda t: (
        tl.cat([t[[0, 0]], t[t > 0].reshape(1, -1).expand(2, -1)[:, :1]], axis=1) + tl.stack([t[0, :1], t[1, :1]])
    ),
    "maximum/where": lambda t: tl.maximum(t, 0.1) + tl.minimum(t, t * 2.0) + tl.where(t > 0, t, -t),
}


@pytest.mark.parametrize("name", list(F32_OPS))
def test_float32_stays_float32(name):
    x = Tensor([[0.5, -1.0, 2.0], [1.5, -0.25, 0.75]], dtype=np.float32, requires_grad=True)
    out = F32_OPS[name](x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    # the float32 gradient agrees with the float64 one
    x64 = leaf(x.data.astype(np.float64))
    F32_OPS[name](x64).sum().backward()
    np.testing.assert_allclose(x.grad.data, x64.grad.data, rtol=1e-5, atol=1e-5)


def test_float32_with_float32_gradient_through_create_graph():
    x = Tensor([0.5, 1.5], dtype=np.float32, requires_grad=True)
    (g,) = tl.grad((x**3).sum(), x, create_graph=True)
    assert g.dtype == np.float32
    g.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 6 * x.data, rtol=1e-6)


# ---- regressions found in review -----------------------------------------------------------------------------


def test_permute_with_negative_axes_has_the_transposed_gradient():
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    w = rng.standard_normal((3, 3))
    (x.permute(-1, 0) * w).sum().backward()
    np.testing.assert_array_equal(x.grad.data, w.T)
    y = tl.Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: t.transpose(-1, 0, -2), [y])


def test_numpy_scalars_are_weak_like_python_numbers():
    x = tl.tensor([1.0, 4.0], dtype="float32", requires_grad=True)
    y = x / np.sqrt(np.float64(4.0)) + np.float64(1.0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, [1.5, 3.0])


def test_integers_divided_by_a_0d_integer_give_floats_as_torch():
    """The 0-d rule keeps an n-d operand's dtype only against promotion by the 0-d one: true division of
    integers gives floats whatever the operands' shapes (it used to truncate back to int64)."""
    n = tl.tensor(np.array([1, 5, 7]), dtype=np.int64)
    for divisor in (tl.tensor(np.array(2), dtype=np.int64), np.array(2), 2):
        out = n / divisor
        assert out.dtype.kind == "f"
        np.testing.assert_array_equal(out.data, [0.5, 2.5, 3.5])
    assert (tl.tensor(np.ones(3, np.float32)) / np.array(2)).dtype == np.float32  # the rule itself still holds
    assert (n * tl.tensor(np.array(2), dtype=np.int32)).dtype == np.int64
