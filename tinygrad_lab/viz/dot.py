"""DOT text of a graph: ``to_dot`` checks the options, builds the chosen view, collapses it and writes the text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.viz.collapse import collapse
from tinygrad_lab.viz.labels import esc, graph_label, vertex_attrs
from tinygrad_lab.viz.views import VIEWS, Graph, Vertex
from tinygrad_lab.viz.walk import Context, naming

GRAPH_NAME = "tinygrad_lab"
_RANKDIRS = ("LR", "RL", "TB", "BT")
#: Weight of the edges along the main path (``_on_spine``); Graphviz's default weight is 1.
SPINE_WEIGHT = "4"
_FONT = "Helvetica"


def to_dot(
    root: Tensor,
    *,
    view: str = "forward",
    rankdir: str = "TB",
    show_values: Any = "auto",
    show_grads: bool = True,
    params: Mapping[str, Tensor] | None = None,
    model: Any = None,
    group_modules: bool = False,
    max_nodes: int | None = 200,
) -> str:
    """The graph that produced ``root`` as Graphviz DOT text (standard library only; deterministic).

    view: "forward" (tensors and ops) or "backward" (backward functions coloured by gradient norm).
    rankdir: Graphviz layout direction: "TB" (inputs at the top, the output at the bottom, the main path a
        straight column with parameters beside it, so a network of a few layers stays a moderate width), "BT",
        "LR" (left to right: one long strip once the graph is more than a handful of ops deep) or "RL".
    show_values: "auto" (values up to 16 elements, else mean/std/min/max), "summary" (always the summary),
        False (shape and dtype only); True means "auto".
    show_grads: draw gradients (forward: ``grad`` fields once backward has run; backward: norms and colours).
    params: {dotted name: Tensor}, e.g. ``dict(model.named_parameters())``, to name parameters.
    model: an object with ``named_parameters()`` (and optionally ``named_modules()``); used for names when
        ``params`` is not given, and for the module class names of clusters.
    group_modules: one cluster per module, traced from which parameters each op consumes
        (walk.Context._assign_modules says how).
    max_nodes: collapse repeated structure beyond this many nodes (None: never).
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"to_dot: root must be a Tensor, got {type(root).__name__}")
    if view not in VIEWS:
        raise ValueError(f"to_dot: view must be one of {tuple(VIEWS)}, got {view!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"to_dot: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    if show_values is True:
        show_values = "auto"
    if show_values not in ("auto", "summary", False):
        raise ValueError(f"to_dot: show_values must be 'auto', 'summary', True or False, got {show_values!r}")
    if max_nodes is not None and (not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1):
        raise ValueError(f"to_dot: max_nodes must be a positive int or None, got {max_nodes!r}")
    names, modules = naming(params, model)
    if group_modules and not names:
        raise ValueError("to_dot: group_modules=True needs model= or params= to know which module owns what")
    ctx = Context(root, rankdir, show_values, bool(show_grads), names, modules, group_modules)
    return emit(ctx, VIEWS[view](ctx), max_nodes)


def _attr_text(attrs: dict) -> str:
    parts = []
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith("<<") and value.endswith(">>"):
            parts.append(f"{key}={value}")
        else:
            parts.append(f'{key}="{value}"')
    return "[" + " ".join(parts) + "]"


def _on_spine(src: Vertex, dst: Vertex, kind: str) -> bool:
    """Whether an edge runs along the computation's main path: an op into its output, an intermediate tensor into
    the next op, a gradient into the next backward function. dot draws those straight (they weigh more), so the
    path reads top to bottom and parameters, inputs and saved values hang beside it instead of skewing it."""
    if kind == "out":
        return True
    if kind == "arg":
        return src.role == "intermediate"
    return kind == "grad" and dst.kind == "bwd"


def emit(ctx: Context, graph: Graph, max_nodes: int | None) -> str:
    """The DOT text of a built view, collapsed to at most max_nodes nodes. Node ids (n0, n1, ...) follow the walk's
    order, never memory addresses, so the same program gives byte-identical text."""
    groups, runs, note = collapse(ctx, graph, max_nodes)
    vs = graph.vs
    vid = {}
    for n, members in enumerate(groups):
        for m in members:
            if isinstance(m, int):
                vid[m] = n
    lines = [f"digraph {GRAPH_NAME} {{"]
    label = graph_label(graph.title + ([note] if note else []) + ctx.notes, graph.legend)
    lines.append(
        f"\tgraph [rankdir={ctx.rankdir} label={label} labelloc=t labeljust=l "
        f'fontname="{_FONT}" fontsize=11 nodesep=0.25 ranksep=0.35]'
    )
    lines.append(f'\tnode [fontname="{_FONT}" fontsize=10]')
    lines.append(f'\tedge [fontname="{_FONT}" fontsize=8 arrowsize=0.7]')
    clusters: dict = {}
    for n, members in enumerate(groups):
        real = [vs[m] for m in members if isinstance(m, int)]
        if isinstance(members[0], Vertex):
            attrs = vertex_attrs(ctx, [members[0]])
        else:
            attrs = vertex_attrs(ctx, real)
            if len(real) > 1:
                attrs["penwidth"] = "2"
            mods = []
            for v in real:
                if v.module not in mods:
                    mods.append(v.module)
            if None not in mods:
                clusters.setdefault(tuple(mods), []).append(n)
        lines.append(f"\tn{n} {_attr_text(attrs)}")
    run_of = {tuple(r): r for r in runs}
    for c, (mods, ids) in enumerate(clusters.items()):
        if mods in run_of:
            run = run_of[mods]
            title = (
                f"{ctx.module_label(run[0])} ×{len(run)}: "
                f"{', '.join(run) if len(run) <= 4 else run[0] + ', ' + run[1] + ', …, ' + run[-1]} "
                "(same structure, drawn once)"
            )
        elif len(mods) == 1:
            title = ctx.module_label(mods[0])
        else:
            shown = ", ".join(mods) if len(mods) <= 4 else f"{mods[0]}, {mods[1]}, …, {mods[-1]}"
            title = f"{shown} (merged)"
        lines.append(f"\tsubgraph cluster_{c} {{")
        lines.append(f'\t\tlabel="{esc(title)}" style="rounded,filled" fillcolor="#f7f7f7" color="#9e9e9e"')
        lines.append("\t\t" + " ".join(f"n{i}" for i in ids))
        lines.append("\t}")
    cluster_of = {n: c for c, ids in enumerate(clusters.values()) for n in ids}
    seen = set()
    hidden = {n for n, members in enumerate(groups) if isinstance(members[0], Vertex)}
    for s, d, pos, kind in graph.es:
        key = (vid[s], vid[d], pos, kind)
        if key in seen or (vid[s] == vid[d] and vid[s] in hidden):
            continue
        seen.add(key)
        attrs = {}
        if kind == "arg":
            node = vs[d].obj
            if len(node.inputs) > 1 and not node.commutative:
                attrs["label"] = str(pos)
        elif kind == "saved":
            attrs.update(style="dashed", dir="none")
        elif kind == "acc":
            attrs["arrowhead"] = "none"
        if _on_spine(vs[s], vs[d], kind):
            attrs["weight"] = SPINE_WEIGHT
            if cluster_of.get(vid[s]) != cluster_of.get(vid[d]):
                # ranks between modules for what hangs off the path (a module's parameter above its first op;
                # AccumulateGrad and the parameter below a backward function, a saved value above the next), so
                # the clusters stack in a column instead of a staircase
                attrs["minlen"] = "4" if kind == "grad" else "2"
        lines.append(f"\tn{vid[s]} -> n{vid[d]}" + (f" {_attr_text(attrs)}" if attrs else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"
