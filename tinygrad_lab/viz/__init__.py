"""Draw computation graphs: Graphviz DOT text (standard library only), a ``graphviz.Digraph``, or a file.

    from tinygrad_lab import viz
    text = viz.to_dot(loss)                                 # DOT text, no dependency
    viz.render(loss, "loss.svg", view="backward")           # SVG / PNG / PDF through Graphviz's `dot`
    viz.draw(loss, params=dict(model.named_parameters()))   # graphviz.Digraph: shows inline in Jupyter

The views are in ``VIEWS`` (views.py says what each draws). Modules: walk (the graph walk and the gradients
drawn), views, collapse (big graphs), labels (node text and colours), dot (``to_dot``), render (files).
"""
from tinygrad_lab.viz.dot import to_dot
from tinygrad_lab.viz.labels import NORM_COLORS, ROLE_COLORS
from tinygrad_lab.viz.render import FORMATS, DotNotFoundError, draw, render
from tinygrad_lab.viz.views import VIEWS

__all__ = ["to_dot", "draw", "render", "DotNotFoundError", "ROLE_COLORS", "NORM_COLORS", "FORMATS", "VIEWS"]
