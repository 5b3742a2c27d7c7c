"""Colours and label text of drawn nodes: values, gradients, shapes and op attributes, escaped for DOT."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tinygrad_lab.viz.walk import Context

#: Fill colour of each role in the forward view (and of the output / leaf boxes in the backward view).
ROLE_COLORS = {
    "param": "#a6cee3",  # leaves that require grad: what an optimizer updates
    "input": "#ffef9f",  # leaves that do not require grad, and constants
    "op": "#d9d9d9",  # an operation
    "output": "#b2df8a",  # the tensor the graph is drawn from
    "intermediate": "#ffffff",  # every other tensor
    "saved": "#fdd0a2",  # backward view: a tensor saved for backward (dashed)
    "collapsed": "#f0f0f0",  # nodes replaced by a count when max_nodes is exceeded
}

#: Backward view: one fill colour per decade of the gradient norm, from <= 1e-8 (index 0) to >= 1e2 (index 10).
NORM_COLORS = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
NORM_MIN_EXP = -8
ZERO_COLOR = "#bdbdbd"  # gradient exactly zero
UNKNOWN_COLOR = "#ffffff"  # gradient not available

VALUE_LIMIT = 16  # tensors with at most this many elements show their values


def shape_text(shape: tuple, dtype: Any) -> str:
    return f"{'scalar' if shape == () else str(tuple(shape))} {np.dtype(dtype).name}"


def _num(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0.0000"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.4f}"
    return f"{v:.3e}"


def _norm_text(v: float) -> str:
    return "0" if v == 0 else f"{v:.1e}" if math.isfinite(v) else _num(v)


def array_lines(arr: np.ndarray) -> list:
    """Values of a small array, one line per row."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return [_num(arr.item())]
    rows = arr.reshape(-1, arr.shape[-1]) if arr.size else arr.reshape(1, 0)
    lines = ["[" + ", ".join(_num(x) for x in row) + "]" for row in rows]
    if len(lines) == 1:
        return lines
    return ["[" + lines[0]] + [" " + line for line in lines[1:-1]] + [" " + lines[-1] + "]"]


def _summary_lines(arr: np.ndarray) -> list:
    arr = np.asarray(arr)
    if arr.size == 0:
        return ["empty"]
    if arr.dtype.kind == "b":
        return [f"{int(arr.sum())} of {arr.size} true"]
    a = arr.astype(np.float64)
    return [f"mean {_num(a.mean())}  std {_num(a.std())}", f"min {_num(a.min())}  max {_num(a.max())}"]


def _norm(arr: Any) -> float:
    a = np.asarray(arr, dtype=np.float64)
    return float(np.sqrt(np.sum(a * a))) if a.size else 0.0


def _fmt_attr(v: Any) -> str:
    if isinstance(v, slice):
        parts = ["" if x is None else _fmt_attr(x) for x in (v.start, v.stop)]
        return ":".join(parts) + (f":{_fmt_attr(v.step)}" if v.step is not None else "")
    if v is Ellipsis:
        return "..."
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    if isinstance(v, np.ndarray):
        return f"array{v.shape}" if v.size > 6 else "[" + ", ".join(_num(x) for x in v.ravel()) + "]"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_fmt_attr(x) for x in v)
        if isinstance(v, list):
            return f"[{inner}]"
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def op_text(node: Any) -> str:
    """Op name, then its attributes (those that are not None/False), e.g. 'Sum\\naxis=1, keepdims=True'."""
    name = type(node).__name__
    attrs = []
    for key, value in node.attrs.items():
        if value is None or value is False:
            continue
        if key == "index":
            parts = value if isinstance(value, tuple) else (value,)
            attrs.append("[" + ", ".join(_fmt_attr(p) for p in parts) + "]")
        else:
            attrs.append(f"{key}={_fmt_attr(value)}")
    text = ", ".join(attrs)
    if len(text) > 60:
        text = text[:57] + "..."
    return name + ("\n" + text if text else "")


def const_sig(value: Any) -> tuple:
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str)
    return (type(value).__name__,)


def _rec(text: str) -> str:
    """Escape text for a record field (also valid inside a DOT double-quoted string); ``&`` too, as Graphviz
    decodes entities such as ``&amp;`` in labels."""
    out = text.replace("\\", "\\\\").replace("&", "&amp;")
    for ch in '{}|<>"':
        out = out.replace(ch, "\\" + ch)
    return out


def esc(text: str) -> str:
    """Escape text for a plain DOT label: quotes, backslashes, ``&`` (Graphviz decodes entities), newlines as
    centred line breaks."""
    return text.replace("\\", "\\\\").replace("&", "&amp;").replace('"', '\\"').replace("\n", "\\n")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(lines: Iterable[str]) -> str:
    """A record field of left-aligned lines; a newline inside a line (a tensor's name) breaks it, as in esc."""
    lines = [part for line in lines for part in line.split("\n")]
    if len(lines) == 1:
        return _rec(lines[0])
    return "".join(_rec(line) + "\\l" for line in lines)


def _record(ctx: Context, fields: list) -> str:
    """A record label: left to right, the fields side by side; top to bottom, the first (the name and shape) above
    the others side by side (data | grad), which keeps boxes narrow in a vertical drawing."""
    if ctx.rankdir in ("LR", "RL"):
        return "{" + " | ".join(fields) + "}"
    if len(fields) > 2:
        return "{" + fields[0] + " | {" + " | ".join(fields[1:]) + "}}"
    return "{" + " | ".join(fields) + "}"


def _header_lines(ctx: Context, members: list) -> list:
    ts = [v.obj for v in members]
    names = []
    for t in ts:
        n = ctx.name(t)
        if n and n not in names:
            names.append(n)
    lines = []
    if names:
        lines.append(", ".join(names[:3]) + (", ..." if len(names) > 3 else ""))
    lines.append(shape_text(ts[0].shape, ts[0].dtype))
    return lines


def _value_fields(ctx: Context, arr: np.ndarray, grad: Any) -> list:
    fields: list[str] = []
    if ctx.show_values is False:
        return fields
    small = ctx.show_values == "auto" and arr.size <= VALUE_LIMIT
    data = array_lines(arr) if small else _summary_lines(arr)
    fields.append(_field(["data " + data[0]] if small and len(data) == 1 else ["data"] + data))
    if grad is not None:
        if small:
            glines = array_lines(grad)
            fields.append(_field(["grad " + glines[0]] if len(glines) == 1 else ["grad"] + glines))
        else:
            fields.append(_field([f"grad norm {_norm_text(_norm(grad))}"]))
    return fields


def _norm_range(finite: list, count: int) -> str:
    """The sorted norms of merged nodes as 'lo … hi', then ', nan' for those that are NaN ('nan' if all are)."""
    if not finite:
        return "nan"
    text = _norm_text(finite[0]) + (f" … {_norm_text(finite[-1])}" if finite[-1] != finite[0] else "")
    return text + (", nan" if len(finite) < count else "")


def _norm_color(n: float | None) -> tuple[str, str]:
    """(fill, font colour) for a gradient norm on the log scale."""
    if n is None:
        return UNKNOWN_COLOR, "black"
    if n == 0:
        return ZERO_COLOR, "black"
    if not math.isfinite(n):
        return "#d62728", "white"
    i = min(max(math.floor(math.log10(n) + 1e-9) - NORM_MIN_EXP, 0), len(NORM_COLORS) - 1)
    return NORM_COLORS[i], "white" if i < 6 else "black"


def vertex_attrs(ctx: Context, members: list) -> dict:
    """DOT attributes of a drawn node that stands for ``members`` (one vertex, or several merged ones)."""
    v = members[0]
    count = len(members)
    times = f"×{count}" if count > 1 else ""
    grads = ctx.grad_map
    if v.kind == "tensor":
        fields = [_field(_header_lines(ctx, members) + ([times] if times else []))]
        if count == 1:
            fields += _value_fields(ctx, v.obj.data, grads.get(v.key))
        return {"label": _record(ctx, fields), "shape": "record", "style": "filled", "fillcolor": ROLE_COLORS[v.role]}
    if v.kind == "const":
        if count > 1:
            label = _field(["const", times])
        elif isinstance(v.obj, np.ndarray):
            fields = [_field(["const", shape_text(v.obj.shape, v.obj.dtype)])]
            fields += _value_fields(ctx, v.obj, None) if v.obj.dtype.kind in "biuf" else []
            label = _record(ctx, fields)
        else:
            label = _record(ctx, [_field(["const"]), _field([_fmt_attr(v.obj)])])
        return {"label": label, "shape": "record", "style": "filled", "fillcolor": ROLE_COLORS["input"]}
    if v.kind == "op":
        text = op_text(v.obj) + (f"\n{times}" if times else "")
        return {"label": esc(text), "shape": "ellipse", "style": "filled", "fillcolor": ROLE_COLORS["op"]}
    if v.kind == "leaf":
        return {
            "label": esc("\n".join(_header_lines(ctx, members) + ([times] if times else []))),
            "shape": "box",
            "style": "filled",
            "fillcolor": ROLE_COLORS[v.role],
        }
    if v.kind == "saved":
        if count > 1:
            text = f"saved {times}\n{shape_text(np.shape(v.obj[1]), getattr(v.obj[1], 'dtype', np.float64))}"
        else:
            what, value = v.obj
            shown = shape_text(value.shape, value.dtype) if isinstance(value, np.ndarray) else _fmt_attr(value)
            text = f"saved {what}\n{shown}"
        return {"label": esc(text), "shape": "box", "style": "dashed,filled", "fillcolor": ROLE_COLORS["saved"]}
    if v.kind in ("bwd", "acc"):
        title = f"{type(v.obj).__name__}Backward" if v.kind == "bwd" else "AccumulateGrad"
        found = [_norm(grads[m.key]) for m in members if m.key in grads] if ctx.show_grads else []
        norms = sorted(found, key=lambda n: (math.isnan(n), n))  # NaN last: it has no place on the scale
        lines = [title + (f" {times}" if times else "")]
        if norms:
            lines.append("|g| " + _norm_range([n for n in norms if not math.isnan(n)], len(norms)))
        median = norms[(len(norms) - 1) // 2] if norms else None
        fill, font = _norm_color(median) if ctx.show_grads else (UNKNOWN_COLOR, "black")
        return {
            "label": esc("\n".join(lines)),
            "shape": "box",
            "style": "rounded,filled",
            "fillcolor": fill,
            "fontcolor": font,
        }
    if v.kind == "hidden":
        return {"label": esc(v.obj), "shape": "note", "style": "filled,dashed", "fillcolor": ROLE_COLORS["collapsed"]}
    raise AssertionError(v.kind)  # pragma: no cover


def _legend(seed: str) -> str:
    """The colour scale of the backward view, as an HTML-like table (placed in the graph's label)."""
    cells = []
    for i, color in enumerate(NORM_COLORS):
        e = NORM_MIN_EXP + i
        text = f"≤1e{e}" if i == 0 else f"≥1e{e}" if i == len(NORM_COLORS) - 1 else f"1e{e}"
        font = "white" if i < 6 else "black"
        cells.append(f'<TD BGCOLOR="{color}" WIDTH="44"><FONT COLOR="{font}">{_html(text)}</FONT></TD>')
    cells.append(f'<TD BGCOLOR="{ZERO_COLOR}" WIDTH="44">0</TD>')
    cells.append(f'<TD BGCOLOR="{UNKNOWN_COLOR}" WIDTH="44">n/a</TD>')
    return f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3"><TR>{"".join(cells)}</TR></TABLE>'


def graph_label(title: list, legend_seed: str | None) -> str:
    """The graph's label: title lines, left-aligned, and in the backward view the legend of the colour scale."""
    text = "".join(_html(line) + '<BR ALIGN="LEFT"/>' for line in title)
    rows = f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{text}</TD></TR>'
    if legend_seed is not None:
        explain = [
            "legend: fill = L2 norm |g| of the gradient reaching each node, log scale, one colour per decade "
            "(fixed scale: pictures compare)",
            "backward node: |g| of its op's output; AccumulateGrad: of the leaf's gradient (.grad, or computed "
            f"when None); seed d(output)/d(output) = {legend_seed}",
        ]
        rows += (
            '<TR><TD ALIGN="LEFT" BALIGN="LEFT">'
            + "".join(_html(line) + '<BR ALIGN="LEFT"/>' for line in explain)
            + "</TD></TR>"
        )
        rows += f'<TR><TD ALIGN="LEFT">{_legend(legend_seed)}</TD></TR>'
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>>'
