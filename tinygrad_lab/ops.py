"""Every built-in differentiable op: a ``Function`` with a numpy forward and a backward.

Each backward is written once, with operators and methods that numpy arrays and Tensors share, plus the
dual functions at the bottom of this file (``exp``, ``log``, ``where``...), which take either. So the same
formula runs on arrays in a first-order backward and on Tensors when ``create_graph=True`` records it.
Masks and signs are computed from plain arrays (``_const``): their own derivative is zero, so as constants
they are exact at every order. Gradients may come back broadcast-shaped: the engine sums them to the
input's shape (autograd.sum_to_shape), so no op undoes broadcasting itself.

To add an op: write its Function here, a one-line method in tensor.py, and a gradcheck in tests/test_ops.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinygrad_lab.function import Function
from tinygrad_lab.tensor import Tensor


def _const(x: Any) -> Any:
    """The plain array behind x (a Tensor's data, or x itself): for masks that need no derivative."""
    return x.data if isinstance(x, Tensor) else x


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
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _no_0d_promotion(out: Any, a: Any, b: Any) -> Any:
    """torch's promotion for a 0-d array beside an n-d one: the n-d operand's dtype wins unless the 0-d one
    is of a higher kind (float32 (3,) * 0-d float64 is float32; numpy would give float64)."""
    da, db = getattr(a, "ndim", -1), getattr(b, "ndim", -1)  # -1: a Python number, weak in numpy too
    if da == 0 and db > 0:
        small, big = a, b
    elif db == 0 and da > 0:
        small, big = b, a
    else:
        return out
    dtype = big.dtype
    if out.dtype == dtype or _KIND_RANK.get(small.dtype.kind, 9) > _KIND_RANK.get(dtype.kind, 9):
        return out
    return out.astype(dtype)


# ---- arithmetic ------------------------------------------------------------------------------------------------

class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return _no_0d_promotion(a + b, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return _no_0d_promotion(a - b, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _no_0d_promotion(a * b, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _no_0d_promotion(a / b, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad / b
        return (grad_a if need_a else None), (-grad_a * a / b if need_b else None)


class Pow(Function):
    """a ** b for a Tensor or scalar exponent; d/db = a**b * log(a) (NaN where a < 0, as in PyTorch).

    As torch, d/da is 0 where b == 0 and d/db is 0 where a == 0 and b >= 0 (no 0 * inf). Only the places
    where 0 * inf would happen are masked, and they compute with safe values (log(1), a ** 1), so
    derivatives of any order stay finite there and exact elsewhere."""

    @staticmethod
    def forward(ctx, a, b):
        out = _no_0d_promotion(a ** b, a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:  # x ** 2, the squared error, is common enough to skip the power for
            if isinstance(b, (int, float)):  # and x ** 0 has slope 0 also at x = 0, as in torch
                grad_a = grad * (2.0 * a) if b == 2 else grad * 0.0 if b == 0 else grad * b * a ** (b - 1)
            else:
                # masks always, never "if any": tl.compile cannot follow a branch on values
                zero = (_const(b) == 0) & (_const(a) == 0)  # 0 * 0 ** -1; elsewhere b == 0 gives 0 by itself
                grad_a = where(zero, 0.0, grad * b * a ** where(zero, 1.0, b - 1))
        if need_b:
            masked = (_const(a) == 0) & (_const(b) >= 0)
            grad_b = where(masked, 0.0, grad * out * log(where(masked, 1.0, a)))
        return grad_a, grad_b


class MatMul(Function):
    """np.matmul semantics: 1-D operands are promoted to matrices and the added axis removed again."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:
            return (grad @ b.T if need_a else None), (a.T @ grad if need_b else None)
        if a.ndim == 1 and b.ndim == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g2 = grad.reshape(grad.shape[:-1] + (1,) + grad.shape[-1:]) if a.ndim == 1 else grad
        g2 = g2.reshape(g2.shape + (1,)) if b.ndim == 1 else g2
        grad_a = grad_b = None
        if need_a:
            grad_a = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                grad_a = grad_a.reshape(grad_a.shape[:-2] + grad_a.shape[-1:])
        if need_b:
            grad_b = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                grad_b = grad_b.reshape(grad_b.shape[:-1])
        return grad_a, grad_b


# ---- elementwise -----------------------------------------------------------------------------------------------

class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (out * 2)


class Abs(Function):
    """abs'(0) = 0, and abs'(NaN) = 0 as torch (its sign of NaN is 0; numpy's is NaN)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(np.subtract(a > 0, a < 0, dtype=a.dtype))
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors
        return grad * sign


class Sigmoid(Function):
    """1 / (1 + exp(-x)), the lab's formula, in place on one buffer. The exponent is capped just below
    where exp overflows, so there is no warning; below x = -709 (float64) the result is a floor of
    ~1e-308 instead of an underflowed 0, an absolute difference no float64 sum can see."""

    @staticmethod
    def forward(ctx, a):
        out = np.negative(a, out=np.empty_like(a))  # out= keeps 0-d results arrays
        np.minimum(out, 88.0 if a.dtype == np.float32 else 709.0, out=out)
        np.exp(out, out=out)
        out += 1.0
        np.reciprocal(out, out=out)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1.0 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1.0 - out * out)


class ReLU(Function):
    """relu'(0) = 0. Backward masks with where, not a product, so an inf gradient stays out of the zeros (as torch)."""

    @staticmethod
    def forward(ctx, a):
        out = np.maximum(a, 0.0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return where(_const(out) <= 0, 0.0, grad)  # <= so NaN passes its gradient on, as torch


class LeakyReLU(Function):
    """x where x > 0, else negative_slope * x; the slope at 0 is negative_slope."""

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        slope = np.where(a > 0, 1.0, negative_slope).astype(a.dtype)
        ctx.save_for_backward(slope)
        return a * slope

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return grad * slope


class Clip(Function):
    """Gradient 1 inside [lo, hi] (bounds included, as torch.clamp), 0 outside (masked with where, as torch)."""

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        ctx.save_for_backward(inside)
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return where(inside, grad, 0.0)


class Clone(Function):
    """A copy that stays in the graph (the gradient passes through unchanged)."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Cast(Function):
    """astype; the engine casts the gradient back to the input's dtype."""

    @staticmethod
    def forward(ctx, a, dtype=np.float64):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Maximum(Function):
    """Elementwise max; where a == b each side gets half the gradient, where either is NaN each gets all (torch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _no_0d_promotion(np.maximum(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a, b = _const(a), _const(b)
        return _shares(grad, a < b, a > b, a == b)


class Minimum(Function):
    """Elementwise min; where a == b each side gets half the gradient, where either is NaN each gets all (torch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _no_0d_promotion(np.minimum(a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a, b = _const(a), _const(b)
        return _shares(grad, a > b, a < b, a == b)


def _shares(grad: Any, a_loses: Any, b_loses: Any, tie: Any) -> tuple:
    """grad to each side of a maximum or minimum: none where it lost, half at ties, all elsewhere (NaN
    included, as torch); masked with where, so an inf gradient does not become NaN."""
    half = where(tie, grad * 0.5, grad)
    return where(a_loses, 0.0, half), where(b_loses, 0.0, half)


class Where(Function):
    """where(cond, a, b): the condition is a constant; each branch gets the gradient where it was chosen (and 0,
    not 0 * grad, elsewhere)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond, dtype=bool)
        ctx.save_for_backward(cond)
        return _no_0d_promotion(np.where(cond, a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[1:]
        return None, (where(cond, grad, 0.0) if need_a else None), (where(cond, 0.0, grad) if need_b else None)


# ---- reductions ---------------------------------------------------------------------------------------------------

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
        count = int(np.prod([a.shape[i] for i in ctx.axes]))
        ctx.count = count or np.nan  # the mean over a size-0 axis is NaN (as torch), its gradient empty
        total = np.add.reduce(a, axis=ctx.axes, keepdims=keepdims)  # ndarray.mean, minus its Python overhead
        return np.true_divide(total, ctx.count, dtype=total.dtype if total.dtype.kind == "f" else np.float64)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdims_shape(ctx.in_shape, ctx.axes)) * (1.0 / ctx.count)
        return broadcast_to(grad, ctx.in_shape)


class Max(Function):
    """Max over axes; tied maxima share the gradient evenly."""

    reduce = staticmethod(np.max)

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axes = _normalize_axes(axis, a.ndim)
        if a.size == 0 and any(a.shape[i] == 0 for i in axes):
            raise ValueError(f"{type(ctx).__name__.lower()} over a size-0 axis (shape {a.shape}, axis {axis})")
        best = type(ctx).reduce(a, axis=axes, keepdims=True)
        hits = a == best
        ctx.save_for_backward(hits / hits.sum(axis=axes, keepdims=True))
        ctx.keep_shape = best.shape
        return best if keepdims else best.reshape([s for i, s in enumerate(a.shape) if i not in axes])

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
        out = m + np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True))
        ctx.keep_shape = out.shape
        result = out if keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in axes])
        ctx.save_for_backward(a, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        return grad.reshape(ctx.keep_shape) * exp(a - out.reshape(ctx.keep_shape))


# ---- shape --------------------------------------------------------------------------------------------------------

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


class GetItem(Function):
    """Indexing as numpy does it; repeated integer indices accumulate their gradients."""

    @staticmethod
    def forward(ctx, a, index=()):
        ctx.in_shape = a.shape
        ctx.index = index
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, index=ctx.index, shape=ctx.in_shape) if isinstance(grad, Tensor) \
            else _index_add(grad, ctx.index, ctx.in_shape)


def _index_add(values: np.ndarray, index: Any, shape: tuple) -> np.ndarray:
    out = np.zeros_like(values, shape=shape)  # zeros_like, not zeros: tl.compile records it
    if _is_basic_index(index):
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


class IndexAdd(Function):
    """zeros(shape) with values added at index: GetItem's backward, itself differentiable for create_graph."""

    @staticmethod
    def forward(ctx, values, index=(), shape=()):
        ctx.index = index
        return _index_add(values, index, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.index]


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
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


# ---- numpy-like functions: a Tensor in gives a Tensor (recorded); arrays in give an array ---------------------------

def _any_tensor(*xs: Any) -> bool:
    return any(isinstance(x, Tensor) for x in xs)


def exp(x: Any) -> Any:
    return Exp.apply(x) if isinstance(x, Tensor) else np.exp(x)


def log(x: Any) -> Any:
    return Log.apply(x) if isinstance(x, Tensor) else np.log(x)


def sqrt(x: Any) -> Any:
    return Sqrt.apply(x) if isinstance(x, Tensor) else np.sqrt(x)


def abs(x: Any) -> Any:  # noqa: A001  (numpy-like name)
    return Abs.apply(x) if isinstance(x, Tensor) else np.abs(x)


def tanh(x: Any) -> Any:
    return Tanh.apply(x) if isinstance(x, Tensor) else np.tanh(x)


def sigmoid(x: Any) -> Any:
    return Sigmoid.apply(x) if isinstance(x, Tensor) else Sigmoid.apply(np.asarray(x, dtype=float)).data


def relu(x: Any) -> Any:
    return ReLU.apply(x) if isinstance(x, Tensor) else np.maximum(x, 0.0)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum; ties share the gradient evenly."""
    return Maximum.apply(a, b) if _any_tensor(a, b) else np.maximum(a, b)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum; ties share the gradient evenly."""
    return Minimum.apply(a, b) if _any_tensor(a, b) else np.minimum(a, b)


def where(cond: Any, a: Any, b: Any) -> Any:
    """a where cond is true, else b; differentiable in a and b."""
    return Where.apply(cond, a, b) if _any_tensor(a, b) else np.where(_const(cond), a, b)


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """x repeated to ``shape``: a recorded Expand for a Tensor, a new array for an array (two C calls, where
    np.broadcast_to's Python wrapper costs more than filling the small arrays a training step has)."""
    if isinstance(x, Tensor):
        return Expand.apply(x, shape=tuple(shape))
    out = np.empty_like(x, shape=shape)
    out[...] = x
    return out


def cat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (numpy's concatenate)."""
    if not len(tensors):
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return Cat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    if not len(tensors):
        raise ValueError("stack: expected a non-empty sequence of tensors")
    return Stack.apply(*tensors, axis=axis)
