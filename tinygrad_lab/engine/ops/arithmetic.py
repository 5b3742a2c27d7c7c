"""Arithmetic ops: + - * / ** @ and negation."""

from __future__ import annotations

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _const, _no_0d_promotion, zero_gradient
from tinygrad_lab.engine.ops.elementwise import log, where


class Add(Function):
    commutative = True

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
    commutative = True

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad  # each side's gradient reads only the other side
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return _no_0d_promotion(a * b, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)  # a only for the divisor's gradient
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
        out = _no_0d_promotion(a**b, a, b)
        ctx.save_for_backward(a, b, out if ctx.needs_input_grad[1] else None)  # out only for the exponent's
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:  # x ** 2, the squared error, is common enough to skip the power for; x ** 0 (a number) has
            if isinstance(b, (int, float)):  # slope 0 also at x = 0 and under a NaN gradient: zeros (as torch)
                grad_a = grad * (2.0 * a) if b == 2 else zero_gradient(grad) if b == 0 else grad * b * a ** (b - 1)
            else:  # a tensor exponent keeps b * a ** (b - 1), whose derivative in b is not 0 at b = 0
                # masks always, never "if any" (rule 2 of engine/traceable.py)
                zero = (_const(b) == 0) & (_const(a) == 0)  # 0 * 0 ** -1; elsewhere b == 0 gives 0 by itself
                # ...unless a NaN or inf arrives there: torch's slope at b == 0 is 0 whatever comes from above
                stray = (_const(b) == 0) & ~np.isfinite(_const(grad))
                grad_a = where(zero, 0.0, where(stray, 0.0, grad) * b * a ** where(zero, 1.0, b - 1))
        if need_b:
            masked = (_const(a) == 0) & (_const(b) >= 0)
            grad_b = where(masked, 0.0, grad * out * log(where(masked, 1.0, a)))
        return grad_a, grad_b


class MatMul(Function):
    """np.matmul semantics: 1-D operands are promoted to matrices and the added axis removed again."""

    @staticmethod
    def forward(ctx, a, b):
        if not isinstance(a, np.ndarray):  # a constant may be a list (two plain checks: this is the hot path)
            a = np.asarray(a)
        if not isinstance(b, np.ndarray):
            b = np.asarray(b)
        need_a, need_b = ctx.needs_input_grad  # each side's gradient reads only the other side
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.ndims = (a.ndim, b.ndim)
        if a.dtype is b.dtype:
            return np.matmul(a, b)
        return _no_0d_promotion(np.matmul(a, b), a, b)  # float32 @ int64 is float32, as float32 * int64

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        a_ndim, b_ndim = ctx.ndims
        if a_ndim == 2 and b_ndim == 2:
            return (grad @ b.T if need_a else None), (a.T @ grad if need_b else None)
        if a_ndim == 1 and b_ndim == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        g2 = grad.reshape(grad.shape[:-1] + (1,) + grad.shape[-1:]) if a_ndim == 1 else grad
        g2 = g2.reshape(g2.shape + (1,)) if b_ndim == 1 else g2
        grad_a = grad_b = None
        if need_a:
            b2 = b.reshape(b.shape + (1,)) if b_ndim == 1 else b
            grad_a = g2 @ b2.swapaxes(-1, -2)
            if a_ndim == 1:
                grad_a = grad_a.reshape(grad_a.shape[:-2] + grad_a.shape[-1:])
        if need_b:
            a2 = a.reshape((1,) + a.shape) if a_ndim == 1 else a
            grad_b = a2.swapaxes(-1, -2) @ g2
            if b_ndim == 1:
                grad_b = grad_b.reshape(grad_b.shape[:-1])
        return grad_a, grad_b
