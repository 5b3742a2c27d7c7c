"""Reverse-mode backward over the recorded graph, grad modes, and anomaly detection.

The graph is made of Function nodes (see function.py): a Tensor made by an op points at its node through
``grad_fn``; a node holds the Tensors it was applied to in ``inputs``. ``backward`` walks the nodes in
reverse topological order (iteratively, so graph depth is unbounded) and hands each node the gradient of
its output.

First-order backward passes plain numpy arrays between nodes (no graph bookkeeping, no Tensor objects);
with ``create_graph=True`` it passes Tensors instead, so the backward computation is itself recorded and
can be differentiated again. Built-in backward formulas are written once with operators and methods that
numpy arrays and Tensors share, so the same code serves both.
"""

from __future__ import annotations

import functools
import operator
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from tinygrad_lab.capture.tracer import Tracer
    from tinygrad_lab.engine.function import Function
    from tinygrad_lab.engine.tensor import Tensor


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class _State(threading.local):
    """Per-thread switches read on every op: is grad recording on, is anomaly detection on."""

    grad_enabled = True
    anomaly = False
    tracing: Tracer | None = None  # the active tracer of tl.compile (capture/), else None


state = _State()


class _Versions:
    """In-place bookkeeping (inplace.py). ``now`` advances on every in-place write and a recorded node keeps
    the value it had when made (``Function._epoch``): a saved array whose memory was written later is caught
    when backward reads it. ``memory`` maps id(base array) -> [weakref, writes, time of the last write];
    ``rebound`` maps id(tensor) -> (weakref, [(time, grad_fn it had before)]) for tensors whose history an
    in-place op replaced, so nodes made earlier still reach the old history (None until the first such op)."""

    now = 0
    memory: dict = {}
    rebound: dict | None = None


versions = _Versions()


def base_array(arr: np.ndarray) -> np.ndarray:
    """The array that owns the memory ``arr`` views (numpy's chain of ``.base``)."""
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def bump(arr: np.ndarray) -> None:
    """Count an in-place write into ``arr``'s memory and advance the clock nodes compare against."""
    versions.now += 1
    base = base_array(arr)
    key = id(base)
    entry = versions.memory.get(key)
    if entry is None or entry[0]() is not base:
        entry = versions.memory[key] = [weakref.ref(base, _forget_memory(key)), 0, 0]
    entry[1] += 1
    entry[2] = versions.now


def _forget_memory(key: int) -> Callable[[Any], Any]:
    """The weakref callback that drops the memory entry ``key`` once its array is gone."""
    return lambda _: versions.memory.pop(key, None)


def check_saved(node: Function) -> None:
    """Raise torch's error when an array the node saved was written in place after the node was made."""
    for value in node._saved:
        arr = value if isinstance(value, np.ndarray) else getattr(value, "data", None)  # Tensors when recorded
        if isinstance(arr, np.ndarray):
            entry = versions.memory.get(id(base_array(arr)))
            if entry is not None and entry[2] > node._epoch and entry[0]() is base_array(arr):
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: the tensor of shape {arr.shape} saved by {type(node).__name__} is at version "
                    f"{entry[1]}, written after {type(node).__name__} saved it. Hint: clone() it before the "
                    "in-place op, or do the in-place op after backward."
                )


def grad_fn_for(node: Function, inp: Tensor) -> Any:
    """The grad_fn ``inp`` had when ``node`` was made (an in-place op may have replaced it since). Called only
    once an in-place op has rebound a tensor, so ``versions.rebound`` is a dict."""
    rebound = versions.rebound
    assert rebound is not None
    record = rebound.get(id(inp))
    fn = inp.grad_fn
    if record is not None and record[0]() is inp:
        for when, before in record[1]:
            if when > node._epoch:
                fn = before
                break
    if fn is not None:  # a view made before its base was rewritten, then used after: the view's history is stale
        for src in fn.inputs:
            rec = rebound.get(id(src)) if hasattr(src, "grad_fn") else None
            if (
                rec is not None
                and rec[0]() is src
                and np.may_share_memory(np.asarray(src._data), np.asarray(inp._data))  # plain: tl.compile records none
                and any(fn._epoch < when <= node._epoch for when, _ in rec[1])
            ):
                raise RuntimeError(
                    f"{type(node).__name__} uses a view (shape {inp.shape}, made by {type(fn).__name__}) of a tensor "
                    "that an in-place op rewrote in the graph after the view was made; tinygrad_lab does not "
                    "rebase a view's history: take the view again after the in-place op"
                )
    return fn


class _GradMode:
    """Base of no_grad / enable_grad: a context manager and a decorator, nestable and exception-safe."""

    enabled = True

    def __new__(cls, fn: Callable | None = None) -> Any:
        """``@no_grad()`` and, as in torch, bare ``@no_grad`` both decorate."""
        self = super().__new__(cls)
        return self if fn is None else self(fn)

    def __enter__(self) -> None:
        self._prev = state.grad_enabled
        state.grad_enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        state.grad_enabled = self._prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph: results do not require grad. Use as ``with`` or as a decorator."""

    enabled = False


class enable_grad(_GradMode):
    """Turns recording back on inside a ``no_grad`` region."""

    enabled = True


def is_grad_enabled() -> bool:
    return state.grad_enabled


class detect_anomaly:
    """Inside it, the first op whose forward or backward produces NaN or Inf raises an error that names
    the op and the line of user code that created it (the creation site is captured per op, so it is slow)."""

    def __enter__(self) -> None:
        self._prev = state.anomaly
        state.anomaly = True

    def __exit__(self, *exc: Any) -> None:
        state.anomaly = self._prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly():
                return fn(*args, **kwargs)

        return wrapper


_PACKAGE_DIR = __file__.rsplit("/", 1)[0]


def creation_site() -> str:
    """The innermost stack frame outside tinygrad_lab, as 'file:line: code' (anomaly mode only)."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not frame.filename.startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return "<unknown>"


def check_finite(node: Function, values: Any, what: str) -> None:
    """Raise when anomaly mode sees NaN or Inf in an op's forward output or backward gradients."""
    for i, v in enumerate(values):
        if v is None:
            continue
        arr = np.asarray(getattr(v, "data", v))  # a recorded backward's gradients are Tensors that require grad
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            bad = "nan" if np.isnan(arr).any() else "inf"
            where = what if what == "forward output" else f"gradient for input {i}"
            raise FloatingPointError(
                f"detect_anomaly: {type(node).__name__} produced {bad} values in its {where}; "
                f"the op was created at {node._trace}"
            )


def sum_to_shape(grad: Any, shape: tuple, node: Function, inp: Any) -> Any:
    """Undo broadcasting: sum ``grad`` down to ``shape``. The one place broadcasting is reversed.

    Works on numpy arrays and Tensors alike. A gradient that ``shape`` cannot broadcast to is a bug in
    the op's backward, reported with the op's name.
    """
    gshape = grad.shape
    lead = len(gshape) - len(shape)
    if lead < 0 or any(s != 1 and s != g for s, g in zip(shape, gshape[lead:])):
        index = next(i for i, x in enumerate(node.inputs) if x is inp)
        raise RuntimeError(
            f"{type(node).__name__}.backward returned a gradient of shape {tuple(gshape)} for input "
            f"{index}, which has shape {tuple(shape)}"
        )
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if lead or grad.shape != shape:
        grad = grad.reshape(shape)
    return grad


_newest_first = operator.attrgetter("_order")  # minus the node's sequence number (apply sets it)


def _topological_order(roots: Iterable[Function]) -> list:
    """Nodes reachable from ``roots``, each before the nodes that produced its inputs: newest first by the
    sequence number apply gives each node (an op's inputs always exist before it; torch orders its ready
    nodes by the same number). One pass to collect them, one sort."""
    rerouted = versions.rebound is not None
    stack = list(roots)
    found = set(stack)
    while stack:
        node = stack.pop()
        for child, need in zip(node.inputs, node.needs_input_grad):
            if need:
                fn = grad_fn_for(node, child) if rerouted else child.grad_fn
                if fn is not None and fn not in found:
                    found.add(fn)
                    stack.append(fn)
    return sorted(found, key=_newest_first)


def _leading_to(order: list, nodes: dict, leaves: set) -> list:
    """The nodes of ``order`` from which one of ``nodes`` or ``leaves`` (ids) can be reached."""
    relevant: set = set()
    rerouted = versions.rebound is not None
    for node in reversed(order):  # inputs' nodes come later in order, so they are decided first
        if node in nodes or any(
            (id(inp) in leaves) if fn is None else fn in relevant
            for inp, need in zip(node.inputs, node.needs_input_grad)
            if need
            for fn in (grad_fn_for(node, inp) if rerouted else inp.grad_fn,)
        ):
            relevant.add(node)
    return [node for node in order if node in relevant]


@overload
def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    capture: None = None,
) -> None: ...
@overload
def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor],
) -> dict: ...
def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> dict | None:
    """The engine behind ``Tensor.backward`` and ``tinygrad_lab.grad``.

    Without ``capture`` it accumulates into the ``.grad`` of the leaves reached; with it, it returns a
    dict id(tensor) -> gradient for just those tensors and leaves every ``.grad`` alone.
    """

    wrap = create_graph  # pass Tensors between nodes only when the backward pass itself is recorded
    node_grads: dict = {}  # node -> gradient of that node's output
    leaf_grads: dict = {}  # id(leaf) -> (leaf, gradient)
    captured_nodes: dict = {}
    captured_leaves: set = set()
    results: dict = {}
    for t in capture or ():
        if t.grad_fn is not None:
            captured_nodes[t.grad_fn] = t
        else:
            captured_leaves.add(id(t))

    roots: list[Function] = []
    for out, g in zip(outputs, grad_outputs):
        fn = out.grad_fn
        if fn is None:
            leaf_grads[id(out)] = (out, g)
            continue
        node_grads[fn] = g if fn not in node_grads else node_grads[fn] + g
        roots.append(fn)

    order = _topological_order(roots)
    if capture is not None:  # tinygrad_lab.grad: only the nodes on a path to a requested tensor run
        order = _leading_to(order, captured_nodes, captured_leaves)
    prev_mode = state.grad_enabled
    state.grad_enabled = create_graph
    anomaly = state.anomaly
    rerouted = versions.rebound is not None
    try:
        for node in order:
            grad = node_grads.pop(node, None)
            if grad is None:
                continue
            if node._released:
                raise RuntimeError(
                    f"Trying to backward through the graph a second time (through {type(node).__name__}): "
                    "its saved values were freed after the first backward. Pass retain_graph=True to the "
                    "first backward (or tinygrad_lab.grad) to keep them."
                )
            if node._hooks is not None:
                grad = _run_hooks(node._hooks, grad, wrap)
            if node._retained is not None:  # tinygrad_lab.grad fills them too, as torch.autograd.grad
                t = node._retained()
                if t is not None:  # retained gradients accumulate like a leaf's
                    t.grad = _accumulate(t.grad, grad, wrap)
            if captured_nodes and node in captured_nodes:
                results[id(captured_nodes[node])] = grad
            in_grads = node._call_backward(grad, wrap)
            if anomaly:
                check_finite(node, in_grads, "backward")
            for inp, need, g in zip(node.inputs, node.needs_input_grad, in_grads):
                if not need or g is None:
                    continue
                data = inp._data
                try:
                    shape = g.shape
                except AttributeError:
                    raise TypeError(
                        f"{type(node).__name__}.backward returned a {type(g).__name__} as a gradient; "
                        "return numpy arrays (or Tensors under create_graph)"
                    ) from None
                if shape != data.shape:
                    g = sum_to_shape(g, data.shape, node, inp)
                if g.dtype != data.dtype:
                    g = g.astype(data.dtype)
                fn = grad_fn_for(node, inp) if rerouted else inp.grad_fn
                if fn is not None:
                    node_grads[fn] = g if fn not in node_grads else node_grads[fn] + g
                else:
                    key = id(inp)
                    leaf_grads[key] = (inp, g) if key not in leaf_grads else (inp, leaf_grads[key][1] + g)
            if not retain_graph:
                node.release()
        for key, (leaf, g) in leaf_grads.items():  # in the backward's grad mode: a create_graph .grad is recorded
            if capture is not None and key not in captured_leaves:
                continue  # tinygrad_lab.grad: other leaves are left alone, hooks included
            if leaf._hooks is not None:
                g = _run_hooks(leaf._hooks, g, wrap)
            if capture is not None:
                results[key] = g
            elif leaf.requires_grad:  # as torch: a leaf set to requires_grad False since the graph was made gets none
                leaf.grad = _accumulate(leaf.grad, g, wrap)
        if capture is None:
            for fn in roots:
                fn._backwarded = True
    finally:
        state.grad_enabled = prev_mode
    return results if capture is not None else None


@functools.cache
def _tensor_class() -> type[Tensor]:
    """Tensor, imported once on first use (tensor.py imports this module): cheaper than an import per call."""
    from tinygrad_lab.engine.tensor import Tensor

    return Tensor


def _accumulate(current: Tensor | None, g: Any, wrap: bool) -> Tensor:
    """A leaf's ``.grad`` after adding g. The first gradient is copied: the engine passes one gradient to
    several inputs (b = x + y gives x and y the same array), and a .grad must be its owner's alone. Later ones
    are added in place, as torch's AccumulateGrad outside create_graph (a reference to .grad sees the sum);
    under create_graph, into a .grad that requires grad, or under tl.compile the sum is a new tensor."""
    Tensor = _tensor_class()
    if current is None:
        return g.clone() if wrap else Tensor._wrap(owned_copy(g))
    data = current._data
    if data.shape != g.shape:  # a .grad assigned by hand: adding would broadcast it
        raise RuntimeError(f"backward: .grad has shape {data.shape}, but the tensor's gradient has shape {g.shape}")
    if wrap:
        return current + g
    if (
        type(data) is np.ndarray
        and state.tracing is None
        and not current.requires_grad
        and data.flags.writeable
        and data.shape == g.shape
        and np.result_type(data, g) == data.dtype
    ):
        np.add(data, g, out=data)
        bump(data)
        return current
    return Tensor._wrap(as_array(data + g))


def zero_grads(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Each parameter's ``.grad`` set to None (torch's default), or with ``set_to_none=False`` zeroed in place,
    so the next backward adds into the same array (Module.zero_grad and Optimizer.zero_grad)."""
    if set_to_none:
        for p in params:
            p.grad = None
        return
    for p in params:
        grad = p.grad
        if grad is not None:  # as torch: detached in place (no longer part of a recorded graph), then zeroed
            grad.grad_fn, grad.requires_grad = None, False
            grad._data[...] = 0
            bump(grad._data)  # a graph that saved the old values refuses them, as after any in-place write


def as_array(value: Any) -> np.ndarray:
    """numpy returns scalars for 0-d results; Tensors hold arrays. Keeps ndarray subclasses as they are."""
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def owned_copy(value: Any) -> np.ndarray:
    """A fresh array (gradients passed between nodes may alias each other or be read-only views) in the
    layout of ``value``, so a .grad is laid out like its parameter's gradient (torch keeps the layout too)."""
    return value.copy(order="K") if isinstance(value, np.ndarray) else np.array(value)


def _run_hooks(hooks: dict, grad: Any, wrap: bool) -> Any:
    """Call each hook with the gradient as a Tensor; a hook that returns a value replaces the gradient."""
    from tinygrad_lab.engine.tensor import Tensor

    # the engine hands one gradient to several inputs (x + w gives both the same array): a hook that edits its
    # gradient in place (g.mul_(10)) must not change the one another input received
    g = grad.clone() if wrap else Tensor._wrap(owned_copy(grad))
    for hook in list(hooks.values()):
        new = hook(g)
        if new is not None:
            if not isinstance(new, Tensor):
                new = Tensor(new)
            if new.shape != g.shape:
                raise RuntimeError(f"hook {hook!r} returned a gradient of shape {new.shape}, expected {g.shape}")
            if new.dtype != g.dtype:
                raise RuntimeError(f"hook {hook!r} returned a gradient of dtype {new.dtype}, expected {g.dtype}")
            g = new
    return g if wrap else g._data


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple; ``.grad`` fields are not touched.

    As torch.autograd.grad: ``grad_outputs`` defaults to ones for single-element outputs; with
    ``create_graph=True`` the returned gradients are differentiable; an input that the outputs do not
    depend on is an error unless ``allow_unused=True``, which gives None for it.
    """
    from tinygrad_lab.engine.tensor import Tensor

    outputs = [outputs] if isinstance(outputs, (Tensor, np.ndarray)) else list(outputs)
    inputs = [inputs] if isinstance(inputs, (Tensor, np.ndarray)) else list(inputs)
    for what, items in (("output", outputs), ("input", inputs)):
        for i, t in enumerate(items):
            if not isinstance(t, Tensor):
                raise TypeError(f"tinygrad_lab.grad: {what} {i} is a {type(t).__name__}, not a Tensor")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs)
    elif len(grad_outputs) != len(outputs):
        raise RuntimeError(f"tinygrad_lab.grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = [seed_gradient(o, g, create_graph) for o, g in zip(outputs, grad_outputs)]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"tinygrad_lab.grad: input {i} (shape {t.shape}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    found = run_backward(outputs, seeds, retain_graph, create_graph, capture=inputs)
    result: list[Tensor | None] = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"tinygrad_lab.grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            result.append(None)
        else:
            result.append(g if create_graph else Tensor._wrap(owned_copy(g)))
    return tuple(result)


def seed_gradient(output: Tensor, gradient: Any, create_graph: bool) -> Any:
    """The starting gradient for ``output``: ones for a single element, else the given one, checked."""
    Tensor = _tensor_class()

    if not output.requires_grad:
        raise RuntimeError(
            f"backward: the tensor of shape {output.shape} does not require grad and has no grad_fn; "
            "create the leaves with requires_grad=True (and not under no_grad)"
        )
    if gradient is None:
        if output._data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for single-element outputs, but the output "
                f"has shape {output.shape}; pass gradient= (a tensor of that shape)"
            )
        # ones_like is what a trace records; np.array is its faster twin when nothing is being recorded
        data = output._data
        gradient = np.ones_like(data) if state.tracing is not None else np.array(1, data.dtype).reshape(data.shape)
    else:
        if gradient.shape != output.shape if isinstance(gradient, Tensor) else np.shape(gradient) != output.shape:
            raise RuntimeError(
                f"backward: gradient has shape {np.shape(gradient)} but the output has shape {output.shape}"
            )
        if create_graph and isinstance(gradient, Tensor):
            return gradient  # keep its graph: the result is differentiable in the seed too
        gradient = np.asarray(gradient._data if isinstance(gradient, Tensor) else gradient, dtype=output.dtype)
    return Tensor._wrap(gradient) if create_graph else gradient
