"""The views a graph can be drawn as (``VIEWS``: name -> builder): vertices and edges before any DOT text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.viz.labels import const_sig, op_text, shape_text
from tinygrad_lab.viz.walk import Context


class Vertex:
    """A vertex: kind (tensor, op, const, bwd, acc, leaf, saved), role (fill colour), sig (structure, no names),
    module (cluster or None) and what its label is made from."""

    __slots__ = ("kind", "role", "sig", "module", "obj", "key")

    def __init__(self, kind, role, sig, module, obj, key=None):
        self.kind, self.role, self.sig, self.module, self.obj, self.key = kind, role, sig, module, obj, key


class Graph:
    """A view before DOT: vertices, edges ``(src, dst, position, kind)``, title lines and the legend's seed."""

    def __init__(self) -> None:
        self.vs: list = []
        self.es: list = []  # (src, dst, position, kind)
        self.title: list = []
        self.legend: str | None = None  # the seed gradient's text, when gradients are drawn

    def add(self, v: Vertex) -> int:
        self.vs.append(v)
        return len(self.vs) - 1


def forward_graph(ctx: Context) -> Graph:
    """Tensors and ops. A record box per tensor (name or dotted parameter path, shape, dtype; for tensors of at
    most 16 elements the values and, once backward has run, the gradients as ``data | grad``, micrograd-style;
    for bigger ones ``mean std min max`` and the gradient's L2 norm) and an ellipse per op (its name and
    attributes). Edges run in argument order, so ``x * x`` draws two edges. Fill colours (``ROLE_COLORS``):
    parameters (leaves that require grad) blue, inputs and constants yellow, ops grey, the output green, other
    tensors white. Non-commutative ops with several inputs number their edges 0, 1, ...
    Gradients are shown only once backward has run (some leaf has a ``.grad`` or the graph was released)."""
    g = Graph()
    index: dict = {}
    for k, node in ctx.order:
        t = ctx.rep[k]
        if node is None:
            role = "output" if k == ctx.root_key else ("param" if t.requires_grad or id(t) in ctx.names else "input")
            index[k] = g.add(Vertex("tensor", role, ("tensor", role, t.shape, t.dtype.str), ctx.param_module(t), t, k))
            continue
        module = ctx.node_module.get(id(node))
        srcs = []
        for pos, (a, ak) in enumerate(zip(node.inputs, ctx.args[id(node)])):
            if ak is not None:
                srcs.append((index[ak], pos))
            else:
                srcs.append((g.add(Vertex("const", "input", ("const", const_sig(a)), module, a)), pos))
        label = op_text(node)
        op = g.add(Vertex("op", "op", ("op", label), module, node))
        g.es.extend((s, op, pos, "arg") for s, pos in srcs)
        role = "output" if k == ctx.root_key else "intermediate"
        index[k] = g.add(Vertex("tensor", role, ("tensor", role, t.shape, t.dtype.str), module, t, k))
        g.es.append((op, index[k], 0, "out"))
    n_ops = len(ctx.ops)
    root = ctx.root
    g.title = [
        f"forward graph of {ctx.name(root) or 'the output'} ({shape_text(root.shape, root.dtype)}): "
        f"{len(ctx.rep)} tensors, {n_ops} op{'s' if n_ops != 1 else ''}",
        "fill: blue = parameter (requires grad), yellow = input / constant, grey = op, green = output",
    ]
    if ctx.show_grads and ctx.after_backward():
        ctx.grad_map = ctx.grads()
        g.title.append(
            "grad: .grad where set (what backward() has accumulated there), else d(output)/d(tensor) by replaying"
        )
    return g


def backward_graph(ctx: Context) -> Graph:
    """The gradient graph as PyTorch builds it, arrows in the direction the gradient flows: the output, a node per
    backward function (``SigmoidBackward``...), ``AccumulateGrad`` into each leaf that requires grad, and, while
    the graph still holds them (before a backward without ``retain_graph=True``), the values forward saved for
    backward as dashed orange boxes. Each backward node is filled by the L2 norm of the gradient reaching it (its
    op's output's; for AccumulateGrad the leaf's), one colour per decade on a fixed log scale from 1e-8 to 1e2
    (``NORM_COLORS``) so that two pictures, say lr 0.1 and lr 0.0001, compare directly; a legend explains it."""
    g = Graph()
    grads = ctx.grads() if ctx.show_grads else {}
    root = ctx.root
    out = g.add(Vertex("leaf", "output", ("leaf", "output", root.shape, root.dtype.str), None, root, ctx.root_key))
    bwd: dict = {}
    acc: dict = {}
    pending = []
    for k, node in reversed(ctx.order):
        if node is None:
            continue
        module = ctx.node_module.get(id(node))
        bwd[k] = g.add(Vertex("bwd", "bwd", ("bwd", type(node).__name__), module, node, k))
        if not node.released:
            for j, value in enumerate(node.saved_values):
                if value is None:  # a slot the op left empty: no gradient that needs it was asked for
                    continue
                what = _saved_what(node, value, j, ctx)
                sig = ("saved", np.shape(value), str(getattr(value, "dtype", type(value).__name__)))
                s = g.add(Vertex("saved", "saved", sig, module, (what, value)))
                pending.append((s, bwd[k], j, "saved"))
        for ak, need in zip(ctx.args[id(node)], node.needs_input_grad):
            if need and ak[0] == "t" and ak not in acc:
                leaf_t = ctx.rep[ak]
                m = ctx.param_module(leaf_t)
                acc[ak] = g.add(Vertex("acc", "acc", ("acc", leaf_t.shape), m, leaf_t, ak))
                leaf_sig = ("leaf", "param", leaf_t.shape, leaf_t.dtype.str)
                pending.append((acc[ak], g.add(Vertex("leaf", "param", leaf_sig, m, leaf_t, ak)), 0, "acc"))
    if root.grad_fn is not None:
        g.es.append((out, bwd[ctx.root_key], 0, "grad"))
    for k, node in reversed(ctx.order):
        if node is None:
            continue
        for pos, (ak, need) in enumerate(zip(ctx.args[id(node)], node.needs_input_grad)):
            if need:
                g.es.append((bwd[k], bwd[ak] if ak[0] == "n" else acc[ak], pos, "grad"))
    g.es.extend(pending)
    ctx.grad_map = grads
    g.title = [
        f"backward graph of {ctx.name(root) or 'the output'} ({shape_text(root.shape, root.dtype)}): "
        f"{len(bwd)} backward function{'s' if len(bwd) != 1 else ''}, {len(acc)} AccumulateGrad"
    ]
    if not root.requires_grad:
        g.title.append("the output does not require grad: there is no backward graph")
    elif ctx.released:
        g.title.append("saved tensors (dashed) were freed by backward(); pass retain_graph=True to see them")
    if ctx.show_grads:
        seed = "1" if root.size == 1 else "ones"
        g.legend = seed
    return g


def _saved_what(node: Any, value: Any, j: int, ctx: Context) -> str:
    """What a saved value is: the op's output, its input i (with the input's name), or saved[j]."""
    if value is node.forward_output:
        return "output"
    for i, a in enumerate(node.inputs):
        if (a.data if isinstance(a, Tensor) else a) is value:
            name = ctx.name(a) if isinstance(a, Tensor) else None
            return f"input {i}" + (f" ({name})" if name else "")
    return f"saved[{j}]"


#: Every view ``to_dot(view=...)`` draws: name -> builder of its Graph. The CLI's ``graph --view`` reads it.
VIEWS: dict[str, Callable[[Context], Graph]] = {"forward": forward_graph, "backward": backward_graph}
