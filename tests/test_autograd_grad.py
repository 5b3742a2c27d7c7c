"""PyTorch's autograd semantics beyond one backward: higher order, tl.grad, anomaly detection, a user's
Function, and regressions."""

import sys
import warnings

import numpy as np
import pytest
from engine_helpers import leaf

import tinygrad_lab as tl
from tinygrad_lab.testing import gradcheck

Tensor = tl.Tensor


# ---- higher order ------------------------------------------------------------------------------------------------


def test_hessian_vector_product():
    x = leaf([0.5, -1.0, 2.0])
    v = np.array([1.0, 2.0, -0.5])
    f = (x**3).sum() + (x[0] * x[1] * x[2])
    (g,) = tl.grad(f, x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(
        g.data, 3 * x.data**2 + np.array([x.data[1] * x.data[2], x.data[0] * x.data[2], x.data[0] * x.data[1]])
    )
    (g * v).sum().backward()
    a, b, c = x.data
    hessian = np.diag(6 * x.data) + np.array([[0, c, b], [c, 0, a], [b, a, 0]])
    np.testing.assert_allclose(x.grad.data, hessian @ v, rtol=1e-14)


def test_backward_create_graph_then_differentiate_grad():
    x = leaf([0.3, 0.7])
    y = x.sigmoid().sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.grad_fn is not None
    (second,) = tl.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(second.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12)


def test_gradient_penalty():
    """loss = |d f / d x|^2 with f = sum(tanh(w * x)); the penalty's gradient w.r.t. w, against the formula."""
    x = leaf([0.5, -1.0, 1.5])
    w = leaf([0.8, 1.2, -0.4])
    f = (w * x).tanh().sum()
    (gx,) = tl.grad(f, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    # gx = w * sech^2(wx) =: w * s; d(gx^2)/dw = 2 gx * (s + w * x * ds/du), ds/du = -2 tanh(u) s
    u = w.data * x.data
    t = np.tanh(u)
    s = 1 - t**2
    gx_np = w.data * s
    np.testing.assert_allclose(gx.data, gx_np, rtol=1e-14)
    np.testing.assert_allclose(w.grad.data, 2 * gx_np * (s + w.data * x.data * (-2 * t * s)), rtol=1e-12)
    # x also got the penalty's gradient: d(gx^2)/dx = 2 gx * w * ds/du * w
    np.testing.assert_allclose(x.grad.data, 2 * gx_np * w.data * (-2 * t * s) * w.data, rtol=1e-12)


def test_third_derivative():
    x = leaf(0.7)
    y = x.exp() * x  # d3/dx3 (x e^x) = (x + 3) e^x
    (d1,) = tl.grad(y, x, create_graph=True)
    (d2,) = tl.grad(d1, x, create_graph=True)
    (d3,) = tl.grad(d2, x)
    assert d3.item() == pytest.approx((0.7 + 3) * np.exp(0.7), rel=1e-13)


# ---- tl.grad -----------------------------------------------------------------------------------------------------


def test_grad_returns_tuple_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    y = (x * w).sum()
    result = tl.grad(y, [x, w])
    assert isinstance(result, tuple) and len(result) == 2
    np.testing.assert_array_equal(result[0].data, w.data)
    np.testing.assert_array_equal(result[1].data, x.data)
    assert x.grad is None and w.grad is None
    assert not result[0].requires_grad
    (only,) = tl.grad((x * x).sum(), x)
    np.testing.assert_array_equal(only.data, 2 * x.data)


def test_grad_with_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0, 3.0])
    y1, y2 = x * x, x.exp()
    v1, v2 = np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.5, 0.5])
    (g,) = tl.grad([y1, y2], x, grad_outputs=[Tensor(v1), Tensor(v2)])
    np.testing.assert_allclose(g.data, v1 * 2 * x.data + v2 * np.exp(x.data), rtol=1e-15)
    (g,) = tl.grad(x * x, x, grad_outputs=Tensor(v1))
    np.testing.assert_array_equal(g.data, v1 * 2 * x.data)
    with pytest.raises(RuntimeError, match="single-element"):
        tl.grad(x * x, x)


def test_grad_outputs_as_ndarray():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = np.array([[1.0, -1.0], [0.5, 2.0]])
    (g,) = tl.grad(x * 3.0, x, grad_outputs=v)
    np.testing.assert_array_equal(g.data, 3.0 * v)
    (g,) = tl.grad([x * 3.0], [x], grad_outputs=[v])
    np.testing.assert_array_equal(g.data, 3.0 * v)
    with pytest.raises(RuntimeError, match="2 grad_outputs for 1 outputs"):
        tl.grad([x * 3.0], [x], grad_outputs=[v, v])


def test_grad_allow_unused():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tl.grad((x * 2.0).sum(), [x, unused], retain_graph=True)
    gx, gu = tl.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and gu is None


def test_grad_for_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = tl.grad(y, h)
    np.testing.assert_array_equal(gh.data, 2 * h.data)
    assert x.grad is None and h.grad is None


def test_grad_on_input_not_requiring_grad_is_an_error():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.grad((x * 2.0).sum(), Tensor([1.0]))


def test_grad_retain_graph_default_follows_create_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    tl.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tl.grad(y, x)
    y = (x * x).sum()
    tl.grad(y, x, create_graph=True)
    (g,) = tl.grad(y, x)  # kept by create_graph=True
    np.testing.assert_array_equal(g.data, 2 * x.data)


# ---- anomaly detection -------------------------------------------------------------------------------------------


def test_detect_anomaly_in_forward_names_op_and_line():
    x = leaf([1.0, -1.0])
    with np.errstate(invalid="ignore", divide="ignore"), tl.detect_anomaly():
        line = sys._getframe().f_lineno + 2
        with pytest.raises(FloatingPointError) as info:
            x.log()
    message = str(info.value)
    assert "Log" in message and "nan" in message
    assert f"{__file__}:{line}" in message


def test_detect_anomaly_in_backward_names_op_and_line():
    x = leaf([0.0, 4.0])
    with np.errstate(invalid="ignore", divide="ignore"), tl.detect_anomaly():
        line = sys._getframe().f_lineno + 1
        y = x.sqrt()
        y = y * 2.0
        with pytest.raises(FloatingPointError) as info:
            y.sum().backward()
    message = str(info.value)
    assert "Sqrt" in message and "inf" in message and "gradient" in message
    assert f"{__file__}:{line}" in message
    assert x.grad is None


def test_detect_anomaly_checks_the_gradients_of_a_recorded_backward_too():
    """Under create_graph the gradients are Tensors that require grad: the check reads their values."""
    x = leaf([1.0, 2.0, 3.0])
    with tl.detect_anomaly():
        (g,) = tl.grad((x * x * x).sum(), x, create_graph=True)
        assert g.requires_grad and g.tolist() == [3.0, 12.0, 27.0]
    y = leaf([0.0, 4.0])
    with np.errstate(invalid="ignore", divide="ignore"), tl.detect_anomaly():
        with pytest.raises(FloatingPointError, match="produced inf values"):
            tl.grad(y.sqrt().sum(), y, create_graph=True)


def test_detect_anomaly_as_decorator_and_restored():
    @tl.detect_anomaly()
    def bad(t):
        return t.log()

    x = leaf([-1.0])
    with np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match="Log"):
            bad(x)
        # outside the context: no error, the NaN just propagates
        y = x.log()
        assert np.isnan(y.data).all()
        y.sum().backward()
    assert x.grad.item() == -1.0


def test_no_anomaly_error_outside_the_context():
    x = leaf([0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.data).all()


def test_detect_anomaly_quiet_on_finite_values():
    x = leaf([0.5, 2.0])
    with tl.detect_anomaly():
        y = (x.log() * x.sqrt()).sum()
        y.backward()
    np.testing.assert_allclose(x.grad.data, np.sqrt(x.data) / x.data + np.log(x.data) / (2 * np.sqrt(x.data)))


# ---- a user's Function takes part in everything ------------------------------------------------------------------


class Cube(tl.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3.0 * x * x


def test_user_function_first_and_second_order():
    x = leaf([0.5, -1.5])
    assert gradcheck(Cube.apply, [x])
    (g,) = tl.grad(Cube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data**2)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_needs_input_grad():
    seen = []

    class Probe(tl.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.needs_input_grad)
            return grad, grad

    a, b = leaf([1.0]), Tensor([2.0])
    Probe.apply(a, b).sum().backward()
    Probe.apply(3.0, a).sum().backward()
    assert seen == [(True, False), (False, True)]
    assert a.grad.item() == 2.0


# ---- regressions found in review -----------------------------------------------------------------------------


def test_detached_copy_is_a_constant_in_higher_order_gradients():
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    z = (x * x.detach()).sum()  # dz/dx = x.detach(): a constant, so d/dx of (x * dz/dx) is dz/dx
    (g,) = tl.grad(z, x, create_graph=True)
    (x * g).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 3.0])


def test_a_0d_leaf_keeps_an_array_gradient_across_backward_calls():
    x = tl.tensor(2.0, requires_grad=True)
    (x * x).backward()
    (x * x).backward()
    assert isinstance(x.grad.data, np.ndarray) and x.grad.item() == 8.0
    x.grad.data[...] = 0.0  # an array, so in-place edits work


def test_retained_gradients_accumulate_like_leaves():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = a * a
    b.retain_grad()
    loss = (b * b).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(b.grad.data, 2 * (2 * np.array([1.0, 4.0])))


def test_leaves_sharing_one_upstream_gradient_get_separate_writable_grads():
    for create_graph in (False, True):
        a, b, c = (tl.tensor([1.0, 2.0], requires_grad=True) for _ in range(3))
        ((a + b) * c).sum().backward(create_graph=create_graph)
        assert a.grad is not b.grad and not np.shares_memory(a.grad.data, b.grad.data)
        a.grad.data *= 0.5
        np.testing.assert_array_equal(b.grad.data, [1.0, 2.0])
        x = tl.tensor([1.0, 2.0], requires_grad=True)
        x.sum().backward(create_graph=create_graph)
        assert x.grad.data.flags.writeable


def test_grad_runs_hooks_only_for_the_requested_inputs():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    w = tl.tensor([3.0, 4.0], requires_grad=True)
    calls = []
    w.register_hook(lambda g: calls.append(g))
    tl.grad((x * w).sum(), x)
    assert calls == [] and w.grad is None


def test_grad_runs_only_the_backward_of_nodes_leading_to_the_inputs():
    class NoBackward(tl.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

    x = tl.tensor([1.0, 2.0], requires_grad=True)
    w = tl.tensor([3.0, 4.0], requires_grad=True)
    loss = (x * x).sum() + NoBackward.apply(w).sum()  # the second branch cannot be differentiated
    (gx,) = tl.grad(loss, x, retain_graph=True)
    np.testing.assert_array_equal(gx.data, [2.0, 4.0])
    with pytest.raises(NotImplementedError, match="NoBackward"):
        tl.grad(loss, w)


def test_observe_backward_sees_each_node_in_the_engines_order_and_then_leaves():
    from tinygrad_lab.engine.function import observe_backward

    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    loss = y.sum()
    seen = []
    with observe_backward([loss.grad_fn, y.grad_fn], lambda node, g, gs: seen.append((type(node).__name__, gs))):
        loss.backward(retain_graph=True)
    assert [name for name, _ in seen] == ["Sum", "Mul"]
    for sent in seen[1][1]:  # x * x: each input of Mul gets grad * the other factor, x; the leaf sums them
        np.testing.assert_array_equal(sent, [1.0, 2.0])
    assert "_call_backward" not in y.grad_fn.__dict__  # the node is the class's again
    seen.clear()
    loss.backward()
    assert seen == []


def test_a_grad_is_laid_out_like_its_parameter():
    """As torch: the gradient of a column-major weight is column-major too (the update then runs over both in
    the same order, and tl.compile's replay needs no copy to change the layout)."""
    w = tl.tensor(np.asfortranarray(np.arange(8.0).reshape(4, 2)), requires_grad=True)
    x = tl.tensor(np.ones((3, 2)))
    (x @ w.T).sum().backward()  # the transpose's backward hands the gradient back column-major
    assert w.grad.data.flags.f_contiguous and not w.grad.data.flags.c_contiguous
    np.testing.assert_array_equal(w.grad.data, np.full((4, 2), 3.0))


def test_grad_fills_the_grad_of_tensors_that_retain_it_as_torch():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (gx,) = tl.grad((y * y).sum(), x)
    assert gx.tolist() == [8.0, 16.0] and y.grad.tolist() == [4.0, 8.0] and x.grad is None
