"""tinygrad_lab.viz DOT text and pictures: determinism, option checks, real renders through dot, the missing-tool
paths."""

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import graphviz
import numpy as np
import pytest
from viz_helpers import attr, edges, net_loss, neuron, nodes

import tinygrad_lab as tl
from tinygrad_lab import files, viz
from tinygrad_lab.lab import cli, runs
from tinygrad_lab.lab.config import TrainConfig


@pytest.fixture
def dot_program():
    """Graphviz's dot, which these tests need (make test installs it)."""
    exe = shutil.which("dot")
    assert exe is not None, "Graphviz's dot program is not on PATH: run make test (it installs Graphviz) or install it"
    return exe


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"view": "backward"},
        {"group_modules": True},
        {"view": "backward", "group_modules": True, "max_nodes": 30},
        {"max_nodes": 12},
        {"max_nodes": 4},
    ],
)
def test_same_program_gives_byte_identical_dot(options):
    texts = []
    for _ in range(2):
        net, loss = net_loss(dims=(2, 3, 3, 3, 3, 1))
        junk = [tl.Tensor(np.zeros(k)) for k in range(50)]  # shift memory addresses between the builds
        texts.append(viz.to_dot(loss, model=net, **options))
        del junk
    assert texts[0] == texts[1]
    assert "0x" not in texts[0] and str(id(loss)) not in texts[0]


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


def test_tensor_shortcuts_and_draw():
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


def test_render_svg_through_dot(tmp_path, dot_program):
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


def test_render_png_and_pdf_and_dot_text(tmp_path, dot_program):
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


def svg_size_px(svg: bytes) -> tuple[float, float]:
    """(width, height) of an svg written by dot, in pixels at dot's default 96 dpi (dot writes points)."""
    root = ET.fromstring(svg)
    return tuple(float(root.get(k).removesuffix("pt")) * 96 / 72 for k in ("width", "height"))


def lab_graph(after_epochs=0):
    """The lab's network (2 -> 4 -> 4 -> 1 on XOR, mse) and its loss, as `tinygrad-lab graph` and the report
    build it."""

    loss, model = runs.graph_root(TrainConfig(), after_epochs=after_epochs)
    return loss, dict(model.named_parameters())


@pytest.mark.parametrize("view", ["forward", "backward"])
def test_lab_network_is_drawn_as_a_column_of_moderate_width(view, dot_program):
    loss, params = lab_graph()
    text = viz.to_dot(loss, view=view, params=params)  # the defaults the CLI and the report use
    assert "rankdir=TB" in text
    svg = subprocess.run([dot_program, "-Tsvg"], input=text.encode(), capture_output=True, check=True).stdout
    width, height = svg_size_px(svg)
    assert width < 1500, (width, height)  # left to right, the forward graph was a ~6,000-pixel strip
    if view == "forward":
        assert height > width, (width, height)  # a column
    wide, _ = svg_size_px(
        subprocess.run(
            [dot_program, "-Tsvg"],
            input=viz.to_dot(loss, view=view, params=params, rankdir="LR").encode(),
            capture_output=True,
            check=True,
        ).stdout
    )
    assert wide > width


def test_graph_command_draws_the_trained_network_at_moderate_width(tmp_path, dot_program):
    out = tmp_path / "graph.svg"
    assert cli.main(["graph", "--after-epochs", "300", "--out", str(out)]) == 0
    width, height = svg_size_px(out.read_bytes())
    assert width < 1500 and height > width, (width, height)


@pytest.mark.parametrize("view", ["forward", "backward"])
def test_module_clusters_stack_in_a_column(view, dot_program):

    loss, model = runs.graph_root(TrainConfig())
    text = viz.to_dot(loss, view=view, model=model, group_modules=True)
    laid_out = json.loads(
        subprocess.run([dot_program, "-Tjson"], input=text.encode(), capture_output=True, check=True).stdout
    )
    boxes = sorted([float(v) for v in o["bb"].split(",")] for o in laid_out["objects"] if "bb" in o)
    assert len(boxes) == 3
    spans = sorted((y0, y1) for _, y0, _, y1 in boxes)
    assert all(above[1] < below[0] for above, below in zip(spans, spans[1:])), spans  # no two side by side
    width = float(laid_out["bb"].split(",")[2]) * 96 / 72
    assert width < 1500, width


def test_main_path_edges_weigh_more_than_the_edges_beside_it():
    loss, params = lab_graph()
    dot = viz.to_dot(loss, params=params)
    ns = nodes(dot)
    white = viz.ROLE_COLORS["intermediate"]
    kinds = []
    for s, d, e in edges(dot):
        # on the main path: an op into its output, an intermediate (white) tensor into the next op
        on_path = attr(ns[s], "shape") == "ellipse" or attr(ns[s], "fillcolor") == white
        assert ('weight="4"' in (e or "")) == on_path, (attr(ns[s], "label"), attr(ns[d], "label"))
        kinds.append(on_path)
    # 7 ops into their outputs (3 linear, 3 sigmoid, the squared error) and the 6 intermediate tensors into the
    # next op on the path; x, y and the 3 weights beside it
    assert kinds.count(True) == 13 and kinds.count(False) == 5
    bwd = viz.to_dot(loss, view="backward", params=params)
    bns = nodes(bwd)
    for s, d, e in edges(bwd):
        # on the main path: the output or a backward function into the next backward function
        on_path = "Backward" in attr(bns[d], "label") and "saved" not in attr(bns[s], "label")
        assert ('weight="4"' in (e or "")) == on_path, (attr(bns[s], "label"), attr(bns[d], "label"))


@pytest.mark.parametrize("view", ["forward", "backward"])
def test_names_are_drawn_as_written_in_both_views(view, dot_program, tmp_path):
    amp = tl.tensor([1.0, 2.0], requires_grad=True, name="&amp;")
    two = tl.tensor([3.0, 4.0], requires_grad=True, name="top\nbottom")
    svg = viz.render((amp * two).sum(), tmp_path / "g.svg", view=view).read_text()
    texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert "&amp;" in texts  # Graphviz decodes entities: the name is escaped so it is drawn as given
    assert "top" in texts and "bottom" in texts and not any("\n" in t or "topbottom" in t for t in texts)


def test_render_errors_name_the_path_given_and_long_names_work(tmp_path, dot_program):
    out = neuron()
    (tmp_path / "adir.svg").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        viz.render(out, tmp_path / "adir.svg")
    assert str(tmp_path / "adir.svg") in str(err.value) and ".tmp" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="no file name given: ''"):
        files.write_text("", "text")
    long = tmp_path / ("g" * 246 + ".svg")  # 250 characters: a legal name
    assert viz.render(out, long).read_bytes().startswith(b"<?xml")
    wide = tmp_path / ("é" * 125 + ".svg")  # 254 bytes in UTF-8: legal too (file systems count bytes)
    assert viz.render(out, wide).read_bytes().startswith(b"<?xml")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["adir.svg", long.name, wide.name])  # no temporary file left
