"""Helpers shared by the ops: axes, keepdims shapes, 0-d promotion, and ``const`` for masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import zero_gradient as zero_gradient  # re-exported for the ops
from tinygrad_lab.engine.tensor import Tensor


def _const(x: Any) -> Any:
    """The plain array behind x (a Tensor's data, or x itself): for masks that need no derivative."""
    return x.data if isinstance(x, Tensor) else x


def _constant_attr(x: Any, name: str) -> Any:
    """An attribute an op takes as a constant (a clip bound): a Tensor gives its array, unless it needs
    a gradient the op could not give it."""
    if isinstance(x, Tensor) and x.requires_grad:
        raise TypeError(
            f"{name} is a Tensor that requires grad, which this op takes as a constant (use tl.maximum / "
            "tl.minimum, differentiable in both arguments, or pass .detach())"
        )
    return _const(x)


def _axis(axis: int, ndim: int, op: str = "") -> int:
    """One axis as a non-negative int; a 0-d tensor accepts 0 and -1 (as torch). Out of range is a ValueError
    naming the axis and the tensor's dimension (``op`` prefixes it when the caller is not a Function)."""
    n = max(ndim, 1)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -n <= axis < n:
        raise ValueError(f"{op + ': ' if op else ''}axis {axis!r} is out of bounds for a tensor of dimension {ndim}")
    return int(axis) % n


def _normalize_axes(axis: int | Sequence[int] | None, ndim: int, op: str = "") -> tuple:
    """Sorted non-negative axes to reduce over; () for a 0-d tensor, whose axis 0 / -1 reduces nothing."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(sorted(_axis(a, ndim, op) for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis)))
    return axes if ndim else ()


def _keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with the reduced ``axes`` kept as 1s (all of them, the common case, without a loop)."""
    if len(axes) == len(shape):
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _no_0d_promotion(out: Any, a: Any, b: Any) -> Any:
    """torch's promotion where numpy's differs. A 0-d array beside an n-d one: the n-d operand's dtype wins
    unless the 0-d one is of a higher kind (float32 (3,) * 0-d float64 is float32; numpy would give float64).
    Operands of different kinds otherwise: the float one's dtype (float32 * int64 is float32, not float64)."""
    da, db = getattr(a, "ndim", -1), getattr(b, "ndim", -1)  # -1: a Python number, weak in numpy too
    if da == 0 and db > 0:
        small, big = a, b
    elif db == 0 and da > 0:
        small, big = b, a
    else:
        if da >= 0 and db >= 0 and out.dtype is not a.dtype and out.dtype is not b.dtype:  # numpy went past both
            floats = [x.dtype for x in (a, b) if x.dtype.kind == "f"]
            if len(floats) == 1 and out.dtype.kind == "f" and out.dtype != floats[0]:
                return out.astype(floats[0])
        return out
    dtype = big.dtype
    rank = _KIND_RANK.get(dtype.kind, 9)
    if out.dtype == dtype or _KIND_RANK.get(small.dtype.kind, 9) > rank or _KIND_RANK.get(out.dtype.kind, 9) > rank:
        return out  # the op itself raised the kind (integers divided give floats): nothing to undo
    return out.astype(dtype)


def _any_tensor(*xs: Any) -> bool:
    return any(isinstance(x, Tensor) for x in xs)
