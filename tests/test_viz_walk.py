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


# ---- in-place writes: a tensor's value before and after a write are two values, linked as backward links them ---


def tanh_in_place():
    w = tl.tensor([0.5, -1.0], requires_grad=True, name="w")
    h = w * 2
    h += h.tanh()  # Tanh reads h before the write, Add the written h
    loss = h.sum()
    loss.backward(retain_graph=True)
    return w, loss


def test_a_value_read_before_an_in_place_write_is_drawn_from_its_own_op():
    w, loss = tanh_in_place()
    dot = viz.to_dot(loss)
    (mul,), (tanh,), (add,) = find(dot, "Mul"), find(dot, "Tanh"), find(dot, "Add")
    (before,) = [s for s, d, _ in edges(dot) if d == tanh]
    assert [d for s, d, _ in edges(dot) if s == mul] == [before]  # Mul's output feeds Tanh and Add
    assert sorted(d for s, d, _ in edges(dot) if s == before) == sorted([tanh, add])
    expected = 2 * (2 - np.tanh(1.0 * np.array([1.0, -2.0])) ** 2)
    assert np.allclose(w.grad.data, expected)
    assert array_lines(expected)[0] in attr(nodes(dot)[find(dot, "w\\l")[0]], "label")
    assert viz.to_dot(tanh_in_place()[1]) == dot  # ids follow the walk, so the picture is deterministic


def test_the_backward_view_after_an_in_place_write_has_no_cycle():
    _, loss = tanh_in_place()
    dot = viz.to_dot(loss, view="backward")
    (mul,), (tanh,), (add,) = find(dot, "MulBackward"), find(dot, "TanhBackward"), find(dot, "AddBackward")
    grad_edges = {(s, d) for s, d, a in edges(dot) if "dashed" not in (a or "") and "arrowhead" not in (a or "")}
    assert (tanh, mul) in grad_edges and (add, mul) in grad_edges and (add, tanh) in grad_edges
    assert (tanh, add) not in grad_edges
    assert "replaying the graph failed" not in dot


def test_the_value_before_a_write_has_its_data_name_and_gradient():
    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 2
    y.name = "y"
    z = y * 3  # reads y before the write
    y.add_(1)
    out = (z + y).sum()
    dot = viz.to_dot(out)
    (before,) = find(dot, "y (before an in-place write)")
    (after,) = [n for n in find(dot, "y\\l") if n != before]
    assert "data [2.0000, 4.0000]" in attr(nodes(dot)[before], "label")
    assert "data [3.0000, 5.0000]" in attr(nodes(dot)[after], "label")
    (mul3,) = [d for s, d, a in edges(dot) if s in find(dot, "const | 3")]
    assert [s for s, d, _ in edges(dot) if d == mul3 and s != find(dot, "const | 3")[0]] == [before]
    out.backward(retain_graph=True)
    assert np.allclose(x.grad.data, [8.0, 8.0])  # 2 * (3 + 1)
    dot = viz.to_dot(out)
    assert "grad [4.0000, 4.0000]" in attr(nodes(dot)[find(dot, "y (before")[0]], "label")
    assert "grad [8.0000, 8.0000]" in attr(nodes(dot)[find(dot, "x\\l")[0]], "label")


def test_item_assignment_reading_the_buffer_it_writes():
    x = tl.tensor([1.0, -2.0], requires_grad=True, name="x")
    buf = tl.zeros(3, 2)
    buf[0] = x
    buf[1] = buf[0] * 2
    out = (buf * buf).sum()
    out.backward(retain_graph=True)
    assert np.allclose(x.grad.data, 10 * x.data)  # x**2 + (2x)**2
    dot = viz.to_dot(out)
    assert array_lines(10 * x.data)[0] in attr(nodes(dot)[find(dot, "x\\l")[0]], "label")
    assert len(find(dot, "SetItem")) == 2 and "replaying" not in viz.to_dot(out, view="backward")


def test_a_leaf_written_after_it_was_read_is_drawn_with_its_old_value():
    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    buf = tl.zeros(2)
    z = buf + x  # reads the leaf buf: zeros
    buf.add_(x)
    dot = viz.to_dot((z * buf).sum())
    adds = [n for n in find(dot, "Add") if attr(nodes(dot)[n], "shape") == "ellipse"]
    (zeros,) = find(dot, "data [0.0000, 0.0000]")
    assert len(adds) == 2 and sorted(d for s, d, _ in edges(dot) if s == zeros) == sorted(adds)  # both read it
    assert [d for s, d, _ in edges(dot) if s in find(dot, "x\\l")] == adds


def test_gradients_are_drawn_only_for_the_output_backward_ran_from():
    """A .grad left by another graph's backward is not this output's gradient: the boxes show none until
    backward() runs from the output drawn."""
    w = tl.tensor(2.0, requires_grad=True, name="w")
    (w * 10).backward()
    square = w * w
    assert "| grad" not in viz.to_dot(square)
    square.backward(retain_graph=True)
    assert "grad 14.0000" in viz.to_dot(square)  # .grad as the engine left it: 10 + 4, accumulated as in torch
    v = tl.tensor(3.0, requires_grad=True, name="v")
    h = v * v
    (h * 10).backward()  # frees h's node too: still not h's backward
    assert "| grad" not in viz.to_dot(h)
