"""Draw computation graphs: Graphviz DOT text (standard library only), a ``graphviz.Digraph``, or a file.

    from tinygrad_lab import viz
    text = viz.to_dot(loss)                                 # DOT text, no dependency
    viz.render(loss, "loss.svg", view="backward")           # SVG / PNG / PDF through Graphviz's `dot`
    viz.draw(loss, params=dict(model.named_parameters()))   # graphviz.Digraph: shows inline in Jupyter

Two views of the graph that ``backward()`` walks:

* ``view="forward"``: a record box per tensor (name or dotted parameter path, shape, dtype; for tensors of at most
  16 elements the values and, once backward has run, the gradients as ``data | grad``, micrograd-style; for bigger
  ones ``mean std min max`` and the gradient's L2 norm) and an ellipse per op (its name and attributes). Edges
  run in argument order, so ``x * x`` draws two edges. Fill colours (``ROLE_COLORS``): parameters (leaves that
  require grad) blue, inputs and constants yellow, ops grey, the output (the tensor drawn) green, other
  tensors white. Non-commutative ops with several inputs number their edges 0, 1, ...
* ``view="backward"``: the gradient graph as PyTorch builds it, arrows in the direction the gradient flows: the
  output, a node per backward function (``SigmoidBackward``, ``MatMulBackward``...), ``AccumulateGrad`` into each
  leaf that requires grad, and, while the graph still holds them (before a backward without
  ``retain_graph=True``), the tensors forward saved for backward as dashed orange boxes. Each backward node is
  filled by the L2 norm of the gradient reaching it (the gradient of its op's output; for AccumulateGrad the
  leaf's gradient), one colour per decade on a fixed log scale from 1e-8 to 1e2 (``NORM_COLORS``) so that two
  pictures, say lr 0.1 and lr 0.0001, compare directly; a legend in the graph's label explains the scale.

Where the gradients come from: a leaf's ``.grad`` and a ``retain_grad()`` tensor's ``.grad`` are used as they
are. Every other gradient (intermediate tensors, inputs that do not require grad, leaves whose ``.grad`` is
None) is computed by replaying the graph: each recorded op is applied again to copies of the leaves (its
``inputs`` and ``attrs`` stay on the node even after backward released it), then ``tinygrad_lab.grad`` gives
d(root)/d(tensor) with a seed of ones. The replay touches neither the original graph nor any ``.grad``, does not
run hooks, and is deterministic; it reflects the leaves' current values. The forward view shows gradients only
once backward has run (some leaf has a ``.grad`` or the graph was released); the backward view always does.

Names: ``params=dict(model.named_parameters())`` or ``model=`` (anything with ``named_parameters()``, and
``named_modules()`` for the class names) labels parameters with their dotted path, e.g. ``fc1.weight``.

``group_modules=True`` draws a cluster per module. Modules register no hooks, so the grouping is traced from
the graph alone: an op belongs to the module whose parameters it consumes directly (or through ops applied to
parameters only, such as ``weight.T``); a unary elementwise op (an activation) joins the module of the op
that produced its input, so activations are drawn inside the module before them, and the chain stops at the
next op that consumes some module's parameters. The cluster's label names the module and its class, and, when
activations joined it, the first parameter-free module after it (in ``named_modules()`` order) whose class is
named like the activation op: ``fc1 (Linear) + act1 (Sigmoid)``. A module called twice is one cluster.
Parameters sit in the cluster of the module that owns them (the dotted path minus its last part).

Big graphs: when the drawing would have more than ``max_nodes`` nodes, repeated structure is collapsed, and the
graph's label says so. First (with ``group_modules``) runs of consecutive module clusters with identical
structure are drawn once, labelled with the count; then nodes with the same structure are merged (a
Weisfeiler-Lehman refinement in both directions: the finest merging that fits is kept, so structure near the
inputs and the output stays distinct and the repeated middle is drawn once, as a cycle, with ``×count`` on each
merged node); if even that does not fit, the nodes farthest from the output are replaced by one "not drawn" node.

The DOT text is deterministic: node ids come from traversal order (n0, n1, ... in forward execution order for
the forward view), never from memory addresses, so the same program gives byte-identical text.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from tinygrad_lab import files
from tinygrad_lab.tensor import Tensor

__all__ = ["to_dot", "draw", "render", "DotNotFoundError", "ROLE_COLORS", "NORM_COLORS", "FORMATS"]

GRAPH_NAME = "tinygrad_lab"

#: Fill colour of each role in the forward view (and of the output / leaf boxes in the backward view).
ROLE_COLORS = {
    "param": "#a6cee3",         # leaves that require grad: what an optimizer updates
    "input": "#ffef9f",         # leaves that do not require grad, and constants
    "op": "#d9d9d9",            # an operation
    "output": "#b2df8a",        # the tensor the graph is drawn from
    "intermediate": "#ffffff",  # every other tensor
    "saved": "#fdd0a2",         # backward view: a tensor saved for backward (dashed)
    "collapsed": "#f0f0f0",     # nodes replaced by a count when max_nodes is exceeded
}

#: Backward view: one fill colour per decade of the gradient norm, from <= 1e-8 (index 0) to >= 1e2 (index 10).
NORM_COLORS = ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
               "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725")
NORM_MIN_EXP = -8
ZERO_COLOR = "#bdbdbd"      # gradient exactly zero
UNKNOWN_COLOR = "#ffffff"   # gradient not available

#: Output formats ``render`` understands, by file suffix.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

VALUE_LIMIT = 16  # tensors with at most this many elements show their values
_VIEWS = ("forward", "backward")
_RANKDIRS = ("LR", "RL", "TB", "BT")
_COMMUTATIVE = {"Add", "Mul", "Maximum", "Minimum"}
_FONT = "Helvetica"


class DotNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is missing; ``dot_path`` is where the DOT text was written instead."""

    def __init__(self, message: str, dot_path: Path):
        super().__init__(message)
        self.dot_path = dot_path


# ---- public API -------------------------------------------------------------------------------------------------

def to_dot(root: Tensor, *, view: str = "forward", rankdir: str = "LR", show_values: Any = "auto",
           show_grads: bool = True, params: Mapping[str, Tensor] | None = None, model: Any = None,
           group_modules: bool = False, max_nodes: int | None = 200) -> str:
    """The graph that produced ``root`` as Graphviz DOT text (standard library only; deterministic).

    view: "forward" (tensors and ops) or "backward" (backward functions coloured by gradient norm).
    rankdir: Graphviz layout direction, "LR", "TB", "RL" or "BT".
    show_values: "auto" (values up to 16 elements, else mean/std/min/max), "summary" (always the summary),
        False (shape and dtype only); True means "auto".
    show_grads: draw gradients (forward: ``grad`` fields once backward has run; backward: norms and colours).
    params: {dotted name: Tensor}, e.g. ``dict(model.named_parameters())``, to name parameters.
    model: an object with ``named_parameters()`` (and optionally ``named_modules()``); used for names when
        ``params`` is not given, and for the module class names of clusters.
    group_modules: one cluster per module, traced from which parameters each op consumes (module docstring).
    max_nodes: collapse repeated structure beyond this many nodes (None: never).
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"to_dot: root must be a Tensor, got {type(root).__name__}")
    if view not in _VIEWS:
        raise ValueError(f"to_dot: view must be one of {_VIEWS}, got {view!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"to_dot: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    if show_values is True:
        show_values = "auto"
    if show_values not in ("auto", "summary", False):
        raise ValueError(f"to_dot: show_values must be 'auto', 'summary', True or False, got {show_values!r}")
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"to_dot: max_nodes must be a positive int or None, got {max_nodes!r}")
    names, modules = _naming(params, model)
    if group_modules and not names:
        raise ValueError("to_dot: group_modules=True needs model= or params= to know which module owns what")
    ctx = _Ctx(root, rankdir, show_values, bool(show_grads), names, modules, group_modules)
    graph = _backward_graph(ctx) if view == "backward" else _forward_graph(ctx)
    return _emit(ctx, graph, view, max_nodes)


def draw(root: Tensor, **options: Any) -> Any:
    """``to_dot(root, **options)`` as a ``graphviz.Digraph`` (shows inline in Jupyter; ``.render()`` saves it)."""
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(
            "tinygrad_lab.viz.draw needs the graphviz Python package: pip install 'tinygrad-lab[viz]' "
            "(viz.to_dot works without it, and viz.render needs only Graphviz's dot program)"
        ) from err
    lines = to_dot(root, **options).split("\n")
    return graphviz.Digraph(name=GRAPH_NAME, body=[line + "\n" for line in lines[1:-2]])


def render(root: Tensor, path: str | os.PathLike, format: str | None = None, **options: Any) -> Path:
    """Write the graph to ``path`` as SVG, PNG or PDF (from the suffix, or ``format``) through Graphviz's ``dot``;
    ".dot"/".gv" write the DOT text itself. Options are those of ``to_dot``. Returns the path written.

    The file is written atomically (a temporary file in the same folder, then ``os.replace``). Where ``dot`` is
    missing, the DOT text is written beside ``path`` (same name, suffix .dot) and ``DotNotFoundError`` says how
    to install Graphviz.
    """
    path = Path(path)
    fmt = format if format is not None else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"render: cannot tell the format from {path.name!r}; use a suffix among "
                         f"{', '.join(FORMATS)} or pass format='svg', 'png' or 'pdf'")
    fmt = {"gv": "dot"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"render: format must be 'svg', 'png', 'pdf' or 'dot', got {format!r}")
    text = to_dot(root, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        files.write_text(path, text)
        return path
    exe = shutil.which("dot")
    proc = None
    if exe is not None:
        try:
            proc = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True, timeout=600)
        except OSError:
            proc = None
        if proc is not None and proc.returncode == 0:
            with files.atomic_write(path, "wb") as f:
                f.write(proc.stdout)
            return path
    if proc is None:
        dot_path = path.with_suffix(".dot") if path.suffix.lower() != ".dot" else path
        files.write_text(dot_path, text)
        raise DotNotFoundError(
            f"render: Graphviz's `dot` program was not found on PATH, so {path} was not written; the graph "
            f"was saved as DOT text to {dot_path}. Install Graphviz (Debian/Ubuntu: sudo apt-get install "
            "graphviz; macOS: brew install graphviz; conda: conda install -c conda-forge graphviz; Windows: "
            f"winget install graphviz), then run again, or run: dot -T{fmt} {dot_path} -o {path}",
            dot_path,
        )
    raise RuntimeError(f"render: dot -T{fmt} failed (exit code {proc.returncode}): "
                       f"{proc.stderr.decode('utf-8', 'replace').strip()}")


# ---- walking the graph -------------------------------------------------------------------------------------------

def _tkey(t: Tensor) -> tuple:
    """Identity of the value a Tensor holds: a node's output (several Tensor objects may share it) or a leaf."""
    return ("n", id(t.grad_fn)) if t.grad_fn is not None else ("t", id(t))


def _walk(root: Tensor) -> tuple[list, dict]:
    """Iterative post-order walk from root: [(key, node or None)] in forward execution order (every tensor after
    the tensors it was computed from; node None for leaves), and key -> a Tensor holding that value."""
    order: list = []
    rep: dict = {}
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        k = _tkey(t)
        if expanded:
            order.append((k, t.grad_fn))
            continue
        if k in rep:
            if rep[k].name is None and t.name is not None:
                rep[k] = t
            continue
        rep[k] = t
        if t.grad_fn is None:
            order.append((k, None))
            continue
        stack.append((t, True))
        for a in reversed(t.grad_fn.inputs):
            if isinstance(a, Tensor):
                stack.append((a, False))
    return order, rep


def _naming(params: Mapping[str, Tensor] | None, model: Any) -> tuple[dict, dict]:
    """id(parameter) -> dotted name, and module path -> class name (from model.named_modules())."""
    if params is None and model is not None:
        params = dict(model.named_parameters())
    names = {}
    for name, t in (params or {}).items():
        if isinstance(t, Tensor) and id(t) not in names:
            names[id(t)] = str(name)
    modules = {}
    if model is not None and hasattr(model, "named_modules"):
        for path, mod in model.named_modules():
            modules.setdefault(str(path), type(mod).__name__)
    return names, modules


def _owner(dotted: str) -> str:
    return dotted.rsplit(".", 1)[0] if "." in dotted else ""


class _Ctx:
    """The options and everything derived from the graph that labels need."""

    def __init__(self, root, rankdir, show_values, show_grads, names, modules, group):
        self.root, self.rankdir, self.show_values, self.show_grads = root, rankdir, show_values, show_grads
        self.names, self.module_types, self.group = names, modules, group
        self.order, self.rep = _walk(root)
        self.root_key = _tkey(root)
        self.ops = [node for _, node in self.order if node is not None]
        self.released = any(node._released for node in self.ops)
        self.absorbed: dict = {}  # module path -> names of the activation ops that joined it
        self.node_module = self._assign_modules() if group else {}
        self.notes: list = []
        self.grad_map: dict = {}  # key -> gradient drawn (filled by the view that draws gradients)
        self._grads = None

    # -- names and modules ------------------------------------------------------------------------------------
    def name(self, t: Tensor) -> str | None:
        return self.names.get(id(t), t.name)

    def param_module(self, t: Tensor) -> str | None:
        if not self.group or id(t) not in self.names:
            return None
        return _owner(self.names[id(t)])

    def module_label(self, path: str) -> str:
        """'fc1 (Linear)', plus the parameter-free module its activation ops most likely came from: the first one
        after it in named_modules() order whose class is named like the op, e.g. 'fc1 (Linear) + act1 (Sigmoid)'."""
        shown = path if path else "(model)"
        kind = self.module_types.get(path)
        label = f"{shown} ({kind})" if kind else shown
        order = list(self.module_types)
        owners = {_owner(n) for n in self.names.values()}
        later = order[order.index(path) + 1:] if path in order else []
        for op in self.absorbed.get(path, ()):
            for other in later:
                if self.module_types[other] == op and not any(o == other or o.startswith(other + ".") for o in owners):
                    label += f" + {other or '(model)'} ({op})"
                    break
        return label

    def _assign_modules(self) -> dict:
        """id(node) -> module path: the module whose parameters the op consumes (directly or through ops on
        parameters only), else, for a unary elementwise op, the module of the op that made its input."""
        derived: dict = {}  # tensor key -> module, for parameters and tensors computed from one module's params
        node_module: dict = {}
        for k, node in self.order:
            if node is None:
                m = self.param_module(self.rep[k])
                if m is not None:
                    derived[k] = m
                continue
            tins = [a for a in node.inputs if isinstance(a, Tensor)]
            mod = next((derived[_tkey(a)] for a in tins if _tkey(a) in derived), None)
            if mod is not None:
                node_module[id(node)] = mod
                if all(derived.get(_tkey(a)) == mod for a in tins):
                    derived[k] = mod
            elif len(node.inputs) == 1 and tins and tins[0].grad_fn is not None \
                    and id(tins[0].grad_fn) in node_module and tins[0].shape == self.rep[k].shape:
                mod = node_module[id(node)] = node_module[id(tins[0].grad_fn)]
                ops = self.absorbed.setdefault(mod, [])
                if type(node).__name__ not in ops:
                    ops.append(type(node).__name__)
        return node_module

    # -- gradients ----------------------------------------------------------------------------------------------
    def after_backward(self) -> bool:
        if self.released:
            return True
        for k, t in self.rep.items():
            if t.grad is not None:
                return True
            node = t.grad_fn
            if node is not None and node._retained is not None:
                r = node._retained()
                if r is not None and r.grad is not None:
                    return True
        return False

    def grads(self) -> dict:
        """key -> gradient array of root w.r.t. that tensor: .grad where set (leaves, retain_grad), else replayed."""
        if self._grads is not None:
            return self._grads
        known: dict = {}
        for k, t in self.rep.items():
            g = t.grad
            node = t.grad_fn
            if g is None and node is not None and node._retained is not None:
                r = node._retained()
                g = r.grad if r is not None else None
            if isinstance(g, Tensor):
                known[k] = np.asarray(g.data)
        missing = [k for k in self.rep if k not in known]
        if missing and self.root.requires_grad:
            try:
                known.update({k: g for k, g in self._replay().items() if k not in known})
            except Exception as err:  # a user's op that cannot run again: draw without those gradients
                self.notes.append(f"gradients of intermediate tensors unavailable: replaying the graph failed "
                                  f"({type(err).__name__}: {err})")
        self._grads = known
        return known

    def _replay(self) -> dict:
        """Apply every recorded op again to copies of the leaves and differentiate that copy."""
        from tinygrad_lab.autograd import enable_grad, grad

        shadow: dict = {}
        with enable_grad():
            for k, node in self.order:
                if node is None:
                    t = self.rep[k]
                    shadow[k] = t.detach().requires_grad_(True) if t.dtype.kind == "f" else t
                else:
                    args = [shadow[_tkey(a)] if isinstance(a, Tensor) else a for a in node.inputs]
                    shadow[k] = type(node).apply(*args, **node.attrs)
        out = shadow[self.root_key]
        keys = [k for k in self.rep if shadow[k].requires_grad]
        if not out.requires_grad or not keys:
            return {}
        seed = None if out.size == 1 else np.ones_like(out.data)
        found = grad(out, [shadow[k] for k in keys], grad_outputs=seed, allow_unused=True)
        return {k: np.asarray(g.data) for k, g in zip(keys, found) if g is not None}


# ---- the intermediate graph: vertices and edges before DOT -------------------------------------------------------

class _V:
    """A vertex: kind (tensor, op, const, bwd, acc, leaf, saved), role (fill colour), sig (structure, no names),
    module (cluster or None) and what its label is made from."""

    __slots__ = ("kind", "role", "sig", "module", "obj", "key")

    def __init__(self, kind, role, sig, module, obj, key=None):
        self.kind, self.role, self.sig, self.module, self.obj, self.key = kind, role, sig, module, obj, key


class _Graph:
    def __init__(self):
        self.vs: list = []
        self.es: list = []  # (src, dst, position, kind)
        self.title: list = []
        self.legend = None

    def add(self, v: _V) -> int:
        self.vs.append(v)
        return len(self.vs) - 1


def _shape_text(shape: tuple, dtype: Any) -> str:
    return f"{'scalar' if shape == () else str(tuple(shape))} {np.dtype(dtype).name}"


def _forward_graph(ctx: _Ctx) -> _Graph:
    g = _Graph()
    index: dict = {}
    for k, node in ctx.order:
        t = ctx.rep[k]
        if node is None:
            role = "output" if k == ctx.root_key else ("param" if t.requires_grad or id(t) in ctx.names else "input")
            index[k] = g.add(_V("tensor", role, ("tensor", role, t.shape, t.dtype.str), ctx.param_module(t), t, k))
            continue
        module = ctx.node_module.get(id(node))
        srcs = []
        for pos, a in enumerate(node.inputs):
            if isinstance(a, Tensor):
                srcs.append((index[_tkey(a)], pos))
            else:
                srcs.append((g.add(_V("const", "input", ("const", _const_sig(a)), module, a)), pos))
        label = _op_text(node)
        op = g.add(_V("op", "op", ("op", label), module, node))
        g.es.extend((s, op, pos, "arg") for s, pos in srcs)
        role = "output" if k == ctx.root_key else "intermediate"
        index[k] = g.add(_V("tensor", role, ("tensor", role, t.shape, t.dtype.str), module, t, k))
        g.es.append((op, index[k], 0, "out"))
    n_ops = len(ctx.ops)
    root = ctx.root
    g.title = [f"forward graph of {ctx.name(root) or 'the output'} ({_shape_text(root.shape, root.dtype)}): "
               f"{len(ctx.rep)} tensors, {n_ops} op{'s' if n_ops != 1 else ''}",
               "fill: blue = parameter (requires grad), yellow = input / constant, grey = op, green = output"]
    if ctx.show_grads and ctx.after_backward():
        ctx.grad_map = ctx.grads()
        g.title.append("grad = d(output)/d(tensor): .grad where set, else computed by replaying the graph")
    return g


def _backward_graph(ctx: _Ctx) -> _Graph:
    g = _Graph()
    grads = ctx.grads() if ctx.show_grads else {}
    root = ctx.root
    out = g.add(_V("leaf", "output", ("leaf", "output", root.shape, root.dtype.str), None, root, ctx.root_key))
    bwd: dict = {}
    acc: dict = {}
    pending = []
    for k, node in reversed(ctx.order):
        if node is None:
            continue
        module = ctx.node_module.get(id(node))
        bwd[id(node)] = g.add(_V("bwd", "bwd", ("bwd", type(node).__name__), module, node, k))
        if not node._released:
            for j, value in enumerate(node._saved):
                what = _saved_what(node, value, j, ctx)
                sig = ("saved", np.shape(value), str(getattr(value, "dtype", type(value).__name__)))
                s = g.add(_V("saved", "saved", sig, module, (what, value)))
                pending.append((s, bwd[id(node)], j, "saved"))
        for inp, need in zip(node.inputs, node.needs_input_grad):
            if need and inp.grad_fn is None and _tkey(inp) not in acc:
                m = ctx.param_module(inp)
                lk = _tkey(inp)
                acc[lk] = g.add(_V("acc", "acc", ("acc", inp.shape), m, inp, lk))
                leaf = g.add(_V("leaf", "param", ("leaf", "param", inp.shape, inp.dtype.str), m, ctx.rep[lk], lk))
                pending.append((acc[lk], leaf, 0, "acc"))
    if root.grad_fn is not None:
        g.es.append((out, bwd[id(root.grad_fn)], 0, "grad"))
    for k, node in reversed(ctx.order):
        if node is None:
            continue
        for pos, (inp, need) in enumerate(zip(node.inputs, node.needs_input_grad)):
            if need:
                dst = bwd[id(inp.grad_fn)] if inp.grad_fn is not None else acc[_tkey(inp)]
                g.es.append((bwd[id(node)], dst, pos, "grad"))
    g.es.extend(pending)
    ctx.grad_map = grads
    g.title = [f"backward graph of {ctx.name(root) or 'the output'} ({_shape_text(root.shape, root.dtype)}): "
               f"{len(bwd)} backward function{'s' if len(bwd) != 1 else ''}, {len(acc)} AccumulateGrad"]
    if not root.requires_grad:
        g.title.append("the output does not require grad: there is no backward graph")
    elif ctx.released:
        g.title.append("saved tensors (dashed) were freed by backward(); pass retain_graph=True to see them")
    if ctx.show_grads:
        seed = "1" if root.size == 1 else "ones"
        g.legend = seed
    return g


def _saved_what(node: Any, value: Any, j: int, ctx: _Ctx) -> str:
    if value is getattr(node, "_out", None):
        return "output"
    for i, a in enumerate(node.inputs):
        if (a.data if isinstance(a, Tensor) else a) is value:
            name = ctx.name(a) if isinstance(a, Tensor) else None
            return f"input {i}" + (f" ({name})" if name else "")
    return f"saved[{j}]"


# ---- text of labels ---------------------------------------------------------------------------------------------

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


def _array_lines(arr: np.ndarray) -> list:
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


def _op_text(node: Any) -> str:
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


def _const_sig(value: Any) -> tuple:
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str)
    return (type(value).__name__,)


def _rec(text: str) -> str:
    """Escape text for a record field (also valid inside a DOT double-quoted string)."""
    out = text.replace("\\", "\\\\")
    for ch in '{}|<>"':
        out = out.replace(ch, "\\" + ch)
    return out


def _esc(text: str) -> str:
    """Escape text for a plain DOT label: quotes, backslashes, newlines as centred line breaks."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(lines: Iterable[str]) -> str:
    lines = list(lines)
    if len(lines) == 1:
        return _rec(lines[0])
    return "".join(_rec(line) + "\\l" for line in lines)


def _record(ctx: _Ctx, fields: list) -> str:
    body = " | ".join(fields)
    return "{" + body + "}" if ctx.rankdir in ("LR", "RL") else body


def _header_lines(ctx: _Ctx, members: list) -> list:
    ts = [v.obj for v in members]
    names = []
    for t in ts:
        n = ctx.name(t)
        if n and n not in names:
            names.append(n)
    lines = []
    if names:
        lines.append(", ".join(names[:3]) + (", ..." if len(names) > 3 else ""))
    lines.append(_shape_text(ts[0].shape, ts[0].dtype))
    return lines


def _value_fields(ctx: _Ctx, arr: np.ndarray, grad: Any) -> list:
    fields = []
    if ctx.show_values is False:
        return fields
    small = ctx.show_values == "auto" and arr.size <= VALUE_LIMIT
    data = _array_lines(arr) if small else _summary_lines(arr)
    fields.append(_field(["data " + data[0]] if small and len(data) == 1 else ["data"] + data))
    if grad is not None:
        if small:
            glines = _array_lines(grad)
            fields.append(_field(["grad " + glines[0]] if len(glines) == 1 else ["grad"] + glines))
        else:
            fields.append(_field([f"grad norm {_norm_text(_norm(grad))}"]))
    return fields


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


def _vertex_attrs(ctx: _Ctx, members: list) -> dict:
    """DOT attributes of a drawn node that stands for ``members`` (one vertex, or several merged ones)."""
    v = members[0]
    count = len(members)
    times = f"×{count}" if count > 1 else ""
    grads = ctx.grad_map
    if v.kind == "tensor":
        fields = [_field(_header_lines(ctx, members) + ([times] if times else []))]
        if count == 1:
            fields += _value_fields(ctx, v.obj.data, grads.get(v.key))
        return {"label": _record(ctx, fields), "shape": "record", "style": "filled",
                "fillcolor": ROLE_COLORS[v.role]}
    if v.kind == "const":
        if count > 1:
            label = _field(["const", times])
        elif isinstance(v.obj, np.ndarray):
            fields = [_field(["const", _shape_text(v.obj.shape, v.obj.dtype)])]
            fields += _value_fields(ctx, v.obj, None) if v.obj.dtype.kind in "biuf" else []
            label = _record(ctx, fields)
        else:
            label = _record(ctx, [_field(["const"]), _field([_fmt_attr(v.obj)])])
        return {"label": label, "shape": "record", "style": "filled", "fillcolor": ROLE_COLORS["input"]}
    if v.kind == "op":
        text = _op_text(v.obj) + (f"\n{times}" if times else "")
        return {"label": _esc(text), "shape": "ellipse", "style": "filled", "fillcolor": ROLE_COLORS["op"]}
    if v.kind == "leaf":
        return {"label": _esc("\n".join(_header_lines(ctx, members) + ([times] if times else []))),
                "shape": "box", "style": "filled", "fillcolor": ROLE_COLORS[v.role]}
    if v.kind == "saved":
        if count > 1:
            text = f"saved {times}\n{_shape_text(np.shape(v.obj[1]), getattr(v.obj[1], 'dtype', np.float64))}"
        else:
            what, value = v.obj
            shown = (_shape_text(value.shape, value.dtype) if isinstance(value, np.ndarray) else _fmt_attr(value))
            text = f"saved {what}\n{shown}"
        return {"label": _esc(text), "shape": "box", "style": "dashed,filled", "fillcolor": ROLE_COLORS["saved"]}
    if v.kind in ("bwd", "acc"):
        title = f"{type(v.obj).__name__}Backward" if v.kind == "bwd" else "AccumulateGrad"
        norms = sorted(_norm(grads[m.key]) for m in members if m.key in grads) if ctx.show_grads else []
        lines = [title + (f" {times}" if times else "")]
        if norms:
            spread = f" … {_norm_text(norms[-1])}" if norms[-1] != norms[0] else ""
            lines.append("|g| " + _norm_text(norms[0]) + spread)
        median = norms[(len(norms) - 1) // 2] if norms else None
        fill, font = _norm_color(median) if ctx.show_grads else (UNKNOWN_COLOR, "black")
        return {"label": _esc("\n".join(lines)), "shape": "box", "style": "rounded,filled", "fillcolor": fill,
                "fontcolor": font}
    if v.kind == "hidden":
        return {"label": _esc(v.obj), "shape": "note", "style": "filled,dashed", "fillcolor": ROLE_COLORS["collapsed"]}
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
    return ('<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
            f'<TR>{"".join(cells)}</TR></TABLE>')


def _graph_label(title: list, legend_seed: str | None) -> str:
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
        rows += ('<TR><TD ALIGN="LEFT" BALIGN="LEFT">'
                 + "".join(_html(line) + '<BR ALIGN="LEFT"/>' for line in explain) + "</TD></TR>")
        rows += f'<TR><TD ALIGN="LEFT">{_legend(legend_seed)}</TD></TR>'
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>>'


# ---- collapsing big graphs ----------------------------------------------------------------------------------------

def _intern(keys: Iterable) -> list:
    table: dict = {}
    return [table.setdefault(k, len(table)) for k in keys]


def _quotient_edges(group_of: list, es: list) -> list:
    seen: dict = {}
    for s, d, pos, kind in es:
        seen.setdefault((group_of[s], group_of[d], pos, kind), None)
    return list(seen)


def _fold_module_runs(vs: list, es: list, ctx: _Ctx) -> tuple[list, list]:
    """Consecutive module clusters with identical structure collapse onto the first of the run.
    Returns group_of (vertex -> group) and, per folded run, the list of module paths it stands for."""
    by_module: dict = {}
    for i, v in enumerate(vs):
        if v.module is not None:
            by_module.setdefault(v.module, []).append(i)
    local = {}
    for mod, members in by_module.items():
        for j, i in enumerate(members):
            local[i] = (mod, j)
    ins: dict = {}
    for s, d, pos, kind in es:
        ins.setdefault(d, []).append((s, pos, kind))

    def signature(mod: str) -> tuple:
        parts = []
        for i in by_module[mod]:
            srcs = []
            for s, pos, kind in ins.get(i, []):
                src = ("in", local[s][1]) if local.get(s, (None,))[0] == mod else ("out", vs[s].sig)
                srcs.append((src, pos, kind))
            parts.append((vs[i].kind, vs[i].sig, tuple(srcs)))
        return tuple(parts)

    mods = list(by_module)
    sigs = [signature(m) for m in mods]
    group_of = list(range(len(vs)))
    runs = []
    i = 0
    while i < len(mods):
        j = i + 1
        while j < len(mods) and sigs[j] == sigs[i]:
            j += 1
        if j - i > 1:
            runs.append(mods[i:j])
            first = by_module[mods[i]]
            for m in mods[i + 1:j]:
                for a, b in zip(by_module[m], first):
                    group_of[a] = b
        i = j
    return _intern(group_of), runs


def _refine(sig: list, edges: list, limit: int) -> list | None:
    """Weisfeiler-Lehman refinement over both edge directions: the finest partition with at most ``limit``
    classes (None when even the vertices' own signatures give more)."""
    n = len(sig)
    ins = [[] for _ in range(n)]
    outs = [[] for _ in range(n)]
    for s, d, pos, kind in edges:
        ins[d].append((s, pos, kind))
        outs[s].append((d, pos, kind))
    cls = _intern(sig)
    count = max(cls) + 1 if cls else 0
    if count > limit:
        return None
    while True:
        new = _intern(
            (cls[v], tuple(sorted((pos, kind, cls[s]) for s, pos, kind in ins[v])),
             tuple(sorted((pos, kind, cls[d]) for d, pos, kind in outs[v])))
            for v in range(n)
        )
        new_count = max(new) + 1 if new else 0
        if new_count > limit:
            return cls
        if new_count == count:
            return new
        cls, count = new, new_count


def _truncate(n: int, edges: list, start: int, limit: int) -> list:
    """Keep the ``limit - 1`` groups nearest ``start`` (breadth first over edges both ways); the rest -> one."""
    nbrs = [[] for _ in range(n)]
    for s, d, _, _ in edges:
        nbrs[d].append(s)
        nbrs[s].append(d)
    seen = {start: 0}
    queue = [start]
    for u in queue:
        if len(seen) >= limit - 1:
            break
        for w in nbrs[u]:
            if w not in seen and len(seen) < limit - 1:
                seen[w] = len(seen)
                queue.append(w)
    kept = sorted(seen)
    new = {g: i for i, g in enumerate(kept)}
    hidden = len(kept)
    return [new.get(g, hidden) for g in range(n)]


_KIND_NAMES = {"tensor": "tensors", "const": "constants", "leaf": "leaves", "acc": "AccumulateGrad",
               "saved": "saved tensors"}


def _collapse(ctx: _Ctx, graph: _Graph, max_nodes: int | None) -> tuple[list, list, str]:
    """Groups of vertices to draw as one node each, the module runs folded, and a note for the label."""
    vs, es = graph.vs, graph.es
    n = len(vs)
    identity = [[i] for i in range(n)]
    if max_nodes is None or n <= max_nodes:
        return identity, [], ""
    group_of = list(range(n))
    runs: list = []
    steps = []
    if ctx.group:
        group_of, runs = _fold_module_runs(vs, es, ctx)
        if runs:
            steps.append(f"{sum(len(r) - 1 for r in runs)} repeated module call(s) drawn once")
    groups = max(group_of) + 1
    hidden = False
    if groups > max_nodes:
        first = {}
        for i, g in enumerate(group_of):
            first.setdefault(g, i)
        gsig = [vs[first[g]].sig for g in range(groups)]
        qedges = _quotient_edges(group_of, es)
        cls = _refine(gsig, qedges, max_nodes)
        if cls is not None:
            group_of = [cls[g] for g in group_of]
            steps.append("nodes with the same structure merged (×count)")
        else:
            start = next(i for i, v in enumerate(vs) if v.role == "output")
            cut = _truncate(groups, qedges, group_of[start], max_nodes)
            group_of = [cut[g] for g in group_of]
            hidden = True
    members: dict = {}
    for i, g in enumerate(group_of):
        members.setdefault(g, []).append(i)
    result = [members[g] for g in sorted(members, key=lambda g: members[g][0])]
    if hidden:
        last = max(group_of)
        lost = members[last]
        kinds: dict = {}
        for i in lost:
            v = vs[i]
            what = _KIND_NAMES.get(v.kind) or type(v.obj).__name__ + ("Backward" if v.kind == "bwd" else "")
            kinds[what] = kinds.get(what, 0) + 1
        top = ", ".join(f"{c} {k}" for k, c in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
        text = f"… {len(lost)} more nodes not drawn\n({top})"
        marker = _V("hidden", "collapsed", None, None, text)
        result = [m if m is not lost else [marker, *lost] for m in result]
        steps.append(f"the {len(lost)} nodes farthest from the output replaced by one node")
    note = f"collapsed (max_nodes={max_nodes}): {n} nodes drawn as {len(result)}; " + "; ".join(steps)
    return result, runs, note


# ---- DOT text -------------------------------------------------------------------------------------------------------

def _attr_text(attrs: dict) -> str:
    parts = []
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith("<<") and value.endswith(">>"):
            parts.append(f"{key}={value}")
        else:
            parts.append(f'{key}="{value}"')
    return "[" + " ".join(parts) + "]"


def _emit(ctx: _Ctx, graph: _Graph, view: str, max_nodes: int | None) -> str:
    groups, runs, note = _collapse(ctx, graph, max_nodes)
    vs = graph.vs
    vid = {}
    for n, members in enumerate(groups):
        for m in members:
            if isinstance(m, int):
                vid[m] = n
    lines = [f"digraph {GRAPH_NAME} {{"]
    label = _graph_label(graph.title + ([note] if note else []) + ctx.notes, graph.legend)
    lines.append(f'\tgraph [rankdir={ctx.rankdir} label={label} labelloc=t labeljust=l '
                 f'fontname="{_FONT}" fontsize=11 nodesep=0.25 ranksep=0.35]')
    lines.append(f'\tnode [fontname="{_FONT}" fontsize=10]')
    lines.append(f'\tedge [fontname="{_FONT}" fontsize=8 arrowsize=0.7]')
    clusters: dict = {}
    for n, members in enumerate(groups):
        real = [vs[m] for m in members if isinstance(m, int)]
        if isinstance(members[0], _V):
            attrs = _vertex_attrs(ctx, [members[0]])
        else:
            attrs = _vertex_attrs(ctx, real)
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
            title = (f"{ctx.module_label(run[0])} ×{len(run)}: "
                     f"{', '.join(run) if len(run) <= 4 else run[0] + ', ' + run[1] + ', …, ' + run[-1]} "
                     "(same structure, drawn once)")
        elif len(mods) == 1:
            title = ctx.module_label(mods[0])
        else:
            shown = ", ".join(mods) if len(mods) <= 4 else f"{mods[0]}, {mods[1]}, …, {mods[-1]}"
            title = f"{shown} (merged)"
        lines.append(f"\tsubgraph cluster_{c} {{")
        lines.append(f'\t\tlabel="{_esc(title)}" style="rounded,filled" fillcolor="#f7f7f7" color="#9e9e9e"')
        lines.append("\t\t" + " ".join(f"n{i}" for i in ids))
        lines.append("\t}")
    seen = set()
    hidden = {n for n, members in enumerate(groups) if isinstance(members[0], _V)}
    for s, d, pos, kind in graph.es:
        key = (vid[s], vid[d], pos, kind)
        if key in seen or (vid[s] == vid[d] and vid[s] in hidden):
            continue
        seen.add(key)
        attrs = {}
        if kind == "arg":
            node = vs[d].obj
            if len(node.inputs) > 1 and type(node).__name__ not in _COMMUTATIVE:
                attrs["label"] = str(pos)
        elif kind == "saved":
            attrs.update(style="dashed", dir="none")
        elif kind == "acc":
            attrs["arrowhead"] = "none"
        lines.append(f"\tn{vid[s]} -> n{vid[d]}" + (f" {_attr_text(attrs)}" if attrs else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"
