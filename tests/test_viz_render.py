"""tinygrad_lab.viz DOT text and pictures: determinism, option checks, real renders through dot, the missing-tool
paths."""
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import graphviz
import numpy as np
import pytest
from viz_helpers import edges, net_loss, neuron, nodes

import tinygrad_lab as tl
from tinygrad_lab import viz


@pytest.fixture
def dot_program():
    """Graphviz's dot, which these tests need (make test installs it)."""
    exe = shutil.which("dot")
    assert exe is not None, "Graphviz's dot program is not on PATH: run make test (it installs Graphviz) or install it"
    return exe


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
