"""tl.compile on convolutional networks: the numpy replay of a CNN training step gives eager's loss, parameters,
gradients and optimizer state exactly, in float32 and float64, through every conv and pooling path (both column
layouts, groups, stride, dilation, tiling and overlapping max pooling, average pooling, and torch's other arguments:
padding "same", ceil_mode, per-window counts, divisor_override, adaptive average pooling, unbatched input)."""

import numpy as np
import pytest

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


def make_step(dtype, seed=0):
    """A CNN with every conv and pooling path, Adam, cross-entropy on one-hot targets; its step and parts."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        {
            "c1": nn.Conv2d(2, 4, 3, padding=1, rng=rng),  # columns (2 * 9) outnumber channels: batch innermost
            "a1": nn.ReLU(),
            "p1": nn.MaxPool2d(2),  # tiling windows: the strided-view path
            "c2": nn.Conv2d(4, 36, 1, rng=rng),  # 4 columns < 36 channels: the batch-first layout
            "c3": nn.Conv2d(36, 6, 2, stride=2, dilation=1, groups=2, padding=1, rng=rng),
            "a3": nn.ReLU(),
            "p3": nn.MaxPool2d(3, stride=1, padding=1),  # overlapping, padded windows: the generic path
            "p4": nn.AvgPool2d(2, stride=1),
            "f": nn.Flatten(),
            "fc": nn.Linear(6 * 2 * 2, 5, rng=rng),
        }
    )
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    opt = optim.Adam(model.parameters(), lr=1e-2)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def batches(dtype, n, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.standard_normal((6, 2, 8, 8)).astype(dtype)
        y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 6)]
        yield tl.Tensor(x), tl.Tensor(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_captured_cnn_step_equals_eager(dtype):
    eager_model, eager_opt, eager_step = make_step(dtype)
    model, opt, step = make_step(dtype)
    compiled = tl.compile(step, native=False)
    for x, y in batches(dtype, 12):  # new data every call: the batches are the replay's arguments
        loss_c = compiled(x, y)
        loss_e = eager_step(x, y)
        assert loss_c.dtype == loss_e.dtype == dtype
        # the replay runs numpy's own operations in eager's order, so the numbers are the same bits
        np.testing.assert_array_equal(loss_c.data, loss_e.data)
    assert compiled.backend.startswith("numpy") and len(compiled._replays) == 1
    for p, q in zip(model.parameters(), eager_model.parameters()):
        assert p.data.dtype == p.grad.data.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data)
        np.testing.assert_array_equal(p.grad.data, q.grad.data)
    for mine, theirs in zip(opt.state, eager_opt.state):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert mine[key].dtype == theirs[key].dtype
            np.testing.assert_array_equal(mine[key], theirs[key])


def test_the_native_backend_leaves_a_cnn_step_to_the_numpy_replay_and_stays_exact():
    eager_model, _, eager_step = make_step(np.float32)
    model, _, step = make_step(np.float32)
    compiled = tl.compile(step)
    for x, y in batches(np.float32, 6):
        np.testing.assert_array_equal(compiled(x, y).data, eager_step(x, y).data)
    backend = compiled.backend
    assert backend.startswith("numpy (") and "not support" in backend, backend  # names what it cannot lower
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("layout", ["permute", "swapaxes"])
def test_a_captured_max_pool_gets_the_gradient_whatever_the_layout_of_its_outputs_gradient(layout):
    """The pooled output is permuted before the loss, so its gradient arrives in another memory order; the
    replay (without the check against eager, so nothing but this test compares) gives eager's gradients on
    fresh inputs at every call."""
    rng = np.random.default_rng(4)
    mix = rng.standard_normal((2, 2, 3))

    def make():
        w = tl.Tensor(np.linspace(-1.0, 1.0, 48).reshape(1, 3, 4, 4), requires_grad=True)

        def step(x):
            w.grad = None
            pooled = F.max_pool2d(x * w, 2)
            out = pooled.permute(0, 2, 3, 1) if layout == "permute" else pooled.swapaxes(1, 3).swapaxes(1, 2)
            loss = (out * tl.Tensor(mix)).sum()
            loss.backward()
            return loss

        return w, step

    (w, step), (w_eager, eager) = make(), make()
    compiled = tl.compile(step, native=False, verify=False)
    for _ in range(5):
        x = rng.standard_normal((2, 3, 4, 4))
        compiled(tl.Tensor(x))
        eager(tl.Tensor(x))
        assert np.abs(w_eager.grad.data).sum() > 0
        np.testing.assert_array_equal(w.grad.data, w_eager.grad.data)


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (8, 3)), (nn.BatchNorm2d, (4, 3, 2, 2))])
def test_a_batch_norm_training_step_is_captured_with_its_running_statistics(layer, shape, momentum, native):
    """The running statistics and the batch counter are state updated in place: every replay repeats the update
    (with momentum None the cumulative factor follows the counter), so the step and its buffers equal eager's."""

    def build():
        rng = np.random.default_rng(0)
        model = nn.Sequential(layer(3, momentum=momentum), nn.Flatten(), nn.Linear(int(np.prod(shape[1:])), 1, rng=rng))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        return model, step

    (model, step), (eager_model, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    # the numpy replay runs eager's very numpy calls; the native C loops sum in another order (test_native's 1e-12)
    rtol = 1e-12 if native else 0.0
    rng = np.random.default_rng(1)
    for _ in range(6):
        x = tl.Tensor(rng.standard_normal(shape))
        np.testing.assert_allclose(compiled(x).data, eager_step(x).data, rtol=rtol, atol=0)
    for (name, ours), theirs in zip(model.state_dict().items(), eager_model.state_dict().values()):
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-15 if native else 0, err_msg=name)
    assert int(model.state_dict()["0.num_batches_tracked"]) == 6


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_float32_running_statistics_replay_exactly(momentum):
    """The cumulative factor 1 / count is a numpy scalar eagerly and a 0-d array in the trace: both update the
    float32 statistics in float32, so the numpy replay equals eager bit for bit."""
    layer = nn.BatchNorm1d(4, momentum=momentum, dtype=np.float32)
    eager_layer = nn.BatchNorm1d(4, momentum=momentum, dtype=np.float32)
    compiled = tl.compile(lambda x: layer(x).sum(), native=False)
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = tl.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        np.testing.assert_array_equal(compiled(x).data, eager_layer(x).sum().data)
    np.testing.assert_array_equal(layer.running_var.data, eager_layer.running_var.data)
    np.testing.assert_array_equal(layer.running_mean.data, eager_layer.running_mean.data)


def _two_pass_step(how):
    """A conv and batch-norm model called twice in one step: on two inputs (a siamese loss), or training on
    one and then evaluating another in eval mode; the second call reads parameters and buffers the first traced."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2, rng=rng)
    )
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x1, x2):
        opt.zero_grad()
        if how == "siamese":
            loss = F.mse_loss(model(x1), model(x2))
        else:
            loss = (model(x1) ** 2).mean()
        loss.backward()
        opt.step()
        if how == "siamese":
            return (loss,)
        model.eval()
        with tl.no_grad():
            val = model(x2)
        model.train()
        return loss, val

    return model, step


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("how", ["siamese", "train then eval"])
def test_a_batch_norm_model_called_twice_in_a_step_is_captured(how, native):
    (model, step), (eager_model, eager_step) = _two_pass_step(how), _two_pass_step(how)
    compiled = tl.compile(step, native=native)
    rtol = 1e-12 if native else 0.0
    rng = np.random.default_rng(1)
    for _ in range(6):
        x1, x2 = rng.standard_normal((4, 2, 2, 2)), rng.standard_normal((4, 2, 2, 2))
        for a, b in zip(compiled(x1, x2), eager_step(x1, x2)):
            np.testing.assert_allclose(a.data, b.data, rtol=rtol, atol=1e-15 if native else 0)
    assert compiled._replays
    for (name, a), b in zip(model.state_dict().items(), eager_model.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-15 if native else 0, err_msg=name)


def _torch_args_step(seed=0):
    """A CNN with torch's other conv and pooling arguments: padding="same" with an even kernel (padded after
    only), ceil_mode windows (a partial last one), per-window counts (count_include_pad=False), divisor_override,
    adaptive average pooling with overlapping bins, and an unbatched sample through all of it; SGD."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 2, padding="same", rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
        nn.Conv2d(4, 4, 3, padding="same", rng=rng),
        nn.MaxPool2d(2, ceil_mode=True),  # tiling windows, the last ones padded to tile
        nn.AvgPool2d(2, stride=1, padding=1, divisor_override=3),
        nn.AdaptiveAvgPool2d((2, 1)),
    )
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, sample):
        opt.zero_grad()
        loss = (model(x) ** 2).mean() + (model(sample) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    return model, step


def test_a_step_with_torchs_other_conv_and_pooling_arguments_replays_exactly():
    (model, step), (eager_model, eager_step) = _torch_args_step(), _torch_args_step()
    compiled = tl.compile(step, native=False)
    rng = np.random.default_rng(2)
    for _ in range(5):
        x, sample = tl.Tensor(rng.standard_normal((3, 2, 9, 9))), tl.Tensor(rng.standard_normal((2, 9, 9)))
        np.testing.assert_array_equal(compiled(x, sample).data, eager_step(x, sample).data)
    assert compiled._replays
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        np.testing.assert_array_equal(p.grad.data, q.grad.data)
