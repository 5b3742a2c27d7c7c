"""Every op: forward equals numpy's, backward passes gradcheck (float64, default tolerances) over drawn shapes,
broadcasting pairs and size-1 axes, and gradgradcheck where the second derivative exists."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lab as tl
from tinygrad_lab import testing as tt
from tinygrad_lab.testing import gradcheck, gradgradcheck

Tensor = tl.Tensor

# Sizes stay small: a full Jacobian costs two evaluations per input element (and gradgradcheck doubles
# the inputs and differentiates a recorded backward).
SMALL = tt.shapes(max_dims=3, max_side=3)
PAIRS = tt.broadcastable_shapes(2, max_dims=3, max_side=3)
GG = settings(max_examples=12)  # tests that also run gradgradcheck


def leaf(a):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, *inputs, second=True):
    """gradcheck (and gradgradcheck) with the toolkit's defaults: eps 1e-6, atol 1e-5, rtol 1e-3."""
    assert gradcheck(fn, inputs)
    if second:
        assert gradgradcheck(fn, inputs)


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
@given(data=st.data(), shape=SMALL)
def test_transpose_permute_T(data, shape):
    x = data.draw(tt.arrays(shape))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    t = leaf(x)
    np.testing.assert_array_equal(t.transpose(*axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.permute(*axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.permute(axes).data, x.transpose(axes))
    np.testing.assert_array_equal(t.transpose().data, x.T)
    np.testing.assert_array_equal(t.T.data, x.T)
    check(lambda u: u.transpose(*axes), t)
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
        np.testing.assert_array_equal(out.data, reference(np.asarray(left), np.asarray(right)))


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
