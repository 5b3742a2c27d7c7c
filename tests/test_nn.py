"""tinygrad_lab.nn: module registration and naming, repr, train/eval, state_dict, inits, and the lab's MLP
checked against the hand-derived backprop of tinygrad_lab.lab.reference."""

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn as nn
import tinygrad_lab.nn.functional as F
import tinygrad_lab.optim as optim
from tinygrad_lab.lab.reference import Network


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4, rng=np.random.default_rng(0))
        self.note = "not registered"
        self.scale = nn.Parameter(np.ones(4))
        self.inner = nn.Sequential(nn.Linear(4, 2, bias=False, rng=np.random.default_rng(1)), nn.Tanh())

    def forward(self, x):
        return self.inner(self.fc1(x) * self.scale)


# ---- registration and naming ------------------------------------------------------------------------------------


def test_named_parameters_follow_assignment_order_with_dotted_paths():
    block = Block()  # as in PyTorch: a module's own parameters first, then each child's, in assignment order
    assert [name for name, _ in block.named_parameters()] == ["scale", "fc1.weight", "fc1.bias", "inner.0.weight"]
    assert [p for p in block.parameters()] == [p for _, p in block.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in block.parameters())
    assert [name for name, _ in block.named_modules()] == ["", "fc1", "inner", "inner.0", "inner.1"]
    assert list(block.children()) == [block.fc1, block.inner]
    assert [name for name, _ in block.named_parameters(recurse=False)] == ["scale"]


def test_reassigning_or_deleting_an_attribute_unregisters_it():
    block = Block()
    block.fc1 = None
    del block.scale
    assert [name for name, _ in block.named_parameters()] == ["inner.0.weight"]
    block.scale = tl.tensor([1.0], requires_grad=True)  # a plain Tensor is not a Parameter: not registered
    assert [name for name, _ in block.named_parameters()] == ["inner.0.weight"]


def test_a_shared_parameter_or_module_is_listed_once():
    shared = nn.Linear(2, 2, rng=np.random.default_rng(0))
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    tied = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    tied[1].weight = tied[0].weight
    assert [name for name, _ in tied.named_parameters()] == ["0.weight"]


def test_module_without_super_init_gets_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(tl.tensor(1.0))


def test_ops_on_parameters_give_plain_tensors():
    w = nn.Parameter(np.ones((2, 2)))
    out = w @ w + 1.0
    assert type(out) is tl.Tensor and out.grad_fn is not None
    assert type(w.detach()) is tl.Tensor
    assert repr(w).startswith("Parameter([[1., 1.],\n           [1., 1.]]")


def test_repr_shows_the_module_tree():
    model = nn.Sequential(
        nn.Linear(2, 3, rng=np.random.default_rng(0)), nn.Sequential(nn.LeakyReLU(0.2), nn.Identity())
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): LeakyReLU(negative_slope=0.2)\n"
        "    (1): Identity()\n"
        "  )\n"
        ")"
    )


def test_train_and_eval_set_training_recursively():
    block = Block()
    assert all(m.training for m in block.modules())
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())


def test_zero_grad_sets_every_grad_to_none():
    block = Block()
    block(tl.Tensor.randn(5, 3, rng=np.random.default_rng(2))).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_sequential_indexing_and_names():
    a, b = nn.Tanh(), nn.ReLU()
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    named = nn.Sequential({"first": a, "second": b})
    assert [n for n, _ in named.named_children()] == ["first", "second"]
    with pytest.raises(TypeError, match="Sequential: cannot add a ufunc as module '1'"):
        nn.Sequential(a, np.tanh)
    with pytest.raises(KeyError, match="Sequential: attribute 'train' already exists"):
        nn.Sequential({"train": a})  # as torch's: the name would hide Module.train


def test_activation_modules_match_numpy():
    x = np.linspace(-3, 3, 13)
    t = tl.tensor(x)
    np.testing.assert_allclose(nn.Sigmoid()(t).data, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(t).data, np.tanh(x), rtol=1e-15)
    np.testing.assert_array_equal(nn.ReLU()(t).data, np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(nn.LeakyReLU(0.1)(t).data, np.where(x > 0, x, 0.1 * x))
    assert nn.Identity()(t) is t


# ---- state_dict ---------------------------------------------------------------------------------------------------


def _mlp(seed):
    return nn.MLP(2, (5, 3), 1, activation="tanh", rng=np.random.default_rng(seed))


def test_state_dict_is_an_ordered_copy():
    model = _mlp(0)
    state = model.state_dict()
    assert list(state) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    state["fc1.weight"][...] = 7.0
    assert not np.any(model.fc1.weight.data == 7.0)


def test_state_dict_round_trip_through_npz(tmp_path):
    x = tl.Tensor.randn(6, 2, rng=np.random.default_rng(9))
    source, target = _mlp(0), _mlp(1)
    for p in source.parameters():  # nonzero biases, so they are part of the check
        p.data += 0.1
    assert not np.allclose(source(x).data, target(x).data)
    np.savez(tmp_path / "model.npz", **source.state_dict())
    arrays_before = [p.data for p in target.parameters()]
    with np.load(tmp_path / "model.npz") as saved:
        result = target.load_state_dict(saved)
    assert result == nn.IncompatibleKeys([], [])
    np.testing.assert_array_equal(source(x).data, target(x).data)
    assert all(a is p.data for a, p in zip(arrays_before, target.parameters()))  # loaded in place


def test_load_reports_missing_and_unexpected_keys():
    model = _mlp(0)
    state = model.state_dict()
    del state["fc2.bias"]
    state["fc9.weight"] = np.zeros(3)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys ['fc2.bias']" in message and "unexpected keys ['fc9.weight']" in message
    with pytest.raises(KeyError, match=r"missing keys \['fc1.weight'"):
        model.load_state_dict({})


def test_load_shape_mismatch_names_key_and_both_shapes_and_writes_nothing():
    model = _mlp(0)
    before = model.state_dict()
    state = _mlp(1).state_dict()
    state["fc2.weight"] = np.zeros((5, 3))  # the transpose of the (out, in) weight
    with pytest.raises(ValueError, match=r"'fc2.weight' has shape \(5, 3\) in the state dict but \(3, 5\)"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_wrong_dtype_is_a_type_error_and_writes_nothing():
    model = _mlp(0)
    before = model.state_dict()
    state = _mlp(1).state_dict()
    state["fc3.bias"] = np.array(["x"])
    with pytest.raises(TypeError, match="'fc3.bias' has dtype <U1, which cannot be stored in the model's float64"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.fc1.weight.data, before["fc1.weight"])


def test_load_non_strict_returns_what_it_skipped():
    model, other = _mlp(0), _mlp(1)
    state = other.state_dict()
    del state["fc3.bias"]
    state["extra"] = np.ones(2)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc3.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.fc1.weight.data, other.fc1.weight.data)


# ---- inits ------------------------------------------------------------------------------------------------------


def test_xavier_uniform_statistics():
    fan_in, fan_out = 300, 500
    w = nn.Linear(fan_in, fan_out, init="xavier", rng=np.random.default_rng(0)).weight.data
    bound = np.sqrt(6 / (fan_in + fan_out))
    assert w.shape == (fan_out, fan_in)  # PyTorch's layout
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert abs(w.var() / (bound**2 / 3) - 1) < 0.02 and abs(w.mean()) < 0.01 * bound


def test_kaiming_normal_statistics():
    fan_in, fan_out = 400, 500
    w = nn.Linear(fan_in, fan_out, init="kaiming", rng=np.random.default_rng(0)).weight.data
    std = np.sqrt(2 / fan_in)
    assert abs(w.std() / std - 1) < 0.01 and abs(w.mean()) < 0.01 * std


def test_randn_is_the_labs_standard_normal_draw():
    layer = nn.Linear(3, 5, init="randn", rng=np.random.default_rng(4))
    np.testing.assert_array_equal(layer.weight.data, np.random.default_rng(4).standard_normal((3, 5)).T)
    tl.manual_seed(11)  # rng=None uses the generator manual_seed sets
    np.testing.assert_array_equal(
        nn.Linear(3, 5, init="randn").weight.data, np.random.default_rng(11).standard_normal((3, 5)).T
    )


@pytest.mark.parametrize("alias, name", [("glorot", "xavier"), ("he", "kaiming")])
def test_init_aliases(alias, name):
    a = nn.Linear(4, 6, init=alias, rng=np.random.default_rng(1)).weight.data
    b = nn.Linear(4, 6, init=name, rng=np.random.default_rng(1)).weight.data
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", ["xavier", "kaiming", "randn"])
def test_bias_starts_at_zero_and_can_be_left_out(init):
    layer = nn.Linear(3, 4, init=init, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(4))
    x = np.random.default_rng(1).standard_normal((2, 3))
    layer.bias.data[...] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(layer(tl.tensor(x)).data, x @ layer.weight.data.T + [1.0, 2.0, 3.0, 4.0], rtol=1e-15)
    assert [n for n, _ in nn.Linear(3, 4, bias=False).named_parameters()] == ["weight"]


def test_unknown_init_and_activation_list_the_valid_names():
    with pytest.raises(
        ValueError, match="unknown init 'orthogonal'; valid inits: default, xavier, glorot, kaiming, he, randn"
    ):
        nn.Linear(2, 2, init="orthogonal")
    with pytest.raises(
        ValueError,
        match="unknown activation 'mish'; valid activations: sigmoid, tanh, relu, leaky_relu, gelu, silu, elu, "
        "softplus, none, identity",
    ):
        nn.MLP(2, (3,), 1, activation="mish")
    with pytest.raises(ValueError, match="unknown activation 'softmax'"):
        nn.MLP(2, (3,), 1, out_activation="softmax")


# ---- MLP ------------------------------------------------------------------------------------------------------


def test_mlp_layer_names_and_activations():
    model = nn.MLP(2, (4, 3, 5), 2, activation="leaky_relu", out_activation="none")
    names = [n for n, _ in model.named_children()]
    assert names == ["fc1", "act1", "fc2", "act2", "fc3", "act3", "fc4", "act4"]
    assert [type(m).__name__ for m in model] == ["Linear", "LeakyReLU"] * 3 + ["Linear", "Identity"]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [
        (2, 4),
        (4, 3),
        (3, 5),
        (5, 2),
    ]
    assert model(tl.Tensor.randn(7, 2)).shape == (7, 2)
    single = nn.MLP(3, (), 1, activation="relu", out_activation="identity")
    assert [n for n, _ in single.named_children()] == ["fc1", "act1"]


def test_lab_mlp_repr():
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    lines = repr(model).splitlines()
    assert lines[0] == "MLP(" and lines[-1] == ")"
    assert lines[1:7] == [
        "  (fc1): Linear(in_features=2, out_features=4, bias=False)",
        "  (act1): Sigmoid()",
        "  (fc2): Linear(in_features=4, out_features=4, bias=False)",
        "  (act2): Sigmoid()",
        "  (fc3): Linear(in_features=4, out_features=1, bias=False)",
        "  (act3): Sigmoid()",
    ]


@pytest.mark.parametrize("seed, h1, h2", [(0, 4, 4), (1, 2, 1), (7, 32, 32)])
def test_lab_mlp_gradients_equal_the_reference(seed, h1, h2):
    data_rng = np.random.default_rng(100 + seed)
    x = data_rng.random((25, 2))
    y = (x[:, :1] > x[:, 1:]).astype(np.float64)
    model = nn.MLP(2, (h1, h2), 1, bias=False, init="randn", rng=np.random.default_rng(seed))
    ref = Network(2, h1, h2, 1, rng=np.random.default_rng(seed))
    for p, w in zip(model.parameters(), ref.weights):
        np.testing.assert_array_equal(p.data, w.T)  # same draws, same order; nn.Linear keeps (out, in)
    pred = model(tl.tensor(x))
    np.testing.assert_allclose(pred.data, ref.forward(x), rtol=1e-12, atol=0)
    F.mse_loss(pred, y).backward()
    for p, g in zip(model.parameters(), ref.backpropagation(y)):
        np.testing.assert_allclose(p.grad.data, g.T, rtol=1e-12, atol=0)


def test_lab_training_follows_the_reference_step_by_step():
    x = np.random.default_rng(5).random((20, 2))
    y = (x[:, :1] > x[:, 1:]).astype(np.float64)
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(3))
    ref = Network(rng=np.random.default_rng(3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    xt = tl.tensor(x)
    for _ in range(200):
        opt.zero_grad()
        loss = F.mse_loss(model(xt), y)
        loss.backward()
        opt.step()
        ref_loss = ref.train_step(x, y, 0.1)
        assert loss.item() == pytest.approx(ref_loss, rel=1e-12)
    for p, w in zip(model.parameters(), ref.weights):
        np.testing.assert_allclose(p.data, w.T, rtol=1e-11, atol=0)


def test_a_registered_parameter_or_module_is_replaced_only_by_its_kind_or_none_as_torch():
    """A plain Tensor assigned over a Parameter would silently leave the optimizer and state_dict without it."""
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"^Linear: cannot assign a Tensor as parameter 'weight' \(Parameter or None"):
        layer.weight = tl.tensor(np.zeros((2, 2)))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    seq = nn.Sequential(layer)
    with pytest.raises(TypeError, match=r"cannot assign a ndarray as module '0' \(Module or None expected\)"):
        setattr(seq, "0", np.zeros(2))
    layer.weight = nn.Parameter(np.ones((2, 2)))  # its own kind: replaced
    layer.bias = None  # None: no longer a parameter
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_train_takes_a_boolean_mode_only():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"^Sequential.train: mode must be True or False, got 'False'$"):
        model.train("False")
    assert model.training and model.train(False) is model and not model[1].training
    assert model.train(np.bool_(True)).training


def test_slicing_a_sequential_gives_a_sequential_of_the_same_modules_and_names():
    first, act, last = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)
    model = nn.Sequential(first, act, last)
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == [act, last]
    assert [name for name, _ in tail.named_parameters()] == ["2.weight", "2.bias"]  # names kept, as torch
    x = tl.tensor(np.ones((5, 4)))
    np.testing.assert_array_equal(tail(x).data, last(act(x)).data)
    assert model[-1] is last


def test_a_shared_module_or_tied_weight_is_in_the_state_dict_under_every_name_as_in_torch():
    """torch's state_dict lists a module reached by two names under both (torch.nn.Sequential(lin, lin) has
    0.weight, 0.bias, 1.weight, 1.bias), so its exported dict loads strictly into the same architecture."""
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, shared)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]  # parameters: each once
    exported = {k: np.full(v.shape, 3.0) for k, v in model.state_dict().items()}
    model.load_state_dict(exported)  # strict: no unexpected keys
    np.testing.assert_array_equal(shared.weight.data, np.full((2, 2), 3.0))
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight  # tied
    assert list(nn.Sequential({"a": a, "b": b}).state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
