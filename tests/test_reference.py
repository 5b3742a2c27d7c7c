"""The lab's hand-derived backprop (tinygrad_lab.lab.reference) as an oracle: the same network built from Tensor ops
has the same gradients to 1e-12 relative, and 100 SGD steps of both end at the same weights."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lab as tl
from tinygrad_lab.lab import reference

Tensor = tl.Tensor


@st.composite
def lab_setups(draw):
    """Batch size, layer sizes, and a seed for the weights and the data."""
    sizes = tuple(draw(st.integers(1, 6)) for _ in range(4))  # x_in, h1, h2, y_out
    batch = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))  # small weights, the lab's standard normal ones, saturating
    rng = np.random.default_rng(seed)
    x_in, h1, h2, y_out = sizes
    weights = tuple(scale * rng.standard_normal(s) for s in [(x_in, h1), (h1, h2), (h2, y_out)])
    x = rng.uniform(-1.0, 1.0, (batch, x_in))
    y = rng.integers(0, 2, (batch, y_out)).astype(np.float64)
    return weights, x, y


def tensor_loss(ws, x, y):
    """The lab network from Tensor ops: x @ w1 -> sigmoid -> @ w2 -> sigmoid -> @ w3 -> sigmoid, mse mean."""
    w1, w2, w3 = ws
    z1 = (x @ w1).sigmoid()
    z2 = (z1 @ w2).sigmoid()
    pred = (z2 @ w3).sigmoid()
    return ((Tensor(y) - pred) ** 2).mean(), pred


def assert_close(actual, expected):
    """rtol 1e-12; atol tiny: 1e-13 of the largest entry, for entries that cancel to almost nothing."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-13 * float(np.abs(expected).max()) + 1e-300)


@given(setup=lab_setups())
def test_gradients_equal_reference_backprop(setup):
    weights, x, y = setup
    net = reference.Network(weights=weights)
    pred = net.forward(x)
    expected = net.backpropagation(y)

    ws = [Tensor(w, requires_grad=True) for w in weights]
    loss, tpred = tensor_loss(ws, Tensor(x), y)
    assert_close(tpred.data, pred)
    assert_close(loss.item(), reference.mse(y, pred))
    loss.backward()
    for w, g in zip(ws, expected):
        assert w.grad.shape == g.shape
        assert_close(w.grad.data, g)


def test_reference_gradients_are_right():
    """The oracle itself against finite differences of its own loss (so the equality above means something)."""
    rng = np.random.default_rng(3)
    weights = tuple(rng.standard_normal(s) for s in [(2, 3), (3, 4), (4, 2)])
    x, y = rng.uniform(-1, 1, (5, 2)), rng.integers(0, 2, (5, 2)).astype(float)
    net = reference.Network(weights=weights)
    net.forward(x)
    grads = net.backpropagation(y)
    eps = 1e-6
    for k, w in enumerate(weights):
        numerical = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            f_plus = reference.mse(y, reference.Network(weights=plus).forward(x))
            f_minus = reference.mse(y, reference.Network(weights=minus).forward(x))
            numerical[idx] = (f_plus - f_minus) / (2 * eps)
        np.testing.assert_allclose(grads[k], numerical, rtol=1e-5, atol=1e-9)


@settings(max_examples=15)
@given(setup=lab_setups(), lr=st.sampled_from([0.1, 0.5, 2.0]))
def test_100_sgd_steps_reach_the_same_weights(setup, lr):
    weights, x, y = setup
    net = reference.Network(weights=weights)
    ws = [Tensor(w, requires_grad=True) for w in weights]
    xt = Tensor(x)
    for _ in range(100):
        ref_loss = net.train_step(x, y, lr)
        loss, _ = tensor_loss(ws, xt, y)
        assert_close(loss.item(), ref_loss)
        loss.backward()
        with tl.no_grad():
            for w in ws:
                w.data = w.data - lr * w.grad.data
                w.grad = None
    for w, ref_w in zip(ws, net.weights):
        assert_close(w.data, ref_w)
    assert any(not np.array_equal(w, w0) for w, w0 in zip(net.weights, weights))  # training did move them
