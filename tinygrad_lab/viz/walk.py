"""The graph walk behind every view: tensors in forward order, module ownership of ops, and the gradients drawn
(``.grad`` where set, else replayed on a copy of the graph)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import grad_fn_for, versions
from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.tensor import Tensor


def tensor_key(t: Tensor) -> tuple:
    """Identity of the value a Tensor holds now: a node's output (several Tensor objects may share it) or a leaf."""
    return ("n", id(t.grad_fn)) if t.grad_fn is not None else ("t", id(t))


def input_value(node: Function, inp: Tensor) -> tuple[tuple, Tensor, Function | None]:
    """(key, holder, node that made it) of the value ``inp`` had when ``node`` was made, found as the engine's
    backward finds it (``grad_fn_for``): an in-place write since then gave ``inp`` a new node, and the value it
    overwrote lives on as the copy the write's node took as its first input (the holder, which has its data)."""
    fn = grad_fn_for(node, inp) if versions.rebound is not None else inp.grad_fn
    if fn is not None and fn._order < node._order:  # made after node: inp was a leaf then, written in place since
        fn = None
    if fn is inp.grad_fn:
        return tensor_key(inp), inp, fn
    holder = _overwritten(inp, fn)
    return (("n", id(fn)) if fn is not None else ("t", id(holder))), holder, fn


def _overwritten(inp: Tensor, fn: Function | None) -> Tensor:
    """The copy of ``inp``'s value from when its node was ``fn`` (None: a leaf), kept by the in-place node that
    replaced ``fn``; ``inp`` itself when that node is not known."""
    record = versions.rebound.get(id(inp)) if versions.rebound is not None else None
    chain = [before for _, before in record[1]] if record is not None and record[0]() is inp else []
    chain.append(inp.grad_fn)
    later = chain[0] if fn is None else next((b for a, b in zip(chain, chain[1:]) if a is fn), None)
    old = later.inputs[0] if later is not None and later.inputs else None
    return old if isinstance(old, Tensor) and old.grad_fn is fn else inp


class Walk:
    """The values of root's graph in forward order, each node's inputs linked as the engine's backward links
    them, so a tensor's value before and after an in-place write are two values."""

    def __init__(self, root: Tensor) -> None:
        self.order: list[tuple[tuple, Any]] = []  # (key, node or None for a leaf): every value after its inputs
        self.rep: dict[tuple, Tensor] = {}  # key -> a Tensor holding that value
        self.args: dict[int, list] = {}  # id(node) -> per input: its value's key, None for a constant
        self.aka: dict[int, str] = {}  # id(holder) -> name of the tensor whose value it kept before a write
        stack: list = [(tensor_key(root), root, root.grad_fn, False)]
        while stack:  # iterative post-order over the inputs in argument order: ids follow it
            k, t, node, expanded = stack.pop()
            if expanded:
                self.order.append((k, node))
                continue
            if k in self.rep:
                if self.rep[k].name is None and t.name is not None:
                    self.rep[k] = t
                continue
            self.rep[k] = t
            if node is None:
                self.order.append((k, None))
                continue
            stack.append((k, t, node, True))
            keys: list = []
            pending = []
            for a in node.inputs:
                if not isinstance(a, Tensor):
                    keys.append(None)
                    continue
                ak, holder, fn = input_value(node, a)
                if holder is not a and a.name is not None and holder.name is None:
                    self.aka.setdefault(id(holder), f"{a.name} (before an in-place write)")
                keys.append(ak)
                pending.append((ak, holder, fn, False))
            self.args[id(node)] = keys
            stack.extend(reversed(pending))


def naming(params: Mapping[str, Tensor] | None, model: Any) -> tuple[dict, dict]:
    """id(parameter) -> dotted name, and module path -> class name (from model.named_modules())."""
    if params is None and model is not None:
        params = dict(model.named_parameters())
    names = {}
    for name, t in (params or {}).items():
        if isinstance(t, Tensor) and id(t) not in names:
            names[id(t)] = str(name)
    modules: dict[str, str] = {}
    if model is not None and hasattr(model, "named_modules"):
        for path, mod in model.named_modules():
            modules.setdefault(str(path), type(mod).__name__)
    return names, modules


def owner(dotted: str) -> str:
    return dotted.rsplit(".", 1)[0] if "." in dotted else ""


class Context:
    """The options and everything derived from the graph that labels need."""

    def __init__(
        self,
        root: Tensor,
        rankdir: str,
        show_values: str | bool,
        show_grads: bool,
        names: dict[int, str],
        modules: dict[str, str],
        group: bool,
    ) -> None:
        self.root, self.rankdir, self.show_values, self.show_grads = root, rankdir, show_values, show_grads
        self.names, self.module_types, self.group = names, modules, group
        walk = Walk(root)
        self.order, self.rep, self.args, self.aka = walk.order, walk.rep, walk.args, walk.aka
        self.root_key = tensor_key(root)
        self.ops = [node for _, node in self.order if node is not None]
        self.released = any(node.released for node in self.ops)
        self.absorbed: dict = {}  # module path -> names of the activation ops that joined it
        self.node_module = self._assign_modules() if group else {}
        self.notes: list = []
        self.grad_map: dict = {}  # key -> gradient drawn (filled by the view that draws gradients)
        self._grads: dict | None = None  # grads(), computed on first use

    # -- names and modules ------------------------------------------------------------------------------------
    def name(self, t: Tensor) -> str | None:
        return self.names.get(id(t), t.name) or self.aka.get(id(t))

    def param_module(self, t: Tensor) -> str | None:
        if not self.group or id(t) not in self.names:
            return None
        return owner(self.names[id(t)])

    def module_label(self, path: str) -> str:
        """'fc1 (Linear)', plus the parameter-free module its activation ops most likely came from: the first one
        after it in named_modules() order whose class is named like the op, e.g. 'fc1 (Linear) + act1 (Sigmoid)'."""
        shown = path if path else "(model)"
        kind = self.module_types.get(path)
        label = f"{shown} ({kind})" if kind else shown
        order = list(self.module_types)
        owners = {owner(n) for n in self.names.values()}
        later = order[order.index(path) + 1 :] if path in order else []
        for op in self.absorbed.get(path, ()):
            for other in later:
                if self.module_types[other] == op and not any(o == other or o.startswith(other + ".") for o in owners):
                    label += f" + {other or '(model)'} ({op})"
                    break
        return label

    def _assign_modules(self) -> dict:
        """id(node) -> module path: the module whose parameters the op consumes (directly or through ops on
        parameters only, such as ``weight.T``), else, for a unary elementwise op (an activation), the module of the
        op that made its input, so activations are drawn inside the module before them; the chain stops at the next
        op that consumes some module's parameters. Modules register no hooks: this is traced from the graph alone,
        and a module called twice is one cluster."""
        derived: dict = {}  # tensor key -> module, for parameters and tensors computed from one module's params
        node_module: dict = {}
        for k, node in self.order:
            if node is None:
                m = self.param_module(self.rep[k])
                if m is not None:
                    derived[k] = m
                continue
            keys = [ak for ak in self.args[id(node)] if ak is not None]
            mod = next((derived[ak] for ak in keys if ak in derived), None)
            if mod is not None:
                node_module[id(node)] = mod
                if all(derived.get(ak) == mod for ak in keys):
                    derived[k] = mod
            elif (
                len(node.inputs) == 1
                and keys
                and keys[0][0] == "n"
                and keys[0][1] in node_module
                and self.rep[keys[0]].shape == self.rep[k].shape
            ):
                mod = node_module[id(node)] = node_module[keys[0][1]]
                ops = self.absorbed.setdefault(mod, [])
                if type(node).__name__ not in ops:
                    ops.append(type(node).__name__)
        return node_module

    # -- gradients ----------------------------------------------------------------------------------------------
    def after_backward(self) -> bool:
        """Whether backward() ran from this root: only then are the .grad fields its own, not left by another graph's
        backward (which may also have freed this graph's saved values)."""
        return self.root.grad_fn is not None and self.root.grad_fn.backwarded

    def grads(self) -> dict:
        """key -> gradient array of root w.r.t. that tensor: ``.grad`` where set (leaves, ``retain_grad()``), else
        replayed: every recorded op is applied again to copies of the leaves (its ``inputs`` and ``attrs`` stay on
        the node after backward released it) and ``tinygrad_lab.grad`` gives d(root)/d(tensor) with a seed of ones.
        The replay touches neither the original graph nor any ``.grad``, runs no hooks and is deterministic."""
        if self._grads is not None:
            return self._grads
        known: dict = {}
        for k, t in self.rep.items():
            g = t.grad
            if g is None and t.grad_fn is not None:
                g = t.grad_fn.retained_grad
            if isinstance(g, Tensor):
                known[k] = np.asarray(g.data)
        missing = [k for k in self.rep if k not in known]
        if missing and self.root.requires_grad:
            try:
                known.update({k: g for k, g in self._replay().items() if k not in known})
            except Exception as err:  # a user's op that cannot run again: draw without those gradients
                self.notes.append(
                    f"gradients of intermediate tensors unavailable: replaying the graph failed "
                    f"({type(err).__name__}: {err})"
                )
        self._grads = known
        return known

    def _replay(self) -> dict:
        """Apply every recorded op again to copies of the leaves and differentiate that copy."""
        from tinygrad_lab.engine.autograd import enable_grad, grad

        shadow: dict = {}
        with enable_grad():
            for k, node in self.order:
                if node is None:
                    t = self.rep[k]
                    shadow[k] = t.detach().requires_grad_(True) if t.dtype.kind == "f" else t
                else:
                    args = [a if ak is None else shadow[ak] for a, ak in zip(node.inputs, self.args[id(node)])]
                    shadow[k] = type(node).apply(*args, **node.attrs)
        out = shadow[self.root_key]
        keys = [k for k in self.rep if shadow[k].requires_grad]
        if not out.requires_grad or not keys:
            return {}
        seed = None if out.size == 1 else np.ones_like(out.data)
        found = grad(out, [shadow[k] for k in keys], grad_outputs=seed, allow_unused=True)
        return {k: np.asarray(g.data) for k, g in zip(keys, found) if g is not None}
