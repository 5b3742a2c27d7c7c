"""In-place operations (``add_``, ``+=``, ``zero_``, ``copy_``...) with PyTorch's safety rules.

Every in-place method runs the out-of-place op and writes its result into the tensor's own array, so the
memory (and every numpy view of it) changes and the same Tensor is returned. Then:

* with no graph to record (``no_grad``, or nothing involved requires grad) that is all, leaves included:
  ``p -= lr * p.grad`` and ``p.grad.zero_()`` work as in torch;
* in grad mode, a leaf that requires grad may not be written (torch's RuntimeError); on any other tensor the
  op is recorded: the tensor's ``grad_fn`` becomes the op's node, whose input is the tensor's previous
  value and history, so gradients stay right (``y = x * 3; y += 1; y.mul_(x)`` gives torch's x.grad).

Every write advances a version counter kept per memory block (``tensor._version``; views and ``detach()``
share their base's, as in torch). A node that saved an array whose memory is written later raises torch's
"modified by an inplace operation" error when backward reads it. Writes through ``.data`` (a plain numpy
array) bypass the counter, as in torch.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine import ops, traceable
from tinygrad_lab.engine.autograd import base_array, bump, state, versions
from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import zero_gradient
from tinygrad_lab.engine.ops.shape import IntegersFirst, take, torch_index
from tinygrad_lab.engine.tensor import Tensor


class Fill(Function):
    """Every element set to ``value`` (a number or a 0-d tensor): the previous value gets a zero gradient, as
    in torch, and a 0-d tensor value the sum of the gradient."""

    @staticmethod
    def forward(ctx, a, value):
        if np.ndim(value) != 0:
            raise ValueError(f"fill_ takes a number or a 0-d tensor as its value, got shape {np.shape(value)}")
        return np.full_like(a, value)

    @staticmethod
    def backward(ctx, grad):
        return zero_gradient(grad), (grad.sum() if ctx.needs_input_grad[1] else None)


class Copy(Function):
    """``src`` broadcast to the destination's shape and dtype; the gradient goes to ``src``, and zeros to the
    previous value (torch's copy_)."""

    @staticmethod
    def forward(ctx, a, src):
        src = src.astype(a.dtype, copy=False) if isinstance(src, np.ndarray) else np.asarray(src, dtype=a.dtype)
        return np.broadcast_to(src, a.shape).copy()

    @staticmethod
    def backward(ctx, grad):
        return zero_gradient(grad), grad


class SetItem(Function):
    """``a`` with ``a[index] = value`` (torch's index_put_ and slice copy; integers first, as ``a[index]`` reads):
    the previous value gets the gradient except at ``index``, ``value`` the gradient found at ``index``."""

    @staticmethod
    def forward(ctx, a, value, index=()):
        ctx.index = index = torch_index(index)
        ctx.value_ndim = value.ndim if isinstance(value, np.ndarray) else np.ndim(value)  # traced arrays too
        ctx.whole = _is_whole(index, a)  # t[...] = v, t[:] = v: torch's copy_
        out = a.copy()
        _assign(out, index, value)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad_value = None
        if ctx.needs_input_grad[0]:
            if ctx.whole:  # torch's copy_: zeros that depend on nothing
                grad_a = zero_gradient(grad)
            elif isinstance(grad, Tensor):  # recorded backward: the zeroing is itself differentiable
                grad_a = SetItem.apply(grad, 0, index=ctx.index)
            else:
                grad_a = _assign(grad.copy() if isinstance(grad, np.ndarray) else np.array(grad), ctx.index, 0)
        if ctx.needs_input_grad[1]:
            grad_value = take(grad, ctx.index)
            missing = ctx.value_ndim - grad_value.ndim  # numpy drops a value's leading 1s: put them back
            if missing > 0:
                grad_value = grad_value.reshape((1,) * missing + grad_value.shape)
        return grad_a, grad_value


def _is_whole(index: Any, a: np.ndarray) -> bool:
    """Whether ``a[index]`` is ``a`` itself to torch: slices over every element and Ellipsis only (an integer or
    None makes a view, even of every element)."""
    parts = index if isinstance(index, tuple) and not isinstance(index, IntegersFirst) else (index,)
    return all(p is Ellipsis or isinstance(p, slice) for p in parts) and np.size(a[index]) == a.size


def _assign(out: Any, index: Any, value: Any) -> Any:
    """``out[index] = value`` for an index from torch_index; returns ``out``."""
    if isinstance(index, IntegersFirst):  # the integers' step is a view: write into it
        out[index.basic][index.arrays] = value
    else:
        out[index] = value
    return out


def version(t: Tensor) -> int:
    """How many in-place writes the tensor's memory has had (torch's ``tensor._version``)."""
    base = base_array(t.data)
    entry = versions.memory.get(id(base))
    return entry[1] if entry is not None and entry[0]() is base else 0


def _forget_rebound(key: int) -> Callable[[Any], Any]:
    """The weakref callback that drops the rebound history of the tensor ``key`` once the tensor is gone."""
    return lambda _: versions.rebound.pop(key, None) if versions.rebound is not None else None


def _owns_memory(t: Tensor) -> bool:
    """Whether the tensor's array is not a view of another array (under tl.compile, of the traced one)."""
    return traceable.untraced(t.data).base is None


def apply_(t: Tensor, name: str, op: type[Function], *args: Any, **attrs: Any) -> Tensor:
    """Run ``op(t, *args, **attrs)`` and write the result into ``t``; ``name`` is the method, for errors."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    if state.tracing is not None:  # tl.compile: the write must land in (and be recorded on) the traced array
        state.tracing.tensor_data(t)
    record = state.grad_enabled and (t.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args))
    if not record:
        result = op.apply(t, *args, **attrs)
        _write(t, result, name)
        return t
    if t.requires_grad and t.grad_fn is None:
        raise RuntimeError(
            f"{name}: a leaf Variable that requires grad is being used in an in-place operation. "
            "(Wrap the update in tl.no_grad(), or write to .data.)"
        )
    if not _owns_memory(t):
        raise RuntimeError(
            f"{name}: in grad mode, an in-place op whose result requires grad cannot write into a view (shape "
            f"{t.shape}) of another tensor's memory: tinygrad_lab does not rewrite the base's history. "
            "Use clone() first, or tl.no_grad()"
        )
    old = Tensor._make(t.data.copy(), t.grad_fn) if t.requires_grad else Tensor._wrap(t.data.copy())
    result = op.apply(old, *[old if a is t else a for a in args], **attrs)  # x.mul_(x): both are the old x
    _write(t, result, name)
    if t.grad_fn is not None:  # nodes made before this write must still reach the previous history
        if versions.rebound is None:
            versions.rebound = {}
        key = id(t)
        record_ = versions.rebound.get(key)
        if record_ is None or record_[0]() is not t:
            history: list[tuple[int, Any]] = []
            record_ = versions.rebound[key] = (weakref.ref(t, _forget_rebound(key)), history)
        record_[1].append((versions.now, t.grad_fn))
    previous, t.grad_fn = t.grad_fn, result.grad_fn
    if previous is not None and previous._retained is not None and previous._retained() is t:
        previous._retained = None  # as torch: the retained .grad is the gradient of the tensor's newest value
        t.grad_fn._retained = weakref.ref(t)
    t.requires_grad = True
    return t


def _write(t: Tensor, result: Tensor, name: str) -> None:
    """Copy an op's result into ``t``'s array (same shape; same kind of dtype) and count the write."""
    if result.shape != t.shape:
        raise RuntimeError(f"{name}: output with shape {t.shape} doesn't match the broadcast shape {result.shape}")
    try:
        np.copyto(t.data, result.data, casting="same_kind")
    except TypeError:
        raise RuntimeError(
            f"{name}: result type {result.dtype} can't be cast to the desired output type {t.dtype} (shape {t.shape})"
        ) from None
    except ValueError as err:
        raise RuntimeError(f"{name}: cannot write into the tensor of shape {t.shape}: {err}") from None
    bump(t.data)


# ---- the methods Tensor forwards to (tensor.py) ----------------------------------------------------------------
def add_(t: Tensor, other: Any, alpha: float = 1) -> Tensor:
    return apply_(t, "add_", ops.Add, other if alpha == 1 else other * alpha)


def sub_(t: Tensor, other: Any, alpha: float = 1) -> Tensor:
    return apply_(t, "sub_", ops.Sub, other if alpha == 1 else other * alpha)


def clamp_(t: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002  (torch's names)
    return apply_(t, "clamp_", ops.Clip, lo=min, hi=max)


def fill_(t: Tensor, value: Any) -> Tensor:
    return apply_(t, "fill_", Fill, value)


def copy_(t: Tensor, src: Any) -> Tensor:
    return apply_(t, "copy_", Copy, src)


def setitem(t: Tensor, index: Any, value: Any) -> None:
    apply_(t, "item assignment", SetItem, value, index=index)
