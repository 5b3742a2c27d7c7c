"""Elementwise ops (exp, log, sigmoid, relu, clip, maximum, where...) and their numpy-like functions, which take
arrays or Tensors so one backward formula serves first and higher derivatives."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _any_tensor, _const, _constant_attr, _no_0d_promotion
from tinygrad_lab.engine.tensor import Tensor


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

    backward_reads_input = True

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
        out = np.negative(a) if a.ndim else np.negative(a, out=np.empty_like(a))  # out=: a 0-d result stays an array
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

    backward_reads_input = True

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

    backward_reads_input = True

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
        lo, hi = _constant_attr(lo, "lo"), _constant_attr(hi, "hi")
        inside = np.ones_like(a, dtype=bool)  # made like the input: rule 1 of engine/traceable.py
        if lo is not None:
            inside = inside & (a >= lo)  # (not &=: array bounds may broadcast the input up, as np.clip does)
        if hi is not None:
            inside = inside & (a <= hi)
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

    commutative = True

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

    commutative = True

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
        cond = np.asanyarray(cond)  # asanyarray: a condition computed in a tl.compile step stays recorded
        if cond.dtype != bool:
            cond = cond.astype(bool)
        ctx.save_for_backward(cond)
        return _no_0d_promotion(np.where(cond, a, b), a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[1:]
        return None, (where(cond, grad, 0.0) if need_a else None), (where(cond, 0.0, grad) if need_b else None)


# ---- numpy-like functions: a Tensor in gives a Tensor (recorded); arrays in give an array ---------------------------


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
    """The sigmoid of a Tensor, or of an array in its own float dtype (an array tl.compile traces stays traced)."""
    if isinstance(x, Tensor):
        return Sigmoid.apply(x)
    arr = np.asanyarray(x)
    return Sigmoid.apply(arr if arr.dtype.kind == "f" else arr.astype(np.float64)).data


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
    if _any_tensor(a, b):
        return Where.apply(cond, a, b)
    cond = _const(cond)
    if type(cond) is np.ndarray and cond.size >= _MASK_MIN_SIZE and cond.dtype == np.bool_:
        if _is_plus_zero(b) and _maskable(cond, a):
            return _masked(a, cond, keep=True)
        if _is_plus_zero(a) and _maskable(cond, b):
            return _masked(b, cond, keep=False)
    return np.where(cond, a, b)


_SAME_SIZE_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}
# Below about 8k elements np.where is as fast as the mask's three calls (1.7 against 5.0 us at 100 x 4; at 16k
# 17 against 15 us; at 32k float64 105 against 26 us, measured): the lab's small layers keep np.where.
_MASK_MIN_SIZE = 8192


def _is_plus_zero(x: Any) -> bool:
    return type(x) is float and x == 0.0 and math.copysign(1.0, x) == 1.0


def _maskable(cond: np.ndarray, values: Any) -> bool:
    return type(values) is np.ndarray and values.dtype in _SAME_SIZE_INT and cond.shape == values.shape


def _masked(values: np.ndarray, cond: np.ndarray, keep: bool) -> np.ndarray:
    """np.where(cond, values, 0.0) (keep) or np.where(cond, 0.0, values), bit for bit, as an and of the values'
    bits with a mask: np.where branches per element, and on a mixed mask (a ReLU's) costs 5x more. The zeros
    stay zeros under an inf or NaN value, as with where (a product would make them NaN)."""
    bits = _SAME_SIZE_INT[values.dtype]
    flags, mask = cond.view(np.uint8), np.empty(cond.shape, dtype=bits)
    if keep:
        np.negative(flags, out=mask, dtype=bits)  # all ones where kept, zeros elsewhere
    else:
        np.subtract(flags, 1, out=mask, dtype=bits)
    return np.bitwise_and(values.view(bits), mask, out=mask).view(values.dtype)
