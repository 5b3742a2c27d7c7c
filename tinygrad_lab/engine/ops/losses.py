"""Losses that are one node, as in PyTorch (``MseLossBackward0``): fewer nodes on the training step's path, and
the same numbers as the ops they replace."""

from __future__ import annotations

import numpy as np

from tinygrad_lab.engine.function import Function


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
