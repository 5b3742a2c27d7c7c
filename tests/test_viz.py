"""tinygrad_lab.viz: DOT structure of known programs, determinism, real renders, the missing-tool paths."""
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_lab as tl
from tinygrad_lab import viz

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")

NODE = re.compile(r"^\t(n\d+) \[(.*)\]$", re.M)
EDGE = re.compile(r"^\t(n\d+) -> (n\d+)(?: \[(.*)\])?$", re.M)


def nodes(dot: str) -> dict:
    return dict(NODE.findall(dot))


def edges(dot: str) -> list:
    return EDGE.findall(dot)


def attr(attrs: str, key: str) -> str | None:
    m = re.search(rf'(?:^| ){key}="((?:[^"\\]|\\.)*)"', attrs)
    return m.group(1) if m else None


def find(dot: str, text: str) -> list:
    """Ids of the nodes whose label contains text."""
    return [n for n, a in nodes(dot).items() if text in (attr(a, "label") or "")]


def clusters(dot: str) -> dict:
    """Cluster label -> ids of the nodes in it."""
    out = {}
    for label, body in re.findall(r'\tsubgraph cluster_\d+ \{\n\t\tlabel="([^"]*)"[^\n]*\n\t\t([^\n]*)\n\t\}', dot):
        out[label] = body.split()
    return out


def neuron(backward=True):
    x1, x2 = tl.tensor(2.0, name="x1"), tl.tensor(0.0, name="x2")
    w1 = tl.tensor(-3.0, requires_grad=True, name="w1")
    w2 = tl.tensor(1.0, requires_grad=True, name="w2")
    b = tl.tensor(6.8813735870195432, requires_grad=True, name="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.name = "o"
    if backward:
        o.backward()
    return o


class Lin:
    def __init__(self, n_in, n_out, rng):
        self.weight = tl.Tensor(rng.standard_normal((n_in, n_out)), requires_grad=True)
        self.bias = tl.Tensor(np.zeros(n_out), requires_grad=True)

    def __call__(self, x):
        return (x @ self.weight + self.bias).sigmoid()


class Net:
    """Duck-typed model: only named_parameters() and named_modules() are used by viz."""

    def __init__(self, dims, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [Lin(a, b, rng) for a, b in zip(dims[:-1], dims[1:])]

    def named_parameters(self):
        for i, layer in enumerate(self.layers):
            yield f"fc{i}.weight", layer.weight
            yield f"fc{i}.bias", layer.bias

    def named_modules(self):
        yield "", self
        for i, layer in enumerate(self.layers):
            yield f"fc{i}", layer

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def net_loss(dims=(2, 4, 4, 1), backward=True, seed=0):
    net = Net(dims, seed)
    rng = np.random.default_rng(1)
    x = tl.Tensor(rng.random((6, dims[0])), name="x")
    loss = ((net(x) - rng.random((6, dims[-1]))) ** 2).mean()
    if backward:
        loss.backward()
    return net, loss


# ---- forward view --------------------------------------------------------------------------------------------------

def test_forward_neuron_structure_labels_and_roles():
    dot = viz.to_dot(neuron(backward=False))
    ns = nodes(dot)
    assert len(ns) == 15  # 5 leaves, 5 op outputs, 5 ops
    assert len(edges(dot)) == 14  # 4 binary ops (2 in + 1 out) + tanh (1 in + 1 out)
    assert sorted(attr(ns[n], "label") for n in ns if attr(ns[n], "shape") == "ellipse") == \
        ["Add", "Add", "Mul", "Mul", "Tanh"]
    colors = {name: attr(ns[find(dot, name + "\\l")[0]], "fillcolor") for name in ("x1", "w1", "b", "o")}
    assert colors == {"x1": viz.ROLE_COLORS["input"], "w1": viz.ROLE_COLORS["param"],
                      "b": viz.ROLE_COLORS["param"], "o": viz.ROLE_COLORS["output"]}
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
    assert all(" | data " in r and " | grad " in r for r in records)
    label = {name: attr(nodes(dot)[find(dot, name + "\\l")[0]], "label") for name in ("x1", "w1", "x2", "w2", "b")}
    # micrograd's numbers: x1.grad = -1.5, w1.grad = 1, x2.grad = 0.5, w2.grad = 0, b.grad = 0.5
    assert "grad -1.5000" in label["x1"] and "grad 1.0000" in label["w1"] and "grad 0.5000" in label["x2"]
    assert "grad 0.0000" in label["w2"] and "data 6.8814 | grad 0.5000" in label["b"]
    assert sum("grad 0.5000" in r for r in records) == 6  # x1*w1, x2*w2, both sums, x2 and b
    assert "data 0.7071 | grad 1.0000" in attr(nodes(dot)[find(dot, "o\\l")[0]], "label")


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
    expected = viz._array_lines(th.grad.data)
    assert all(line in attr(nodes(dot)[find(dot, "h\\l")[0]], "label") for line in expected)
    assert x.grad is None and h.grad is None  # drawing computed gradients without storing any


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
    assert attr(nodes(viz.to_dot(o))["n0"], "label").startswith("{")
    tb = viz.to_dot(o, rankdir="TB")
    assert "rankdir=TB" in tb and not attr(nodes(tb)["n0"], "label").startswith("{")


def test_params_name_parameters_by_dotted_path():
    net, loss = net_loss()
    dot = viz.to_dot(loss, params=dict(net.named_parameters()))
    for name in ("fc0.weight", "fc0.bias", "fc1.weight", "fc2.bias"):
        (n,) = find(dot, name)
        assert attr(nodes(dot)[n], "fillcolor") == viz.ROLE_COLORS["param"]
    assert viz.to_dot(loss, model=net) == dot
    assert "fc0.weight" not in viz.to_dot(loss)


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


# ---- determinism ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {}, {"view": "backward"}, {"group_modules": True}, {"view": "backward", "group_modules": True, "max_nodes": 30},
    {"max_nodes": 12}, {"max_nodes": 4},
])
def test_same_program_gives_byte_identical_dot(options):
    texts = []
    for _ in range(2):
        net, loss = net_loss(dims=(2, 3, 3, 3, 3, 1))
        junk = [tl.Tensor(np.zeros(k)) for k in range(50)]  # shift memory addresses between the builds
        texts.append(viz.to_dot(loss, model=net, **options))
        del junk
    assert texts[0] == texts[1]
    assert "0x" not in texts[0] and str(id(loss)) not in texts[0]


# ---- backward view -------------------------------------------------------------------------------------------------

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
        "saved input 0 (x)\\n(2, 3) float64", "saved input 1 (w)\\n(3, 1) float64", "saved output\\n(2, 1) float64"]
    assert all("dashed" in attr(nodes(dot)[n], "style") for n in saved)
    assert sum(1 for s, _, e in edges(dot) if s in saved and 'style="dashed"' in e) == 3
    loss.backward()  # releases the graph
    dot = viz.to_dot(loss, view="backward")
    assert find(dot, "saved ") == [] and "retain_graph=True" in dot
    assert "|g| " in attr(nodes(dot)[find(dot, "SigmoidBackward")[0]], "label")  # still computed after release


# ---- big graphs ----------------------------------------------------------------------------------------------------

def chain(steps):
    w = tl.tensor(0.9, requires_grad=True, name="w")
    b = tl.tensor(0.1, requires_grad=True, name="b")
    x = tl.tensor(0.5, name="x0")
    for _ in range(steps):
        x = (x * w + b).tanh()
    return x


def test_max_nodes_collapses_repeated_structure_and_says_so():
    out = chain(300)  # 1803 nodes; deeper than the recursion limit allows for a recursive walk
    full = viz.to_dot(out, max_nodes=None)
    assert len(nodes(full)) == 1803 and "collapsed" not in full
    dot = viz.to_dot(out, max_nodes=40)
    ns = nodes(dot)
    assert 20 <= len(ns) <= 40
    assert "collapsed (max_nodes=40): 1803 nodes drawn as" in dot
    merged = [attr(a, "label") for a in ns.values() if "×" in (attr(a, "label") or "")]
    assert any(label.startswith("Tanh\\n×") for label in merged)
    counts = [int(m) for label in merged for m in re.findall(r"×(\d+)", label)]
    assert max(counts) > 200
    # the output and the parameters keep their own boxes
    assert len(find(dot, "w\\l")) == 1 and len(find(dot, "b\\l")) == 1
    assert [attr(a, "fillcolor") for a in ns.values()].count(viz.ROLE_COLORS["output"]) == 1
    bwd = viz.to_dot(out, view="backward", max_nodes=40)
    assert len(nodes(bwd)) <= 40 and "collapsed (max_nodes=40)" in bwd and "TanhBackward ×" in bwd
    tiny = viz.to_dot(out, max_nodes=5)
    assert len(nodes(tiny)) == 5 and "more nodes not drawn" in tiny and "farthest from the output" in tiny
    assert len(nodes(viz.to_dot(chain(3), max_nodes=40))) == 21  # small graphs are drawn whole


def test_max_nodes_draws_identical_module_calls_once():
    net, loss = net_loss(dims=(2,) + (4,) * 12 + (1,))
    dot = viz.to_dot(loss, model=net, group_modules=True, max_nodes=60)
    assert len(nodes(dot)) <= 60
    cl = clusters(dot)
    assert "fc0 (Lin)" in cl and "fc12 (Lin)" in cl
    (run,) = [label for label in cl if "drawn once" in label]
    assert run.startswith("fc1 (Lin) ×11: fc1, fc2, …, fc11")
    assert "11 repeated module call" in dot.split("\n")[1] or "repeated module call" in dot


# ---- draw, render --------------------------------------------------------------------------------------------------

def test_tensor_shortcuts_and_draw():
    graphviz = pytest.importorskip("graphviz")
    o = neuron()
    assert o.to_dot() == viz.to_dot(o)
    assert o.to_dot(view="backward") == viz.to_dot(o, view="backward")
    g = o.draw(rankdir="TB")
    assert isinstance(g, graphviz.Digraph)
    assert g.source == viz.to_dot(o, rankdir="TB")


def test_draw_without_graphviz_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    o = neuron()
    with pytest.raises(ImportError, match=re.escape("pip install 'tinygrad-lab[viz]'")):
        viz.draw(o)
    assert viz.to_dot(o).startswith("digraph")  # DOT text needs no package


@needs_dot
def test_render_svg_through_dot(tmp_path):
    net, loss = net_loss()
    path = viz.render(loss, tmp_path / "sub" / "graph.svg", model=net, group_modules=True)
    assert path == tmp_path / "sub" / "graph.svg"
    tree = ET.parse(path)
    groups = [g for g in tree.iter("{http://www.w3.org/2000/svg}g")]
    drawn = [g for g in groups if g.get("class") == "node"]
    dot = viz.to_dot(loss, model=net, group_modules=True)
    assert len(drawn) == len(nodes(dot)) == 33  # 7 leaves, 12 ops, their 12 outputs, 2 constants
    assert len([g for g in groups if g.get("class") == "edge"]) == len(edges(dot))
    assert len([g for g in groups if g.get("class") == "cluster"]) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["graph.svg"]  # no temporary files left


@needs_dot
def test_render_png_and_pdf_and_dot_text(tmp_path):
    o = neuron()
    png = viz.render(o, tmp_path / "neuron.png", view="backward")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = viz.render(o, tmp_path / "neuron.out", format="pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = viz.render(o, tmp_path / "neuron.gv")
    assert text.read_text() == viz.to_dot(o)
    with pytest.raises(ValueError, match="format"):
        viz.render(o, tmp_path / "neuron.jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neuron.gv", "neuron.out", "neuron.png"]


def test_render_without_dot_writes_dot_text_and_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-dir"))
    assert shutil.which("dot") is None
    o = neuron()
    with pytest.raises(viz.DotNotFoundError) as info:
        viz.render(o, tmp_path / "neuron.svg", view="backward")
    message = str(info.value)
    assert "Graphviz" in message and "apt-get install graphviz" in message and "brew install graphviz" in message
    assert str(tmp_path / "neuron.dot") in message
    assert info.value.dot_path == tmp_path / "neuron.dot"
    assert (tmp_path / "neuron.dot").read_text() == viz.to_dot(o, view="backward")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neuron.dot"]  # no svg, no temporary file
    assert isinstance(info.value, RuntimeError)


def test_bad_options_are_refused():
    o = neuron()
    with pytest.raises(ValueError, match="view"):
        viz.to_dot(o, view="sideways")
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(o, rankdir="XY")
    with pytest.raises(ValueError, match="max_nodes"):
        viz.to_dot(o, max_nodes=0)
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot(np.ones(3))


def test_leaf_and_constant_roots():
    t = tl.Tensor([1.0, 2.0], name="t")
    dot = viz.to_dot(t)
    assert len(nodes(dot)) == 1 and attr(nodes(dot)["n0"], "fillcolor") == viz.ROLE_COLORS["output"]
    assert "no backward graph" in viz.to_dot(t, view="backward")
