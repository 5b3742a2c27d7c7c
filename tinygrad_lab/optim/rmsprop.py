"""RMSprop, as torch.optim.RMSprop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop, not centered): v = alpha v + (1 - alpha) g^2, then
    p -= lr * g / (sqrt(v) + eps), or with momentum b = momentum b + g / (sqrt(v) + eps), p -= lr * b."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0,
        weight_decay: float = 0,
    ):
        super().__init__(params, lr)
        self._check("alpha", alpha, lambda v: 0 <= v <= 1, "in [0, 1]")
        self._check("eps", eps, lambda v: v >= 0, ">= 0")
        self._check("momentum", momentum, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.alpha, self.eps, self.momentum, self.weight_decay = alpha, eps, momentum, weight_decay

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray) -> None:
        g = self._with_weight_decay(p, g, state, self.weight_decay)
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
        v, tmp = state["square_avg"], state["buf"]
        v *= self.alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.alpha
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(p)
            b = state["momentum_buffer"]
            b *= self.momentum
            b += tmp
            np.copyto(tmp, b)
        tmp *= lr
        p -= tmp
