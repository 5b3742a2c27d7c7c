"""Shape ops: reshape, transpose, expand, indexing, cat and stack; their backward moves gradients back into place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _axis
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.engine.torch_spellings import either


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape=()):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Transpose(Function):
    """Permute axes (reverse them when axes is None)."""

    @staticmethod
    def forward(ctx, a, axes=None):
        out = a.transpose(axes)  # numpy checks the axes (and accepts negative ones)
        ctx.axes = None if axes is None else tuple(int(x) % a.ndim for x in axes)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(None if ctx.axes is None else tuple(np.argsort(ctx.axes)))


class Expand(Function):
    """broadcast_to; the engine sums the gradient back to the input's shape."""

    @staticmethod
    def forward(ctx, a, shape=()):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _is_basic_index(index: Any) -> bool:
    """Slices, ints, None and Ellipsis only: each element is picked at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


class IntegersFirst(NamedTuple):
    """An index torch applies in two steps: its integers with the slices and None (a view), then its arrays."""

    basic: tuple
    arrays: tuple


def _is_integer(p: Any) -> bool:
    """A Python or numpy integer, or a 0-d integer array (torch takes a 0-d integer tensor as an int)."""
    if isinstance(p, np.ndarray):  # attributes, not np.ndim: under tl.compile p may be a traced array
        return p.ndim == 0 and p.dtype.kind in "iu"
    return isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))


def _is_index_array(p: Any) -> bool:
    return isinstance(p, (list, tuple)) or (isinstance(p, np.ndarray) and p.ndim > 0)


def torch_index(index: Any) -> Any:
    """``index`` as torch reads it. numpy broadcasts an integer together with the index arrays, so x[1, :, [0, 3]]
    puts the arrays' axis first; torch takes integers first, as x[1][:, [0, 3]]. An index holding both becomes
    IntegersFirst (the two agree whenever the integers and arrays are adjacent); any other is returned as is,
    and so is one with a boolean scalar, which numpy and torch read alike."""
    if not isinstance(index, tuple) or _is_basic_index(index):
        return index
    if not any(map(_is_integer, index)) or not any(map(_is_index_array, index)):
        return index
    if any(isinstance(p, (bool, np.bool_)) or (isinstance(p, np.ndarray) and p.ndim == 0 and p.dtype == bool)
           for p in index):  # fmt: skip
        return index
    basic: list = []
    arrays: list = []
    for p in index:
        if _is_index_array(p):  # a boolean mask spans as many axes as it has
            mask = p if isinstance(p, np.ndarray) else np.asarray(p)
            basic += [slice(None)] * (mask.ndim if mask.dtype == np.bool_ else 1)
            arrays.append(p if not isinstance(p, tuple) else list(p))
        elif _is_integer(p):
            basic.append(int(p) if not isinstance(p, np.ndarray) else p[()])
        else:
            basic.append(p)
            arrays.append(p if p is Ellipsis else slice(None))  # the axes the first step kept, or inserted
    return IntegersFirst(tuple(basic), tuple(arrays))


def take(a: Any, index: Any) -> Any:
    """``a[index]`` for an index from torch_index (an array or a Tensor)."""
    return a[index.basic][index.arrays] if isinstance(index, IntegersFirst) else a[index]


class GetItem(Function):
    """Indexing as torch does it (numpy's, but integers first: torch_index); repeated integer indices
    accumulate their gradients."""

    @staticmethod
    def forward(ctx, a, index=()):
        ctx.in_shape = a.shape
        ctx.index = index = torch_index(index)
        return take(a, index)

    @staticmethod
    def backward(ctx, grad):
        return (
            IndexAdd.apply(grad, index=ctx.index, shape=ctx.in_shape)
            if isinstance(grad, Tensor)
            else _index_add(grad, ctx.index, ctx.in_shape)
        )


def _index_add(values: np.ndarray, index: Any, shape: tuple) -> np.ndarray:
    out = traceable.zeros(values, shape)
    target = out
    if isinstance(index, IntegersFirst):  # the integers' step is a view: add into it
        target, index = out[index.basic], index.arrays
    if _is_basic_index(index):
        target[index] = values
    else:
        np.add.at(target, index, values)
    return out


class IndexAdd(Function):
    """zeros(shape) with values added at index: GetItem's backward, itself differentiable for create_graph."""

    @staticmethod
    def forward(ctx, values, index=(), shape=()):
        ctx.index = index
        return _index_add(values, index, shape)

    @staticmethod
    def backward(ctx, grad):
        return take(grad, ctx.index)


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        arrays = tuple(a if isinstance(a, np.ndarray) else np.asarray(a) for a in arrays)  # constants: lists too
        if arrays[0].ndim == 0:
            raise ValueError("0-d tensors cannot be joined along an axis; use stack")
        ctx.axis = _axis(axis, arrays[0].ndim)
        ctx.bounds = np.cumsum([0] + [a.shape[ctx.axis] for a in arrays])
        return np.concatenate(arrays, axis=ctx.axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.axis
        return tuple(grad[lead + (slice(int(lo), int(hi)),)] for lo, hi in zip(ctx.bounds[:-1], ctx.bounds[1:]))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = _axis(axis, arrays[0].ndim + 1)
        return np.stack(arrays, axis=ctx.axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.axis
        return tuple(grad[lead + (i,)] for i in range(len(ctx.inputs)))


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """x repeated to ``shape``: a recorded Expand for a Tensor, a new array for an array (two C calls, where
    np.broadcast_to's Python wrapper costs more than filling the small arrays a training step has)."""
    if isinstance(x, Tensor):
        return Expand.apply(x, shape=tuple(shape))
    out = traceable.empty(x, tuple(shape))
    out[...] = x
    return out


def cat(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (numpy's concatenate); ``dim`` is torch's name for ``axis``."""
    if not len(tensors):
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return Cat.apply(*tensors, axis=axis if dim is None else either("cat", "axis", axis, 0, "dim", dim))


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along a new axis; ``dim`` is torch's name for ``axis``."""
    if not len(tensors):
        raise ValueError("stack: expected a non-empty sequence of tensors")
    return Stack.apply(*tensors, axis=axis if dim is None else either("stack", "axis", axis, 0, "dim", dim))
