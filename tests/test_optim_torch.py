"""torch.optim's interface against torch itself: param_groups and defaults with torch's keys and values,
per-group hyperparameters, add_param_group, step(closure), and state_dict/load_state_dict checkpoints taken
mid-training in either library continuing as torch's optimizer continues."""

import inspect

import numpy as np
import pytest
import torch
from torch_helpers import torch_in_float64  # noqa: F401  # the fixture: torch in float64 for these comparisons

import tinygrad_lab as tl
import tinygrad_lab.optim as optim

rng = np.random.default_rng(0)
SHAPES = [(3, 4), (3,), (2, 3)]  # a two-layer network's weights: W1, b1, W2
START = [rng.standard_normal(s) for s in SHAPES]
X, Y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))

CONFIGS = {
    "sgd": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.01)),
    "adamw": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01)),
    "adagrad": (optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1, weight_decay=0.01)),
}
# a hyperparameter of each optimizer's to give the second group a value of its own, and another to change later
OTHER = {
    "sgd": ("momentum", 0.5, "dampening", 0.3),
    "nesterov": ("momentum", 0.6, "weight_decay", 0.1),
    "adam": ("betas", (0.7, 0.9), "eps", 1e-3),
    "adamw": ("weight_decay", 0.3, "betas", (0.5, 0.99)),
    "rmsprop": ("alpha", 0.5, "momentum", 0.9),
    "adagrad": ("eps", 1e-3, "weight_decay", 0.2),
}


def pair():
    """The same three parameters in both libraries."""
    return [tl.tensor(a.copy(), requires_grad=True) for a in START], [
        torch.tensor(a.copy(), requires_grad=True) for a in START
    ]


def loss_ours(ps):
    w1, b1, w2 = ps
    return (((tl.tensor(X) @ w1.T + b1).tanh() @ w2.T - tl.tensor(Y)) ** 2).mean()


def loss_torch(ps):
    w1, b1, w2 = ps
    return (((torch.tensor(X) @ w1.T + b1).tanh() @ w2.T - torch.tensor(Y)) ** 2).mean()


def step_both(ours, ps, theirs, qs, n=1):
    for _ in range(n):
        ours.zero_grad()
        loss_ours(ps).backward()
        ours.step()
        theirs.zero_grad()
        loss_torch(qs).backward()
        theirs.step()


def assert_params_equal(ps, qs):
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-13)


def groups_of(ps, name):
    key, value, _, _ = OTHER[name]
    return [{"params": ps[:2], "lr": 0.02}, {"params": ps[2:], key: value}]


def without_params(groups):
    return [{k: v for k, v in g.items() if k != "params"} for g in groups]


def to_numpy(state_dict):
    """torch's state dict with its tensors as numpy arrays (what our load_state_dict takes)."""
    state = {i: {k: v.detach().numpy().copy() for k, v in s.items()} for i, s in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


def to_torch(state_dict):
    state = {i: {k: torch.tensor(v) for k, v in s.items()} for i, s in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


@pytest.mark.parametrize("name", CONFIGS)
def test_param_groups_defaults_and_per_group_updates_match_torch(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours, theirs = ours_cls(groups_of(ps, name), **kwargs), torch_cls(groups_of(qs, name), **kwargs)
    assert ours.defaults == theirs.defaults
    assert without_params(ours.param_groups) == without_params(theirs.param_groups)
    assert [list(map(id, g["params"])) for g in ours.param_groups] == [[id(p) for p in ps[:2]], [id(ps[2])]]
    step_both(ours, ps, theirs, qs, 3)
    assert_params_equal(ps, qs)
    # a schedule's writes, per group: the learning rate and another hyperparameter, in both
    _, _, key, value = OTHER[name]
    for opt in (ours, theirs):
        opt.param_groups[1]["lr"] = 0.003
        opt.param_groups[0][key] = value
    step_both(ours, ps, theirs, qs, 3)
    assert_params_equal(ps, qs)
    assert without_params(ours.param_groups) == without_params(theirs.param_groups)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_plain_parameter_list_is_one_group_with_the_defaults_as_torch(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours, theirs = ours_cls(ps, **kwargs), torch_cls(qs, **kwargs)
    assert without_params(ours.param_groups) == without_params(theirs.param_groups)
    assert len(ours.param_groups) == 1 and ours.param_groups[0]["params"] == ps
    assert ours.lr == theirs.param_groups[0]["lr"]
    ours.lr = 0.5  # the one group's learning rate
    theirs.param_groups[0]["lr"] = 0.5
    step_both(ours, ps, theirs, qs, 2)
    assert_params_equal(ps, qs)


@pytest.mark.parametrize("name", CONFIGS)
def test_add_param_group_mid_training_matches_torch(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours, theirs = ours_cls(ps[:2], **kwargs), torch_cls(qs[:2], **kwargs)
    step_both(ours, ps, theirs, qs, 2)
    key, value, _, _ = OTHER[name]
    ours.add_param_group({"params": ps[2], "lr": 0.03, key: value})  # a lone Tensor is a group of one, as torch
    theirs.add_param_group({"params": qs[2], "lr": 0.03, key: value})
    assert without_params(ours.param_groups) == without_params(theirs.param_groups)
    assert ours.params == ps
    step_both(ours, ps, theirs, qs, 3)
    assert_params_equal(ps, qs)


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_has_torchs_structure_and_values(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours, theirs = ours_cls(groups_of(ps, name), **kwargs), torch_cls(groups_of(qs, name), **kwargs)
    step_both(ours, ps, theirs, qs, 3)
    mine, torchs = ours.state_dict(), to_numpy(theirs.state_dict())
    assert mine["param_groups"] == torchs["param_groups"]
    assert sorted(mine["state"]) == sorted(torchs["state"])
    for i, state in mine["state"].items():
        assert sorted(state) == sorted(torchs["state"][i])
        for key, value in state.items():
            np.testing.assert_allclose(value, torchs["state"][i][key], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_checkpoint_of_torch_loaded_mid_training_continues_as_torch(name):
    """Train k steps in torch, load its optimizer's state (as numpy) into ours over the same weights, and both
    continue alike."""
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    theirs = torch_cls(groups_of(qs, name), **kwargs)
    for _ in range(4):
        theirs.zero_grad()
        loss_torch(qs).backward()
        theirs.step()
    theirs.param_groups[0]["lr"] = 0.007  # saved with the checkpoint
    for p, q in zip(ps, qs):
        np.copyto(p.data, q.detach().numpy())
    ours = ours_cls(groups_of(ps, name), **kwargs)
    ours.load_state_dict(to_numpy(theirs.state_dict()))
    assert ours.param_groups[0]["lr"] == 0.007
    step_both(ours, ps, theirs, qs, 4)
    assert_params_equal(ps, qs)


@pytest.mark.parametrize("name", CONFIGS)
def test_our_checkpoint_loaded_into_torch_continues_as_ours(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours = ours_cls(groups_of(ps, name), **kwargs)
    for _ in range(4):
        ours.zero_grad()
        loss_ours(ps).backward()
        ours.step()
    with torch.no_grad():
        for p, q in zip(ps, qs):
            q.copy_(torch.tensor(p.data))
    theirs = torch_cls(groups_of(qs, name), **kwargs)
    theirs.load_state_dict(to_torch(ours.state_dict()))
    step_both(ours, ps, theirs, qs, 4)
    assert_params_equal(ps, qs)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_step_with_a_closure_returns_its_loss_as_torch(name):
    ours_cls, torch_cls, kwargs = CONFIGS[name]
    ps, qs = pair()
    ours, theirs = ours_cls(ps, **kwargs), torch_cls(qs, **kwargs)

    def closure_ours():
        ours.zero_grad()
        loss = loss_ours(ps)
        loss.backward()
        return loss

    def closure_torch():
        theirs.zero_grad()
        loss = loss_torch(qs)
        loss.backward()
        return loss

    for _ in range(3):
        with tl.no_grad(), torch.no_grad():  # the closure runs with grad mode on all the same
            mine, torchs = ours.step(closure_ours), theirs.step(closure_torch)
        np.testing.assert_allclose(mine.item(), torchs.item(), rtol=1e-12)
    assert_params_equal(ps, qs)


def test_the_optimizer_differences_from_torch_the_readme_lists_hold():
    """README's "Where it differs from PyTorch", its optimizer item, checked against torch."""
    ps, qs = pair()
    ours, theirs = optim.Adagrad(ps, lr=0.1), torch.optim.Adagrad(qs, lr=0.1)
    assert isinstance(ours.state, list) and len(ours.state) == len(ours.params)
    assert ours.state_dict()["state"] == {} and len(theirs.state_dict()["state"]) == 3  # torch's made at construction
    step_both(ours, ps, theirs, qs)
    saved, torchs = ours.state_dict(), theirs.state_dict()
    assert saved["state"][0]["sum"] is not ours.state[0]["sum"]  # a copy
    assert torchs["state"][0]["sum"] is theirs.state[qs[0]]["sum"]  # torch's own tensor
    a, b = pair()[0][:2]
    two = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1)
    assert two.lr == 0.5
    with pytest.raises(ValueError, match="cannot set lr for 2 parameter groups"):
        two.lr = 0.2
    two.param_groups[0]["params"].append(b)
    with pytest.raises(ValueError, match="changed in place"):
        two.step()
    for make, key, value in [
        (lambda g: optim.Adam(g), "amsgrad", True),
        (lambda g: optim.SGD(g, lr=0.1), "maximize", True),
        (lambda g: optim.RMSprop(g), "centered", True),
        (lambda g: optim.Adagrad(g), "lr_decay", 0.1),
        (lambda g: optim.Adagrad(g), "initial_accumulator_value", 0.1),
        (lambda g: optim.Adam(g), "differentiable", True),
    ]:
        opt = make([tl.tensor([1.0], requires_grad=True)])
        with pytest.raises(ValueError, match=f"{key}={value} is not supported"):
            opt.param_groups[0][key] = value
        with pytest.raises(ValueError, match=f"{key}={value} is not supported"):  # as a constructor argument too
            type(opt)([tl.tensor([1.0], requires_grad=True)], lr=0.1, **{key: value})
        type(opt)([tl.tensor([1.0], requires_grad=True)], lr=0.1, **{key: opt.defaults[key]})  # torch's default: fine
    for key, value in [("foreach", True), ("fused", True), ("capturable", True)]:
        ps, qs = pair()
        ours, theirs = optim.Adam(ps, lr=0.01), torch.optim.Adam(qs, lr=0.01)
        ours.param_groups[0][key] = value
        step_both(ours, ps, theirs, qs, 2)
        assert_params_equal(ps, qs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_constructor_parameters_are_torchs_in_torchs_order_with_its_defaults(name):
    """A ported ``optim.SGD(params)`` (torch's lr defaults to 1e-3) or ``SGD(p, 0.1, 0.9, 0.0, 5e-4, True)`` (torch's
    positional order: dampening before weight_decay, nesterov last) means what it means in torch."""
    ours, theirs = inspect.signature(getattr(optim, name)), inspect.signature(getattr(torch.optim, name))
    ported = [p for p in ours.parameters.values() if p.kind is not p.VAR_KEYWORD]  # **options: the keyword-only
    expected = [theirs.parameters[p.name] for p in ported]
    assert [p.name for p in ported] == list(theirs.parameters)[: len(ported)]
    assert [p.default for p in ported] == [p.default for p in expected]
    keyword_only = {n: p.default for n, p in theirs.parameters.items() if p.kind is p.KEYWORD_ONLY}
    getattr(optim, name)([tl.tensor([1.0], requires_grad=True)], **keyword_only)  # torch's defaults are accepted
    with pytest.raises(TypeError, match=f"{name}: unexpected keyword argument 'momentun'"):
        getattr(optim, name)([tl.tensor([1.0], requires_grad=True)], momentun=0.9)
