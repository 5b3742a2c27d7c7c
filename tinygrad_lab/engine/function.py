"""``Function``: the one mechanism behind every differentiable op, built-in or a user's.

An op subclasses Function and writes two static methods:

    forward(ctx, *arrays, **attrs) -> np.ndarray      # numpy in, numpy out
    backward(ctx, grad) -> gradient or tuple of them  # one per input, None where none is needed

and is applied with ``MyOp.apply(*tensors_or_values, **attrs)``. The node object is the ``ctx``: forward
stores what backward needs with ``ctx.save_for_backward(...)``; backward reads ``ctx.saved_tensors`` and
``ctx.needs_input_grad`` (set before forward runs: an input is saved only when another's gradient reads it, so
an in-place write to it later is no error, as in torch). Broadcasting is undone by the engine
(autograd.sum_to_shape), never by an op.

backward receives numpy arrays in a first-order backward and Tensors when the backward pass is being
recorded (``create_graph=True``). Write it with operators (``* / @ **``), methods both types have
(``.T .sum .reshape .transpose .swapaxes``) and tinygrad_lab's functions (``tl.exp``, ``tl.log``,
``tl.where``...), which accept either, and the same code gives first and higher derivatives.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import check_finite, check_saved, creation_site, state, versions
from tinygrad_lab.engine.tensor import Tensor

_countdown = itertools.count(0, -1)  # recorded nodes numbered downwards: a plain sort puts the newest first


class Function:
    """Base class of ops; an instance is both the graph node (``Tensor.grad_fn``) and the ``ctx``."""

    # Set by apply on a node it records (annotations only: no class attribute, nothing on the op path).
    inputs: tuple  # the arguments apply was called with: Tensors, and constants as given
    needs_input_grad: tuple[bool, ...]  # per input: is it a Tensor that requires grad (set before forward runs)
    attrs: dict[str, Any]  # the keyword arguments passed on to forward
    _out: Any  # what forward returned (None once released)
    _order: int  # minus the node's sequence number: backward sorts nodes by it (autograd._topological_order)

    # Defaults shared by every node; an instance sets its own only when it needs them.
    _released = False
    _backwarded = False  # a backward() started from this node's output (what drawings show gradients of)
    _hooks: dict | None = None  # hooks registered on the node's output Tensor (non-leaf register_hook)
    _retained: weakref.ref | None = None  # weakref to the output Tensor that called retain_grad()
    _trace: str | None = None  # creation site, recorded in anomaly mode
    _saved: tuple = ()
    #: True when the op's value does not depend on the order of its inputs (Add, Mul...); drawings number
    #: the input edges of the other ops with several inputs.
    commutative = False
    #: True when torch's backward formula reads the input although its slope there is zero (relu, abs, pooling):
    #: in a recorded backward the input's gradient then depends on the input, so it requires grad and its own
    #: gradient is zeros, as torch's, instead of a gradient that does not require grad.
    backward_reads_input = False
    _epoch = 0  # versions.now when the node was made: saved arrays written in place later are an error

    @staticmethod
    def forward(ctx: Function, *args: Any, **attrs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(ctx).__name__} has no forward")

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        raise NotImplementedError(f"{type(ctx).__name__} has no backward: it cannot be differentiated")

    @classmethod
    def apply(cls, *args: Any, **attrs: Any) -> Tensor:
        """Run forward on the inputs' arrays; record a graph node when grad mode is on and an input needs grad."""
        ctx = cls.__new__(cls)
        mode = state  # one thread-local lookup for the three switches read below
        tracer = mode.tracing  # tl.compile is recording: parameters' data must be traced too
        arrays = []
        flags = []
        for a in args:  # one plain loop: cheaper than comprehensions for the one or two inputs of most ops
            if isinstance(a, Tensor):
                arrays.append(a._data if tracer is None else tracer.tensor_data(a))
                flags.append(a.requires_grad)
            else:  # numpy scalars become Python numbers: weak in type promotion, so float32 stays float32
                arrays.append(a.item() if isinstance(a, np.generic) else a)
                flags.append(False)
        ctx.needs_input_grad = needs = tuple(flags)  # as torch, forward can save only what backward will read
        try:
            raw = cls.forward(ctx, *arrays, **attrs)
        except (ValueError, TypeError, IndexError) as err:
            raise _op_error(cls, args, err) from err  # the cause keeps the frame in the op's forward
        out = raw
        if not isinstance(raw, np.ndarray):  # numpy returns scalars for 0-d results
            if isinstance(raw, (tuple, list)):
                raise TypeError(f"{cls.__name__}.forward returned a {type(raw).__name__}: a Function has one output")
            out = np.asarray(raw)
        if mode.grad_enabled:
            if True in needs:
                ctx.inputs = args
                ctx.attrs = attrs
                ctx._out = raw
                ctx._epoch = versions.now
                ctx._order = next(_countdown)  # decreasing: backward runs newer nodes first
                if out.dtype.kind not in "fc":
                    raise TypeError(f"{cls.__name__} returned dtype {out.dtype}, which cannot carry a gradient")
                if mode.anomaly:
                    ctx._trace = creation_site()
                    check_finite(ctx, (out,), "forward output")
                return Tensor._make(out, ctx)
        return Tensor._wrap(out)

    # -- ctx API used inside forward / backward ------------------------------------------------------
    def save_for_backward(self, *values: Any) -> None:
        """Keep values (arrays from forward) for backward. In a recorded backward (create_graph=True)
        the inputs' and the output's arrays come back as those Tensors, so they stay differentiable."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{type(self).__name__}: saved values were freed by a previous backward; pass retain_graph=True"
            )
        if self._epoch < versions.now:  # something was written in place since this node was made
            check_saved(self)
        return self._saved

    # -- read-only view of a node, for tools that inspect graphs (tinygrad_lab.viz) -------------------
    @property
    def released(self) -> bool:
        """True once a backward without retain_graph freed what forward saved."""
        return self._released

    @property
    def backwarded(self) -> bool:
        """True once ``backward()`` ran from this node's output: its graph's ``.grad`` fields hold its gradients."""
        return self._backwarded

    @property
    def saved_values(self) -> tuple:
        """What forward passed to save_for_backward (arrays or other values); empty once released."""
        return () if self._released else self._saved

    @property
    def forward_output(self) -> Any:
        """The value forward returned (what saved_values holds when forward saved its output); None once released
        or when the node recorded no graph."""
        return getattr(self, "_out", None)

    @property
    def retained_output(self) -> Tensor | None:
        """The output Tensor that called ``retain_grad()`` (while it is alive), or None."""
        return self._retained() if self._retained is not None else None

    @property
    def retained_grad(self) -> Any:
        """The ``.grad`` of the output Tensor that called ``retain_grad()``, or None."""
        out = self.retained_output
        return out.grad if out is not None else None

    # -- engine side ---------------------------------------------------------------------------------
    def _call_backward(self, grad: Any, wrap: bool) -> tuple:
        """Run the op's backward, with Tensors in place of saved arrays when the pass is recorded."""
        if not wrap:
            grads = type(self).backward(self, grad)
        else:
            arrays = self._saved
            self._saved = tuple(self._as_tensor(v) for v in arrays)
            try:
                grads = type(self).backward(self, grad)
            finally:
                self._saved = arrays
        if type(grads) is not tuple:
            grads = (grads,)
        if len(grads) != len(self.inputs):
            raise RuntimeError(
                f"{type(self).__name__}.backward returned {len(grads)} gradient(s), "
                f"but the op has {len(self.inputs)} input(s)"
            )
        if wrap and self.backward_reads_input and isinstance(grads[0], Tensor):
            grads = (ZeroSlope.apply(grads[0], self.inputs[0]),) + grads[1:]
        return grads

    def _as_tensor(self, value: Any) -> Any:
        """Map a saved array back to the Tensor it belongs to: an input, the output, or a constant."""
        if value is self._out:
            return Tensor._make(value if isinstance(value, np.ndarray) else np.asarray(value), self)  # traced stays
        for inp in self.inputs:
            if isinstance(inp, Tensor) and inp.requires_grad and inp._data is value:
                return inp
        return value

    def release(self) -> None:
        """Free what forward saved (called after a backward without retain_graph). A node that saved nothing
        can run its backward again, as in torch."""
        if self._saved:
            self._saved = ()
            self._released = True
        self._out = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def zero_gradient(grad: Any) -> Any:
    """Zeros shaped like ``grad`` that depend on nothing (torch's zeros_like in a derivative formula, as for
    x ** 0 or fill_): an array, or in a recorded backward a Tensor that does not require grad."""
    if isinstance(grad, Tensor):
        return Tensor._wrap(np.zeros_like(grad._data))
    return np.zeros_like(grad)


class ZeroSlope(Function):
    """``value`` unchanged, depending on ``anchor`` (the op's input, of the gradient's shape) with slope zero: how a
    recorded backward of an op with ``backward_reads_input`` ties the gradient it returns to the op's input."""

    @staticmethod
    def forward(ctx, value, anchor):
        return value.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad, (zero_gradient(grad) if ctx.needs_input_grad[1] else None)


def _op_error(cls: type, args: tuple, err: Exception) -> Exception:
    """Turn numpy's error from inside an op into one sentence naming the op and the input shapes."""
    shapes = ", ".join(str(tuple(np.shape(a._data if isinstance(a, Tensor) else a))) for a in args)
    kind = next(k for k in (IndexError, ValueError, TypeError) if isinstance(err, k))  # numpy's own subclasses
    return kind(f"{cls.__name__}: {err} (input shapes: {shapes})")  # take other arguments


@contextlib.contextmanager
def observe_backward(nodes: Iterable[Function], callback: Callable[[Function, Any, tuple], None]) -> Iterator[None]:
    """Inside the block, ``callback(node, grad, grads)`` runs each time the engine runs the backward of one of
    ``nodes``: the gradient that arrived and the gradients it returned, in the engine's order (what the explainer
    page shows). Only these nodes are wrapped, per instance and only for the block: the op path is untouched."""
    nodes = list(nodes)
    try:
        for node in nodes:
            # an instance attribute shadows the method for this node only (mypy sees a method being replaced)
            node._call_backward = _observed(node, node._call_backward, callback)  # type: ignore[method-assign,assignment]
        yield
    finally:
        for node in nodes:
            node.__dict__.pop("_call_backward", None)


def _observed(node: Function, method: Callable[[Any, bool], tuple], callback: Callable) -> Callable[[Any, bool], tuple]:
    def call(grad: Any, wrap: bool) -> tuple:
        grads = method(grad, wrap)
        callback(node, grad, grads)
        return grads

    return call
