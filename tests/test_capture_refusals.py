"""tl.compile refuses, at the trace or at a call's check, what a replay cannot follow: data-dependent control
flow, Python state that changes between calls, random draws, new parameter arrays, boolean masks; each with a
sentence that says why, and the step keeps running eagerly afterwards. A Tensor the step makes from an array
(``tl.tensor(buffer)``, ``tl.zeros_like``) is no such state: every replay makes it again."""

import numpy as np
import pytest
from capture_helpers import lab_data, make_step, mse_sgd_step

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F

RANDOM_DRAW = r"draws random numbers \(a dropout mask, Tensor.randn, ...\) each call, which a replay cannot repeat"


def test_data_dependent_control_flow_is_refused():
    x, y = lab_data()
    model, step = make_step()

    def branching(x, y):
        loss = step(x, y)
        if loss.item() > 0.5:
            return loss * 2
        return loss

    compiled = tl.compile(branching)
    compiled(x, y)  # the warm-up call runs eagerly
    with pytest.raises(tl.CaptureError, match="data-dependent control flow"):
        compiled(x, y)


@pytest.mark.parametrize("native", [False, True])
def test_a_branch_on_a_tensor_comparison_is_refused_not_frozen_into_the_replay(native):
    """``if loss > 100:`` reads a comparison's value into Python: refused at the trace with the reason (a
    comparison's boolean Tensor keeps the traced array, so its bool() is caught as .item()'s is)."""
    w = tl.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.01)

    def step(x):
        opt.zero_grad()
        loss = (tl.tensor(x) * w).sum() ** 2
        if loss > 100.0:
            loss = loss * 0.0
        loss.backward()
        opt.step()
        return loss

    compiled = tl.compile(step, native=native)
    compiled(np.ones(3))  # the warm-up call runs eagerly
    with pytest.raises(tl.CaptureError, match=r"reads an array value into Python \(bool\(\)\)"):
        compiled(np.ones(3))


def test_python_state_that_changes_between_calls_is_caught_by_the_check():
    x, y = lab_data()
    model = nn.MLP(2, (4, 4), 1, rng=np.random.default_rng(0))
    calls = []

    def schedule_step(x, y):
        calls.append(1)
        lr = 0.1 / len(calls)  # a learning-rate schedule kept in Python: frozen by a replay
        for p in model.parameters():
            p.grad = None
        loss = F.mse_loss(model(x), y)
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad.data
        return loss

    compiled = tl.compile(schedule_step)
    compiled(x, y)
    compiled(x, y)
    with pytest.raises(tl.CaptureError, match="disagrees with eager"):
        compiled(x, y)


def test_arguments_must_be_arrays_tensors_or_scalars():
    compiled = tl.compile(lambda d: d)
    compiled({"x": 1})  # warm-up is eager
    with pytest.raises(tl.CaptureError, match="Tensors, arrays or Python scalars"):
        compiled({"x": 1})


def test_after_a_failed_check_the_step_runs_eagerly():
    w = tl.Tensor(np.ones(3), requires_grad=True)
    x = tl.Tensor(np.array([1.0, 2.0, 3.0]))
    calls = []

    @tl.compile
    def step(x):
        calls.append(1)
        lr = 0.1 / len(calls)  # a Python-side schedule: the replay would freeze it
        w.grad = None
        loss = ((x * w) ** 2).sum()
        loss.backward()
        w.data -= lr * w.grad.data
        return loss

    step(x)
    step(x)
    with pytest.raises(tl.CaptureError, match="disagrees with eager"):
        step(x)
    for n in (4, 5, 6):
        before = w.data.copy()
        step(x)
        assert len(calls) == n  # the step's body ran: no replay
        np.testing.assert_allclose(before - w.data, 0.1 / n * 2 * x.data**2 * before, rtol=1e-12)


def test_random_draws_in_a_captured_step_are_refused_at_the_trace_with_the_reason():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    step = mse_sgd_step(model, optim.SGD(model.parameters(), lr=0.1))
    compiled = tl.compile(step)
    x, y = tl.Tensor(np.ones((5, 4))), tl.Tensor(np.ones((5, 1)))
    compiled(x, y)  # the first call runs eagerly
    with pytest.raises(tl.CaptureError, match=RANDOM_DRAW):
        compiled(x, y)
    compiled(x, y)  # refused once: the calls after it run eagerly
    model.eval()
    model.train()  # an eval-train round trip leaves the modes as refused: still eager
    compiled(x, y)
    assert not compiled._replays
    model.eval()  # no mask drawn: the same compiled step now captures
    assert all(np.isfinite(compiled(x, y).item()) for _ in range(4))
    assert compiled._replays and compiled.backend.startswith(("native", "numpy ("))  # native where a compiler is
    noisy = tl.compile(lambda x: (x + tl.Tensor.randn(*x.shape)).sum())
    noisy(x)
    with pytest.raises(tl.CaptureError, match=RANDOM_DRAW):
        noisy(x)


def test_numpy_random_draws_inside_a_step_are_named_when_the_check_catches_them():
    """numpy's own generator is invisible to the trace (its draw becomes a constant of the replay): the third
    call's check against eager catches the difference and its message names the likely cause."""
    rng = np.random.default_rng(0)
    noisy = tl.compile(lambda x: (x + tl.Tensor(rng.standard_normal(x.shape))).sum())
    x = tl.Tensor(np.ones((3, 2)))
    noisy(x)
    noisy(x)
    with pytest.raises(tl.CaptureError, match="random numbers drawn with numpy directly"):
        noisy(x)


@pytest.mark.parametrize("grad_of", [lambda w: w.grad.data, lambda w: w.grad], ids=["array", "tensor"])
def test_a_step_that_replaces_a_parameters_data_is_refused_at_the_trace(grad_of):
    """``w.data = w.data - lr * w.grad`` (or ``w.grad.data``) rebinds the array: a replay, which updates the
    arrays it recorded, would drop every other update. Refused with the fix; ``w.data -= ...`` captures and
    equals eager."""
    x = np.array([[1.0, 2.0, 3.0]])

    def make(in_place):
        w = tl.tensor(np.ones((3, 1)), requires_grad=True)

        def step(x):
            w.grad = None
            loss = (tl.tensor(x) @ w).sum() ** 2
            loss.backward()
            if in_place:
                w.data -= 0.01 * w.grad.data
            else:
                w.data = w.data - 0.01 * grad_of(w)
            return loss

        return w, step

    w, step = make(in_place=False)
    compiled = tl.compile(step, native=False)
    compiled(x)  # the warm-up call runs eagerly
    with pytest.raises(tl.CaptureError, match=r"assigns a new array to the .data of a Tensor of shape \(3, 1\)"):
        compiled(x)
    assert type(w.data) is np.ndarray  # the plain array is back, not the traced view
    (w_c, step_c), (w_e, step_e) = make(in_place=True), make(in_place=True)
    compiled = tl.compile(step_c, native=False)
    losses = [(compiled(x).item(), step_e(x).item()) for _ in range(6)]
    assert [a for a, _ in losses] == [b for _, b in losses]
    np.testing.assert_array_equal(w_c.data, w_e.data)


def test_a_trace_that_fails_leaves_plain_gradients_behind():
    """The trace stops at ``float(loss)`` after backward has filled w.grad: the gradient the user keeps is a
    plain array that works outside the trace, not the tracer's array."""
    w = tl.tensor(np.ones(3), requires_grad=True)

    def step(x):
        w.grad = None
        loss = (tl.tensor(x) * w).sum()
        loss.backward()
        return loss * float(loss)

    compiled = tl.compile(step, native=False)
    compiled(np.ones(3))
    with pytest.raises(tl.CaptureError):
        compiled(np.ones(3))
    assert type(w.grad.data) is np.ndarray
    np.testing.assert_array_equal((w.grad * 2).data, np.full(3, 2.0))


def test_gradients_left_to_accumulate_across_calls_are_named_when_the_check_catches_them():
    w = tl.tensor(np.ones(3), requires_grad=True)

    def step(x):  # no w.grad = None: each backward adds to the last call's gradient
        loss = (tl.tensor(x) * w).sum() ** 2
        loss.backward()
        return loss

    compiled = tl.compile(step, native=False)
    compiled(np.ones(3))
    compiled(np.ones(3))
    with pytest.raises(tl.CaptureError, match=r"gradients left to accumulate across calls \(no zero_grad\(\)"):
        compiled(np.ones(3))


def test_a_boolean_mask_computed_in_the_step_is_refused_at_the_trace():
    """``h[x > 0]`` has as many elements as x has positive values: refused with the reason, where the replay
    used to fail later with numpy's broadcast errors on inputs of another sign pattern. A constant mask is fine."""
    w = tl.tensor(np.ones(3), requires_grad=True)

    def masked(x):
        w.grad = None
        loss = (tl.tensor(x) * w)[x > 0].sum()
        loss.backward()
        return loss

    compiled = tl.compile(masked, native=False)
    compiled(np.array([1.0, -2.0, 3.0]))
    with pytest.raises(tl.CaptureError, match=r"indexes an array of shape \(3,\) with a boolean mask computed from"):
        compiled(np.array([1.0, -2.0, 3.0]))
    keep = np.array([True, False, True])
    constant = tl.compile(lambda x: (tl.tensor(x) * w)[keep].sum(), native=False)
    assert [constant(np.array([1.0, 2.0, 3.0]) * k).item() for k in range(1, 5)] == [4.0, 8.0, 12.0, 16.0]


@pytest.mark.parametrize("native", [False, True])
def test_after_a_refused_trace_the_step_runs_eagerly(native):
    """The refusal is said once; the calls after it run the step's body eagerly instead of refusing again."""
    w = tl.Tensor(np.ones(3), requires_grad=True)
    x = tl.Tensor(np.array([1.0, 2.0, 3.0]))
    losses = []

    def step(x):
        w.grad = None
        loss = ((x * w) ** 2).sum()
        losses.append(loss.item())  # read into Python: refused at the trace
        loss.backward()
        with tl.no_grad():
            w.data -= 0.01 * w.grad.data
        return loss

    step = tl.compile(step, native=native)
    step(x)
    with pytest.raises(tl.CaptureError, match=r"reads an array value into Python \(\.item\(\)\)"):
        step(x)
    for n in (2, 3, 4):  # the refused call stopped at .item(), before its update
        before = w.data.copy()
        loss = step(x)
        assert len(losses) == n and loss.item() == losses[-1]
        np.testing.assert_allclose(w.data, before - 0.01 * 2 * x.data**2 * before, rtol=1e-12)


def _buffer_step(seed, make):
    """A step reading its batch from a numpy buffer the caller refills (``make``: how it becomes a Tensor) and
    accumulating into a Tensor it makes itself."""
    model = nn.Linear(3, 2, rng=np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=0.1)
    buffer = np.zeros((5, 3))

    def step():
        opt.zero_grad()
        h = model(make(buffer))
        total = tl.zeros_like(h)
        total.add_(h)  # written in place: a frozen array would keep the last call's sum
        total.add_(h * h)
        loss = total.mean()
        loss.backward()
        opt.step()
        return loss

    return model, buffer, step


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("make", [tl.tensor, lambda buffer: tl.Tensor(buffer[:, ::-1])])
def test_tensors_the_step_makes_are_made_again_by_every_replay(native, make):
    (m1, buf1, eager), (m2, buf2, step) = _buffer_step(0, make), _buffer_step(0, make)
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    for _ in range(6):
        buf1[:] = buf2[:] = rng.normal(size=(5, 3))
        np.testing.assert_allclose(compiled().data, eager().data, rtol=1e-12)
    assert compiled._replays
    np.testing.assert_allclose(m2.weight.data, m1.weight.data, rtol=1e-12)
