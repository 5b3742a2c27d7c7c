"""torch's ops that rearrange a tensor: repeat, repeat_interleave, flip, roll, tril/triu, chunk/split/unbind,
and the running sums and products cumsum and cumprod.

All but the last two are made of ops the engine has (reshape, expand, slicing, cat, where), so their gradients of
every order and tl.compile come with them; CumSum is a Function whose backward is the reversed cumsum, CumProd one
whose backward is made of running sums and products (exact at zeros, as torch's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _axis, _normalize_axes
from tinygrad_lab.engine.ops.elementwise import where
from tinygrad_lab.engine.ops.selection import index_array, index_select
from tinygrad_lab.engine.ops.shape import cat
from tinygrad_lab.engine.tensor import Tensor


def _sizes(op: str, sizes: Any) -> tuple:
    """Sizes given as ints or as one sequence (``repeat(2, 3)`` or ``repeat((2, 3))``), checked non-negative."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in sizes):
        raise ValueError(f"{op}: sizes must be non-negative ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """torch's repeat (numpy's tile, not numpy's repeat): x tiled ``sizes[i]`` times along dim i, with leading
    dims added when more sizes than dims are given. Made of reshape and expand: the gradient sums the tiles."""
    reps = _sizes("repeat", sizes)
    if len(reps) < x.ndim:
        raise ValueError(
            f"repeat: got {len(reps)} sizes {reps} for a tensor of {x.ndim} dims {x.shape}; give at least one per dim"
        )
    shape = (1,) * (len(reps) - x.ndim) + x.shape
    spread = x.reshape(tuple(v for s in shape for v in (1, s)))  # a size-1 axis before each axis, to tile along
    tiled = spread.expand(tuple(v for r, s in zip(reps, shape) for v in (r, s)))
    return tiled.reshape(tuple(r * s for r, s in zip(reps, shape)))


def repeat_interleave(x: Tensor, repeats: Any, dim: int | None = None) -> Tensor:
    """torch.repeat_interleave: each entry along ``dim`` repeated ``repeats`` times (an int, or one per entry);
    ``dim=None`` flattens first. A Tensor of repeats decides the output's shape, so tl.compile runs it eagerly."""
    if dim is None:
        return repeat_interleave(x.reshape(-1), repeats, 0)
    d = _axis(dim, x.ndim, "repeat_interleave")
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor):
        traceable.refuse("repeat_interleave with a Tensor of repeats (its values set the output's shape)")
        repeats = repeats.data.view(np.ndarray)
    reps = index_array("repeat_interleave", repeats)
    if reps.ndim > 1 or reps.size not in (1, n) or (reps < 0).any():
        raise ValueError(
            f"repeat_interleave: repeats must be a non-negative int or one per entry ({n} along dim {d}), got "
            f"{reps.tolist()!r}"
        )
    return index_select(x, d, np.repeat(np.arange(n), reps.reshape(-1)))


def flip(x: Tensor, *dims: Any) -> Tensor:
    """torch.flip: x reversed along each of ``dims`` (a backwards slice: the gradient is flipped back)."""
    axes = _dims("flip", dims, x.ndim)
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def _dims(op: str, dims: Any, ndim: int) -> tuple:
    """Dims given as ints or one sequence, checked and without repeats."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
    axes = _normalize_axes(dims, ndim, op)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dims {dims} name an axis twice (tensor of {ndim} dims)")
    return axes


def roll(x: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
    """torch.roll: entries shifted by ``shifts`` along ``dims``, those pushed off the end coming back at the
    start; without dims, over the flattened tensor. Made of slices and cat."""
    if dims is None:
        if not isinstance(shifts, (int, np.integer)) and len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        return roll(x.reshape(-1), shifts, 0).reshape(x.shape)
    if x.ndim == 0:
        raise ValueError(f"roll: dims {dims!r} of a 0-d tensor, which has none (roll it without dims)")
    shift_list = [shifts] if isinstance(shifts, (int, np.integer)) else list(shifts)
    dim_list = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
    if len(shift_list) != len(dim_list):
        raise ValueError(f"roll: {len(shift_list)} shifts {shift_list} for {len(dim_list)} dims {dim_list}")
    out = x
    for shift, dim in zip(shift_list, dim_list):
        d = _axis(dim, x.ndim, "roll")
        n = x.shape[d]
        s = int(shift) % n if n else 0
        if s:
            lead = (slice(None),) * d
            out = cat([out[lead + (slice(n - s, n),)], out[lead + (slice(0, n - s),)]], axis=d)
    return out if out is not x else x[...]  # a new tensor, as torch's, also when nothing moves


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """torch.tril: the lower triangle of the last two dims (entries j <= i + diagonal), zeros above."""
    return _triangle("tril", x, diagonal, lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """torch.triu: the upper triangle of the last two dims (entries j >= i + diagonal), zeros below."""
    return _triangle("triu", x, diagonal, lower=False)


def _triangle(op: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op}: the tensor must have at least 2 dims, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else ~np.tri(rows, cols, diagonal - 1, dtype=bool)
    return where(keep, x, np.zeros((), x.dtype)[()])  # where, not a product: inf and NaN outside become 0


def split(x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """torch.split: pieces of ``split_size`` along ``dim`` (the last one smaller), or of the given sizes, which
    must add up to the dim's size. Each piece is a slice of x."""
    if x.ndim == 0:
        raise ValueError("split: the tensor must have at least 1 dim, got a 0-d tensor")
    d = _axis(dim, x.ndim, "split")
    n = x.shape[d]
    size = split_size_or_sections
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 0 or size == 0 and n:
            raise ValueError(f"split: split_size {size} cannot split dim {d} of size {n} (tensor of shape {x.shape})")
        sizes = [int(size)] * (n // size) + ([n % size] if n % size else []) if size else []
        sizes = sizes or [n]  # a size-0 dim gives one empty piece, as in torch
    else:
        sizes = list(_sizes("split", (size,)))
        if sum(sizes) != n:
            raise ValueError(
                f"split: sizes {sizes} add up to {sum(sizes)}, not to the size {n} of dim {d} of {x.shape}"
            )
    bounds = np.cumsum([0] + sizes)
    lead = (slice(None),) * d
    return tuple(x[lead + (slice(int(lo), int(hi)),)] for lo, hi in zip(bounds[:-1], bounds[1:]))


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.chunk: at most ``chunks`` slices of equal size along ``dim`` (ceil(size / chunks)), the last one
    smaller; fewer when the size does not fill them, and ``chunks`` empty ones from an empty dim."""
    if x.ndim == 0:
        raise ValueError("chunk: the tensor must have at least 1 dim, got a 0-d tensor")
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r} (tensor of shape {x.shape})")
    n = x.shape[_axis(dim, x.ndim, "chunk")]
    if n == 0:
        return split(x, [0] * int(chunks), dim)
    return split(x, -(-n // int(chunks)), dim)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.unbind: the slices of x along ``dim``, that dim removed."""
    if x.ndim == 0:
        raise ValueError("unbind: the tensor must have at least 1 dim, got a 0-d tensor")
    d = _axis(dim, x.ndim, "unbind")
    return tuple(x[(slice(None),) * d + (i,)] for i in range(x.shape[d]))


class CumSum(Function):
    """Running sums along ``axis`` (from the end when ``reverse``); the gradient is the running sum the other way."""

    @staticmethod
    def forward(ctx, a, axis=0, reverse=False):
        ctx.axis, ctx.reverse = axis, reverse
        return _cumsum(a, axis, reverse)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return CumSum.apply(grad, axis=ctx.axis, reverse=not ctx.reverse)
        return _cumsum(grad, ctx.axis, not ctx.reverse)


def _cumsum(a: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    if a.ndim == 0:
        return a.copy()
    if reverse:
        return np.flip(np.cumsum(np.flip(a, axis), axis), axis)
    return np.cumsum(a, axis)


def cumsum(x: Tensor, dim: int) -> Tensor:
    """torch.cumsum: running sums along ``dim``."""
    return CumSum.apply(x, axis=_axis(dim, x.ndim, "cumsum"))


def _scan(fn: Any, x: Any, axis: int, **attrs: Any) -> Any:
    """A running sum or product of an array, or of a Tensor as a recorded op (in a recorded backward)."""
    if isinstance(x, Tensor):
        return fn.apply(x, axis=axis, **attrs)
    return fn.forward(Function.__new__(fn), x, axis, **attrs)


class CumProd(Function):
    """Running products along ``axis``, with torch's gradient, exact where entries are zero (_cumprod_grad)."""

    @staticmethod
    def forward(ctx, a, axis=0):
        ctx.axis = axis
        out = a.copy() if a.ndim == 0 else np.cumprod(a, axis)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return _cumprod_grad(x, out, grad, ctx.axis)


def _cumprod_grad(x: Any, out: Any, grad: Any, axis: int) -> Any:
    """The gradient of cumprod at x, no division by a zero. Before the first zero of a slice: the reversed running
    sum of grad * out, over x; at the first zero: the product of the entries before it times the reversed running
    sum of grad times the products of the entries after it; after it: zero, which in a recorded backward is that
    zero times the gradient with it set to 1, so that second derivatives are exact there too."""
    plain = x.data if isinstance(x, Tensor) else x
    if plain.ndim == 0 or plain.shape[axis] == 1:  # nothing multiplied: the identity, as torch takes it
        return grad
    zero = plain == 0
    seen = np.cumsum(zero, axis)
    before, first = seen == 0, zero & (seen == 1)
    ones, zeros = np.ones((), plain.dtype)[()], np.zeros((), plain.dtype)[()]
    safe = where(before, x, ones)  # x before the first zero, 1 from it on
    at_before = _scan(CumSum, grad * out, axis, reverse=True) / safe
    after_first = _scan(CumProd, where(before | first, ones, x), axis)  # products of the entries after it
    at_first = _scan(CumProd, safe, axis) * _scan(CumSum, grad * after_first, axis, reverse=True)
    rest: Any = zeros
    if isinstance(x, Tensor) and (seen > first).any():  # a recorded backward, entries after a first zero
        unzeroed = where(first, ones, x)
        rest = where(first, x, zeros).sum(axis, keepdims=True) * _cumprod_grad(
            unzeroed, _scan(CumProd, unzeroed, axis), grad, axis
        )
    return where(before, at_before, where(first, at_first, rest))


def cumprod(x: Tensor, dim: int) -> Tensor:
    """torch.cumprod: running products along ``dim``, its gradient exact where entries are zero."""
    return CumProd.apply(x, axis=_axis(dim, x.ndim, "cumprod"))
