"""tl.compile and the Python around a step's numpy work: side effects run on the eager and traced calls only (as
under jax.jit), a Tensor that escapes the traced call holds that call's values and works as any other afterwards,
and a compiled step called inside another's trace becomes part of it."""

import numpy as np
import pytest
from capture_helpers import mse_sgd_step

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


def _logging_step(seed, history):
    """A step that keeps each loss it computes in a list: a Python side effect."""
    model = nn.Linear(3, 1, rng=np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        history.append(loss.detach())
        return loss

    return step


@pytest.mark.parametrize("native", [False, True])
def test_a_tensor_kept_from_the_traced_call_is_that_calls_values(native):
    ours, theirs = [], []
    compiled, eager = tl.compile(_logging_step(0, ours), native=native), _logging_step(0, theirs)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    losses = [(compiled(x, y).item(), eager(x, y).item()) for _ in range(5)]
    assert len(ours) == 3 and len(theirs) == 5  # the eager, traced and checked calls ran the Python; replays do not
    traced, value = ours[1], theirs[1].item()  # the traced (second) call's loss, as eager computed it
    assert losses[1][0] == value
    assert float(traced) == traced.item() == value and bool(traced)
    assert (traced + 1).item() == value + 1 and (traced * traced).item() == value * value
    assert np.asarray(traced) * 2 == 2 * value and traced.data.tolist() == value
    assert repr(traced) == repr(theirs[1])
    compiled(x, y)  # replays leave it as it was
    assert traced.item() == value


@pytest.mark.parametrize("native", [False, True])
def test_another_step_traced_later_reads_a_kept_tensor_as_an_array_from_outside(native):
    """A view of a parameter kept by one step's trace is read by another step's replay where it lives."""

    def build():
        teacher, student = nn.Linear(3, 2, rng=np.random.default_rng(0)), nn.Linear(3, 2, rng=np.random.default_rng(1))
        t_opt, s_opt = optim.SGD(teacher.parameters(), lr=0.1), optim.SGD(student.parameters(), lr=0.1)
        kept = {}

        def teach(x, y):
            t_opt.zero_grad()
            loss = F.mse_loss(teacher(x), y)
            loss.backward()
            t_opt.step()
            kept["weight"] = teacher.weight.detach()  # the same memory as the parameter, as in torch
            return loss

        def learn(x):
            s_opt.zero_grad()
            loss = F.mse_loss(student(x), x @ kept["weight"].T)
            loss.backward()
            s_opt.step()
            return loss

        return teach, learn, student

    (teach, learn, student), (eager_teach, eager_learn, eager_student) = build(), build()
    teach, learn = tl.compile(teach, native=native), tl.compile(learn, native=native)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    for _ in range(6):
        np.testing.assert_allclose(teach(x, y).data, eager_teach(x, y).data, rtol=1e-12, atol=0)
        np.testing.assert_allclose(learn(x).data, eager_learn(x).data, rtol=1e-12, atol=0)
    assert teach._replays and learn._replays
    np.testing.assert_allclose(student.weight.data, eager_student.weight.data, rtol=1e-12, atol=0)


def _nested_steps(seed, compile_):
    """An outer step that calls an inner training step twice and an evaluation, each compiled with ``compile_``."""
    model = nn.Linear(3, 1, rng=np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=0.1)

    inner = mse_sgd_step(model, opt)

    def evaluate(x):
        with tl.no_grad():
            return model(x).mean()

    inner, evaluate = compile_(inner), compile_(evaluate)

    def outer(x, y):
        return inner(x, y) + inner(x, y), evaluate(x)

    return compile_(outer), inner, model


@pytest.mark.parametrize("native", [False, True])
def test_a_compiled_step_called_while_another_is_traced_becomes_part_of_it(native):
    outer, _, model = _nested_steps(0, lambda f: tl.compile(f, native=native))
    eager, _, eager_model = _nested_steps(0, lambda f: f)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    for i in range(8):
        for ours, theirs in zip(outer(x * (1 + i % 2), y), eager(x * (1 + i % 2), y)):
            np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12, atol=1e-15)
    assert outer._replays
    np.testing.assert_allclose(model.weight.data, eager_model.weight.data, rtol=1e-12, atol=0)


def test_run_inside_another_steps_trace_reads_losses_into_python_and_is_refused():
    """``inner.run`` gives numpy losses: inside a trace that is a value read into Python, refused as one."""
    _, inner, _ = _nested_steps(0, tl.compile)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    inner.run(4, x, y)  # traced, checked and replaying natively
    outer = tl.compile(lambda x, y: tl.tensor(inner.run(2, x, y)).sum())
    outer(x, y)
    with pytest.raises(tl.CaptureError, match="reads an array value into Python"):
        outer(x, y)
