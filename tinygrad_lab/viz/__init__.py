"""Pictures of computation graphs: ``to_dot`` (DOT text, standard library only), ``draw`` (a graphviz.Digraph),
``render`` (SVG/PNG/PDF through Graphviz's dot), in the views of ``VIEWS``."""
from tinygrad_lab.viz.dot import to_dot
from tinygrad_lab.viz.labels import NORM_COLORS, ROLE_COLORS
from tinygrad_lab.viz.render import FORMATS, DotNotFoundError, draw, render
from tinygrad_lab.viz.views import VIEWS

__all__ = ["to_dot", "draw", "render", "DotNotFoundError", "ROLE_COLORS", "NORM_COLORS", "FORMATS", "VIEWS"]
