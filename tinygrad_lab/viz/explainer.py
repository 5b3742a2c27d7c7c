"""An interactive page that walks the backward pass of one graph, step by step, in the engine's own order.

    from tinygrad_lab import viz
    viz.explain(loss, "backprop.html", params=dict(model.named_parameters()))

``explain`` runs the engine's backward once on ``output`` (``retain_graph=True``) and watches it: every call
the engine makes to a node's backward is recorded with the gradient that arrived and the gradients the node
returned, in the order the engine made them. The page carries those numbers and computes none of its own.
Every ``.grad`` is put back as it was afterwards, so explaining a graph does not change it; hooks registered
on the graph's tensors do run. The picture is ``viz``'s forward view, rendered by Graphviz's ``dot`` and
inlined, so the page is one file with no network access.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_lab import files
from tinygrad_lab.engine.autograd import sum_to_shape
from tinygrad_lab.engine.function import observe_backward
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.viz.dot import to_dot
from tinygrad_lab.viz.render import DotNotFoundError, render
from tinygrad_lab.viz.walk import Walk

VALUE_LIMIT = 16  # tensors with at most this many elements show every number, bigger ones shape and norm
_PRECISION = 6  # significant digits shown

# op name -> (the rule in words, the formula); G is the gradient arriving at the op's output, out its value.
RULES: dict[str, tuple[str, str]] = {
    "Add": ("a sum passes the gradient through unchanged to both inputs", "da = G,   db = G"),
    "Sub": ("a difference passes the gradient to the first input and its negative to the second", "da = G,   db = −G"),
    "Neg": ("negation flips the sign of the gradient", "dx = −G"),
    "Mul": ("each factor gets the gradient times the other factor", "da = G · b,   db = G · a"),
    "Div": ("a / b: the numerator gets G / b, the denominator −G · a / b²", "da = G / b,   db = −G · a / b²"),
    "Pow": (
        "a ** b: the power rule for the base; out · ln a for a tensor exponent",
        "da = G · b · a^(b−1),   db = G · out · ln a",
    ),
    "MatMul": ("a matrix product sends G back through the other factor, transposed", "dA = G @ Bᵀ,   dB = Aᵀ @ G"),
    "Linear": (
        "a linear layer sends G back through the weight; the weight gets G against the input",
        "dx = G @ W,   dW = Gᵀ @ x,   db = Σ G",
    ),
    "Conv": (
        "a convolution sends G back through the flipped kernel; the kernel gets G against each window",
        "dx = conv_transpose(G, W),   dW = Σ G ⋆ windows(x),   db = Σ G",
    ),
    "MaxPool": ("max pooling sends each window's gradient to the window's maximum", "dx = G at argmax, 0 elsewhere"),
    "AvgPool": ("average pooling shares each window's gradient evenly over the window", "dx = Σ G / k"),
    "Exp": ("the slope of exp is exp itself, the output", "dx = G · out"),
    "Log": ("the slope of log x is 1 / x", "dx = G / x"),
    "Sqrt": ("the slope of √x is 1 / (2√x)", "dx = G / (2 · out)"),
    "Abs": ("the slope of |x| is the sign of x", "dx = G · sign(x)"),
    "Sigmoid": (
        "the slope of the sigmoid is out · (1 − out): small where the sigmoid saturates",
        "dx = G · out · (1 − out)",
    ),
    "Tanh": ("the slope of tanh is 1 − out²: small where tanh saturates", "dx = G · (1 − out²)"),
    "ReLU": ("relu lets the gradient through where the input was positive, 0 elsewhere", "dx = G · [x > 0]"),
    "LeakyReLU": (
        "slope 1 where the input was positive, the small slope elsewhere",
        "dx = G · (1 if x > 0 else slope)",
    ),
    "Gelu": (
        "the slope of x Φ(x) is Φ(x) + x φ(x): the normal CDF plus the input times its density",
        "dx = G · (Φ(x) + x · φ(x))",
    ),
    "Erf": ("the slope of erf is the Gaussian 2/√π · exp(−x²)", "dx = G · 2/√π · exp(−x²)"),
    "Elu": ("slope 1 where the input was positive, α · exp(x) elsewhere", "dx = G · (1 if x > 0 else α · exp(x))"),
    "Softplus": (
        "the slope of softplus is the sigmoid of β x (1 above the threshold)",
        "dx = G · σ(β x)   (G where β x > threshold)",
    ),
    "Hardtanh": ("the gradient passes strictly inside the bounds, 0 at and beyond them", "dx = G · [lo < x < hi]"),
    "Clip": ("clipping lets the gradient through inside the bounds, 0 outside", "dx = G · [lo ≤ x ≤ hi]"),
    "Clone": ("a copy passes the gradient through unchanged", "dx = G"),
    "Cast": ("a cast passes the gradient through, cast back to the input's dtype", "dx = G"),
    "Maximum": (
        "the larger input gets the gradient (each gets half where they tie)",
        "da = G · [a > b],   db = G · [b > a]",
    ),
    "Minimum": (
        "the smaller input gets the gradient (each gets half where they tie)",
        "da = G · [a < b],   db = G · [b < a]",
    ),
    "Where": ("each branch gets the gradient where it was chosen", "da = G · cond,   db = G · (not cond)"),
    "Sum": (
        "every summed element gets the same gradient: G is broadcast back to the input's shape",
        "dx = broadcast(G)",
    ),
    "Mean": ("like a sum, divided by the number n of elements averaged", "dx = broadcast(G) / n"),
    "Var": (
        "each element's slope is twice its distance from the mean, over the n − ddof degrees of freedom",
        "dx = G · 2 (x − mean) / (n − ddof)",
    ),
    "MseLoss": (
        "the squared error's slope is twice the difference, shared by the n elements averaged",
        "dpred = G · 2 (pred − y) / n,   dy = −dpred",
    ),
    "BinaryCrossEntropy": (
        "the cross-entropy's slope in p is (p − y) / (p (1 − p)): steep where p is confidently wrong",
        "dp = G · (p − y) / max(p (1 − p), 1e-12),   dy = G · (log(1 − p) − log p)",
    ),
    "Max": ("only the maximum (ties share it) gets the gradient", "dx = G · [x = max]"),
    "Min": ("only the minimum (ties share it) gets the gradient", "dx = G · [x = min]"),
    "LogSumExp": ("the slope of log Σ exp is the softmax", "dx = G · exp(x − out)"),
    "Reshape": ("a reshape moves no numbers: the gradient is reshaped back", "dx = reshape(G, x.shape)"),
    "Transpose": ("a transpose moves numbers: the gradient is transposed back", "dx = transpose(G)⁻¹"),
    "Expand": ("broadcasting copies the input, so the copies' gradients are summed", "dx = sum of G over copies"),
    "GetItem": (
        "indexing picks elements: their gradients go back to where they came from, 0 elsewhere",
        "dx = zeros(x.shape); dx[index] += G",
    ),
    "IndexAdd": ("the values added at the index get the gradient found there", "d values = G[index]"),
    "Cat": ("each concatenated input gets its own slice of the gradient", "dxᵢ = G[slice i]"),
    "Stack": ("each stacked input gets its own slice of the gradient", "dxᵢ = G[i]"),
    "Fill": ("the overwritten value no longer counts: it gets zeros (a 0-d tensor value: the sum)", "dx = 0, dv = ΣG"),
    "Copy": ("the copied source gets the gradient; the overwritten value, zeros", "dx = 0,   dsrc = G"),
    "SetItem": (
        "the written elements come from the value, so it gets their gradients; the overwritten ones get zeros",
        "dx = G with G[index] = 0,   dvalue = G[index]",
    ),
    "ZeroSlope": ("a recorded gradient tied to the op's input, with slope 0 there", "dvalue = G,   danchor = 0"),
}


def explain(
    output: Tensor,
    path: str | os.PathLike,
    params: Mapping[str, Tensor] | None = None,
    *,
    gradient: Any = None,
    title: str | None = None,
    max_nodes: int | None = 200,
) -> Path:
    """Write ONE self-contained HTML page that steps through the backward pass of ``output`` (and, toggled,
    its forward pass) in the engine's order, with the engine's numbers. Returns the path written.

    params: {dotted name: Tensor} to name parameters, as in viz. gradient: the seed, for a non-scalar output.
    max_nodes: beyond it the picture is collapsed (as in viz.to_dot) and its nodes are not highlighted.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"explain: output must be a Tensor, got {type(output).__name__}")
    path = Path(path)
    if not path.absolute().parent.is_dir():
        raise FileNotFoundError(f"explain: the folder {str(path.absolute().parent)!r} of {str(path)!r} does not exist")
    data = page_data(output, params=params, gradient=gradient, title=title, max_nodes=max_nodes)
    files.write_text(path, _page(data))
    return path


def trace_backward(output: Tensor, gradient: Any = None, walk: Walk | None = None) -> tuple[list, dict]:
    """Run ``output.backward(gradient, retain_graph=True)`` and record what the engine did (``walk``: the output's
    graph, when the caller has walked it already).

    Returns ``(calls, leaf_grads)``: calls is [(node, gradient arriving, gradients returned)] in the order the
    engine called the nodes' backward; leaf_grads maps id(leaf) to the ``.grad`` the engine left on it. Every
    ``.grad`` in the graph is restored afterwards.
    """
    if not output.requires_grad:
        raise ValueError(
            f"explain: the output (shape {output.shape}) does not require grad (nothing it was computed from "
            "requires grad, or it was computed under no_grad), so it has no backward pass; pass a tensor computed "
            "from tensors with requires_grad=True"
        )
    if output.grad_fn is None:
        raise ValueError(
            f"explain: the output (shape {output.shape}) is a leaf, not the result of an op, so it "
            "has no backward pass; pass a tensor computed from tensors with requires_grad=True"
        )
    walk = walk or Walk(output)
    nodes = [node for _, node in walk.order if node is not None]
    tensors = list({id(t): t for t in (output, *walk.rep.values())}.values())
    if any(node.released for node in nodes):
        raise ValueError(
            "explain: an earlier backward() freed this graph's saved values; build the output again "
            "(or call backward(retain_graph=True)) and explain it"
        )
    calls: list = []
    saved = [(t, t.grad) for t in tensors]
    saved += [(r, r.grad) for r in (n.retained_output for n in nodes) if r is not None]

    def record(node: Any, grad: Any, grads: tuple) -> None:
        calls.append((node, np.array(grad), tuple(None if g is None else np.array(g) for g in grads)))

    try:
        for t, _ in saved:
            t.grad = None
        with observe_backward(nodes, record):
            output.backward(gradient, retain_graph=True)
        leaf_grads = {id(t): np.array(t.grad.data) for t in tensors if t.grad_fn is None and t.grad is not None}
    finally:
        for t, g in saved:
            t.grad = g
    return calls, leaf_grads


# ---- the page's data ---------------------------------------------------------------------------------------------


def page_data(
    output: Tensor,
    params: Mapping[str, Tensor] | None = None,
    gradient: Any = None,
    title: str | None = None,
    max_nodes: int | None = 200,
) -> dict:
    """Everything the page shows, as JSON-ready data: tensors, backward steps, forward steps, leaves' grads."""
    walk = Walk(output)
    calls, leaf_grads = trace_backward(output, gradient, walk)
    names = {id(t): str(n) for n, t in (params or {}).items() if isinstance(t, Tensor)}
    tensors: list = []
    tid: dict = {}  # key -> index into tensors
    ops: list = []
    oid: dict = {}  # id(node) -> index into ops
    vertex = 0  # viz's forward view: n<i> per leaf; per op its constants, the op, then its output
    root_key = walk.order[-1][0]
    for key, node in walk.order:
        t = walk.rep[key]
        if node is not None:
            vertex += sum(not isinstance(a, Tensor) for a in node.inputs)
            oid[id(node)] = len(ops)
            ops.append(
                {
                    "op": type(node).__name__,
                    "label": f"{type(node).__name__} #{len(ops) + 1}",
                    "svg": f"n{vertex}",
                    "out": len(tensors),
                }
            )
            vertex += 1
        tid[key] = len(tensors)
        tensors.append(_tensor_info(t, node, names, walk.aka, key == root_key, ops, f"n{vertex}", tid))
        vertex += 1
    for op, node in zip(ops, [node for _, node in walk.order if node is not None]):
        op["inputs"] = [_input_ref(a, ak, tid) for a, ak in zip(node.inputs, walk.args[id(node)])]
        op["rule"], op["formula"] = RULES.get(op["op"], (_custom_rule(node), "see its backward()"))

    steps: list[dict] = []
    contributions: dict[int, list[dict]] = {}  # tensor index -> the gradients it received
    sums: dict[int, Any] = {}  # tensor index -> their sum, added as the engine adds them (before any hook)
    for node, grad, grads in calls:
        sends = []
        for pos, (a, ak, need, g) in enumerate(zip(node.inputs, walk.args[id(node)], node.needs_input_grad, grads)):
            if ak is None:
                sends.append({"pos": pos, "to": None, "why": "a constant: no gradient"})
            elif not need:
                sends.append({"pos": pos, "to": tid[ak], "why": "does not require grad: no gradient"})
            elif g is None:
                sends.append({"pos": pos, "to": tid[ak], "why": "its backward() returned no gradient (None) for it"})
            else:
                if g.shape != a.shape:  # the engine's own reduction of a broadcast gradient
                    g = sum_to_shape(g, a.shape, node, a)
                target = tid[ak]
                g = np.asarray(g, dtype=a.dtype)
                sums[target] = g if target not in sums else sums[target] + g
                contributions.setdefault(target, []).append(
                    {"step": len(steps) + 1, "op": oid[id(node)], "grad": _fmt(g)}
                )
                sends.append(
                    {
                        "pos": pos,
                        "to": target,
                        "grad": contributions[target][-1]["grad"],
                        "nth": len(contributions[target]),
                    }
                )
        steps.append({"op": oid[id(node)], "grad": _fmt(grad), "sends": sends})
    arrived = {oid[id(node)]: grad for node, grad, _ in calls}
    for i, t in enumerate(tensors):
        t["contributions"] = contributions.get(i, [])
        leaf = walk.rep[walk.order[i][0]]
        final = leaf_grads.get(id(leaf)) if t["op"] is None else arrived.get(t["op"])
        if final is None:  # the .grad the engine left on a leaf, or what arrived at the op that made the tensor
            continue
        t["grad"] = _fmt(final)
        if i in sums and not np.array_equal(sums[i], final, equal_nan=True):
            t["summed"] = _fmt(sums[i])  # a hook on the tensor changed the sum into its gradient
    svg, note = _picture(output, params, max_nodes, tensors, ops)
    out = tensors[-1]
    return {
        "title": title or f"backward of {out['label']}",
        "output": len(tensors) - 1,
        "seed": _fmt(np.asarray(calls[0][1]) if calls else np.ones(output.shape)),
        "tensors": tensors,
        "ops": ops,
        "steps": steps,
        "forward": list(range(len(ops))),
        "svg": svg,
        "note": note,
    }


def _tensor_info(t: Tensor, node: Any, names: dict, aka: dict, is_output: bool, ops: list, svg: str, tid: dict) -> dict:
    """A tensor's label, kind (param, input, intermediate, output), shape and value; ``aka`` names the values
    an in-place write overwrote after the name of the tensor that held them."""
    name = names.get(id(t), t.name) or aka.get(id(t))
    if node is None:
        kind = "param" if t.requires_grad or id(t) in names else "input"
        label = name or f"{'leaf' if kind == 'param' else 'input'} {len(tid) + 1}"
    else:
        kind = "output" if is_output else "intermediate"
        label = name or f"output of {ops[-1]['label']}"
    return {
        "label": label,
        "kind": kind,
        "shape": list(t.shape),
        "value": _fmt(t.data),
        "op": len(ops) - 1 if node is not None else None,
        "svg": svg,
    }


def _input_ref(a: Any, key: tuple | None, tid: dict) -> dict:
    if key is not None:
        return {"tensor": tid[key]}
    return {"const": _fmt(np.asarray(a))}


def _custom_rule(node: Any) -> str:
    doc = (type(node).__doc__ or "").strip().split("\n")[0]
    return f"an op defined by its own backward(){': ' + doc if doc else ''}"


def _fmt(arr: Any) -> dict:
    """A value as the page shows it: every number when small, else shape, norm, mean, min and max."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        return {"text": str(arr.dtype), "short": str(arr.dtype)}
    flt = arr.astype(np.float64)
    norm = float(np.linalg.norm(flt.ravel())) if flt.size else 0.0
    if arr.size <= VALUE_LIMIT:
        text = (
            _num(flt.item())
            if arr.ndim == 0
            else np.array2string(flt, separator=", ", formatter={"float_kind": _num}, max_line_width=60)
        )
        short = _num(flt.item()) if arr.size == 1 else f"‖·‖ {_num(norm)}"
        return {"text": text, "short": short, "small": True}
    text = (
        f"shape {tuple(arr.shape)}, norm {_num(norm)}\nmean {_num(flt.mean())}, min {_num(flt.min())}, "
        f"max {_num(flt.max())}"
    )
    return {"text": text, "short": f"‖·‖ {_num(norm)}", "small": False, "norm": _num(norm)}


def _num(v: float | np.floating) -> str:
    return f"{v:.{_PRECISION}g}"


# ---- the picture and the page ------------------------------------------------------------------------------------

_NODE_LINE = re.compile(r'^\tn(\d+) \[label=(?:"|<)?([^" \\]*)', re.M)


def _picture(output: Tensor, params: Any, max_nodes: int | None, tensors: list, ops: list) -> tuple[str, str]:
    """viz's forward view as inline SVG, and a note for the reader when something is missing."""
    options = dict(view="forward", rankdir="TB", params=params, show_grads=False, max_nodes=max_nodes)
    lines = _NODE_LINE.findall(to_dot(output, **options))
    expected = {int(op["svg"][1:]): op["op"] for op in ops}
    mapped = len(lines) == len(tensors) + len(ops) + sum("const" in inp for op in ops for inp in op["inputs"]) and all(
        lines[i][1] == name for i, name in expected.items() if i < len(lines)
    )
    note = ""
    if not mapped:
        for item in tensors + ops:
            item["svg"] = None
        note = (
            f"The picture is collapsed (more than max_nodes={max_nodes} nodes), so its nodes are not "
            "highlighted; the steps still visit every op."
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            svg = render(output, Path(tmp) / "graph.svg", **options).read_text(encoding="utf-8")
        except DotNotFoundError:
            return "", (
                "Graphviz's dot program was not found, so the picture is missing (install Graphviz: "
                "Debian/Ubuntu apt-get install graphviz, macOS brew install graphviz); the steps work."
            )
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg, note


def _asset(name: str) -> str:
    return resources.files("tinygrad_lab.viz").joinpath(name).read_text(encoding="utf-8")


def _page(data: dict) -> str:
    """The template with its style, script, picture and data inlined in one pass (``<`` escaped in the data,
    so no string in it can end the script)."""
    parts = {
        "/*STYLE*/": _asset("explain_page.css"),
        "/*SCRIPT*/": _asset("explain_page.js"),
        "<!--GRAPH-->": data.pop("svg"),
        "<!--TITLE-->": _escape(data["title"]),
        "/*DATA*/": json.dumps(data, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c"),
    }
    pattern = re.compile("|".join(re.escape(mark) for mark in parts))
    return pattern.sub(lambda m: parts[m.group(0)], _asset("explain_page.html"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
