"""tl.compile: a captured step gives eager's results exactly, re-traces on new shapes, and refuses what it
cannot replay (data-dependent control flow, Python state that changes between calls)."""
import numpy as np
import pytest

import tinygrad_lab as tl
from tinygrad_lab import functional as F
from tinygrad_lab import nn, optim

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-4),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def lab_data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    return x, (x[:, 0] < x[:, 1]).astype(float).reshape(-1, 1)


def make_step(optimizer="sgd", activation="sigmoid", bias=False, seed=1, loss=F.mse_loss):
    model = nn.MLP(2, (4, 4), 1, bias=bias, init="randn", activation=activation, rng=np.random.default_rng(seed))
    opt = OPTIMIZERS[optimizer](model.parameters())

    def step(x, y):
        opt.zero_grad()
        value = loss(model(x), y)
        value.backward()
        opt.step()
        return value

    return model, step


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("activation,bias", [("sigmoid", False), ("relu", True)])
def test_compiled_step_equals_eager_after_1000_steps(optimizer, activation, bias):
    x, y = lab_data()
    eager_model, eager_step = make_step(optimizer, activation, bias)
    model, step = make_step(optimizer, activation, bias)
    compiled = tl.compile(step)
    for _ in range(1000):
        loss_c = compiled(tl.Tensor(x), tl.Tensor(y))
        loss_e = eager_step(tl.Tensor(x), tl.Tensor(y))
    np.testing.assert_allclose(loss_c.item(), loss_e.item(), rtol=1e-12, atol=0)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-12, atol=1e-15)
    assert len(compiled._replays) == 1  # the replay, not eager execution, did the work


def test_the_lab_step_with_the_lab_network_matches_the_reference():
    from tinygrad_lab.reference import Network

    x, y = lab_data()
    reference = Network(rng=np.random.default_rng(3))
    weights = [tl.Tensor(w.copy(), requires_grad=True) for w in reference.weights]

    @tl.compile
    def step(x, y):
        for w in weights:
            w.grad = None
        h = x
        for w in weights:
            h = (h @ w).sigmoid()
        loss = ((h - y) ** 2).mean()
        loss.backward()
        for w in weights:
            w.data -= 0.1 * w.grad.data
        return loss

    for _ in range(300):
        ours = step(x, y).item()
        theirs = reference.train_step(x, y, 0.1)
    assert ours == pytest.approx(theirs, rel=1e-12)
    for w, r in zip(weights, reference.weights):
        np.testing.assert_allclose(w.data, r, rtol=1e-12)


def test_new_shapes_trace_again_and_stay_correct():
    eager_model, eager_step = make_step("adam")
    model, step = make_step("adam")
    compiled = tl.compile(step)
    for n in [100, 100, 100, 100, 40, 40, 40, 40, 100]:
        x, y = lab_data(n, seed=n)
        np.testing.assert_allclose(compiled(x, y).item(), eager_step(x, y).item(), rtol=1e-12)
    assert len(compiled._replays) == 2
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12)


def test_replaced_parameter_arrays_are_noticed():
    x, y = lab_data()
    eager_model, eager_step = make_step()
    model, step = make_step()
    compiled = tl.compile(step)
    for i in range(8):
        if i == 5:  # a user swaps the arrays (load_state_dict copies in place; this does not)
            for p, q in zip(model.parameters(), eager_model.parameters()):
                p.data = p.data.copy()
                q.data = q.data.copy()
        np.testing.assert_allclose(compiled(x, y).item(), eager_step(x, y).item(), rtol=1e-12)


def test_outputs_can_be_tuples_and_are_fresh_arrays():
    x, y = lab_data()
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1)

    @tl.compile
    def step(x, y):
        opt.zero_grad()
        pred = model(x)
        loss = F.mse_loss(pred, y)
        loss.backward()
        opt.step()
        return loss, pred

    results = [step(x, y) for _ in range(6)]
    losses = [loss.item() for loss, _ in results]
    assert all(a > b for a, b in zip(losses, losses[1:]))  # training progresses, values are not aliased
    assert results[-1][1].shape == (100, 1)
    assert not np.shares_memory(results[-1][1].data, results[-2][1].data)


def test_views_indexing_and_reductions_replay_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 2))
    labels = rng.integers(0, 3, size=30)

    def build():
        model = nn.MLP(2, (8,), 3, activation="tanh", out_activation="none", rng=np.random.default_rng(1))
        opt = optim.Adam(model.parameters(), lr=0.01)

        def step(x):
            opt.zero_grad()
            logits = model(x)
            both = tl.cat([logits[:, :2], logits[:, 2:].T.T], axis=1)
            loss = F.cross_entropy(both, labels) + 0.01 * logits.max(axis=1).mean() + logits.logsumexp(axis=0).sum() * 0
            loss.backward()
            opt.step()
            return loss

        return model, step

    eager_model, eager_step = build()
    model, step = build()
    compiled = tl.compile(step)
    for _ in range(50):
        np.testing.assert_allclose(compiled(x).item(), eager_step(x).item(), rtol=1e-12)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12)


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


def test_a_step_that_returns_its_input_or_writes_into_it_still_replays_correctly():
    w = tl.Tensor(np.ones((2, 2)), requires_grad=True)

    def echo(x):
        w.grad = None
        (x @ w).sum().backward()
        w.data -= 0.01 * w.grad.data
        return x.T, w.sum()

    compiled = tl.compile(echo)
    for k in range(6):
        x = np.full((3, 2), float(k))
        xt, total = compiled(tl.Tensor(x))
        np.testing.assert_array_equal(xt.data, x.T)
    # sum over k of 0.01 * (3k) per weight entry, subtracted from 1
    np.testing.assert_allclose(w.data, 1 - 0.01 * 3 * sum(range(6)))

    def scale_in_place(x):
        x.data *= 2.0
        return x.sum()

    compiled = tl.compile(scale_in_place)
    for k in range(5):
        x = tl.Tensor(np.full((2,), float(k)))
        assert compiled(x).item() == 4.0 * k
        np.testing.assert_array_equal(x.data, [2.0 * k, 2.0 * k])  # the side effect happens too
