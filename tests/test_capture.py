"""tl.compile: a captured step gives eager's results exactly, re-traces on new shapes, and replays views, in-place
writes, masks and class targets as eager runs them (what it refuses: test_capture_refusals.py)."""

import numpy as np
import pytest
from capture_helpers import OPTIMIZERS, lab_data, make_step, mse_sgd_step

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("activation,bias", [("sigmoid", False), ("relu", True)])
def test_compiled_step_equals_eager_after_1000_steps(optimizer, activation, bias):
    x, y = lab_data()
    eager_model, eager_step = make_step(optimizer, activation, bias)
    model, step = make_step(optimizer, activation, bias)
    # The numpy replay runs numpy's own operations, so it stays equal to eager over 1000 steps; the native
    # backend is held to 1e-12 per step (tests/test_native.py), which chaotic settings amplify over 1000.
    compiled = tl.compile(step, native=False)
    for _ in range(1000):
        loss_c = compiled(tl.Tensor(x), tl.Tensor(y))
        loss_e = eager_step(tl.Tensor(x), tl.Tensor(y))
    np.testing.assert_allclose(loss_c.item(), loss_e.item(), rtol=1e-12, atol=0)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-12, atol=1e-15)
    assert len(compiled._replays) == 1  # the replay, not eager execution, did the work


def test_the_lab_step_with_the_lab_network_matches_the_reference():
    from tinygrad_lab.lab.reference import Network

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


def test_a_module_deleted_from_its_parent_is_noticed():
    """``del model.layer`` changes what the forward runs (a Sequential iterates its modules): the step traces
    again, as after an assignment, instead of replaying the layer that is gone."""
    rng = np.random.default_rng(0)

    def make():
        model = nn.Sequential(nn.Linear(3, 3, rng=np.random.default_rng(1)), nn.Tanh())
        return model, lambda x: (model(x) ** 2).sum()

    (model, step), (eager_model, eager_step) = make(), make()
    compiled = tl.compile(step)
    x = tl.tensor(rng.standard_normal((4, 3)))
    for i in range(6):
        if i == 3:
            delattr(model, "1")  # the Tanh, gone from the modules the Sequential runs
            delattr(eager_model, "1")
        assert compiled(x).item() == eager_step(x).item()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_tl_sigmoid_of_an_array_in_a_step_follows_each_calls_values(dtype):
    """``tl.sigmoid(x.data)`` on the array itself: it stays in the trace (it was baked in as a constant and
    every replay gave the first call's values) and keeps a float dtype, as torch.sigmoid."""

    def step(x):
        return tl.tensor(tl.sigmoid(x.data)).sum()

    compiled = tl.compile(step, native=False)
    for i in range(5):
        x = tl.tensor(np.full(3, i), dtype=dtype)
        got, expected = compiled(x), step(x)
        assert got.item() == expected.item() and got.dtype == (np.float64 if dtype == np.int64 else dtype)


@pytest.mark.parametrize("native", [False, None])
def test_a_value_check_on_an_array_the_step_computes_runs_on_every_call(native):
    """Class indices computed in the step are checked on each replay, as in eager: the check returns its
    argument, and recorded as a view of it the replay ran it once, when built (on an empty buffer, a bogus error),
    then let out-of-range indices through to a NaN loss."""
    w = tl.tensor(np.ones((3, 4)), requires_grad=True)

    def step(x, shift):
        labels = (x.sum(axis=1) + shift).astype(np.int64)
        return F.cross_entropy(x @ w, labels)

    compiled = tl.compile(step, native=native)
    x = tl.tensor(np.zeros((2, 3)))
    for k in [0, 1, 2, 3, 0, 1]:
        shift = tl.tensor(np.full(2, float(k)))
        assert compiled(x, shift).item() == step(x, shift).item()
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 4\), got values in \[7, 7\]"):
        compiled(x, tl.tensor(np.full(2, 7.0)))


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


def test_an_in_place_write_through_a_view_of_a_parameter_is_replayed_and_checked():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    start = rng.standard_normal((3, 2))

    def make(w, lrs):
        def step(x):
            w.grad = None
            loss = ((x @ w) ** 2).mean()
            loss.backward()
            flat = w.data.reshape(-1)  # a view of the parameter: nothing later in the step reads w
            flat -= next(lrs) * w.grad.data.reshape(-1)
            return loss

        return step

    w, w_eager = tl.Tensor(start.copy(), requires_grad=True), tl.Tensor(start.copy(), requires_grad=True)
    compiled, eager = tl.compile(make(w, iter([0.1] * 8))), make(w_eager, iter([0.1] * 8))
    for _ in range(8):
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-12)
    np.testing.assert_allclose(w.data, w_eager.data, rtol=1e-12)

    w = tl.Tensor(start.copy(), requires_grad=True)
    compiled = tl.compile(make(w, iter([0.1, 0.05, 0.02])))  # a schedule in Python: the check compares w
    compiled(x)
    compiled(x)
    with pytest.raises(tl.CaptureError, match="disagrees with eager"):
        compiled(x)


def test_writes_into_views_and_into_the_bases_of_views_are_replayed():
    @tl.compile
    def through_a_view(x):
        z = np.zeros_like(x.data)  # a buffer that depends on no input...
        head = z[:2]
        head += x.data[:2]  # ...until it is written through a view
        return tl.Tensor(z) * 1.0

    @tl.compile
    def into_the_base(x):
        b = x.data * 2.0
        v = b.reshape(-1)
        h = v * 3.0
        b += 1.0  # changes v: the same operation on v gives another value
        return tl.Tensor(h) * 1.0, tl.Tensor(v * 3.0) * 1.0

    @tl.compile
    def into_the_argument(x):
        flat = x.data.reshape(-1)
        flat *= 2.0
        return x.sum()

    for i in range(5):
        x = tl.Tensor(np.arange(3.0) + i)
        np.testing.assert_array_equal(through_a_view(x).data, np.r_[x.data[:2], 0.0])
        h, k = into_the_base(x)
        np.testing.assert_array_equal(h.data, 6 * x.data)
        np.testing.assert_array_equal(k.data, 6 * x.data + 3)
        x = tl.Tensor(np.full((2, 2), float(i)))
        assert into_the_argument(x).item() == 8.0 * i
        np.testing.assert_array_equal(x.data, np.full((2, 2), 2.0 * i))  # the write reaches the caller's array


def test_tensor_arguments_that_require_grad_get_their_grad():
    w = tl.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)

    @tl.compile
    def saliency(x):
        x.grad = w.grad = None
        (x * w).sigmoid().sum().backward()
        return (x * w).sum()

    def expected(x):
        s = 1 / (1 + np.exp(-(x.data * w.data)))
        return s * (1 - s) * w.data

    xs = [tl.Tensor(np.random.default_rng(i).standard_normal(3), requires_grad=i >= 3) for i in range(9)]
    for x in xs:  # three calls without grad, then six with: requires_grad is part of the signature
        np.testing.assert_allclose(saliency(x).item(), (x.data * w.data).sum(), rtol=1e-12)
    for x in xs:
        if x.requires_grad:
            np.testing.assert_allclose(x.grad.data, expected(x), rtol=1e-12)  # each its own array
        else:
            assert x.grad is None
    assert len(saliency._replays) == 2


def test_a_result_written_in_place_is_not_shared_with_a_later_equal_operation():
    @tl.compile
    def f(x):
        h = x * 2.0
        h.data += 1.0
        k = x * 2.0  # the same operation as h, but h has changed since
        return h, k

    x = tl.Tensor(np.arange(3.0))
    for _ in range(5):
        h, k = f(x)
        np.testing.assert_array_equal(h.data, 2 * x.data + 1)
        np.testing.assert_array_equal(k.data, 2 * x.data)


def test_parameters_never_share_a_gradient_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    w1 = tl.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    w2 = tl.Tensor(rng.standard_normal((3, 2)), requires_grad=True)

    @tl.compile
    def step(x):
        w1.grad = w2.grad = None
        loss = ((x @ (w1 + w2)) ** 2).mean()  # both leaves get copies of one gradient
        loss.backward()
        return loss

    for _ in range(5):
        step(x)
        assert not np.shares_memory(w1.grad.data, w2.grad.data)
    expected = w1.grad.data.copy()
    w1.grad.data *= 0.5  # clipping one gradient in place leaves the other alone
    np.testing.assert_array_equal(w2.grad.data, expected)


def test_a_tensor_made_from_an_argument_follows_the_argument():
    rng = np.random.default_rng(0)
    model = nn.Linear(2, 1, rng=rng)

    @tl.compile
    def predict(x):
        with tl.no_grad():
            return model(tl.Tensor(x))  # the step converts its array argument itself

    a, b = rng.random((4, 2)), rng.random((4, 2))
    for _ in range(3):
        predict(a)
    np.testing.assert_allclose(predict(b).data, model(tl.Tensor(b)).data, rtol=1e-12)


def test_a_learning_rate_changed_between_calls_is_used_by_the_replay():
    x, y = lab_data(20)
    results = []
    for compile_it in (False, True):
        model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = mse_sgd_step(model, opt)
        run_step = tl.compile(step) if compile_it else step
        for epoch in range(10):
            if epoch in (5, 8):  # a schedule, changed after the replay is checked
                opt.lr = 0.01 if epoch == 5 else 0.5
            run_step(x, y)
        results.append([p.data.copy() for p in model.parameters()])
    for p, q in zip(*results):
        np.testing.assert_allclose(p, q, rtol=1e-12)


@pytest.mark.parametrize("native", [False, True])
def test_a_mask_made_inside_an_op_is_recomputed_on_every_replay(native):
    """clip's backward mask depends on the values of each call: an element clipped once must not stay masked."""
    w = tl.tensor(np.array([0.5, 0.5]), requires_grad=True)

    def step(x):
        w.grad = None
        loss = (w * x).clip(0.0, 1.0).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step, native=native)
    inside = np.array([1.0, 1.0])
    for _ in range(4):
        compiled(inside)
    compiled(np.array([1.0, 4.0]))  # w * x = 2.0 is clipped: its gradient is 0
    assert w.grad.data.tolist() == [1.0, 0.0]
    compiled(inside)
    assert w.grad.data.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("targets_as", ["array", "tensor"])
def test_a_cross_entropy_step_is_captured_and_each_replay_checks_its_class_indices(targets_as):
    """The range check of integer targets is recorded as an operation of the step: the replay equals eager, and
    a later call with an index out of range gets cross_entropy's own error, not a wrapped-around gradient."""

    def as_targets(labels):
        return tl.Tensor(np.array(labels), dtype=np.int64) if targets_as == "tensor" else np.array(labels)

    losses = {}
    for mode in ("eager", "compiled"):
        model = nn.Linear(4, 3, rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y, model=model, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        run = tl.compile(step) if mode == "compiled" else step
        x = tl.Tensor(np.random.default_rng(1).random((5, 4)))
        losses[mode] = [run(x, as_targets([0, 1, 2, 1, (k % 3)])).item() for k in range(6)]
    assert run.backend.startswith("numpy (")  # replayed (the native backend leaves fancy indexing to numpy)
    assert losses["compiled"] == losses["eager"]
    message = r"cross_entropy: class indices must lie in \[0, 3\), got values in "
    for bad, seen in (([0, 1, 3, 1, 0], r"\[0, 3\]"), ([0, -1, 2, 1, 0], r"\[-1, 2\]")):
        with pytest.raises(ValueError, match=message + seen):
            run(x, as_targets(bad))


def test_a_module_whose_forward_names_a_local_ctx_later_still_captures():
    """Recording notes which op's forward or backward made each numpy call (for the native backend's messages):
    a user's forward with a local called ``ctx``, bound after its first numpy call, is not an op's and traces."""

    class Doubled(nn.Module):
        def forward(self, x):
            y = tl.Tensor(x.data * 2.0)  # a numpy call made directly on the traced data
            ctx = y
            return ctx

    model = Doubled()
    compiled = tl.compile(lambda x: model(x).sum(), native=False)
    values = [compiled(tl.Tensor(np.full(3, float(k)))).item() for k in range(5)]
    assert values == [6.0 * k for k in range(5)]


@pytest.mark.parametrize("native", [False, True])
def test_in_place_ops_on_intermediates_capture_and_equal_eager(native):
    """``h += 1``, ``h.relu_()``, ``h.mul_(2)`` on a step's intermediate: the engine's check for stale views of
    rewritten tensors asks numpy whether two arrays share memory, which the trace must not record."""
    results = {}
    for mode in ("eager", "compiled"):
        w = tl.tensor(np.linspace(-1.0, 1.0, 6).reshape(3, 2), requires_grad=True)
        opt = optim.SGD([w], lr=0.01)

        def step(x, w=w, opt=opt):
            opt.zero_grad()
            h = tl.tensor(x) @ w
            h += 1.0
            h.relu_()
            h.mul_(2.0)
            loss = (h * h).mean()
            loss.backward()
            opt.step()
            return loss

        run = tl.compile(step, native=native) if mode == "compiled" else step
        results[mode] = ([run(np.arange(6.0).reshape(2, 3) - k).item() for k in range(5)], w.data.copy())
    # the numpy replay is eager's arithmetic; native loops sum in their own order (1e-12, tests/test_native.py)
    rtol = 1e-12 if native else 0.0
    np.testing.assert_allclose(results["compiled"][0], results["eager"][0], rtol=rtol, atol=0)
    np.testing.assert_allclose(results["compiled"][1], results["eager"][1], rtol=rtol, atol=0)


@pytest.mark.parametrize("native", [False, True])
def test_where_on_a_comparison_made_in_the_step_follows_each_calls_values(native):
    """``tl.where(h > 0, h, 0.1 * h)``: the condition is recorded, so a replay recomputes the mask from its own
    inputs (signs flip between calls here) instead of being refused or reusing the trace's mask."""
    results = {}
    for mode in ("eager", "compiled"):
        w = tl.tensor(np.linspace(-1.0, 1.0, 3), requires_grad=True)

        def step(x, w=w):
            w.grad = None
            h = tl.tensor(x) * w
            loss = tl.where(h > 0, h, h * 0.1).sum()
            loss.backward()
            return loss

        run = tl.compile(step, native=native) if mode == "compiled" else step
        losses = [run(np.array([1.0, -2.0, 3.0]) * (-1) ** k * (k + 1)).item() for k in range(6)]
        results[mode] = (losses, w.grad.data.copy())
    assert results["compiled"][0] == results["eager"][0]
    np.testing.assert_array_equal(results["compiled"][1], results["eager"][1])


def _penalty_step(model, opt):
    """A gradient penalty: the loss plus the squared norm of its parameter gradients, taken with create_graph."""
    params = list(model.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        grads = tl.grad(loss, params, create_graph=True)
        (loss + sum((g * g).sum() for g in grads)).backward()
        opt.step()
        return loss.detach()  # detach is a Tensor op the replay follows

    return step


def _indexing_step(model, opt):
    """Rows picked by an index tensor next to an integer (taken first, as torch)."""

    def step(x, rows):
        opt.zero_grad()
        out = model(x)
        loss = (out[rows, 0] ** 2).sum() + (out.detach() * out).mean()
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("activation", [nn.Tanh, nn.ReLU])  # relu's recorded gradient ties to its input
@pytest.mark.parametrize("make", [_penalty_step, _indexing_step], ids=["create_graph penalty", "index and detach"])
def test_steps_with_detach_an_index_tensor_and_create_graph_replay_as_eager(make, activation, native):
    def build():
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(3, 4, rng=rng), activation(), nn.Linear(4, 1, rng=rng))
        return model, make(model, optim.SGD(model.parameters(), lr=0.05))

    (model, step), (eager_model, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    rows = tl.tensor(np.array([0, 2, 2]), dtype=np.int64)
    for _ in range(5):
        x = tl.tensor(rng.standard_normal((5, 3)))
        second = tl.tensor(rng.standard_normal((5, 1))) if make is _penalty_step else rows
        np.testing.assert_allclose(compiled(x, second).data, eager_step(x, second).data, rtol=1e-12)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-15)
    assert compiled._replays  # replayed, not run eagerly


CHANGES = {
    "freeze a weight": lambda env: env["model"][0].weight.requires_grad_(False),
    "unfreeze it again": lambda env: (
        env["model"][0].weight.requires_grad_(False),
        env["step"](),
        env["model"][0].weight.requires_grad_(True),
    ),
    "eval mode": lambda env: env["model"].eval(),
    "wrap the head": lambda env: setattr(env["model"], "2", nn.Sequential(env["model"][2], nn.Tanh())),
    "new optimizer": lambda env: env.__setitem__("opt", optim.Adam(env["model"].parameters(), lr=0.01)),
    "training set directly": lambda env: setattr(env["model"][1], "training", False),
    "a buffer replaced": lambda env: setattr(env["model"][1], "running_mean", tl.tensor(np.full(4, 0.5))),
}


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_what_a_trace_read_from_python_objects_is_followed_after_it_changes(change, native):
    """A replay holds only while the parameters' requires_grad, the modules' training mode, the model's modules
    and the optimizer stay as traced; after a change the step is traced again and keeps equal to eager."""

    def build():
        rng = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.BatchNorm1d(4), nn.Linear(4, 1, rng=rng))
        env = {"model": model, "opt": optim.SGD(model.parameters(), lr=0.05, momentum=0.9)}

        def step(x, y):
            opt = env["opt"]
            opt.zero_grad()
            loss = F.mse_loss(env["model"](x), y)
            loss.backward()
            opt.step()
            return loss

        env["step"] = lambda: step(*env["data"])
        return env, step

    (env, step), (eager_env, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    env["step"] = lambda: compiled(*env["data"])
    # the first layer's bias has a zero gradient through batch norm, made of rounding noise that C sums in
    # another order than numpy: the native replay is equal to eager up to that noise, the numpy one exactly
    rtol, atol = (1e-9, 1e-9) if native else (0.0, 0.0)
    rng = np.random.default_rng(1)
    for call in range(8):
        data = (tl.tensor(rng.standard_normal((6, 3))), tl.tensor(rng.standard_normal((6, 1))))
        env["data"] = eager_env["data"] = data
        if call == 4:
            CHANGES[change](env)
            CHANGES[change](eager_env)
        np.testing.assert_allclose(compiled(*data).data, eager_step(*data).data, rtol=rtol, atol=atol)
    for (name, ours), theirs in zip(env["model"].state_dict().items(), eager_env["model"].state_dict().values()):
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=name)
    assert compiled._replays and not compiled._eager_only  # traced again and replaying, not left eager


def test_an_eval_and_train_round_trip_between_calls_keeps_the_replay():
    """fit's validation switches the model to eval and back every epoch: the modes are as traced again, so
    the step keeps its replay instead of tracing anew."""
    model = nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(0)), nn.BatchNorm1d(4), nn.Linear(4, 1))
    compiled = tl.compile(mse_sgd_step(model, optim.SGD(model.parameters(), lr=0.05)))
    x, y = tl.tensor(np.ones((6, 3))), tl.tensor(np.zeros((6, 1)))
    for _ in range(3):
        compiled(x, y)
    (entry,) = compiled._replays.values()
    for _ in range(3):
        model.eval()
        model.train()
        compiled(x, y)
    assert list(compiled._replays.values()) == [entry]


def test_a_float32_step_with_a_float64_tensor_replays_natively_to_float32_accuracy():
    """float32 products promoted to float64 beside a float64 tensor carry float32's rounding of the C loops: the
    check allows float32's tolerance for them instead of refusing the native step."""
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = tl.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    scale = tl.tensor(np.array([0.1, 0.7]))
    step = tl.compile(lambda x: (x @ w) * scale, native=True)
    for _ in range(5):
        out = step(x)
        expected = ((x @ w) * scale).data
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert len(step._replays) == 1 and not step._eager_only
