"""tinygrad_lab.viz views: the forward and backward graphs of known programs, and the VIEWS registry."""

import re

import numpy as np
import pytest
from viz_helpers import attr, edges, find, net_loss, neuron, nodes

import tinygrad_lab as tl
from tinygrad_lab import viz


def test_forward_neuron_structure_labels_and_roles():
    dot = viz.to_dot(neuron(backward=False))
    ns = nodes(dot)
    assert len(ns) == 15  # 5 leaves, 5 op outputs, 5 ops
    assert len(edges(dot)) == 14  # 4 binary ops (2 in + 1 out) + tanh (1 in + 1 out)
    assert sorted(attr(ns[n], "label") for n in ns if attr(ns[n], "shape") == "ellipse") == [
        "Add",
        "Add",
        "Mul",
        "Mul",
        "Tanh",
    ]
    colors = {name: attr(ns[find(dot, name + "\\l")[0]], "fillcolor") for name in ("x1", "w1", "b", "o")}
    assert colors == {
        "x1": viz.ROLE_COLORS["input"],
        "w1": viz.ROLE_COLORS["param"],
        "b": viz.ROLE_COLORS["param"],
        "o": viz.ROLE_COLORS["output"],
    }
    assert all(attr(ns[n], "fillcolor") == viz.ROLE_COLORS["op"] for n in ns if attr(ns[n], "shape") == "ellipse")
    assert len(set(viz.ROLE_COLORS.values())) == len(viz.ROLE_COLORS)
    # node ids follow forward execution order: x1, w1, Mul, its output, ...
    assert [n for n in ns][:3] == ["n0", "n1", "n2"] and "x1" in attr(ns["n0"], "label")
    assert "data 2.0000" in attr(ns["n0"], "label") and "grad" not in attr(ns["n0"], "label")  # no backward yet


def test_x_times_x_draws_two_edges_in_argument_order():
    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    dot = viz.to_dot(x * x)
    (xid,) = find(dot, "x\\l")
    (mul,) = find(dot, "Mul")
    assert [(s, d) for s, d, _ in edges(dot)].count((xid, mul)) == 2

    a, b = tl.tensor(5.0, requires_grad=True, name="a"), tl.tensor(3.0, requires_grad=True, name="b")
    dot = viz.to_dot(b - a)  # argument order is b, a
    (sub,) = find(dot, "Sub")
    into_sub = [(s, attr(e, "label")) for s, d, e in edges(dot) if d == sub]
    assert into_sub == [(find(dot, "b\\l")[0], "0"), (find(dot, "a\\l")[0], "1")]


def test_op_attributes_and_constants():
    x = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = (x.leaky_relu(0.2)[:, 0:2] ** 2).sum(axis=1, keepdims=True)
    dot = viz.to_dot(y)
    labels = [attr(a, "label") for a in nodes(dot).values()]
    assert "LeakyReLU\\nnegative_slope=0.2" in labels
    assert "GetItem\\n[:, 0:2]" in labels
    assert "Sum\\naxis=1, keepdims=True" in labels
    (const,) = find(dot, "const")
    assert attr(nodes(dot)[const], "fillcolor") == viz.ROLE_COLORS["input"]
    assert attr(nodes(dot)[const], "label") == "{const | 2}"


def test_scalar_graph_shows_data_and_grad_in_every_box():
    o = neuron()
    dot = viz.to_dot(o)
    records = [attr(a, "label") for a in nodes(dot).values() if attr(a, "shape") == "record"]
    assert len(records) == 10
    fields = [[f.strip("{}") for f in r.split(" | ")] for r in records]
    assert all(any(f.startswith("data ") for f in fs) and any(f.startswith("grad ") for f in fs) for fs in fields)
    label = {name: attr(nodes(dot)[find(dot, name + "\\l")[0]], "label") for name in ("x1", "w1", "x2", "w2", "b")}
    # micrograd's numbers: x1.grad = -1.5, w1.grad = 1, x2.grad = 0.5, w2.grad = 0, b.grad = 0.5
    assert "grad -1.5000" in label["x1"] and "grad 1.0000" in label["w1"] and "grad 0.5000" in label["x2"]
    assert "grad 0.0000" in label["w2"] and "data 6.8814 | grad 0.5000" in label["b"]
    assert sum("grad 0.5000" in r for r in records) == 6  # x1*w1, x2*w2, both sums, x2 and b
    assert "data 0.7071 | grad 1.0000" in attr(nodes(dot)[find(dot, "o\\l")[0]], "label")


def test_summary_for_big_tensors_values_for_small_ones():
    big = tl.Tensor(np.arange(20.0).reshape(4, 5), requires_grad=True, name="big")
    small = tl.Tensor(np.arange(16.0).reshape(4, 4), requires_grad=True, name="small")
    loss = (big.sum() + small.sum()) * 2.0
    loss.backward()
    dot = viz.to_dot(loss)
    big_label = attr(nodes(dot)[find(dot, "big\\l")[0]], "label")
    assert "mean 9.5000  std 5.7663" in big_label and "min 0.0000  max 19.0000" in big_label
    assert f"grad norm {np.sqrt(20 * 4.0):.1e}" in big_label
    small_label = attr(nodes(dot)[find(dot, "small\\l")[0]], "label")
    assert " [12.0000, 13.0000, 14.0000, 15.0000]]\\l" in small_label and "mean" not in small_label
    assert "mean" in viz.to_dot(loss, show_values="summary").split("small")[1].split("]")[0]
    assert "data" not in viz.to_dot(loss, show_values=False)


def test_rankdir_changes_record_orientation():
    o = neuron()
    tb = viz.to_dot(o)  # top to bottom by default: name and shape above, data | grad side by side below
    assert "rankdir=TB" in tb
    assert attr(nodes(tb)["n0"], "label") == "{x1\\lscalar float64\\l | {data 2.0000 | grad -1.5000}}"
    lr = viz.to_dot(o, rankdir="LR")  # left to right: the three fields stacked (records flip with rankdir)
    assert "rankdir=LR" in lr
    assert attr(nodes(lr)["n0"], "label") == "{x1\\lscalar float64\\l | data 2.0000 | grad -1.5000}"


def test_params_name_parameters_by_dotted_path():
    net, loss = net_loss()
    dot = viz.to_dot(loss, params=dict(net.named_parameters()))
    for name in ("fc0.weight", "fc0.bias", "fc1.weight", "fc2.bias"):
        (n,) = find(dot, name)
        assert attr(nodes(dot)[n], "fillcolor") == viz.ROLE_COLORS["param"]
    assert viz.to_dot(loss, model=net) == dot
    assert "fc0.weight" not in viz.to_dot(loss)


def test_backward_view_functions_accumulate_grad_and_legend():
    net, loss = net_loss()
    dot = viz.to_dot(loss, view="backward", model=net)
    ns = nodes(dot)
    acc = find(dot, "AccumulateGrad")
    assert len(acc) == 6  # one per parameter; x requires no grad, so it has none
    for name in ("SigmoidBackward", "MatMulBackward", "AddBackward"):
        assert len(find(dot, name)) == 3
    assert len(find(dot, "MeanBackward")) == len(find(dot, "PowBackward")) == len(find(dot, "SubBackward")) == 1
    # each AccumulateGrad feeds the parameter box it accumulates into
    leaves = {d for s, d, _ in edges(dot) if s in acc}
    assert sorted(attr(ns[d], "label").split("\\n")[0] for d in leaves) == sorted(n for n, _ in net.named_parameters())
    # the legend: the whole colour scale, in the graph's label
    assert "legend" in dot and all(f'BGCOLOR="{c}"' in dot for c in viz.NORM_COLORS) and "≤1e-8" in dot
    # fill colour = the decade of the gradient norm printed in the node
    for n in acc + find(dot, "Backward"):
        norm = float(re.search(r"\|g\| ([-+.e0-9]+)", attr(ns[n], "label")).group(1))
        decade = min(max(int(np.floor(np.log10(norm) + 1e-9)) + 8, 0), 10)
        assert attr(ns[n], "fillcolor") == viz.NORM_COLORS[decade]
    # AccumulateGrad shows the leaf's .grad
    w = net.layers[0].weight
    (n,) = [d for d in acc if any(s == d and "fc0.weight" in attr(ns[t], "label") for s, t, _ in edges(dot))]
    assert f"|g| {np.linalg.norm(w.grad.data):.1e}" in attr(ns[n], "label")


def test_backward_view_shows_vanishing_gradients():
    w = tl.Tensor(np.full((2, 2), 0.5), requires_grad=True, name="w")
    v = tl.Tensor(np.full((2, 2), 0.5), requires_grad=True, name="v")
    loss = ((w * 1e-7).sum() + v.sum()) * 1.0
    dot = viz.to_dot(loss, view="backward")
    fills = {}
    for s, d, _ in edges(dot):
        label = attr(nodes(dot)[d], "label")
        if "AccumulateGrad" in attr(nodes(dot)[s], "label"):
            fills[label.split("\\n")[0]] = attr(nodes(dot)[s], "fillcolor")
    assert fills == {"w": viz.NORM_COLORS[1], "v": viz.NORM_COLORS[8]}  # |g| 2e-7 and 2
    assert w.grad is None and v.grad is None
    loss.backward()  # the graph was not consumed by drawing it
    assert np.allclose(w.grad.data, 1e-7)


def test_saved_tensors_dashed_until_released():
    x = tl.Tensor(np.ones((2, 3)), name="x")
    w = tl.Tensor(np.ones((3, 1)), requires_grad=True, name="w")
    loss = (x @ w).sigmoid().sum()
    loss.backward(retain_graph=True)
    dot = viz.to_dot(loss, view="backward")
    saved = find(dot, "saved ")
    assert sorted(attr(nodes(dot)[n], "label") for n in saved) == [
        "saved input 0 (x)\\n(2, 3) float64",  # w's gradient reads x; w itself is not saved, as in torch
        "saved output\\n(2, 1) float64",
    ]
    assert all("dashed" in attr(nodes(dot)[n], "style") for n in saved)
    assert sum(1 for s, _, e in edges(dot) if s in saved and 'style="dashed"' in e) == 2
    loss.backward()  # releases the graph
    dot = viz.to_dot(loss, view="backward")
    assert find(dot, "saved ") == [] and "retain_graph=True" in dot
    assert "|g| " in attr(nodes(dot)[find(dot, "SigmoidBackward")[0]], "label")  # still computed after release


def test_leaf_and_constant_roots():
    t = tl.Tensor([1.0, 2.0], name="t")
    dot = viz.to_dot(t)
    assert len(nodes(dot)) == 1 and attr(nodes(dot)["n0"], "fillcolor") == viz.ROLE_COLORS["output"]
    assert "no backward graph" in viz.to_dot(t, view="backward")


# ---- the VIEWS registry ------------------------------------------------------------------------------------------


def leaves_only(ctx):
    """A view of the leaves alone, to show that a view registered in VIEWS is all to_dot and the CLI need."""
    from tinygrad_lab.viz.views import Graph, Vertex

    g = Graph()
    for key, node in ctx.order:
        if node is None:
            g.add(Vertex("tensor", "input", ("tensor",), None, ctx.rep[key], key))
    g.title = ["leaves"]
    return g


def test_views_registry_is_what_to_dot_and_the_cli_accept(monkeypatch, tmp_path):
    from tinygrad_lab.lab import cli

    assert list(viz.VIEWS) == ["forward", "backward"]
    o = neuron()
    graph_args = ["graph", "--view", "leaves", "--out", str(tmp_path / "g.svg")]
    with pytest.raises(ValueError, match="view must be one of \\('forward', 'backward'\\)"):
        viz.to_dot(o, view="leaves")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(graph_args)
    monkeypatch.setitem(viz.VIEWS, "leaves", leaves_only)
    dot = viz.to_dot(o, view="leaves")
    assert len(nodes(dot)) == 5 and edges(dot) == [] and "leaves" in dot
    assert cli.build_parser().parse_args(graph_args).view == "leaves"


def test_a_nan_gradient_norm_is_shown_once():
    x = tl.tensor([np.nan, 1.0], requires_grad=True, name="x")
    y = (x * x).sum()  # a NaN gradient: 2 * x
    y.backward(retain_graph=True)
    dot = viz.to_dot(y, view="backward")
    (acc,) = find(dot, "AccumulateGrad")
    assert attr(nodes(dot)[acc], "label") == "AccumulateGrad\\n|g| nan"
