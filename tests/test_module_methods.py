"""Module.float, double, to, apply, requires_grad_, get_submodule and get_parameter against torch's: dtypes of
parameters, buffers and gradients, the Parameter objects kept (so an optimizer made before still trains them), a
captured step after a conversion, the order apply visits, and the errors."""

import numpy as np
import pytest
import torch
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F

TORCH_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64}


def make_model(lib):
    return lib.Sequential(lib.Linear(3, 4), lib.BatchNorm1d(4), lib.Tanh(), lib.Sequential(lib.Linear(4, 2)))


def loaded_pair():
    ours, theirs = make_model(nn), make_model(torch.nn)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def backward_both(ours, theirs, x):
    ours(tl.tensor(x.astype(ours[0].weight.dtype))).sum().backward()
    theirs(torch.tensor(x, dtype=theirs[0].weight.dtype)).sum().backward()


@pytest.mark.parametrize(
    "convert",
    [
        ("float", lambda m: m.float(), lambda m: m.float()),
        ("to float32", lambda m: m.to(np.float32), lambda m: m.to(torch.float32)),
        ("to cpu, float32", lambda m: m.to("cpu", np.float32), lambda m: m.to("cpu", torch.float32)),
        ("to dtype=", lambda m: m.to(dtype=np.float32), lambda m: m.to(dtype=torch.float32)),
        ("float then double", lambda m: m.float().double(), lambda m: m.float().double()),
    ],
    ids=lambda c: c[0],
)
def test_conversions_give_torchs_dtypes_keep_the_objects_and_convert_gradients(convert):
    _, ours_convert, theirs_convert = convert
    ours, theirs = loaded_pair()
    backward_both(ours, theirs, np.random.default_rng(0).standard_normal((5, 3)))
    before = {name: (p, p.grad) for name, p in ours.named_parameters()}
    assert ours_convert(ours) is ours and theirs_convert(theirs) is theirs
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert mine[name] is before[name][0] and mine[name].grad is before[name][1], name  # same objects, as torch
        assert mine[name].dtype == TORCH_DTYPES[p.dtype] and mine[name].grad.dtype == TORCH_DTYPES[p.grad.dtype], name
    buffers = dict(ours.named_buffers())
    for name, b in theirs.named_buffers():  # the running statistics convert, the int64 count stays
        assert buffers[name].dtype == TORCH_DTYPES[b.dtype], name
        np.testing.assert_allclose(buffers[name].data, b.numpy(), rtol=1e-6, err_msg=name)


def test_an_optimizer_made_before_float_trains_the_converted_parameters_as_torchs():
    ours, theirs = loaded_pair()
    ours_opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    ours.float(), theirs.float()
    x = np.random.default_rng(1).standard_normal((6, 3))
    for _ in range(3):
        ours_opt.zero_grad(), theirs_opt.zero_grad()
        backward_both(ours, theirs, x)
        ours_opt.step(), theirs_opt.step()
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert mine[name].dtype == np.float32
        np.testing.assert_allclose(mine[name].data, p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_captured_step_traced_before_a_conversion_traces_again_and_computes_in_the_new_dtype():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1, rng=rng))
    opt = optim.SGD(model.parameters(), lr=0.05)

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = tl.compile(step)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    for _ in range(3):
        compiled(x, y)
    model.float()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    twin = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1)).float()
    twin.load_state_dict(model.state_dict())
    twin_opt = optim.SGD(twin.parameters(), lr=0.05)
    for _ in range(3):
        loss = compiled(x32, y32)
        twin_opt.zero_grad()
        expected = F.mse_loss(twin(x32), y32)
        expected.backward()
        twin_opt.step()
        assert loss.dtype == np.float32
        np.testing.assert_allclose(loss.data, expected.data, rtol=1e-6)
    for p, q in zip(model.parameters(), twin.parameters()):  # (float32: the native step may round differently)
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, q.data, rtol=1e-6, atol=1e-7)
    for b, c in zip(model.buffers(), twin.buffers()):  # the running statistics too: the replay writes the new arrays
        assert b.dtype == c.dtype
        np.testing.assert_allclose(b.data, c.data, rtol=1e-6, atol=1e-7)


def test_to_cpu_is_a_no_op_and_other_devices_or_dtypes_are_refused_as_torch():
    model = make_model(nn)
    weight = model[0].weight.data
    assert model.to("cpu") is model and model.to(device="cpu") is model and model[0].weight.data is weight
    with pytest.raises(ValueError, match=r"Sequential.to: only the 'cpu' device exists here \(numpy\), got 'cuda'"):
        model.to("cuda")
    with pytest.raises(TypeError, match="Sequential.to: only floating-point dtypes are accepted, got int64"):
        model.to(np.int64)  # torch: "nn.Module.to only accepts floating point or complex dtypes"
    with pytest.raises(TypeError, match="Sequential.to: 'floaty' is neither a dtype nor a device"):
        model.to("floaty")
    assert model[0].weight.dtype == np.float64


def test_to_a_tensor_takes_its_dtype_as_torch():
    model = make_model(nn)
    model.to(tl.tensor(np.zeros(2, dtype=np.float32)))
    assert model[0].weight.dtype == np.float32 and model[1].running_var.dtype == np.float32


def test_apply_visits_children_first_then_the_module_as_torch():
    ours, theirs = make_model(nn), make_model(torch.nn)
    seen, expected = [], []
    assert ours.apply(lambda m: seen.append(type(m).__name__)) is ours
    theirs.apply(lambda m: expected.append(type(m).__name__))
    assert seen == expected


def test_apply_initialises_weights_as_ported_code_does():
    model = make_model(nn)

    def init(m):
        if isinstance(m, nn.Linear):
            m.weight.data[...] = 0.5
            m.bias.data[...] = 0.0

    model.apply(init)
    assert np.all(model[0].weight.data == 0.5) and np.all(model[3][0].bias.data == 0.0)


def test_requires_grad_freezes_and_unfreezes_every_parameter():
    model = make_model(nn)
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model[0].requires_grad_()
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, False, False, False]
    model(tl.tensor(np.ones((2, 3)))).sum().backward()
    assert model[0].weight.grad is not None and model[3][0].weight.grad is None


def test_get_submodule_and_get_parameter_as_torch_with_its_errors():
    ours, theirs = make_model(nn), make_model(torch.nn)
    assert ours.get_submodule("") is ours and ours.get_submodule("3.0") is ours[3][0]
    assert ours.get_parameter("3.0.bias") is ours[3][0].bias
    for target, method in [
        ("0.foo", "get_submodule"),
        ("0.weight", "get_submodule"),
        ("0.foo", "get_parameter"),
        ("1.running_mean", "get_parameter"),
        ("7.weight", "get_parameter"),
    ]:
        with pytest.raises(AttributeError) as expected:
            getattr(theirs, method)(target)
        with pytest.raises(AttributeError) as got:
            getattr(ours, method)(target)
        assert str(got.value) == str(expected.value), (method, target)
