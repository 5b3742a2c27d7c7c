"""The gradient-check toolkit itself: it must pass correct code and catch wrong code, with a useful message."""

import re
import warnings

import numpy as np
import pytest
from engine_helpers import leaf
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import tinygrad_lab as tl
from tinygrad_lab import nn
from tinygrad_lab import testing as tt
from tinygrad_lab.testing import GradcheckError, gradcheck, gradgradcheck, numerical_jacobian

Tensor = tl.Tensor


# ---- numerical_jacobian ------------------------------------------------------------------------------------------


def test_numerical_jacobian_exact_on_linear_map():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 3))
    B = rng.standard_normal((4, 2))
    x, y = leaf(rng.standard_normal(3)), leaf(rng.standard_normal(2))
    jac = numerical_jacobian(lambda u, v: A @ u + B @ v, [x, y])
    # central differences are exact for a linear map up to rounding (~1e-16 / eps)
    np.testing.assert_allclose(jac[0][0], A, rtol=0, atol=1e-8)
    np.testing.assert_allclose(jac[1][0], B, rtol=0, atol=1e-8)


def test_numerical_jacobian_layout_for_several_outputs_and_constant_inputs():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    c = Tensor([10.0, 20.0])  # does not require grad: no Jacobian
    jac = numerical_jacobian(lambda u, k: (u.sum(axis=0) * k, u * 3.0), [x, c])
    assert jac[1] is None
    assert jac[0][0].shape == (2, 4) and jac[0][1].shape == (4, 4)
    np.testing.assert_allclose(jac[0][0], [[10, 0, 10, 0], [0, 20, 0, 20]], atol=1e-6)
    np.testing.assert_allclose(jac[0][1], 3 * np.eye(4), atol=1e-7)


def test_numerical_jacobian_steps_the_callers_tensor_and_restores_it():
    """fn gets the caller's tensor itself, as in torch, and afterwards it holds its own array and values again."""
    data = np.array([0.5, -1.25, 3.0])
    x = leaf(data)
    before_array = x.data
    snapshot = x.data.copy()
    seen = []

    def fn(u):
        seen.append(u)
        return u.exp()

    numerical_jacobian(fn, [x])
    assert x.data is before_array
    np.testing.assert_array_equal(x.data, snapshot)
    assert x.grad is None
    assert seen and all(u is x for u in seen)


def test_numerical_jacobian_restores_the_input_when_fn_raises():
    x = Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    before_array, snapshot = x.data, x.data.copy()
    calls = []

    def fn(u):
        calls.append(1)
        if len(calls) == 2:  # on the step down of element 0, with the input perturbed
            raise RuntimeError("boom")
        return u * 2.0

    with pytest.raises(RuntimeError, match="boom"):
        numerical_jacobian(fn, [x])
    assert x.data is before_array and x.dtype == np.float32
    np.testing.assert_array_equal(x.data, snapshot)


def test_numerical_jacobian_in_float64_for_float32_inputs():
    x = Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    jac = numerical_jacobian(lambda u: u * u, [x])
    # float32 arithmetic with eps=1e-6 would be off by ~10%; in float64 the difference quotient is exact to ~1e-9
    np.testing.assert_allclose(jac[0][0], np.diag([2.0, 4.0]), atol=1e-6)


# ---- gradcheck ---------------------------------------------------------------------------------------------------


class Cube(tl.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3.0 * x * x


class MulAdd(tl.Function):
    """a * b + a, correct."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b + a

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * (b + 1.0), grad * a


class WrongMulAdd(tl.Function):
    """a * b + a, with the gradient for b wrong by +1 at element 2 only."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b + a

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        bump = np.zeros(np.shape(a))
        bump.flat[2] = 1.0
        return grad * (b + 1.0), grad * (a + bump)


def test_gradcheck_passes_correct_functions():
    rng = np.random.default_rng(0)
    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 3)))
    assert gradcheck(Cube.apply, [a]) is True
    assert gradcheck(MulAdd.apply, [a, b]) is True
    assert gradcheck(MulAdd.apply, [a, b], fast_mode=True) is True
    assert gradcheck(lambda u, v: (u * v).sigmoid().sum(axis=0), [a, b]) is True


def _wrong_case():
    a = leaf([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    b = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    # outputs: 0 is correct, 1 has the wrong gradient with respect to input 1 (b)
    return (lambda u, v: (u * 2.0, WrongMulAdd.apply(u, v))), [a, b]


def test_gradcheck_catches_wrong_function_with_a_precise_message():
    fn, inputs = _wrong_case()
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, inputs)
    message = str(info.value)
    assert "output 1" in message and "input 1" in message
    # the bump sits on input element 2 of b, and affects output element 2 only
    assert "output element 2" in message and "input element 2" in message
    a = inputs[0].data.ravel()
    true, wrong = float(a[2]), float(a[2]) + 1.0  # d out[2] / d b[2]
    assert f"analytical {wrong!r}" in message
    numerical = float(re.search(r"numerical (\S+);", message).group(1))
    assert numerical == pytest.approx(true, abs=1e-8)
    abs_err = float(re.search(r"absolute error (\S+),", message).group(1))
    rel_err = float(re.search(r"relative error (\S+) ", message).group(1))
    assert abs_err == pytest.approx(1.0, rel=1e-3)
    assert rel_err == pytest.approx(1.0 / abs(true), rel=1e-3)
    assert "atol=1e-05" in message and "rtol=0.001" in message
    # excerpts of both Jacobians
    assert "analytical rows" in message and "numerical rows" in message


def test_gradcheck_raise_exception_false_returns_false():
    fn, inputs = _wrong_case()
    assert gradcheck(fn, inputs, raise_exception=False) is False
    assert gradcheck(fn, inputs, raise_exception=False, fast_mode=True) is False
    assert gradcheck(MulAdd.apply, inputs, raise_exception=False) is True


def test_gradcheck_fast_mode_catches_wrong_function():
    fn, inputs = _wrong_case()
    with pytest.raises(GradcheckError, match="fast mode") as info:
        gradcheck(fn, inputs, fast_mode=True)
    assert "output 1" in str(info.value) and "input 1" in str(info.value)
    for seed in range(5):
        assert gradcheck(fn, inputs, fast_mode=True, seed=seed, raise_exception=False) is False


def test_gradcheck_catches_missing_gradient():
    class Detached(tl.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return None  # claims no gradient

    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(Detached.apply, [leaf([1.0, 2.0])])


def test_gradcheck_respects_tolerances():
    class SlightlyOff(tl.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0 * (1 + 1e-4)  # relative error 1e-4: inside rtol=1e-3, outside rtol=1e-5

    x = leaf([1.0, 2.0])
    assert gradcheck(SlightlyOff.apply, [x])
    assert not gradcheck(SlightlyOff.apply, [x], rtol=1e-5, atol=0.0, raise_exception=False)


def test_aliased_inputs_are_checked_as_torch_checks_them():
    """The same tensor in two slots: each slot's numerical derivative moves both, and so does autograd's."""
    x = leaf([0.3, -1.2, 2.0])
    assert gradcheck(lambda p, q: p * q, [x, x])
    assert gradcheck(lambda p, q: p * q, [x, x], fast_mode=True)
    assert gradgradcheck(lambda p, q: p * q, [x, x])
    jac = numerical_jacobian(lambda p, q: p * q, [x, x])
    np.testing.assert_allclose(jac[0][0], np.diag(2 * x.data), atol=1e-8)
    np.testing.assert_allclose(jac[1][0], np.diag(2 * x.data), atol=1e-8)


def test_a_modules_parameters_are_checked_through_a_closure():
    """The usual way to check a layer: fn ignores its arguments and calls the module, which reads its own
    parameters; a wrong backward inside it is still caught."""
    lin = nn.Linear(3, 2)
    inp = tl.tensor(np.random.default_rng(0).standard_normal((4, 3)))
    assert gradcheck(lambda w, b: lin(inp).tanh(), [lin.weight, lin.bias])
    assert gradcheck(lambda w, b: lin(inp).tanh(), [lin.weight, lin.bias], fast_mode=True)
    assert gradgradcheck(lambda w, b: lin(inp).tanh(), [lin.weight, lin.bias])
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda w, b: WrongMulAdd.apply(lin(inp), b.reshape(1, 2) * 1.0), [lin.weight, lin.bias])


def test_a_mismatch_against_a_numerical_zero_gives_the_absolute_error():
    class Phantom(tl.Function):
        """Zero, with a backward that claims slope 1."""

        @staticmethod
        def forward(ctx, a):
            return a * 0.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 1.0

    with pytest.raises(GradcheckError) as info:
        gradcheck(Phantom.apply, [leaf([1.0, 2.0])])
    message = str(info.value)
    assert "analytical 1.0, numerical 0.0; absolute error 1.000e+00 against a numerical value of 0 " in message
    assert "relative error" not in message


def test_gradcheck_with_no_differentiable_input_fails():
    with pytest.raises(GradcheckError, match="requires_grad"):
        gradcheck(lambda u: u * 2.0, [Tensor([1.0])])


def test_gradcheck_warns_on_float32_input():
    """The finite differences are float64 whatever the input's dtype; only backward's side is float32."""
    x = Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    with pytest.warns(UserWarning, match="float32") as caught:
        gradcheck(lambda u: u * 2.0, [x])
    message = str(caught[0].message)
    assert "finite differences are taken on a float64 copy" in message and "inaccurate" not in message
    assert "backward's gradients are float32, rounded to about 1e-07 relative" in message


def test_gradcheck_silent_on_float64_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(lambda u: u * 2.0, [leaf([1.0, 2.0])])


# ---- gradgradcheck ----------------------------------------------------------------------------------------------


class SquareFrozen(tl.Function):
    """x**2 whose backward uses a constant copy of x: right first derivative, second derivative lost."""

    @staticmethod
    def forward(ctx, x):
        ctx.frozen = np.array(x, copy=True)  # not a saved tensor: create_graph cannot differentiate it
        return x * x

    @staticmethod
    def backward(ctx, grad):
        return grad * 2.0 * ctx.frozen


class SquareProper(tl.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2.0 * x


def test_gradgradcheck_catches_wrong_second_derivative():
    x = leaf([0.5, -1.5, 2.0])
    assert gradcheck(SquareFrozen.apply, [x])  # first order looks right
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(SquareFrozen.apply, [x])
    assert gradgradcheck(SquareFrozen.apply, [x], raise_exception=False) is False
    assert gradgradcheck(SquareFrozen.apply, [x], fast_mode=True, raise_exception=False) is False


def test_gradgradcheck_passes_correct_functions():
    x = leaf([0.5, -1.5, 2.0])
    assert gradgradcheck(SquareProper.apply, [x])
    assert gradgradcheck(Cube.apply, [x])
    assert gradgradcheck(Cube.apply, [x], fast_mode=True)
    y = leaf([1.0, 2.0, 3.0])
    assert gradgradcheck(MulAdd.apply, [x, y])
    assert gradgradcheck(MulAdd.apply, [x, y], grad_outputs=[leaf([1.0, -1.0, 0.5])])


# ---- hypothesis strategies ---------------------------------------------------------------------------------------


@given(shape=tt.shapes())
def test_shapes_default_bounds(shape):
    assert isinstance(shape, tuple)
    assert 0 <= len(shape) <= 3
    assert all(isinstance(s, int) and 1 <= s <= 4 for s in shape)


@given(shape=tt.shapes(min_dims=2, max_dims=4, min_side=2, max_side=3))
def test_shapes_custom_bounds(shape):
    assert 2 <= len(shape) <= 4 and all(2 <= s <= 3 for s in shape)


def test_shapes_reach_scalars_and_size_one_axes():
    for wanted in (lambda s: len(s) == 0, lambda s: len(s) == 3 and 1 in s, lambda s: len(s) == 3 and 4 in s):
        find(tt.shapes(), wanted)  # raises NoSuchExample when the strategy cannot produce such a shape


def test_broadcastable_shapes_reach_real_broadcasting():
    find(tt.broadcastable_shapes(2), lambda s: len(s[0]) != len(s[1]))
    find(tt.broadcastable_shapes(2), lambda s: any(a == 1 and b > 1 for a, b in zip(s[0][::-1], s[1][::-1])))


@pytest.mark.parametrize("n", [2, 3])
@given(data=st.data())
def test_broadcastable_shapes_broadcast(n, data):
    shapes = data.draw(tt.broadcastable_shapes(n))
    assert isinstance(shapes, tuple) and len(shapes) == n
    assert all(isinstance(s, tuple) and len(s) <= 3 and all(1 <= d <= 4 for d in s) for s in shapes)
    target = np.broadcast_shapes(*shapes)  # raises if they do not broadcast
    arrays = [np.zeros(s) for s in shapes]
    assert np.broadcast(*arrays).shape == target


@settings(max_examples=50)
@given(a=tt.arrays(tt.shapes(max_dims=2, max_side=6), distinct=True))
def test_distinct_arrays_have_gaps(a):
    assert a.dtype == np.float64
    values = np.sort(a.ravel())
    if values.size > 1:
        assert np.diff(values).min() >= 1e-2


@given(a=tt.arrays((3, 4), distinct=True))
def test_distinct_arrays_have_the_shape(a):
    assert a.shape == (3, 4)


def test_distinct_arrays_are_spaced_by_the_gap_not_more():
    """The gap is the documented least spacing: draws reach it, and every value stays in the elements' bounds."""
    find(tt.arrays((8,), distinct=True), lambda a: np.diff(np.sort(a)).min() < 1.5e-2)
    find(tt.arrays((2,), distinct=True, gap=0.5), lambda a: abs(a[0] - a[1]) < 0.6)
    find(tt.arrays((3,), distinct=True), lambda a: a.max() > 2.9 and a.min() < -2.9)  # the whole of [-3, 3]
    for spaced in [tt.arrays((3,), distinct=True), tt.arrays((2,), distinct=True, gap=0.5)]:
        with pytest.raises(NoSuchExample):
            find(spaced, lambda a: not ((-3.0 <= a) & (a <= 3.0)).all(), settings=settings(max_examples=300))


def test_a_single_point_domain_holds_one_value_or_any_number_with_gap_0():
    assert find(tt.arrays((1,), tt.elements(0.0, 0.0), distinct=True, gap=0), lambda a: True).tolist() == [0.0]
    assert find(tt.arrays((1,), tt.elements(2.0, 2.0), distinct=True), lambda a: True).tolist() == [2.0]
    assert find(tt.arrays((3,), tt.elements(0.5, 0.5), distinct=True, gap=0), lambda a: True).tolist() == [0.5] * 3
    with pytest.raises(ValueError, match=r"2 values 0\.01 apart do not fit in \[0\.0, 0\.0\]"):
        find(tt.arrays((2,), tt.elements(0.0, 0.0), distinct=True), lambda a: True)


@settings(max_examples=50)
@given(a=tt.arrays(tt.shapes(max_dims=2, max_side=6), tt.positive_elements(), distinct=True))
def test_distinct_arrays_keep_to_the_elements_bounds(a):
    assert (a >= 0.1).all() and (a <= 3.0).all()
    if a.size > 1:
        assert np.diff(np.sort(a.ravel())).min() >= 1e-2


@settings(max_examples=50)
@given(
    t=tt.tensors(tt.shapes(max_dims=2, max_side=6), tt.elements(-1.0, 2.0, away_from=0.5, margin=0.2), distinct=True)
)
def test_distinct_tensors_keep_away_from_the_excluded_point(t):
    assert (t.data >= -1.0).all() and (t.data <= 2.0).all() and (np.abs(t.data - 0.5) >= 0.2).all()
    if t.size > 1:
        assert np.diff(np.sort(t.data.ravel())).min() >= 1e-2


def test_distinct_draws_reach_both_sides_of_the_excluded_point():
    find(tt.arrays((2,), tt.elements(away_from=0.0), distinct=True), lambda a: a.min() < 0 < a.max())


def test_distinct_draws_refuse_what_they_cannot_honour():
    with pytest.raises(ValueError, match=r"cannot know those of floats\(min_value=0\.5, max_value=2\.0\)"):
        tt.arrays((3,), st.floats(0.5, 2.0), distinct=True)
    with pytest.raises(ValueError, match=r"20 values 0\.01 apart do not fit in \[-0\.1, 0\.1\] without the 0\.01"):
        find(tt.arrays((20,), tt.elements(-0.1, 0.1, away_from=0.0), distinct=True), lambda a: True)


@pytest.mark.parametrize("distinct", [False, True])
def test_an_int_shape_is_one_axis_as_in_numpy(distinct):
    assert find(tt.arrays(3, distinct=distinct), lambda a: True).shape == (3,)
    assert find(tt.tensors(np.int64(4), distinct=distinct), lambda t: True).shape == (4,)


@settings(max_examples=200)
@given(v=tt.elements(away_from=0.0))
def test_elements_away_from_zero(v):
    assert isinstance(v, float) and np.isfinite(v)
    assert abs(v) >= 1e-2 and -3.0 <= v <= 3.0


@settings(max_examples=200)
@given(v=tt.elements(-1.0, 2.0, away_from=1.0, margin=0.1))
def test_elements_away_from_other_point(v):
    assert -1.0 <= v <= 2.0 and abs(v - 1.0) >= 0.1


@settings(max_examples=200)
@given(v=tt.positive_elements())
def test_positive_elements(v):
    assert v >= 0.1 and v <= 3.0


@given(a=tt.arrays(tt.shapes(), tt.positive_elements()))
def test_arrays_with_elements(a):
    assert a.dtype == np.float64 and (a >= 0.1).all() and (a <= 3.0).all()


@given(a=tt.arrays((2, 5)))
def test_arrays_default_elements_are_finite_and_bounded(a):
    assert a.shape == (2, 5) and np.isfinite(a).all() and (np.abs(a) <= 3.0).all()


@given(t=tt.tensors())
def test_tensors(t):
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float64 and t.is_leaf
    assert len(t.shape) <= 3


@given(t=tt.tensors((2, 3), tt.positive_elements(), requires_grad=False, distinct=False))
def test_tensors_with_arguments(t):
    assert t.shape == (2, 3) and not t.requires_grad and (t.data >= 0.1).all()


@settings(max_examples=10)
@given(t=tt.tensors(tt.shapes(max_dims=2, max_side=3), distinct=True))
def test_strategies_feed_gradcheck(t):
    assert gradcheck(lambda u: u.max(axis=-1) if u.ndim else u * 1.0, [t])


@pytest.mark.parametrize("shape", [(2, 3), (1, 3), (4,)])
def test_one_tensor_is_one_input_as_torch_gradcheck_takes_it(shape):
    """Not a sequence of rows: fn gets the whole tensor, a wrong backward is still caught."""
    x = leaf(np.random.default_rng(0).standard_normal(shape))
    seen = []

    def square(a):
        seen.append(a.shape)
        return a * a

    assert gradcheck(square, x) and gradgradcheck(square, x)
    assert set(seen) == {shape}
    assert tt.numerical_jacobian(square, x)[0][0].shape == (x.size, x.size)

    constant = tl.tensor(np.ones(shape))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):  # a gradient wrong at one element
        gradcheck(lambda b: WrongMulAdd.apply(constant, b), x)


@pytest.mark.parametrize(
    "fn, returned",
    [
        (lambda a: float(a.sum().item()), "float, and it is a float"),
        (lambda a: a.numpy() * 2, "ndarray, and it is a ndarray"),
        (lambda a: (a * 2, a.sum().item()), "tuple, and output 1 is a float"),
    ],
)
@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_a_function_that_leaves_the_graph_is_one_sentence(check, fn, returned):
    message = f"gradcheck: the function returned {returned}, not a Tensor: it left the graph"
    with pytest.raises(TypeError, match=message):
        check(fn, [leaf(np.ones(3))])
