"""Reductions: sum, mean, var, max, min, logsumexp over axes, with keepdims; std, norm and log_softmax built
from them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _keepdims_shape, _normalize_axes
from tinygrad_lab.engine.ops.elementwise import exp, where
from tinygrad_lab.engine.ops.shape import broadcast_to


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axes(axis, a.ndim)
        ctx.in_shape = a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return broadcast_to(grad.reshape(_keepdims_shape(ctx.in_shape, ctx.axes)), ctx.in_shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axes(axis, a.ndim)
        ctx.in_shape = a.shape
        count = a.size if len(ctx.axes) == a.ndim else math.prod([a.shape[i] for i in ctx.axes])
        ctx.count = count or np.nan  # the mean over a size-0 axis is NaN (as torch), its gradient empty
        total = np.add.reduce(a, axis=ctx.axes, keepdims=keepdims)  # ndarray.mean, minus its Python overhead
        return np.true_divide(total, ctx.count, dtype=total.dtype if total.dtype.kind == "f" else np.float64)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdims_shape(ctx.in_shape, ctx.axes)) * (1.0 / ctx.count)
        return broadcast_to(grad, ctx.in_shape)


class Var(Function):
    """Variance over axes with ddof; its gradient is torch's 2 (x - mean) / (n - ddof) · G, not the composite's,
    which also subtracts the mean of that gradient (0 in exact arithmetic, NaN once an input is infinite)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, ddof=0):
        ctx.axes = _normalize_axes(axis, a.ndim, "var")
        ctx.keep_shape = _keepdims_shape(a.shape, ctx.axes)
        ctx.count = count = math.prod([a.shape[i] for i in ctx.axes])
        ctx.divisor = max(count - ddof, 0)  # no degrees of freedom: divided by 0, inf (NaN if constant), as torch
        mean = np.add.reduce(a, axis=ctx.axes, keepdims=True) / (count or np.nan)
        centered = a - mean
        # torch's variance of everything without degrees of freedom sends G · inf back, NaN where x is the mean
        # (inf · 0); over named axes its gradient stays 2 (x - mean) / 0 · G, which keeps the sign of x - mean
        ctx.no_dof = None
        if not ctx.divisor and (axis is None or a.ndim == 0):
            ctx.no_dof = np.where(a == mean, np.nan, np.inf).astype(a.dtype)
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.add.reduce(centered * centered, axis=ctx.axes, keepdims=keepdims) / a.dtype.type(ctx.divisor)

    @staticmethod
    def backward(ctx, grad):
        if ctx.no_dof is not None:
            return grad.reshape(ctx.keep_shape) * ctx.no_dof
        (a,) = ctx.saved_tensors
        centered = a - a.sum(axis=ctx.axes, keepdims=True) / (ctx.count or 1)  # count 0: a is empty, so is this
        scale = 2.0 / ctx.divisor if ctx.divisor else math.inf
        with np.errstate(invalid="ignore"):  # over named axes without degrees of freedom: inf · 0, NaN as torch's
            return grad.reshape(ctx.keep_shape) * centered * scale


class Max(Function):
    """Max over axes; tied maxima share the gradient evenly."""

    reduce = staticmethod(np.max)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axes = _normalize_axes(axis, a.ndim)
        if a.size == 0 and any(a.shape[i] == 0 for i in axes):
            raise ValueError(f"{type(ctx).__name__.lower()} over a size-0 axis (shape {a.shape}, axis {axis})")
        out = type(ctx).reduce(a, axis=axes, keepdims=keepdims)  # its own memory: it may be written in place
        ctx.keep_shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
        best = np.reshape(out, ctx.keep_shape)
        hits = a == best
        if axis is None:  # torch's max() of everything: a NaN maximum shares its gradient among the NaNs
            hits |= (a != a) & (best != best)  # (amax over axes, which the axis form follows, gives NaN there)
        ctx.save_for_backward(hits / hits.sum(axis=axes, keepdims=True))
        return out

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return grad.reshape(ctx.keep_shape) * share


class Min(Max):
    """Min over axes; tied minima share the gradient evenly."""

    reduce = staticmethod(np.min)


class LogSumExp(Function):
    """log(sum(exp(a))) computed as m + log(sum(exp(a - m))) with m the max, so it never overflows."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axes = _normalize_axes(axis, a.ndim)
        m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)  # initial: over a size-0 axis it is -inf
        m = np.where(np.isfinite(m), m, 0.0)
        ctx.keep_shape = m.shape
        total = np.sum(np.exp(a - m), axis=axes, keepdims=keepdims)
        result = np.reshape(m, total.shape) + np.log(total)  # its own memory: it may be written in place
        ctx.save_for_backward(a, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        return grad.reshape(ctx.keep_shape) * exp(a - out.reshape(ctx.keep_shape))


def _masked_sqrt(x: Any) -> Any:
    """sqrt(x) with gradient 0 where x is 0 (sqrt's slope is infinite there), as torch's norm and std."""
    zero = x.data == 0
    return where(zero, 0.0, where(zero, 1.0, x).sqrt())


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: float = 0) -> Any:
    """sqrt(var) with var's ddof; gradient 0 where the spread is 0, as torch's."""
    return _masked_sqrt(x.var(axis=axis, keepdims=keepdims, ddof=ddof))


def norm(x: Any, p: float = 2, axis: Any = None, keepdims: bool = False) -> Any:
    """The vector p-norm for p = 1, 2 or inf (torch.linalg.vector_norm); the 2-norm's gradient at 0 is 0."""
    if p == 1:
        return x.abs().sum(axis=axis, keepdims=keepdims)
    if p == float("inf"):
        return x.abs().max(axis=axis, keepdims=keepdims)
    if p != 2:
        raise ValueError(f"norm: p must be 1, 2 or inf, got {p!r} (shape {x.shape})")
    return _masked_sqrt((x * x).sum(axis=axis, keepdims=keepdims))


def log_softmax(x: Any, axis: int = -1) -> Any:
    """(x - m) - logsumexp(x - m), m the max as a constant: stable, and exact at large |x| (x - logsumexp(x) is
    3e-5 off at 1e3 in float32). A +inf makes its slice NaN, as torch; an all -inf slice takes m = 0."""
    axes = _normalize_axes(axis, x.ndim, "log_softmax")  # a 0-d tensor takes axis 0 or -1
    m = np.max(x.data, axis=axes, keepdims=True, initial=-np.inf)
    shifted = x - np.where(m == -np.inf, 0.0, m)
    return shifted - shifted.logsumexp(axis=axes, keepdims=True)
