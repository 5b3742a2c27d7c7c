"""Losses that are one node, as in PyTorch (``MseLossBackward0``): fewer nodes on the training step's path, and
the same numbers as the ops they replace."""

from __future__ import annotations

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.elementwise import log, maximum


class MseLoss(Function):
    """sum((a - b)^2), divided by the element count when ``mean``. Bit for bit what ``((a - b) * (a - b)).mean()``
    gives, forward and backward; backward recomputes a - b from the inputs, so higher derivatives hold too."""

    @staticmethod
    def forward(ctx, a, b, mean=True):
        ctx.save_for_backward(a, b)
        diff = a - b
        total = np.add.reduce(diff * diff, axis=None)
        count = diff.size or np.nan  # the mean of nothing is NaN (as torch), its gradient empty
        ctx.scale = 2.0 / count if mean else 2.0
        return np.true_divide(total, count, dtype=total.dtype) if mean else total

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = (a - b) * (grad * ctx.scale)
        needs = ctx.needs_input_grad
        return (ga if needs[0] else None), (-ga if needs[1] else None)


LOG_FLOOR = -100.0  # torch's cap on each log term of binary cross-entropy
PROB_EPS = float(np.float32(1e-12))  # torch's floor on p (1 - p) in its gradient: 1e-12 as a C float


class BinaryCrossEntropy(Function):
    """-(y log p + (1 - y) log(1 - p)) elementwise, with each log capped at -100 as torch's: p = 0 or 1 costs 100
    per element instead of infinity, and the gradient in p is torch's (p - y) / max(p (1 - p), 1e-12)."""

    @staticmethod
    def forward(ctx, p, y):
        ctx.save_for_backward(p, y)
        with np.errstate(divide="ignore"):  # log(0) = -inf, then capped
            log_p = np.maximum(np.log(p), LOG_FLOOR)
            log_q = np.maximum(np.log1p(-p), LOG_FLOOR)
        return -(y * log_p + (1.0 - y) * log_q)

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gp = gy = None
        if needs[0]:
            gp = grad * (p - y) / maximum(p * (1.0 - p), PROB_EPS)
        if needs[1]:  # d/dy = log(1 - p) - log(p), uncapped as torch's (infinite at p = 0 or 1)
            with np.errstate(divide="ignore"):
                log_q = np.log1p(-p) if isinstance(p, np.ndarray) else log(1.0 - p)
                gy = grad * (log_q - log(p))
        return gp, gy
