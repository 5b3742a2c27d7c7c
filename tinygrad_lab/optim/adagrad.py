"""Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): s += g^2, p -= lr * g / (sqrt(s) + eps)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0):
        super().__init__(params, lr)
        self._check("eps", eps, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.eps, self.weight_decay = eps, weight_decay

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray) -> None:
        g = self._with_weight_decay(p, g, state, self.weight_decay)
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        s, tmp = state["sum"], state["buf"]
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp
