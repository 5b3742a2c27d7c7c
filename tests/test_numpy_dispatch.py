"""numpy functions on Tensors (tinygrad_lab/numpy_dispatch.py): every supported ufunc and array function gives
the values and gradients of the Tensor op it maps to, the rest raise with the function's name, ndarrays and
Tensors mix in both orders, the lab's own numpy code is differentiated exactly, and tl.compile captures it."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lab as tl
from tinygrad_lab import optim
from tinygrad_lab.lab import reference
from tinygrad_lab.testing import arrays, broadcastable_shapes, elements, gradcheck, positive_elements, shapes

Tensor = tl.Tensor


def _grads_of(fn, *values):
    """fn's output and the gradients of sum(out * u) for a fixed random u: one vector-Jacobian product."""
    ts = [Tensor(v, requires_grad=True) for v in values]
    out = fn(*ts)
    assert isinstance(out, Tensor) and out.requires_grad
    u = np.random.default_rng(0).standard_normal(out.shape)
    (out * u).sum().backward()
    return out.data, [t.grad.data for t in ts]


def assert_same(np_fn, method, *values):
    """np_fn on Tensors gives exactly what the Tensor method gives: values and gradients."""
    out_np, grads_np = _grads_of(np_fn, *values)
    out_m, grads_m = _grads_of(method, *values)
    np.testing.assert_array_equal(out_np, out_m)
    for g_np, g_m in zip(grads_np, grads_m):
        np.testing.assert_array_equal(g_np, g_m)


# ---- ufuncs ----------------------------------------------------------------------------------------------------------
ANYWHERE, POSITIVE, NONZERO = elements(), positive_elements(), elements(away_from=0.0, margin=0.1)

UNARY = [
    (np.exp, lambda t: t.exp(), ANYWHERE),
    (np.log, lambda t: t.log(), POSITIVE),
    (np.sqrt, lambda t: t.sqrt(), POSITIVE),
    (np.tanh, lambda t: t.tanh(), ANYWHERE),
    (np.abs, lambda t: t.abs(), NONZERO),
    (np.negative, lambda t: -t, ANYWHERE),
    (np.positive, lambda t: +t, ANYWHERE),
    (np.square, lambda t: t**2, ANYWHERE),
    (np.reciprocal, lambda t: 1.0 / t, NONZERO),
]
BINARY = [
    (np.add, lambda a, b: a + b, ANYWHERE),
    (np.subtract, lambda a, b: a - b, ANYWHERE),
    (np.multiply, lambda a, b: a * b, ANYWHERE),
    (np.divide, lambda a, b: a / b, NONZERO),
    (np.power, lambda a, b: a**b, POSITIVE),
    (np.maximum, tl.maximum, ANYWHERE),
    (np.minimum, tl.minimum, ANYWHERE),
]


@pytest.mark.parametrize("np_fn, method, values", UNARY, ids=[u[0].__name__ for u in UNARY])
@given(data=st.data())
def test_unary_ufuncs_are_the_tensor_ops(np_fn, method, values, data):
    x = data.draw(arrays(shapes(), values))
    assert_same(np_fn, method, x)


@pytest.mark.parametrize("np_fn, method, values", BINARY, ids=[b[0].__name__ for b in BINARY])
@given(data=st.data())
def test_binary_ufuncs_broadcast_and_are_the_tensor_ops(np_fn, method, values, data):
    shape_a, shape_b = data.draw(broadcastable_shapes())
    a, b = data.draw(arrays(shape_a, values)), data.draw(arrays(shape_b, values))
    assert_same(np_fn, method, a, b)


@pytest.mark.parametrize("np_fn, method, values", BINARY, ids=[b[0].__name__ for b in BINARY])
def test_ndarray_and_tensor_mix_in_both_orders(np_fn, method, values):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (4,))
    expected = np_fn(a, b)
    for left, right in [(a, Tensor(b)), (Tensor(a), b), (Tensor(a), Tensor(b))]:
        out = np_fn(left, right)
        assert isinstance(out, Tensor)
        np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_ndarray_operators_with_a_tensor_on_the_right_give_tensors_in_the_graph(op):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (4, 4) if op == "@" else (4,))
    w = Tensor(b, requires_grad=True)
    out = eval(f"a {op} w", {"a": a, "w": w})
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_array_equal(out.data, eval(f"a {op} b", {"a": a, "b": b}))
    out.sum().backward()
    assert w.grad is not None and w.grad.shape == b.shape


@given(data=st.data())
def test_matmul_of_drawn_shapes_is_the_tensor_op(data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    batch = data.draw(st.sampled_from([(), (2,), (1, 3)]))
    a_shape = data.draw(st.sampled_from([(k,), batch + (n, k)]))
    b_shape = data.draw(st.sampled_from([(k,), (k, m), batch + (k, m)]))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    assert_same(np.matmul, lambda x, y: x @ y, a, b)


def test_numpy_scalars_stay_weak_in_type_promotion():
    t = Tensor(np.ones(3, dtype=np.float32))
    two = np.float64(2.0)
    for out in [
        t * two,
        two * t,
        np.multiply(t, two),
        np.multiply(two, t),
        np.add(two, t),
        np.power(t, two),
        np.maximum(t, two),
        t - np.float64(1.0),
        np.float64(1.0) - t,
        np.clip(t, np.float64(0.0), two),
        np.where(t > 0, t, two),
        np.dot(t, two),
        np.power(two, t),
    ]:
        assert isinstance(out, Tensor) and out.dtype == np.float32


def test_comparisons_and_rounding_give_tensors_outside_the_graph():
    x = np.array([[-1.5, 0.0, 2.5]])
    t = Tensor(x, requires_grad=True)
    for np_fn in [np.greater, np.less_equal, np.equal, np.not_equal]:
        for out, expected in [(np_fn(t, 0.0), np_fn(x, 0.0)), (np_fn(0.0, t), np_fn(0.0, x))]:
            assert isinstance(out, Tensor) and not out.requires_grad and out.dtype == bool
            np.testing.assert_array_equal(out.data, expected)
    for np_fn in [np.sign, np.floor, np.isnan, np.round, np.isfinite]:
        out = np_fn(t)
        assert isinstance(out, Tensor) and not out.requires_grad
        np.testing.assert_array_equal(out.data, np_fn(x))
    np.testing.assert_array_equal((x > t).data, x > x)  # ndarray on the left: also a Tensor
    assert np.logical_and(t > -1, t < 1).data.tolist() == [[False, True, False]]


def test_numpy_code_that_fills_a_zeros_like_buffer_is_differentiated():
    """np.zeros_like(t) and its kin are Tensors outside the graph, so item assignment into them is recorded."""
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    for make, value in [(np.zeros_like, 0.0), (np.ones_like, 1.0), (lambda a: np.full_like(a, 7.0), 7.0)]:
        buffer = make(t)
        assert isinstance(buffer, Tensor) and not buffer.requires_grad
        np.testing.assert_array_equal(buffer.data, np.full((2, 2), value))
    assert isinstance(np.empty_like(t), Tensor) and np.empty_like(t).shape == (2, 2)
    out = np.zeros_like(t)
    for i in range(2):
        out[i] = t[i] ** 2
    np.sum(out).backward()
    np.testing.assert_array_equal(t.grad.data, 2 * t.data)


def test_queries_give_numpys_own_answers():
    x = np.array([[3.0, 1.0], [2.0, 5.0]])
    t = Tensor(x, requires_grad=True)
    assert np.shape(t) == (2, 2) and np.ndim(t) == 2 and np.size(t) == 4
    assert np.argmax(t) == 3 and np.argmin(t, axis=1).tolist() == [1, 0]
    assert np.allclose(t, x) and np.array_equal(t, x)
    assert [i.tolist() for i in np.where(t > 2)] == [[0, 1], [0, 1]]


# ---- array functions -------------------------------------------------------------------------------------------------
@st.composite
def array_and_axis(draw, distinct=False, min_side=1):
    x = draw(arrays(shapes(min_dims=1, min_side=min_side), distinct=distinct))
    axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "amax", "amin", "var", "std"])
@given(case=st.data())
def test_reductions_take_numpys_arguments(name, case):
    x, axis, keepdims = case.draw(
        array_and_axis(distinct=name in ("max", "min", "amax", "amin"), min_side=2 if name in ("var", "std") else 1)
    )  # std' is finite
    np_fn = getattr(np, name)
    method = {"amax": "max", "amin": "min"}.get(name, name)
    if name in ("var", "std"):
        x = x + 10.0 * np.arange(x.size).reshape(x.shape)  # spread along every axis: std has a finite slope
        ddof = case.draw(st.sampled_from([0, 1]))
        std = (lambda v: v.sqrt()) if name == "std" else (lambda v: v)
        assert_same(
            lambda t: np_fn(t, axis=axis, keepdims=keepdims, ddof=ddof),
            lambda t: std(t.var(axis=axis, keepdims=keepdims, ddof=ddof)),
            x,
        )
        np.testing.assert_allclose(
            np_fn(Tensor(x), axis=axis, keepdims=keepdims, ddof=ddof).data,
            np_fn(x, axis=axis, keepdims=keepdims, ddof=ddof),
            rtol=1e-12,
            atol=1e-12,
        )
        return
    assert_same(
        lambda t: np_fn(t, axis=axis, keepdims=keepdims), lambda t: getattr(t, method)(axis=axis, keepdims=keepdims), x
    )
    np.testing.assert_allclose(
        np_fn(Tensor(x), axis, keepdims=keepdims).data, np_fn(x, axis, keepdims=keepdims), rtol=1e-12
    )


SHAPE_FUNCTIONS = [
    ("transpose", lambda t: np.transpose(t), lambda t: t.transpose()),
    ("transpose axes", lambda t: np.transpose(t, axes=(1, 0, 2)), lambda t: t.permute(1, 0, 2)),
    ("reshape", lambda t: np.reshape(t, (4, 3, 1)), lambda t: t.reshape(4, 3, 1)),
    ("reshape shape=", lambda t: np.reshape(t, shape=(-1,)), lambda t: t.reshape(-1)),
    ("ravel", lambda t: np.ravel(t), lambda t: t.flatten()),
    ("squeeze", lambda t: np.squeeze(t, axis=2), lambda t: t.squeeze(2)),
    ("expand_dims", lambda t: np.expand_dims(t, axis=(0, -1)), lambda t: t.unsqueeze(0).unsqueeze(-1)),
    ("broadcast_to", lambda t: np.broadcast_to(t, (5, 2, 6, 1)), lambda t: t.broadcast_to((5, 2, 6, 1))),
    ("swapaxes", lambda t: np.swapaxes(t, 0, 1), lambda t: t.swapaxes(0, 1)),
    ("copy", lambda t: np.copy(t), lambda t: t.clone()),
    ("clip", lambda t: np.clip(t, -0.5, 0.5), lambda t: t.clip(-0.5, 0.5)),
    ("clip min/max", lambda t: np.clip(t, min=-0.5, max=None), lambda t: t.clip(-0.5, None)),
    ("concatenate", lambda t: np.concatenate([t, 2 * t], axis=1), lambda t: tl.cat([t, 2 * t], axis=1)),
    ("concatenate None", lambda t: np.concatenate([t, t], axis=None), lambda t: tl.cat([t.flatten()] * 2)),
    ("stack", lambda t: np.stack([t, t * t], axis=-1), lambda t: tl.stack([t, t * t], axis=-1)),
    ("where", lambda t: np.where(t > 0, t, 0.1 * t), lambda t: tl.where(t > 0, t, 0.1 * t)),
    ("dot", lambda t: np.dot(t.reshape(2, 6), t.reshape(6, 2)), lambda t: t.reshape(2, 6) @ t.reshape(6, 2)),
    ("dot scalar", lambda t: np.dot(t, 3.0), lambda t: t * 3.0),
    ("dot 3-d and 2-d", lambda t: np.dot(t, t.reshape(6, 2)[:1]), lambda t: t @ t.reshape(6, 2)[:1]),
    ("dot 3-d and 1-d", lambda t: np.dot(t, t[0, 0]), lambda t: t @ t[0, 0]),
    ("flip", lambda t: np.flip(t), lambda t: t.flip(0, 1, 2)),
    ("flip axis", lambda t: np.flip(t, 1), lambda t: t.flip(1)),
    ("roll", lambda t: np.roll(t, 2), lambda t: t.roll(2)),
    ("roll axes", lambda t: np.roll(t, 1, axis=(0, 1)), lambda t: t.roll((1, 1), (0, 1))),
    ("tile", lambda t: np.tile(t, (2, 1)), lambda t: t.repeat(1, 2, 1)),
    ("tril", lambda t: np.tril(t, -1), lambda t: t.tril(-1)),
    ("triu", lambda t: np.triu(t), lambda t: t.triu()),
    ("cumsum", lambda t: np.cumsum(t, axis=1), lambda t: t.cumsum(1)),
    ("cumsum flat", lambda t: np.cumsum(t), lambda t: t.reshape(-1).cumsum(0)),
]


@pytest.mark.parametrize("name, np_fn, method", SHAPE_FUNCTIONS, ids=[s[0] for s in SHAPE_FUNCTIONS])
def test_array_functions_are_the_tensor_ops(name, np_fn, method):
    x = np.random.default_rng(3).uniform(-1.0, 1.0, (2, 6, 1))
    x[np.abs(x) < 0.05] = 0.3  # away from the kinks of where and clip
    assert_same(np_fn, method, x)
    np.testing.assert_array_equal(np_fn(Tensor(x)).data, np_fn(x))  # and what numpy gives on arrays


def test_np_sort_gives_the_sorted_values_with_their_gradients():
    x = np.random.default_rng(5).permutation(12).reshape(3, 4) / 4.0  # distinct: no ties for finite differences
    for axis in (1, 0, None):
        np.testing.assert_array_equal(np.sort(Tensor(x), axis=axis).data, np.sort(x, axis=axis))
        assert gradcheck(lambda t, axis=axis: np.sort(t, axis=axis), [Tensor(x, requires_grad=True)])


GRADCHECKED = [(f, v) for f, _, v in UNARY] + [(f, v) for f, _, v in BINARY] + [(np.matmul, ANYWHERE)]


@pytest.mark.parametrize("np_fn, values", GRADCHECKED, ids=[g[0].__name__ for g in GRADCHECKED])
@given(data=st.data())
def test_numpy_dispatched_ufuncs_pass_gradcheck(np_fn, values, data):
    shape = data.draw(st.sampled_from([(3, 3), (3,)])) if np_fn is np.matmul else data.draw(shapes(max_dims=2))
    inputs = [Tensor(data.draw(arrays(shape, values)), requires_grad=True) for _ in range(np_fn.nin)]
    if np_fn in (np.maximum, np.minimum):  # no ties within reach of the finite differences
        inputs[1] = Tensor(inputs[0].data + data.draw(arrays(shape, NONZERO)), requires_grad=True)
    assert gradcheck(np_fn, inputs)


@pytest.mark.parametrize("name, np_fn, method", SHAPE_FUNCTIONS, ids=[s[0] for s in SHAPE_FUNCTIONS])
def test_numpy_dispatched_array_functions_pass_gradcheck(name, np_fn, method):
    x = np.random.default_rng(4).uniform(-1.0, 1.0, (2, 6, 1))
    x[np.abs(x) < 0.05] = 0.3
    x[np.abs(np.abs(x) - 0.5) < 0.05] = 0.3
    assert gradcheck(np_fn, [Tensor(x, requires_grad=True)])
    for np_red in [np.sum, np.mean, np.var, np.std, np.max]:  # over all elements: std of one element has no slope
        assert gradcheck(lambda t, np_red=np_red: np_red(np_fn(t)), [Tensor(x, requires_grad=True)])


# ---- what the graph cannot follow ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda t: np.linalg.svd(t), "np.linalg.svd"),
        (lambda t: np.linalg.norm(t), "np.linalg.norm"),
        (lambda t: np.cumprod(t), "np.cumprod"),
        (lambda t: np.median(t), "np.median"),
        (lambda t: np.sin(t), "np.sin"),
        (lambda t: np.add.reduce(t), "np.add.reduce"),
        (lambda t: np.exp(t, where=np.ones((2, 2), bool)), "np.exp(where="),
        (lambda t: np.sum(t, where=np.ones((2, 2), bool)), "np.sum(where="),
        (lambda t: np.dot(np.ones((2, 2, 2)), np.ones((2, 2, 2)) * t[0, 0]), "np.dot of 3-d and 3-d"),
    ],
)
def test_unsupported_functions_raise_naming_the_function_and_the_way_out(call, name):
    with pytest.raises(TypeError) as err:
        call(Tensor(np.eye(2), requires_grad=True))
    message = str(err.value)
    assert message.startswith(name) and "t.numpy()" in message and "t.detach()" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "call",
    [
        lambda t, a: np.add(t, 1.0, out=t),
        lambda t, a: np.exp(t, out=a),
        lambda t, a: np.multiply(a, a, out=t),
        lambda t, a: np.sum(t, out=a[0, 0:1]),
        lambda t, a: np.clip(t, 0, 1, out=a),
        lambda t, a: a.__iadd__(t),
        lambda t, a: a.__imul__(t),
        lambda t, a: a.__imatmul__(t),
    ],
)
def test_out_and_in_place_ufuncs_are_refused_and_write_nothing(call):
    t, a = Tensor(np.eye(2), requires_grad=True), np.full((2, 2), 7.0)
    with pytest.raises(TypeError, match=r"^np\.\w+: out= and in-place operators .*arr = arr \+ t"):
        call(t, a)
    assert (a == 7.0).all() and (t.data == np.eye(2)).all()


def test_augmented_assignment_of_an_array_with_a_tensor_is_refused():
    a, t = np.ones(3), Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="np.add: out="):
        a += t
    assert (a == 1.0).all()


# ---- the lab report's own code, verbatim -----------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def derivative_sigmoid(x):
    return np.multiply(x, 1.0 - x)


class Network:
    def __init__(self, w1, w2, w3):
        self.w1, self.w2, self.w3 = w1, w2, w3

    def forward(self, x):
        self.x = x
        self.z1 = sigmoid(x @ self.w1)
        self.z2 = sigmoid(self.z1 @ self.w2)
        self.z3 = sigmoid(self.z2 @ self.w3)
        self.pred_y = self.z3
        return self.pred_y


@st.composite
def lab_setups(draw):
    x_in, h1, h2, y_out = (draw(st.integers(1, 5)) for _ in range(4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    weights = [scale * rng.standard_normal(s) for s in [(x_in, h1), (h1, h2), (h2, y_out)]]
    batch = draw(st.integers(1, 12))
    return weights, rng.uniform(-1, 1, (batch, x_in)), rng.integers(0, 2, (batch, y_out)).astype(float)


def assert_close(actual, expected):
    """As tests/test_reference.py: rtol 1e-12, atol 1e-13 of the largest entry for entries that cancel."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-13 * float(np.abs(expected).max()) + 1e-300)


def rounding_bounds(ref, y):
    """The backprop of ref with every quantity replaced by a bound on its size and on its sensitivity to an ulp:
    two summation orders differ by a few ulps of the terms each gradient entry sums, not of the result (which
    cancels to almost nothing where sigmoids saturate), and z (1 - z) moves by about z ulps when z moves by one,
    however small 1 - z is."""
    dy = np.abs(reference.derivative_mse(y, ref.pred_y))

    def slope(z):
        return z * (1.0 - z) + z

    d3 = slope(ref.z3) * dy
    d2 = slope(ref.z2) * (d3 @ np.abs(ref.w3).T)
    d1 = slope(ref.z1) * (d2 @ np.abs(ref.w2).T)
    return np.abs(ref.x).T @ d1, ref.z1.T @ d2, ref.z2.T @ d3


@given(setup=lab_setups())
def test_the_lab_reports_numpy_code_is_differentiated_exactly(setup):
    weights, x, y = setup
    ws = [Tensor(w, requires_grad=True) for w in weights]
    net = Network(*ws)
    pred_y = net.forward(x)  # x an ndarray, the weights Tensors
    loss = np.mean((y - pred_y) ** 2)
    assert isinstance(loss, Tensor) and loss.shape == ()
    loss.backward()

    ref = reference.Network(weights=weights)
    ref_pred = ref.forward(x)
    expected = ref.backpropagation(y)
    assert_close(pred_y.data, ref_pred)
    assert_close(loss.item(), reference.mse(y, ref_pred))
    for w, g, bound in zip(ws, expected, rounding_bounds(ref, y)):
        np.testing.assert_array_less(np.abs(w.grad.data - g), 1e-12 * bound + 1e-300)
    for z, ref_z in [(net.z1, ref.z1), (net.z2, ref.z2), (net.z3, ref.z3)]:
        d = derivative_sigmoid(z)
        assert isinstance(d, Tensor)
        assert_close(d.data, reference.derivative_sigmoid(ref_z))


def test_tl_compile_captures_a_step_written_with_numpy_functions():
    rng = np.random.default_rng(5)
    x = rng.random((100, 2))
    y = (x[:, 0] < x[:, 1]).astype(float).reshape(-1, 1)
    start = [rng.standard_normal(s) for s in [(2, 4), (4, 4), (4, 1)]]

    def make():
        ws = [Tensor(w.copy(), requires_grad=True) for w in start]
        opt = optim.SGD(ws, lr=0.5)

        def step(x, y):
            opt.zero_grad()
            net = Network(*ws)
            pred_y = net.forward(x)
            loss = np.mean(np.square(y - pred_y)) + 1e-3 * np.sum(np.abs(np.concatenate([w.reshape(-1) for w in ws])))
            loss.backward()
            opt.step()
            return loss

        return ws, step

    ws_eager, eager = make()
    ws_compiled, step = make()
    compiled = tl.compile(step)
    for _ in range(30):
        assert_close(compiled(x, y).item(), eager(x, y).item())
    assert len(compiled._replays) == 1 and not compiled._eager_only  # the replay, not eager execution, did the work
    for w_c, w_e, w0 in zip(ws_compiled, ws_eager, start):
        assert_close(w_c.data, w_e.data)
        assert not np.array_equal(w_c.data, w0)


def test_np_squeeze_of_an_axis_larger_than_one_raises_as_numpy():
    t = tl.tensor(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"squeeze: axis 1 has size 3, not 1 \(shape \(1, 3\)\)"):
        np.squeeze(t, axis=1)
    with pytest.raises(ValueError):  # what numpy does with the same array
        np.squeeze(np.zeros((1, 3)), axis=1)
    assert np.squeeze(t, axis=0).shape == (3,)


def test_np_std_has_tensor_std_gradient_zero_where_the_spread_is_zero():
    t = tl.tensor([1.0, 1.0], requires_grad=True)
    np.std(t).backward()
    np.testing.assert_array_equal(t.grad.data, [0.0, 0.0])  # not sqrt'(0) = inf times 0
    x = tl.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert gradcheck(lambda a: np.std(a, ddof=1), [x])
    with pytest.raises(ValueError, match="np.std: ddof and correction can't be provided simultaneously"):
        np.std(x, ddof=1, correction=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: np.dot(t, [1.0, 2.0, 3.0, 4.0]),
        lambda t: [1.0, 2.0, 3.0] @ t,
        lambda t: np.matmul(t, [[1.0], [2.0], [3.0], [4.0]]),
        lambda t: np.concatenate([t[0], [1.0, 2.0]]),
        lambda t: np.clip(t[0], np.zeros((2, 4)), [[0.5], [2.0]]),
    ],
    ids=["dot", "rmatmul", "matmul", "concatenate", "clip to array bounds"],
)
def test_lists_and_broadcasting_bounds_work_as_in_numpy(call):
    values = np.arange(12.0).reshape(3, 4) / 10
    ours = call(tl.tensor(values))
    expected = call(values)  # numpy itself on the same arguments
    assert isinstance(ours, tl.Tensor) and ours.shape == expected.shape
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12)
    assert gradcheck(lambda a: call(a) * 1.5, [tl.tensor(values + 0.01, requires_grad=True)])


@pytest.mark.parametrize(
    "query",
    [
        lambda a: np.any(a > 0.5),
        lambda a: np.all(a > -1.0, axis=0),
        lambda a: np.count_nonzero(a > 0.5),
        lambda a: np.argsort(a, axis=1),
        lambda a: np.flatnonzero(a > 0.5),
        lambda a: np.array_equiv(a, a[0]),
    ],
    ids=["any", "all", "count_nonzero", "argsort", "flatnonzero", "array_equiv"],
)
def test_queries_give_numpys_own_result(query):
    """Booleans, counts and indices carry no gradient: numpy's answer on the values, as np.argmax gives."""
    values = np.array([[0.2, 0.9, 0.4], [0.7, 0.1, 0.6]])
    ours = query(tl.tensor(values, requires_grad=True))
    assert not isinstance(ours, tl.Tensor)
    np.testing.assert_array_equal(ours, query(values))


def test_calls_the_graph_cannot_follow_run_as_numpy_when_no_gradient_is_involved():
    """Refused only where a gradient would be dropped: w.data -= lr * w.grad (torch's idiom: the grad requires no
    grad), np.unique of a mask, np.cumprod of a constant, anything under no_grad; out= into a Tensor stays refused."""
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    (w * w).sum().backward()
    data = w.data
    w.data -= 0.1 * w.grad
    assert w.data is data and w.data.tolist() == [[0.8, 0.8], [0.8, 0.8]]
    p = Tensor(np.array([0.2, 0.7, 0.9]))
    assert np.unique(p > 0.5).tolist() == [False, True]
    np.testing.assert_array_equal(np.cumprod(p), np.cumprod(p.data))
    np.testing.assert_array_equal(np.sin(p), np.sin(p.data))
    with tl.no_grad():
        np.testing.assert_array_equal(np.cumprod(w), np.cumprod(w.data))
    with pytest.raises(TypeError, match="np.cumprod is not supported on Tensors"):
        np.cumprod(w)
    with pytest.raises(TypeError, match="out= and in-place operators"):
        np.add(p, 1.0, out=p)
    with pytest.raises(TypeError, match="out= and in-place operators"):
        data += w
