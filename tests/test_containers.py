"""ModuleList and ModuleDict against torch's: the names parameters and state dicts use, a torch state dict loaded
and run, list and dict operations, reprs, and the errors for what is not a Module or not a module name."""

import numpy as np
import pytest
import torch
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F


def make_model(lib):
    """The same model in torch (lib=torch.nn) and here (lib=nn): a ModuleList of blocks, a ModuleDict of heads."""

    class Model(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Linear(3, 4)
            self.blocks = lib.ModuleList([lib.Linear(4, 4) for _ in range(2)])
            self.blocks.append(lib.Sequential(lib.Linear(4, 4), lib.BatchNorm1d(4)))
            self.heads = lib.ModuleDict({"b": lib.Linear(4, 2), "a": lib.Linear(4, 1)})
            self.heads["c"] = lib.ModuleList([lib.Linear(4, 3)])

        def forward(self, x):
            h = self.stem(x).tanh()
            for block in self.blocks:
                h = block(h).tanh()
            return [self.heads[k](h) if k != "c" else self.heads[k][0](h) for k in self.heads]

    return Model()


def test_parameters_and_state_dict_have_torchs_names_and_order():
    ours, theirs = make_model(nn), make_model(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert "blocks.2.1.running_mean" in ours.state_dict()


@pytest.mark.parametrize("training", [True, False])
def test_a_torch_state_dict_loads_and_gives_torchs_outputs_and_gradients(training):
    ours, theirs = make_model(nn), make_model(torch.nn)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.train(training), theirs.train(training)
    x = np.random.default_rng(0).standard_normal((5, 3))
    outs, ref = ours(tl.tensor(x)), theirs(torch.tensor(x))
    sum(o.sum() * (i + 1) for i, o in enumerate(outs)).backward()
    sum(o.sum() * (i + 1) for i, o in enumerate(ref)).backward()
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o.data, r.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():  # (atol: the bias before the batch norm has gradient 0 but for rounding)
        np.testing.assert_allclose(p.grad.data, grads[name].grad.numpy(), rtol=1e-10, atol=1e-11, err_msg=name)
    buffers = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        np.testing.assert_allclose(b.data, buffers[name].numpy(), rtol=1e-12, err_msg=name)


def test_add_module_registers_as_torchs_and_refuses_what_torch_refuses():
    ours, theirs = nn.Module(), torch.nn.Module()
    for m, lib in ((ours, nn), (theirs, torch.nn)):
        m.add_module("fc", lib.Linear(2, 3))
        m.add_module("fc", lib.Linear(3, 4))  # a module name already there: replaced in its place
        m.add_module("my-head", lib.Linear(4, 1))  # not an identifier: reached by getattr, as in torch
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert getattr(ours, "my-head").out_features == 1 and ours.fc.in_features == 3
    ours.scale = 2.0
    for name, module, error, match in (
        ("scale", nn.ReLU(), KeyError, "Module: attribute 'scale' already exists"),
        ("forward", nn.ReLU(), KeyError, "attribute 'forward' already exists"),
        ("a.b", nn.ReLU(), KeyError, "a module name must be non-empty and without '.'"),
        ("w", tl.tensor(1.0), TypeError, "Module: cannot add a Tensor as module 'w' \\(a Module expected\\)"),
    ):
        with pytest.raises(error, match=match):
            ours.add_module(name, module)
    assert ours.scale == 2.0 and [n for n, _ in ours.named_children()] == ["fc", "my-head"]


def test_train_eval_zero_grad_and_an_optimizer_reach_the_contained_modules():
    model = make_model(nn)
    assert all(not m.training for m in model.eval().modules())
    assert all(m.training for m in model.train().modules())
    params = list(model.parameters())
    assert len(params) == 2 + 6 + 2 + 6  # stem, three blocks (the last with a batch norm), three heads
    sum(o.sum() for o in model(tl.tensor(np.ones((2, 3))))).backward()
    assert all(p.grad is not None for p in params)
    model.zero_grad()
    assert all(p.grad is None for p in params)


def same_list(ours, theirs):
    """Our ModuleList holds the modules that torch's holds (by their ids, from a common list), under torch's names."""
    assert [k for k, _ in ours.named_children()] == [k for k, _ in theirs.named_children()]
    assert [m.tag for m in ours] == [m.tag for m in theirs]


def tagged(lib, tags):
    mods = []
    for tag in tags:
        m = lib.Identity()
        m.tag = tag
        mods.append(m)
    return mods


def test_module_list_operations_follow_torch():
    ours, theirs = nn.ModuleList(tagged(nn, "abc")), torch.nn.ModuleList(tagged(torch.nn, "abc"))
    same_list(ours, theirs)
    assert len(ours) == 3 and ours[-1].tag == "c" and ours[1].tag == "b"
    for lst, lib in ((ours, nn), (theirs, torch.nn)):
        lst.append(tagged(lib, "d")[0])
        lst.extend(tagged(lib, "ef"))
        lst.insert(1, tagged(lib, "x")[0])
        lst[0] = tagged(lib, "y")[0]
        assert lst.pop(2).tag == "b"
        del lst[-1]
        del lst[1:3]
        lst += tagged(lib, "z")
    same_list(ours, theirs)
    same_list(ours[1:], theirs[1:])
    assert "".join(m.tag for m in ours) == "ydez"
    assert type(ours[1:]) is nn.ModuleList and [k for k, _ in ours[1:].named_children()] == ["0", "1", "2"]
    same_list(ours + nn.ModuleList(tagged(nn, "w")), theirs + torch.nn.ModuleList(tagged(torch.nn, "w")))


@pytest.mark.parametrize(("index", "expected"), [(0, "xabc"), (-1, "abxc"), (-10, "xabc"), (2, "abxc"), (9, "abcx")])
def test_module_list_insert_places_as_list_insert(index, expected):
    lst = nn.ModuleList(tagged(nn, "abc"))
    lst.insert(index, tagged(nn, "x")[0])
    assert "".join(m.tag for m in lst) == expected
    assert [k for k, _ in lst.named_children()] == ["0", "1", "2", "3"]


def test_module_list_indices_out_of_range_and_non_modules_are_refused():
    lst = nn.ModuleList([nn.ReLU()])
    with pytest.raises(IndexError, match="ModuleList: index 1 is out of range for 1 modules"):
        lst[1]
    with pytest.raises(IndexError, match="index -2"):
        del lst[-2]
    with pytest.raises(TypeError, match="cannot add a int as module '1'"):
        lst.append(3)
    with pytest.raises(TypeError, match="cannot add a Tensor as module '0'"):
        lst[0] = tl.tensor(1.0)
    with pytest.raises(TypeError, match="cannot add a str"):
        nn.ModuleList(["relu"])
    with pytest.raises(TypeError, match="ModuleList.extend takes an iterable of Modules, got ReLU"):
        lst.extend(nn.ReLU())
    with pytest.raises(TypeError, match="cannot add a NoneType"):
        lst.insert(0, None)
    assert len(lst) == 1 and isinstance(lst[0], nn.ReLU)


def test_module_dict_operations_follow_torch():
    pairs = [("z", nn.ReLU()), ("a", nn.Tanh())]
    md = nn.ModuleDict(pairs)
    assert list(md) == list(md.keys()) == ["z", "a"] and list(md.values()) == [m for _, m in pairs]
    assert list(md.items()) == pairs and "a" in md and "q" not in md and len(md) == 2
    md.update({"a": nn.Sigmoid(), "b": nn.Identity()})
    assert list(md) == ["z", "a", "b"] and isinstance(md["a"], nn.Sigmoid) and md.a is md["a"]
    assert isinstance(md.pop("z"), nn.ReLU) and list(md) == ["a", "b"]
    del md["a"]
    assert list(md) == ["b"] and not hasattr(md, "a")
    md.clear()
    assert len(md) == 0 and list(md.named_children()) == []


def test_module_dict_refuses_bad_names_non_modules_and_missing_keys():
    md = nn.ModuleDict({"a": nn.ReLU()})
    with pytest.raises(KeyError, match="attribute 'train' already exists"):
        md["train"] = nn.ReLU()
    with pytest.raises(KeyError, match="without '.', got 'a.b'"):
        md["a.b"] = nn.ReLU()
    with pytest.raises(KeyError, match="non-empty"):
        md[""] = nn.ReLU()
    with pytest.raises(TypeError, match="a module name must be a string, got int"):
        md[0] = nn.ReLU()
    with pytest.raises(TypeError, match="cannot add a ndarray as module 'w'"):
        md["w"] = np.ones(3)
    with pytest.raises(KeyError, match=r"no module named 'q' \(it has \['a'\]\)"):
        md["q"]
    with pytest.raises(KeyError, match="no module named 'q'"):
        del md["q"]
    with pytest.raises(ValueError, match="element 0 must be a \\(name, module\\) pair"):
        md.update(["ab"])
    with pytest.raises(TypeError, match="ModuleDict.update takes a mapping or"):
        md.update(3)
    assert list(md) == ["a"] and callable(md.train)


def test_reprs_are_torchs():
    lib_models = {}
    for lib in (nn, torch.nn):
        lst = lib.ModuleList([lib.Linear(2, 2) for _ in range(3)] + [lib.ReLU(), lib.ReLU(), lib.Tanh()])
        lst.append(lib.ModuleDict({"x": lib.Sequential(lib.Linear(1, 2), lib.Sigmoid())}))
        lib_models[lib] = (lst, lib.ModuleList(), lib.ModuleDict({"a": lib.ModuleList([lib.ReLU()] * 2)}))
    for ours, theirs in zip(lib_models[nn], lib_models[torch.nn]):
        assert repr(ours) == repr(theirs)


def test_a_captured_step_traces_again_when_a_contained_module_is_removed():
    rng = np.random.default_rng(0)
    layers = nn.ModuleList([nn.Linear(2, 2, rng=rng) for _ in range(3)])
    opt = optim.SGD(layers.parameters(), lr=0.0)  # no update: each call gives the loss of the same weights

    def step(x):
        opt.zero_grad()
        for layer in layers:
            x = layer(x)
        loss = F.mse_loss(x, np.zeros((4, 2)))
        loss.backward()
        opt.step()
        return loss

    compiled, x = tl.compile(step), rng.standard_normal((4, 2))
    for _ in range(4):
        compiled(x)
    del layers[1]
    np.testing.assert_allclose(compiled(x).data, step(x).data, rtol=1e-12)
