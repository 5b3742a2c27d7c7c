"""tinygrad_lab.viz collapse: big graphs drawn in at most max_nodes nodes, saying what was merged."""

import re

import pytest
from viz_helpers import attr, chain, clusters, find, net_loss, nodes

from tinygrad_lab import viz


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


def test_max_nodes_is_a_bound_down_to_one_and_refuses_a_bool():
    _, loss = net_loss()
    for limit in (1, 2, 3):
        for view in ("forward", "backward"):
            assert 1 <= len(nodes(viz.to_dot(loss, view=view, max_nodes=limit))) <= limit
    (only,) = nodes(viz.to_dot(loss, max_nodes=1)).values()
    assert "more nodes not drawn" in attr(only, "label")
    for flag in (True, False):
        with pytest.raises(ValueError, match=r"^to_dot: max_nodes must be a positive int or None, got (True|False)$"):
            viz.to_dot(loss, max_nodes=flag)
