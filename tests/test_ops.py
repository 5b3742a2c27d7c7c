"""Every op: forward equals numpy's, backward passes gradcheck (float64, default tolerances) over drawn shapes,
broadcasting pairs and size-1 axes, and gradgradcheck where the second derivative exists."""

import warnings

import numpy as np
import pytest
from engine_helpers import GG, PAIRS, SMALL, check, leaf
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lab as tl
from tinygrad_lab import testing as tt
from tinygrad_lab.engine.ops.elementwise import _MASK_MIN_SIZE as MASK_MIN_SIZE

Tensor = tl.Tensor


def np_sigmoid(x):
    """Independent, overflow-free reference: exp(x)/(1+exp(x)) for x < 0, 1/(1+exp(-x)) otherwise."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---- elementwise unary -------------------------------------------------------------------------------------------

away0 = tt.elements(away_from=0.0)
away_pm1 = tt.elements().filter(lambda v: abs(abs(v) - 1.0) >= 1e-2)

UNARY = {
    "neg": (lambda t: -t, lambda x: -x, tt.elements()),
    "t.neg()": (lambda t: t.neg(), lambda x: -x, tt.elements()),
    "exp": (lambda t: t.exp(), np.exp, tt.elements()),
    "tl.exp": (tl.exp, np.exp, tt.elements()),
    "log": (lambda t: t.log(), np.log, tt.positive_elements()),
    "tl.log": (tl.log, np.log, tt.positive_elements()),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, tt.positive_elements()),
    "tl.sqrt": (tl.sqrt, np.sqrt, tt.positive_elements()),
    "abs": (lambda t: t.abs(), np.abs, away0),
    "tl.abs": (tl.abs, np.abs, away0),
    "sigmoid": (lambda t: t.sigmoid(), np_sigmoid, tt.elements(-6, 6)),
    "tl.sigmoid": (tl.sigmoid, np_sigmoid, tt.elements(-6, 6)),
    "tanh": (lambda t: t.tanh(), np.tanh, tt.elements()),
    "tl.tanh": (tl.tanh, np.tanh, tt.elements()),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0.0), away0),
    "tl.relu": (tl.relu, lambda x: np.maximum(x, 0.0), away0),
    "leaky_relu": (lambda t: t.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x), away0),
    "leaky_relu(0.2)": (lambda t: t.leaky_relu(0.2), lambda x: np.where(x > 0, x, 0.2 * x), away0),
    "clip(-1,1)": (lambda t: t.clip(-1.0, 1.0), lambda x: np.minimum(np.maximum(x, -1.0), 1.0), away_pm1),
    "clip(lo)": (lambda t: t.clip(-1.0), lambda x: np.maximum(x, -1.0), away_pm1),
    "clip(hi)": (lambda t: t.clip(None, 1.0), lambda x: np.minimum(x, 1.0), away_pm1),
    "clamp(-1,1)": (lambda t: t.clamp(-1.0, 1.0), lambda x: np.minimum(np.maximum(x, -1.0), 1.0), away_pm1),
    "clamp(min)": (lambda t: t.clamp(min=-1.0), lambda x: np.maximum(x, -1.0), away_pm1),
    "clamp(max)": (lambda t: t.clamp(max=1.0), lambda x: np.minimum(x, 1.0), away_pm1),
    "pow 2": (lambda t: t**2, lambda x: x * x, tt.elements()),
    "pow 3 (int)": (lambda t: t**3, lambda x: x * x * x, tt.elements()),
    "pow 0": (lambda t: t**0, np.ones_like, tt.elements()),
    "pow 1": (lambda t: t**1, lambda x: x, tt.elements()),
    "pow -1.5": (lambda t: t**-1.5, lambda x: 1.0 / (x * np.sqrt(x)), tt.positive_elements()),
    "pow 0.5": (lambda t: t**0.5, np.sqrt, tt.positive_elements()),
    "rpow 2**t": (lambda t: 2.0**t, lambda x: np.exp(x * np.log(2.0)), tt.elements()),
}


@pytest.mark.parametrize("name", list(UNARY))
@GG
@given(data=st.data())
def test_unary(name, data):
    op, reference, elements = UNARY[name]
    x = data.draw(tt.arrays(SMALL, elements))
    t = leaf(x)
    out = op(t)
    assert isinstance(out, Tensor) and out.requires_grad and out.shape == x.shape
    np.testing.assert_allclose(out.data, reference(x), rtol=1e-12, atol=0)
    check(op, t)


# ---- binary, with broadcasting -----------------------------------------------------------------------------------

BINARY = {
    "+": (lambda a, b: a + b, np.add, tt.elements(), tt.elements()),
    "-": (lambda a, b: a - b, np.subtract, tt.elements(), tt.elements()),
    "*": (lambda a, b: a * b, np.multiply, tt.elements(), tt.elements()),
    "/": (lambda a, b: a / b, np.divide, tt.elements(), tt.elements(0.5, 3.0)),
    "/ negative denominator": (lambda a, b: a / b, np.divide, tt.elements(), tt.elements(-3.0, -0.5)),
    "** tensor exponent": (
        lambda a, b: a**b,
        lambda x, y: np.exp(y * np.log(x)),
        tt.positive_elements(),
        tt.elements(-2.0, 2.0),
    ),
}


@pytest.mark.parametrize("name", list(BINARY))
@GG
@given(data=st.data(), shapes=PAIRS)
def test_binary_broadcasting(name, data, shapes):
    op, reference, ea, eb = BINARY[name]
    a = data.draw(tt.arrays(shapes[0], ea))
    b = data.draw(tt.arrays(shapes[1], eb))
    ta, tb = leaf(a), leaf(b)
    out = op(ta, tb)
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    np.testing.assert_allclose(out.data, reference(a, b), rtol=1e-12, atol=1e-300)
    check(op, ta, tb)


@pytest.mark.parametrize("name", list(BINARY))
@settings(max_examples=10)
@given(data=st.data(), shapes=PAIRS)
def test_binary_one_side_constant(name, data, shapes):
    """Only one side requires grad: the other is a constant Tensor, a numpy array or a Python scalar,
    on either side of the operator."""
    op, reference, ea, eb = BINARY[name]
    a = data.draw(tt.arrays(shapes[0], ea))
    b = data.draw(tt.arrays(shapes[1], eb))
    scalar_a, scalar_b = float(data.draw(ea)), float(data.draw(eb))
    for const_b in (b, Tensor(b), scalar_b):
        out = op(leaf(a), const_b)
        assert isinstance(out, Tensor)
        np.testing.assert_allclose(out.data, reference(a, np.asarray(const_b)), rtol=1e-12, atol=1e-300)
        check(lambda t, c=const_b: op(t, c), leaf(a))
    for const_a in (a, Tensor(a), scalar_a):
        out = op(const_a, leaf(b))
        assert isinstance(out, Tensor)
        np.testing.assert_allclose(out.data, reference(np.asarray(const_a), b), rtol=1e-12, atol=1e-300)
        check(lambda t, c=const_a: op(c, t), leaf(b))


def test_ndarray_on_the_left_returns_tensor_with_grad():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = leaf([[0.5, -1.0], [2.0, 1.5]])
    for out, expected, dx in [
        (a * x, a * x.data, a),
        (a + x, a + x.data, np.ones((2, 2))),
        (a - x, a - x.data, -np.ones((2, 2))),
        (a / x, a / x.data, -a / x.data**2),
        (a @ x, a @ x.data, a.T @ np.ones((2, 2))),
    ]:
        assert isinstance(out, Tensor) and out.requires_grad
        np.testing.assert_allclose(out.data, expected)
        x.grad = None
        out.sum().backward()
        np.testing.assert_allclose(x.grad.data, dx)


def test_pow_zero_exponent_has_zero_slope_everywhere():
    x = leaf([0.0, -2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero from 0 ** -1
        y = x**0
        y.backward(np.ones(3))
    np.testing.assert_array_equal(y.data, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def test_pow_gradients_match_formulas():
    a = leaf([0.5, 1.5, 2.0])
    b = leaf([2.0, -1.0, 0.5])
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.data, b.data * a.data ** (b.data - 1))
    np.testing.assert_allclose(b.grad.data, a.data**b.data * np.log(a.data))


# ---- maximum / minimum / where -----------------------------------------------------------------------------------


@pytest.mark.parametrize("op, reference", [(tl.maximum, np.maximum), (tl.minimum, np.minimum)])
@GG
@given(data=st.data(), shapes=PAIRS)
def test_maximum_minimum(op, reference, data, shapes):
    a = data.draw(tt.arrays(shapes[0]))
    b = data.draw(tt.arrays(shapes[1]))
    assume(np.all(np.abs(a - b) >= 1e-2))  # no ties within finite-difference reach
    ta, tb = leaf(a), leaf(b)
    np.testing.assert_array_equal(op(ta, tb).data, reference(a, b))
    check(op, ta, tb)
    check(lambda t: op(t, 0.25), leaf(a[np.abs(a - 0.25) >= 1e-2]))
    check(lambda t: op(b, t), ta)


@pytest.mark.parametrize("op", [tl.maximum, tl.minimum])
def test_maximum_minimum_ties_share_evenly(op):
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([1.0, 5.0, 0.0])
    op(a, b).sum().backward()
    tie = np.array([0.5, 0.0, 0.0])
    a_wins = (a.data > b.data) if op is tl.maximum else (a.data < b.data)
    np.testing.assert_array_equal(a.grad.data, a_wins + tie)
    np.testing.assert_array_equal(b.grad.data, ~a_wins * 1.0 - tie)
    assert a.grad.data[0] == b.grad.data[0] == 0.5


@GG
@given(data=st.data(), shapes=tt.broadcastable_shapes(3, max_dims=3, max_side=3))
def test_where(data, shapes):
    cond = data.draw(hnp.arrays(np.bool_, shapes[0]))
    a = data.draw(tt.arrays(shapes[1]))
    b = data.draw(tt.arrays(shapes[2]))
    ta, tb = leaf(a), leaf(b)
    np.testing.assert_array_equal(tl.where(cond, ta, tb).data, np.where(cond, a, b))
    check(lambda x, y: tl.where(cond, x, y), ta, tb)
    check(lambda x, y: tl.where(Tensor(cond, dtype=bool), x, y), ta, tb)
    check(lambda x: tl.where(cond, x, 0.5), ta)
    check(lambda y: tl.where(cond, a, y), tb)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    dtype=st.sampled_from([np.float32, np.float64]),
    zero_first=st.booleans(),
    flip=st.booleans(),
)
def test_where_of_arrays_and_zero_is_numpys_bit_for_bit(data, shape, dtype, zero_first, flip):
    """The masked fast path of where over large arrays (backward formulas' where(mask, 0.0, grad)) gives numpy's
    result exactly: signed zeros, inf and NaN values, and views laid out backwards. The drawn values and mask are
    repeated along a new first axis past the size where the mask replaces np.where."""
    values = data.draw(hnp.arrays(dtype, shape, elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
    cond = data.draw(hnp.arrays(np.bool_, shape))
    repeats = (-(-MASK_MIN_SIZE // max(values.size, 1)),) + (1,) * values.ndim
    values, cond = np.tile(values, repeats), np.tile(cond, repeats)
    if flip:
        values = values[..., ::-1]
    ours = tl.where(cond, 0.0, values) if zero_first else tl.where(cond, values, 0.0)
    expected = np.where(cond, 0.0, values) if zero_first else np.where(cond, values, 0.0)
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(expected))
    np.testing.assert_array_equal(ours, expected)


def test_where_with_comparison_mask():
    x = leaf([-2.0, -0.5, 0.5, 2.0])
    y = tl.where(x > 0, x * 3.0, x * x)
    y.sum().backward()
    np.testing.assert_allclose(y.data, np.where(x.data > 0, 3 * x.data, x.data**2))
    np.testing.assert_allclose(x.grad.data, np.where(x.data > 0, 3.0, 2 * x.data))


# ---- matmul ------------------------------------------------------------------------------------------------------


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch_a, batch_b = draw(tt.broadcastable_shapes(2, min_dims=1, max_dims=2, max_side=2))
    kind = draw(
        st.sampled_from(
            ["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched", "batched@1d", "batched@2d", "2d@batched"]
        )
    )
    return {
        "1d@1d": ((k,), (k,)),
        "1d@2d": ((k,), (k, m)),
        "2d@1d": ((n, k), (k,)),
        "2d@2d": ((n, k), (k, m)),
        "batched": (batch_a + (n, k), batch_b + (k, m)),
        "1d@batched": ((k,), batch_b + (k, m)),
        "batched@1d": (batch_a + (n, k), (k,)),
        "batched@2d": (batch_a + (n, k), (k, m)),
        "2d@batched": ((n, k), batch_b + (k, m)),
    }[kind]


@GG
@given(data=st.data(), shapes=matmul_shapes())
def test_matmul(data, shapes):
    a = data.draw(tt.arrays(shapes[0]))
    b = data.draw(tt.arrays(shapes[1]))
    ta, tb = leaf(a), leaf(b)
    out = ta @ tb
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out.data, np.matmul(a, b), rtol=1e-12, atol=1e-12)
    check(lambda x, y: x @ y, ta, tb)
    check(lambda x: a @ x, tb)  # ndarray on the left
    check(lambda x: x @ b, ta)  # ndarray on the right


def test_matmul_2d_gradients_match_formula():
    rng = np.random.default_rng(1)
    a, b, g = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    ta, tb = leaf(a), leaf(b)
    (ta @ tb).backward(g)
    np.testing.assert_allclose(ta.grad.data, g @ b.T)
    np.testing.assert_allclose(tb.grad.data, a.T @ g)


# ---- reductions --------------------------------------------------------------------------------------------------


@st.composite
def shape_axis_keepdims(draw, min_dims=0, distinct=False):
    shape = draw(tt.shapes(min_dims=min_dims, max_dims=3, max_side=3))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        signed = st.integers(0, nd - 1).flatmap(lambda a: st.sampled_from([a, a - nd]))
        choices += [signed, st.lists(signed, min_size=1, max_size=nd, unique_by=lambda a: a % nd).map(tuple)]
    axis = draw(st.one_of(*choices))
    x = draw(tt.arrays(shape, distinct=distinct))
    return x, axis, draw(st.booleans())


def np_logsumexp(x, axis, keepdims):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


REDUCTIONS = {
    "sum": (lambda t, ax, kd: t.sum(axis=ax, keepdims=kd), lambda x, ax, kd: np.sum(x, axis=ax, keepdims=kd)),
    "mean": (lambda t, ax, kd: t.mean(axis=ax, keepdims=kd), lambda x, ax, kd: np.mean(x, axis=ax, keepdims=kd)),
    "var": (lambda t, ax, kd: t.var(axis=ax, keepdims=kd), lambda x, ax, kd: np.var(x, axis=ax, keepdims=kd)),
    "logsumexp": (lambda t, ax, kd: t.logsumexp(axis=ax, keepdims=kd), np_logsumexp),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@GG
@given(case=shape_axis_keepdims())
def test_reduction(name, case):
    x, axis, keepdims = case
    op, reference = REDUCTIONS[name]
    t = leaf(x)
    out = op(t, axis, keepdims)
    expected = reference(x, axis, keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check(lambda u: op(u, axis, keepdims), t)


@pytest.mark.parametrize("ddof", [1, 2])
def test_var_ddof(ddof):
    x = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0], [2.0, 1.0, 1.0, -2.0]])
    t = leaf(x)
    for axis in (None, 0, 1, (0, 1)):
        np.testing.assert_allclose(t.var(axis=axis, ddof=ddof).data, np.var(x, axis=axis, ddof=ddof), rtol=1e-12)
    check(lambda u: u.var(axis=1, ddof=ddof), t)
    check(lambda u: u.var(ddof=ddof, keepdims=True), t)


@pytest.mark.parametrize("name, reference", [("max", np.max), ("min", np.min)])
@GG
@given(case=shape_axis_keepdims(distinct=True))
def test_max_min(name, reference, case):
    x, axis, keepdims = case
    t = leaf(x)
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.data, expected)
    check(lambda u: getattr(u, name)(axis=axis, keepdims=keepdims), t)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_ties_share_evenly(name):
    x = leaf([[1.0, 3.0, 3.0, 3.0], [2.0, -1.0, 2.0, -1.0]])
    getattr(x, name)(axis=1).backward(np.array([6.0, 10.0]))
    data = x.data
    best = getattr(data, name)(axis=1, keepdims=True)
    hits = data == best
    expected = hits / hits.sum(axis=1, keepdims=True) * np.array([[6.0], [10.0]])
    np.testing.assert_allclose(x.grad.data, expected)
    assert x.grad.data[0].sum() == 6.0 and x.grad.data[1].sum() == 10.0
    y = leaf([5.0, 5.0, 5.0, 5.0])
    getattr(y, name)().backward()
    np.testing.assert_array_equal(y.grad.data, [0.25] * 4)


@pytest.mark.parametrize("name, reference", [("amax", np.max), ("amin", np.min)])
@GG
@given(case=shape_axis_keepdims(distinct=True))
def test_amax_amin(name, reference, case):
    x, axis, keepdims = case
    dim = () if axis is None else axis  # torch's default: every axis
    t = leaf(x)
    out = getattr(t, name)(dim, keepdims)
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.data, expected)
    check(lambda u: getattr(u, name)(dim=dim, keepdim=keepdims), t)


@st.composite
def distinct_int_axis(draw):
    shape = draw(tt.shapes(min_dims=1, max_dims=3, max_side=3))
    return draw(tt.arrays(shape, distinct=True)), draw(st.integers(-len(shape), len(shape) - 1)), draw(st.booleans())


@pytest.mark.parametrize("name, reference", [("max", np.max), ("min", np.min)])
@GG
@given(case=distinct_int_axis())
def test_max_min_dim_values(name, reference, case):
    x, axis, keepdim = case
    t = leaf(x)
    values, indices = getattr(t, name)(dim=axis, keepdim=keepdim)
    np.testing.assert_array_equal(values.data, reference(x, axis=axis, keepdims=keepdim))
    arg = (np.argmax if name == "max" else np.argmin)(x, axis=axis, keepdims=keepdim)
    assert indices.dtype == np.int64 and not indices.requires_grad
    np.testing.assert_array_equal(indices.data, arg)
    check(lambda u: getattr(u, name)(dim=axis, keepdim=keepdim).values, t)


REMOVED = [{}, {"correction": 0}, {"correction": 2}, {"correction": 0.5}, {"unbiased": False}]  # torch's keywords


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("removed", REMOVED)
@GG
@given(case=shape_axis_keepdims(min_dims=1, distinct=True))  # distinct: std's sqrt stays away from 0
def test_var_std_torch_keywords(name, removed, case):
    x, axis, keepdim = case
    ddof = removed.get("correction", int(removed.get("unbiased", True)))
    count = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    assume(count > ddof)
    t = leaf(x)
    out = getattr(t, name)(dim=axis, keepdim=keepdim, **removed)
    np.testing.assert_allclose(out.data, getattr(np, name)(x, axis=axis, keepdims=keepdim, ddof=ddof), rtol=1e-12)
    check(lambda u: getattr(u, name)(dim=axis, keepdim=keepdim, **removed), t)


@st.composite
def shape_and_int_axis(draw):
    shape = draw(tt.shapes(min_dims=1, max_dims=3, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return draw(tt.arrays(shape)), axis


def np_softmax(x, axis):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("softmax", np_softmax),
        ("log_softmax", lambda x, axis: np.log(np_softmax(x, axis))),
    ],
)
@GG
@given(case=shape_and_int_axis())
def test_softmax_log_softmax(name, reference, case):
    x, axis = case
    t = leaf(x)
    out = getattr(t, name)(axis)
    np.testing.assert_allclose(out.data, reference(x, axis), rtol=1e-12, atol=1e-12)
    check(lambda u: getattr(u, name)(axis), t)


def test_softmax_default_axis_is_last():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(leaf(x).softmax().data, np_softmax(x, -1))
    np.testing.assert_allclose(leaf(x).log_softmax().data, np.log(np_softmax(x, -1)))


# ---- numerical stability -----------------------------------------------------------------------------------------

LARGE = np.array([[-1e3, -800.0, -720.0, -30.0, 0.0], [30.0, 720.0, 800.0, 1e3, 1e3]])


@pytest.mark.parametrize("name", ["sigmoid", "log_softmax", "softmax", "logsumexp"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_for_large_inputs(name, dtype):
    x = Tensor(LARGE, dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow/underflow/invalid RuntimeWarning fails the test
        out = x.sigmoid() if name == "sigmoid" else getattr(x, name)(axis=-1)
        out.backward(np.ones(out.shape, dtype=dtype))
    assert out.dtype == dtype and x.grad.dtype == dtype
    assert np.isfinite(out.data).all() and np.isfinite(x.grad.data).all()
    big = LARGE.astype(dtype).astype(np.float64)
    # float64 results agree to rounding; float32 ones to float32 resolution (values below it are 0)
    tol = {"rtol": 1e-12, "atol": 1e-300} if dtype == np.float64 else {"rtol": 1e-6, "atol": 1e-6}
    if name == "sigmoid":
        expected = np_sigmoid(big)
        np.testing.assert_allclose(out.data, expected, **tol)
        # d sigmoid = s * (1 - s) = e^-|x| / (1 + e^-|x|)^2; the engine (like torch and the lab) forms it
        # from its output as s * (1 - s), where 1 - s keeps only the absolute precision of s: atol 1e-15.
        e = np.exp(-np.abs(big))
        np.testing.assert_allclose(x.grad.data, e / (1 + e) ** 2, rtol=tol["rtol"], atol=max(tol["atol"], 1e-15))
    else:
        m = big.max(axis=-1, keepdims=True)
        lse = m + np.log(np.exp(big - m).sum(axis=-1, keepdims=True))
        softmax = np.exp(big - lse)
        expected, grad = {
            "log_softmax": (big - lse, 1.0 - softmax * big.shape[-1]),
            "softmax": (softmax, np.zeros_like(big)),
            "logsumexp": (lse[:, 0], softmax),
        }[name]
        np.testing.assert_allclose(out.data, expected, **tol)
        atol = max(tol["atol"], 1e-15)
        if name == "logsumexp" and dtype == np.float32:
            # its backward is exp(x - out), as torch's: out = 1000.69.. is rounded at the scale of x
            # (half an ulp of 1e3 is 3e-5 in float32), and that rounding enters the gradient
            atol = 5e-5
        np.testing.assert_allclose(x.grad.data, grad, rtol=tol["rtol"], atol=atol)


@pytest.mark.parametrize("value", [1e3, -1e3])
def test_sigmoid_extremes(value):
    x = leaf([value])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.sigmoid()
        y.backward(np.ones(1))
    if value > 0:
        assert y.data[0] == 1.0
    else:  # 0, or the engine's documented floor of ~1e-308 below x = -709
        assert 0.0 <= y.data[0] <= 1e-300
    assert 0.0 <= x.grad.data[0] <= 1e-300


# ---- documented subgradients -------------------------------------------------------------------------------------


def test_subgradients_at_zero():
    x = leaf([0.0, 0.0])
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    x.grad = None
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])
    x.grad = None
    tl.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_piecewise_gradients_away_from_kinks():
    x = leaf([-2.0, -0.5, 0.5, 2.0])
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 1, 1])
    x.grad = None
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1, -1, 1, 1])
    x.grad = None
    x.leaky_relu(0.1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.1, 0.1, 1, 1])
    x.grad = None
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 0])
