"""Gradients proved by algebra: identities that hold for every input, checked on hypothesis-drawn ones.

Finite differences (test_ops.py) and the lab's hand-derived equations (test_reference.py) check values;
these check structure: linearity, the product and chain rules, symmetry of second derivatives, and
identities between ops, none of which a wrong backward keeps by accident.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lab as tl
from tinygrad_lab import testing as tt

RTOL, ATOL = 1e-10, 1e-12  # identities hold to rounding: far tighter than finite differences allow


def leaf(array):
    return tl.Tensor(array, requires_grad=True)


def grad_of(fn, array):
    x = leaf(array)
    (g,) = tl.grad(fn(x), x)
    return g.data


PAIRS = tt.shapes(min_dims=1, max_dims=3).flatmap(lambda s: st.tuples(tt.arrays(s), tt.arrays(s)))


@given(PAIRS, st.floats(-3, 3), st.floats(-3, 3))
def test_the_gradient_is_linear_in_the_function(pair, a, b):
    x, _ = pair
    f = lambda t: (t * t).sigmoid().sum()  # noqa: E731
    g = lambda t: (t.tanh() * t).sum()  # noqa: E731
    combined = grad_of(lambda t: f(t) * a + g(t) * b, x)
    np.testing.assert_allclose(combined, a * grad_of(f, x) + b * grad_of(g, x), rtol=RTOL, atol=ATOL)


@given(PAIRS)
def test_product_rule(pair):
    x, w = pair
    f = lambda t: (t * w).tanh()  # noqa: E731
    g = lambda t: t.sigmoid() + t * t  # noqa: E731
    t = leaf(x)
    (lhs,) = tl.grad((f(t) * g(t)).sum(), t)
    t1, t2 = leaf(x), leaf(x)
    (df,) = tl.grad(f(t1), t1, grad_outputs=tl.Tensor(g(tl.Tensor(x)).data))
    (dg,) = tl.grad(g(t2), t2, grad_outputs=tl.Tensor(f(tl.Tensor(x)).data))
    np.testing.assert_allclose(lhs.data, df.data + dg.data, rtol=RTOL, atol=ATOL)


@given(tt.arrays((3, 4)), tt.arrays((4, 2)))
def test_chain_rule_through_a_cut_graph(x, w):
    """Backpropagating in one go equals backpropagating the outer function, then the inner one by hand."""
    inner = lambda t: (t @ w).tanh()  # noqa: E731
    outer = lambda h: (h.sigmoid() * h).mean()  # noqa: E731
    t = leaf(x)
    (whole,) = tl.grad(outer(inner(t)), t)
    h = leaf(inner(tl.Tensor(x)).data)  # the graph cut between the two functions
    (upstream,) = tl.grad(outer(h), h)
    t2 = leaf(x)
    (pieced,) = tl.grad(inner(t2), t2, grad_outputs=upstream)
    np.testing.assert_allclose(whole.data, pieced.data, rtol=RTOL, atol=ATOL)


@given(tt.arrays((5,)), tt.arrays((5,)), tt.arrays((5,)))
def test_second_derivatives_are_symmetric(x, u, v):
    """u^T H v == v^T H u for the Hessian H that create_graph builds."""

    def hvp(direction):
        t = leaf(x)
        y = ((t * t).sum() * t.sigmoid()).sum() + (t.tanh() * t.exp() * 0.1).sum()
        (g,) = tl.grad(y, t, create_graph=True)
        (h,) = tl.grad((g * tl.Tensor(direction)).sum(), t)
        return h.data

    np.testing.assert_allclose(u @ hvp(v), v @ hvp(u), rtol=1e-9, atol=1e-9)


@given(tt.arrays(tt.shapes(min_dims=2, max_dims=2)))
def test_softmax_gradient_identities(x):
    # softmax rows sum to one, so their total does not move; logsumexp's gradient is the softmax
    np.testing.assert_allclose(grad_of(lambda t: t.softmax(axis=1).sum(), x), 0.0, atol=1e-12)
    softmax = tl.Tensor(x).softmax(axis=1).data
    np.testing.assert_allclose(grad_of(lambda t: t.logsumexp(axis=1).sum(), x), softmax, rtol=RTOL, atol=ATOL)


@given(tt.arrays(tt.shapes(min_dims=1)))
def test_tanh_is_a_rescaled_sigmoid_and_so_are_their_gradients(x):
    via_tanh = grad_of(lambda t: (t.tanh() * t).sum(), x)
    via_sigmoid = grad_of(lambda t: (((t * 2).sigmoid() * 2 - 1) * t).sum(), x)
    np.testing.assert_allclose(via_tanh, via_sigmoid, rtol=1e-9, atol=1e-12)


@settings(max_examples=15)
@given(tt.broadcastable_shapes(2, min_dims=1))
def test_broadcasting_sums_the_gradient_over_the_broadcast_axes(shapes):
    a_shape, b_shape = shapes
    a = leaf(np.ones(a_shape))
    b = leaf(np.ones(b_shape))
    (a + b).sum().backward()
    out_size = np.broadcast_shapes(a_shape, b_shape)
    total = int(np.prod(out_size))
    # each element of an input is used total / size times; the gradient of a sum counts the uses
    np.testing.assert_array_equal(a.grad.data, np.full(a_shape, total / max(a.size, 1)))
    np.testing.assert_array_equal(b.grad.data, np.full(b_shape, total / max(b.size, 1)))


@given(tt.arrays(tt.shapes(min_dims=1)), st.integers(2, 4))
def test_backward_k_times_accumulates_k_gradients(x, k):
    t = leaf(x)
    for _ in range(k):
        (t.sigmoid() * t).sum().backward()
    np.testing.assert_allclose(t.grad.data, k * grad_of(lambda s: (s.sigmoid() * s).sum(), x), rtol=RTOL, atol=ATOL)
