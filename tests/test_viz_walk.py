"""tinygrad_lab.viz walk: gradients replayed on a copy of the graph, and ops traced to the modules that own them."""

import numpy as np
import pytest
from viz_helpers import attr, clusters, edges, find, net_loss, nodes

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
        assert sorted(attr(nodes(dot)[i], "label") for i in ids if attr(nodes(dot)[i], "shape") == "ellipse") == [
            "MatMul",
            "Sigmoid",
        ]


def test_weight_transposed_inside_a_module_is_traced():
    w = tl.Tensor(np.ones((3, 2)), requires_grad=True)
    b = tl.Tensor(np.zeros(3), requires_grad=True)
    x = tl.Tensor(np.ones((4, 2)))
    out = (x @ w.T + b).relu().sum()
    dot = viz.to_dot(out, params={"lin.weight": w, "lin.bias": b}, group_modules=True)
    (ids,) = clusters(dot).values()
    ops = sorted(attr(nodes(dot)[i], "label") for i in ids if attr(nodes(dot)[i], "shape") == "ellipse")
    assert ops == ["Add", "MatMul", "ReLU", "Transpose"]


# ---- the surface of Function that viz reads ----------------------------------------------------------------------


def test_commutative_flag_of_the_ops():
    from tinygrad_lab.engine import ops

    assert [op for op in (ops.Add, ops.Mul, ops.Maximum, ops.Minimum) if not op.commutative] == []
    assert [op for op in (ops.Sub, ops.Div, ops.Pow, ops.MatMul, ops.Where, ops.Cat) if op.commutative] == []
    assert tl.Function.commutative is False


def test_saved_values_forward_output_and_released_follow_backward():
    x = tl.Tensor(np.ones((2, 3)))
    w = tl.Tensor(np.full((3, 1), 0.5), requires_grad=True)
    h = x @ w
    out = h.sigmoid()
    mm, sig = h.grad_fn, out.grad_fn
    # what save_for_backward kept: x, which w's gradient reads; w only for x's gradient, which x does not need
    assert mm.saved_values[0] is x.data and mm.saved_values[1] is None
    assert sig.saved_values[0] is sig.forward_output and np.array_equal(sig.forward_output, out.data)
    assert not sig.released and not mm.released
    out.sum().backward(retain_graph=True)
    assert not sig.released and len(sig.saved_values) == 1
    out.sum().backward()
    assert sig.released and mm.released
    assert sig.saved_values == () and sig.forward_output is None
    with pytest.raises(RuntimeError, match="retain_graph"):  # the ctx API still refuses freed values
        _ = sig.saved_tensors


def test_retained_grad_is_the_retained_outputs_grad():
    w = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = w * 3.0
    k = w * 4.0
    h.retain_grad()
    assert h.grad_fn.retained_grad is None  # before backward
    (h * k).sum().backward()
    assert h.grad_fn.retained_grad is h.grad and np.allclose(h.grad.data, [4.0, 8.0])
    assert k.grad_fn.retained_grad is None and k.grad is None  # k did not ask to retain its gradient


def test_viz_numbers_edges_by_the_commutative_flag_not_the_op_name():
    class Hypot(tl.Function):
        commutative = True

        @staticmethod
        def forward(ctx, a, b):
            out = np.hypot(a, b)
            ctx.save_for_backward(a, b, out)
            return out

        @staticmethod
        def backward(ctx, grad):
            a, b, out = ctx.saved_tensors
            return grad * a / out, grad * b / out

    class NumberedHypot(Hypot):
        commutative = False

    a = tl.Tensor(np.array([3.0]), requires_grad=True, name="a")
    b = tl.Tensor(np.array([4.0]), requires_grad=True, name="b")
    for op, labels in ((Hypot, [None, None]), (NumberedHypot, ["0", "1"])):
        dot = viz.to_dot(op.apply(a, b))
        (node,) = find(dot, op.__name__)
        assert [attr(e, "label") for _, d, e in edges(dot) if d == node] == labels
