"""Loss modules with torch's names and arguments (``nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)``): each
keeps its settings and calls its function in ``nn.functional``, where the math is. ``weight`` and ``pos_weight``
are buffers, so they are in ``state_dict`` under torch's keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn import functional as F
from tinygrad_lab.nn.module import Module


def _buffer(weight: Any) -> Any:
    """A weight as a buffer takes it: None, a Tensor, or an array (of floats: a list of ints becomes float64)."""
    if weight is None or isinstance(weight, Tensor):
        return weight
    arr = np.asarray(weight)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


class _Loss(Module):
    """A loss module's ``reduction`` ("mean", "sum" or "none"), checked when it is made."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F.check_reduction(type(self).__name__, reduction)
        self.reduction = reduction


class MSELoss(_Loss):
    """``F.mse_loss``: (input - target)^2, reduced."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """``F.l1_loss``: |input - target|, reduced."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """``F.binary_cross_entropy`` of probabilities, each element's term times ``weight`` (broadcast) when given."""

    weight: Tensor | None

    def __init__(self, weight: Any = None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``F.binary_cross_entropy_with_logits``: a sigmoid and binary cross-entropy in one stable formula, with
    ``pos_weight`` weighing the positive term (one per class, say) and ``weight`` each element's."""

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class CrossEntropyLoss(_Loss):
    """``F.cross_entropy`` of (n, C) logits against class indices or probabilities, with per-class ``weight``,
    ``ignore_index`` and ``label_smoothing`` as torch's."""

    weight: Tensor | None

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
    ):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_Loss):
    """``F.nll_loss`` of log-probabilities (a LogSoftmax's output) at class indices, with per-class ``weight`` and
    ``ignore_index`` as torch's."""

    weight: Tensor | None

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)
