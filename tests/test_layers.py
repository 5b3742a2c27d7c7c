"""The nn layers of a CNN: PyTorch's initialisation, state dicts (buffers included) exchanged with PyTorch, the
train/eval behaviour of batch norm and dropout, and their derivatives against finite differences."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn
from tinygrad_lab.testing import gradcheck, gradgradcheck
from tinygrad_lab.testing.strategies import arrays


def both_cnns(seed=0):
    """The same architecture in PyTorch and here, every kind of layer once, PyTorch's keys."""
    torch.manual_seed(seed)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, (3, 2), stride=(1, 2), groups=2, dilation=(1, 2)),
        torch.nn.AvgPool2d(2, padding=1),
        torch.nn.Dropout(0.3),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 5),
        torch.nn.BatchNorm1d(5),
    )
    mine = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(1, 2), groups=2, dilation=(1, 2)),
        nn.AvgPool2d(2, padding=1),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(12, 5),
        nn.BatchNorm1d(5),
    )
    return theirs, mine


def torch_trained(model, x, steps=3):
    """A few SGD steps in training mode: the running statistics and the weights move away from their start."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_a_pytorch_trained_state_dict_loads_and_gives_the_same_outputs_and_gradients():
    theirs, mine = both_cnns()
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8))
    state = torch_trained(theirs, torch.tensor(x))
    assert list(mine.state_dict()) == list(state)  # same keys, same order, buffers included
    mine.load_state_dict(state)
    for key, value in mine.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    assert int(mine[1].num_batches_tracked.item()) == 3
    theirs.eval(), mine.eval()
    np.testing.assert_allclose(
        mine(tl.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
    )
    theirs.train(), mine.train(), theirs.zero_grad()  # drop the gradients of the last training step
    mine[6].p = theirs[6].p = 0.0  # dropout's masks come from different generators
    xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = mine(xs), theirs(xt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out**2).mean().backward()
    ref.square().mean().backward()
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    for name, b in mine.named_buffers():  # the training forward moved the running statistics alike
        np.testing.assert_allclose(b.data, theirs.state_dict()[name].numpy(), rtol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "make, fan_in, shapes",
    [
        (lambda rng: nn.Conv2d(6, 8, (3, 5), groups=2, rng=rng), 3 * 15, [(8, 3, 3, 5), (8,)]),
        (lambda rng: nn.Conv1d(4, 300, 7, rng=rng), 28, [(300, 4, 7), (300,)]),
        (lambda rng: nn.Linear(50, 400, rng=rng), 50, [(400, 50), (400,)]),
    ],
)
def test_default_initialisation_is_pytorchs_uniform_in_one_over_sqrt_fan_in(make, fan_in, shapes):
    layer = make(np.random.default_rng(0))
    bound = 1 / np.sqrt(fan_in)
    assert [p.shape for p in layer.parameters()] == shapes
    for p in layer.parameters():
        assert np.abs(p.data).max() <= bound
    w = layer.weight.data
    assert np.abs(w).max() > 0.99 * bound and abs(w.var() / (bound**2 / 3) - 1) < 0.05  # the uniform's variance
    torch_layer = {2: torch.nn.Conv2d(6, 8, (3, 5), groups=2), 3: torch.nn.Conv1d(4, 300, 7)}.get(
        w.ndim - 2, torch.nn.Linear(50, 400)
    )
    assert np.abs(torch_layer.weight.detach().numpy()).max() <= bound  # the same bound as PyTorch's
    again = make(np.random.default_rng(0))
    for p, q in zip(layer.parameters(), again.parameters()):
        np.testing.assert_array_equal(p.data, q.data)  # the rng decides every number


def test_layers_take_a_dtype_and_keep_it():
    for layer in (
        nn.Conv2d(1, 2, 3, dtype=np.float32),
        nn.Conv1d(1, 2, 3, dtype=np.float32),
        nn.Linear(2, 3, dtype=np.float32),
        nn.BatchNorm2d(2, dtype=np.float32),
    ):
        assert {p.dtype for p in layer.parameters()} == {np.dtype(np.float32)}
    out = nn.Conv2d(1, 2, 3, dtype=np.float32)(tl.Tensor(np.ones((1, 1, 4, 4), np.float32)))
    assert out.dtype == np.float32


# ---- batch norm ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("shape", [(8, 3), (6, 3, 5), (4, 3, 2, 5)])
def test_batch_norm_training_and_eval_follow_pytorch(shape, momentum):
    make, torch_make = (
        (nn.BatchNorm2d, torch.nn.BatchNorm2d) if len(shape) == 4 else (nn.BatchNorm1d, torch.nn.BatchNorm1d)
    )
    mine, theirs = make(3, momentum=momentum), torch_make(3, momentum=momentum)
    rng = np.random.default_rng(1)
    for _ in range(3):  # training: batch statistics, running ones updated with the unbiased variance
        x = rng.standard_normal(shape) * 3 + 1
        np.testing.assert_allclose(
            mine(tl.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(mine.running_mean.data, theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(mine.running_var.data, theirs.running_var.numpy(), rtol=1e-12)
    assert mine.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3
    mine.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    before = mine.running_mean.data.copy()
    out = mine(tl.Tensor(x))
    np.testing.assert_allclose(out.data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(mine.running_mean.data, before)  # eval reads the statistics, never writes
    assert mine.num_batches_tracked.item() == 3
    centred = x - before.reshape((1, 3) + (1,) * (len(shape) - 2))
    assert not np.allclose(
        out.data, centred / np.sqrt(x.var(axis=tuple(i for i in range(len(shape)) if i != 1), keepdims=True) + 1e-5)
    )  # not batch statistics


@settings(max_examples=10)
@given(data=st.data(), shape=st.sampled_from([(3, 2), (2, 2, 3), (2, 2, 2, 2)]))
def test_batch_norm_first_and_second_derivatives(data, shape):
    x = tl.Tensor(data.draw(arrays(shape)), requires_grad=True)
    w = tl.Tensor(data.draw(arrays((2,))), requires_grad=True)
    b = tl.Tensor(data.draw(arrays((2,))), requires_grad=True)
    rm, rv = data.draw(arrays((2,))), np.abs(data.draw(arrays((2,)))) + 0.5
    for training in (True, False):
        fn = lambda x, w, b, training=training: F.batch_norm(
            x, None if training else rm, None if training else rv, w, b, training=training
        )
        assert gradcheck(fn, [x, w, b]) and gradgradcheck(fn, [x, w, b])


def test_batch_norm_bad_input_names_the_shapes():
    with pytest.raises(ValueError) as err:
        nn.BatchNorm2d(3)(tl.Tensor(np.ones((4, 3))))
    assert str(err.value) == "BatchNorm2d: expected input of shape (N, C, H, W), got shape (4, 3)"
    with pytest.raises(ValueError) as err:
        nn.BatchNorm1d(3)(tl.Tensor(np.ones((4, 2))))
    assert str(err.value) == "batch_norm: running_mean has shape (3,) but the input (4, 2) has 2 channels"
    with pytest.raises(ValueError) as err:
        nn.BatchNorm1d(3)(tl.Tensor(np.ones((1, 3))))
    assert str(err.value) == (
        "batch_norm: expected more than 1 value per channel when training, got input of shape (1, 3)"
    )


# ---- dropout --------------------------------------------------------------------------------------------------------


def test_dropout_zeroes_with_probability_p_scales_the_rest_and_is_seeded():
    x = tl.Tensor(np.ones((200, 100)))
    out = F.dropout(x, 0.3, rng=np.random.default_rng(7))
    kept = out.data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out.data[kept], 1 / 0.7, rtol=1e-15)
    np.testing.assert_array_equal(out.data, F.dropout(x, 0.3, rng=np.random.default_rng(7)).data)
    assert not np.array_equal(out.data, F.dropout(x, 0.3, rng=np.random.default_rng(8)).data)
    tl.manual_seed(3)
    first = F.dropout(x, 0.5).data
    tl.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, first)  # rng None: tl.manual_seed's generator
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((200, 100)))
    with pytest.raises(ValueError, match=r"^dropout: probability p must be a number in \[0, 1\], got 1.5$"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"^Dropout: probability p must be a number in \[0, 1\], got '0.5'$"):
        nn.Dropout("0.5")
    # numpy's scalars are numbers too
    half = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    np.testing.assert_array_equal(F.dropout(x, np.float32(0.5), rng=np.random.default_rng(7)).data, half)
    assert nn.Dropout(np.float32(0.25)).p == 0.25


def test_dropout_module_trains_and_evaluates():
    layer = nn.Dropout(0.5, rng=np.random.default_rng(0))
    x = tl.Tensor(np.ones((10, 10)), requires_grad=True)
    assert layer.training and (layer(x).data == 0).any()
    assert layer.eval() is layer and not layer.training
    assert layer(x) is x  # evaluation: the identity
    fn = lambda x: F.dropout(x, 0.4, rng=np.random.default_rng(1))  # noqa: E731  (the same mask every call)
    small = tl.Tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(fn, [small]) and gradgradcheck(fn, [small])


def test_flatten_follows_pytorch():
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    assert nn.Flatten()(tl.Tensor(x)).shape == tuple(torch.nn.Flatten()(torch.tensor(x)).shape) == (2, 60)
    assert F.flatten(tl.Tensor(x), 1, 2).shape == (2, 12, 5) and F.flatten(tl.Tensor(x)).shape == (120,)
    xs = tl.Tensor(x[:1, :2, :2, :2], requires_grad=True)
    assert gradcheck(nn.Flatten(), [xs])


# ---- modules: train/eval and buffers ---------------------------------------------------------------------------


def test_train_and_eval_reach_every_submodule_and_return_self():
    _, model = both_cnns()
    assert all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())
    assert model.train(False) is model and not model[1].training


def test_buffers_are_saved_and_loaded_but_not_trained():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2, rng=np.random.default_rng(0))
            self.register_buffer("scale", np.full(2, 3.0))
            self.register_buffer("cache", np.zeros(2), persistent=False)

    model = Scaled()
    assert [n for n, _ in model.named_parameters()] == ["lin.weight", "lin.bias"]
    assert [n for n, _ in model.named_buffers()] == ["scale", "cache"]
    assert list(model.state_dict()) == ["scale", "lin.weight", "lin.bias"]  # own entries first, as PyTorch
    state = model.state_dict()
    state["scale"] = np.array([5.0, 6.0])
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.scale.data, [5.0, 6.0])
    model.scale = np.array([1.0, 2.0])  # assigning replaces the buffer, which stays a buffer
    assert model.state_dict()["scale"].tolist() == [1.0, 2.0]
    del state["scale"]
    with pytest.raises(KeyError, match=r"missing keys \['scale'\]"):
        model.load_state_dict(state)
    with pytest.raises(KeyError, match="already a parameter or module"):
        model.register_buffer("lin", np.zeros(1))


def test_linear_refuses_bad_sizes_and_names_its_input_mismatch_in_one_line():
    for bad in ((3.0, 2), (-1, 2), (3, True)):
        with pytest.raises(ValueError, match=r"^Linear: (in|out)_features must be an integer >= 0, got "):
            nn.Linear(*bad)
    with pytest.raises(ValueError, match=r"^Linear\(3, 2\): input of shape \(4, 5\) does not fit: its last axis must"):
        nn.Linear(3, 2)(tl.Tensor(np.ones((4, 5))))
    assert nn.Linear(np.int64(3), 2)(tl.Tensor(np.ones((4, 3)))).shape == (4, 2)


@pytest.mark.parametrize("layer", [nn.MaxPool2d, nn.AvgPool2d])
def test_pooling_layers_refuse_a_stride_of_zero_rather_than_default_it(layer):
    with pytest.raises(ValueError, match=r"pool2d: stride must be an int >= 1 or 2 of them, got 0$"):
        layer(2, stride=0)(tl.Tensor(np.ones((1, 1, 4, 4))))
    assert layer(2).stride == 2 and layer(3, stride=1).stride == 1


def test_a_batch_norm_state_dict_without_its_count_or_in_float32_loads_as_in_torch():
    """Older torch checkpoints lack num_batches_tracked (the module keeps its own), and a state dict converted
    to float32 wholesale holds the count as a float: both load, as torch loads them; a fraction does not."""
    reference = torch.nn.BatchNorm2d(3)
    reference(torch.randn(4, 3, 2, 2))
    arrays = {k: v.numpy() for k, v in reference.state_dict().items()}
    without_count = {k: v for k, v in arrays.items() if k != "num_batches_tracked"}
    layer = nn.Sequential(nn.BatchNorm2d(3))
    assert layer.load_state_dict({f"0.{k}": v for k, v in without_count.items()}) == ([], [])
    assert int(layer[0].num_batches_tracked.data) == 0
    np.testing.assert_array_equal(layer[0].running_mean.data, arrays["running_mean"])
    torch.nn.BatchNorm2d(3).load_state_dict({k: torch.from_numpy(v) for k, v in without_count.items()})  # as torch
    as_float32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    layer = nn.BatchNorm2d(3, dtype=np.float32)
    layer.load_state_dict(as_float32)
    assert layer.num_batches_tracked.dtype == np.int64 and int(layer.num_batches_tracked.data) == 1
    with pytest.raises(TypeError, match="'num_batches_tracked' has dtype float32, which cannot be stored"):
        layer.load_state_dict({**as_float32, "num_batches_tracked": np.array(1.5, dtype=np.float32)})
    with pytest.raises(TypeError, match="'num_batches_tracked' has dtype float64"):  # whole, but not an int64
        layer.load_state_dict({**as_float32, "num_batches_tracked": np.array(1e20)})
    with pytest.raises(nn.StateDictKeyError, match=r"missing keys \['running_mean'\]"):  # only the count is optional
        nn.BatchNorm2d(3).load_state_dict({k: v for k, v in arrays.items() if k != "running_mean"})
