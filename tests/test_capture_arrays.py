"""tl.compile and the arrays a step writes and reads: numpy calls that write into an array of the step with out=
(by name or by position) write there on every replay, an argument laid out in any order is read as eager reads
it, and arrays numpy makes from the step's tensors (np.zeros_like(w), np.round(w)) are made again by every
replay."""

import numpy as np
import pytest
from capture_helpers import mse_sgd_step

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


def _clip(model):
    for p in model.parameters():
        np.clip(p.grad.data, -0.5, 0.5, out=p.grad.data)


def _row_norms(model):
    g = model.weight.grad.data
    norms = np.empty_like(g[:, :1])
    np.sum(np.abs(g), axis=1, keepdims=True, out=norms)
    np.divide(g, np.maximum(norms, 1.0), out=g)


def _clip_by_position(model):
    for p in model.parameters():
        np.clip(p.grad.data, -0.5, 0.5, p.grad.data)  # out as the fourth argument


def _row_norms_by_position(model):
    g = model.weight.grad.data
    norms = np.empty_like(g[:, :1])
    np.sum(np.abs(g), 1, None, norms, True)  # out, then keepdims, by position
    np.divide(g, np.maximum(norms, 1.0), g)


def _out_step(seed, update):
    """A step that changes its gradients in place with numpy's out= before the optimizer reads them."""
    model = nn.Linear(3, 2, rng=np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        update(model)
        opt.step()
        return loss

    return model, step


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize(
    "update",
    [_clip, _row_norms, _clip_by_position, _row_norms_by_position],
    ids=["clip", "sum", "clip, out by position", "sum, out by position"],
)
def test_numpy_calls_writing_with_out_write_there_on_every_replay(update, native):
    (model, step), (eager_model, eager_step) = _out_step(0, update), _out_step(0, update)
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 3))
    rtol = 1e-12 if native else 0.0
    for i in range(8):
        y = rng.standard_normal((16, 2)) * (1 if i < 3 else 100)  # later gradients are large: the writes matter
        np.testing.assert_allclose(compiled(x, y).data, eager_step(x, y).data, rtol=rtol, atol=0)
        for p, q in zip(model.parameters(), eager_model.parameters()):
            np.testing.assert_allclose(p.data, q.data, rtol=rtol, atol=0)
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=rtol, atol=1e-15 if native else 0)
    assert compiled._replays  # the replay, not eager execution, did the work


def _linear_step(seed):
    model = nn.Linear(3, 2, rng=np.random.default_rng(seed))
    opt = optim.Adam(model.parameters(), lr=0.01)

    return model, mse_sgd_step(model, opt)


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("first", ["F", "C"])
def test_an_argument_in_any_memory_order_is_read_as_eager_reads_it(first, verify, native):
    """The trace copies an argument row-major, the layout the native code reads every argument in: a column-major
    argument (a transpose, pandas' data) at the trace or after it is not read transposed."""
    (model, step), (eager_model, eager_step) = _linear_step(0), _linear_step(0)
    compiled = tl.compile(step, verify=verify, native=native)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    layouts = {"F": np.asfortranarray(x), "C": x, "strided": np.repeat(x, 2, axis=1)[:, ::2]}
    other = "C" if first == "F" else "F"
    for name in [first, first, first, first, other, "strided", first, other]:
        arg = layouts[name]
        np.testing.assert_allclose(compiled(arg, y).data, eager_step(arg, y).data, rtol=1e-12, atol=0)
        np.testing.assert_allclose(model.weight.data, eager_model.weight.data, rtol=1e-12, atol=0)
    assert compiled._replays


@pytest.mark.parametrize("native", [False, True])
def test_numpy_shape_queries_on_the_steps_arrays_are_answered(native):
    """np.shape, np.ndim and np.size of an array the step traces: a replay is made for one shape, so they are
    answered while tracing and not recorded."""

    def build():
        model = nn.Linear(3, 2, rng=np.random.default_rng(0))

        def step(x):
            model.zero_grad()
            loss = (model(x) ** 2).sum() / np.size(x.data) + np.ndim(x.data)
            loss.backward()
            with tl.no_grad():
                for p in model.parameters():
                    p.data -= 0.1 * p.grad.data / np.shape(p.grad.data)[0]
            return loss

        return model, step

    (model, step), (eager_model, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    x = np.random.default_rng(1).standard_normal((5, 3))
    for _ in range(5):
        np.testing.assert_allclose(compiled(x).data, eager_step(x).data, rtol=1e-12 if native else 0, atol=0)
    assert compiled._replays
    np.testing.assert_allclose(model.weight.data, eager_model.weight.data, rtol=1e-12 if native else 0, atol=0)


@pytest.mark.parametrize("native", [False, True])
def test_arrays_numpy_makes_from_the_steps_tensors_are_made_again_by_every_replay(native):
    """np.zeros_like(w) is a Tensor filled by the step; np.round(w) reads w's current values, also when it is the
    step's first use of w (it was frozen at the traced call's values)."""

    def build():
        w = tl.tensor(np.arange(4.0) + 0.3, requires_grad=True)

        def step(x):
            w.grad = None
            rounded = np.round(w)  # the first use of w in the step
            y = np.zeros_like(w)
            y[0] = w[1] * 2
            y[1:] = w[1:] * x[1:]
            loss = (y * x).sum() + (rounded * x).sum()
            loss.backward()
            with tl.no_grad():
                w.sub_(0.4 * w.grad)
            return loss

        return w, step

    (w, step), (eager_w, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(2)
    for _ in range(6):
        x = tl.tensor(rng.standard_normal(4))
        np.testing.assert_allclose(compiled(x).data, eager_step(x).data, rtol=1e-12, atol=0)
    assert compiled._replays
    np.testing.assert_allclose(w.data, eager_w.data, rtol=1e-12, atol=0)
