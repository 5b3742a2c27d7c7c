"""Pictures of computation graphs: ``to_dot`` (DOT text, standard library only), ``draw`` (a graphviz.Digraph),
``render`` (SVG/PNG/PDF through Graphviz's dot), in the views of ``VIEWS``; ``explain`` writes a page that steps
through the backward pass."""

from tinygrad_lab.viz.dot import to_dot
from tinygrad_lab.viz.explainer import explain
from tinygrad_lab.viz.explainer import page_data as explain_data
from tinygrad_lab.viz.labels import NORM_COLORS, ROLE_COLORS
from tinygrad_lab.viz.render import FORMATS, DotNotFoundError, draw, render
from tinygrad_lab.viz.views import VIEWS

__all__ = [
    "to_dot",
    "explain",
    "explain_data",
    "draw",
    "render",
    "DotNotFoundError",
    "ROLE_COLORS",
    "NORM_COLORS",
    "FORMATS",
    "VIEWS",
]
