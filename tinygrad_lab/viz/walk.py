"""The graph walk behind every view: tensors in forward order, module ownership of ops, and the gradients drawn
(``.grad`` where set, else replayed on a copy of the graph)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor


def tensor_key(t: Tensor) -> tuple:
    """Identity of the value a Tensor holds: a node's output (several Tensor objects may share it) or a leaf."""
    return ("n", id(t.grad_fn)) if t.grad_fn is not None else ("t", id(t))


def walk_graph(root: Tensor) -> tuple[list, dict]:
    """Iterative post-order walk from root: [(key, node or None)] in forward execution order (every tensor after
    the tensors it was computed from; node None for leaves), and key -> a Tensor holding that value."""
    order: list = []
    rep: dict = {}
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        k = tensor_key(t)
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
        self.order, self.rep = walk_graph(root)
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
        return self.names.get(id(t), t.name)

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
            tins = [a for a in node.inputs if isinstance(a, Tensor)]
            mod = next((derived[tensor_key(a)] for a in tins if tensor_key(a) in derived), None)
            if mod is not None:
                node_module[id(node)] = mod
                if all(derived.get(tensor_key(a)) == mod for a in tins):
                    derived[k] = mod
            elif (
                len(node.inputs) == 1
                and tins
                and tins[0].grad_fn is not None
                and id(tins[0].grad_fn) in node_module
                and tins[0].shape == self.rep[k].shape
            ):
                mod = node_module[id(node)] = node_module[id(tins[0].grad_fn)]
                ops = self.absorbed.setdefault(mod, [])
                if type(node).__name__ not in ops:
                    ops.append(type(node).__name__)
        return node_module

    # -- gradients ----------------------------------------------------------------------------------------------
    def after_backward(self) -> bool:
        if self.released:
            return True
        for t in self.rep.values():
            if t.grad is not None:
                return True
            if t.grad_fn is not None and t.grad_fn.retained_grad is not None:
                return True
        return False

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
                    args = [shadow[tensor_key(a)] if isinstance(a, Tensor) else a for a in node.inputs]
                    shadow[k] = type(node).apply(*args, **node.attrs)
        out = shadow[self.root_key]
        keys = [k for k in self.rep if shadow[k].requires_grad]
        if not out.requires_grad or not keys:
            return {}
        seed = None if out.size == 1 else np.ones_like(out.data)
        found = grad(out, [shadow[k] for k in keys], grad_outputs=seed, allow_unused=True)
        return {k: np.asarray(g.data) for k, g in zip(keys, found) if g is not None}
