"""tinygrad_lab.viz walk: gradients replayed on a copy of the graph, and ops traced to the modules that own them."""
import numpy as np
import pytest
from viz_helpers import attr, clusters, find, net_loss, nodes

import tinygrad_lab as tl
from tinygrad_lab import viz
from tinygrad_lab.viz.labels import array_lines


def test_replayed_gradients_match_retain_grad_and_touch_nothing():
    rng = np.random.default_rng(3)
    x = tl.Tensor(rng.random((3, 2)), name="x")
    w = tl.Tensor(rng.random((2, 2)), requires_grad=True, name="w")
    h = x @ w
    h.name = "h"
    loss = (h.tanh() * 3.0).sum()
    twin = tl.Tensor(w.data.copy(), requires_grad=True)
    th = x @ twin
    th.retain_grad()
    (th.tanh() * 3.0).sum().backward()
    loss.backward()
    dot = viz.to_dot(loss)
    expected = array_lines(th.grad.data)
    assert all(line in attr(nodes(dot)[find(dot, "h\\l")[0]], "label") for line in expected)
    assert x.grad is None and h.grad is None  # drawing computed gradients without storing any


def test_group_modules_clusters_each_module_call():
    net, loss = net_loss()
    dot = viz.to_dot(loss, model=net, group_modules=True)
    cl = clusters(dot)
    assert list(cl) == ["fc0 (Lin)", "fc1 (Lin)", "fc2 (Lin)"]
    ns = nodes(dot)
    for label, ids in cl.items():
        ops = sorted(attr(ns[i], "label") for i in ids if attr(ns[i], "shape") == "ellipse")
        assert ops == ["Add", "MatMul", "Sigmoid"], label  # the activation joins the module before it
        names = " ".join(attr(ns[i], "label") for i in ids)
        assert f"{label[:3]}.weight" in names and f"{label[:3]}.bias" in names
    clustered = {i for ids in cl.values() for i in ids}
    outside = sorted(attr(ns[i], "label") for i in ns if i not in clustered and attr(ns[i], "shape") == "ellipse")
    assert outside == ["Mean", "Pow", "Sub"]  # the loss belongs to no module
    with pytest.raises(ValueError, match="group_modules"):
        viz.to_dot(loss, group_modules=True)


class Linear:
    def __init__(self, weight):
        self.weight = weight

    def __call__(self, x):
        return x @ self.weight


class Sigmoid:
    def __call__(self, x):
        return x.sigmoid()


def test_activation_modules_join_the_cluster_before_them_and_its_label():
    rng = np.random.default_rng(0)
    fc1, act1 = Linear(tl.Tensor(rng.random((2, 3)), requires_grad=True)), Sigmoid()
    fc2, act2 = Linear(tl.Tensor(rng.random((3, 1)), requires_grad=True)), Sigmoid()

    class Model:
        def named_parameters(self):
            return [("fc1.weight", fc1.weight), ("fc2.weight", fc2.weight)]

        def named_modules(self):
            return [("", self), ("fc1", fc1), ("act1", act1), ("fc2", fc2), ("act2", act2)]

    out = act2(fc2(act1(fc1(tl.Tensor(np.ones((4, 2))))))).sum()
    dot = viz.to_dot(out, model=Model(), group_modules=True)
    cl = clusters(dot)
    assert list(cl) == ["fc1 (Linear) + act1 (Sigmoid)", "fc2 (Linear) + act2 (Sigmoid)"]
    for ids in cl.values():
        assert sorted(attr(nodes(dot)[i], "label") for i in ids if attr(nodes(dot)[i], "shape") == "ellipse") == \
            ["MatMul", "Sigmoid"]


def test_weight_transposed_inside_a_module_is_traced():
    w = tl.Tensor(np.ones((3, 2)), requires_grad=True)
    b = tl.Tensor(np.zeros(3), requires_grad=True)
    x = tl.Tensor(np.ones((4, 2)))
    out = (x @ w.T + b).relu().sum()
    dot = viz.to_dot(out, params={"lin.weight": w, "lin.bias": b}, group_modules=True)
    (ids,) = clusters(dot).values()
    ops = sorted(attr(nodes(dot)[i], "label") for i in ids if attr(nodes(dot)[i], "shape") == "ellipse")
    assert ops == ["Add", "MatMul", "ReLU", "Transpose"]
