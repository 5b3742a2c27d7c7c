"""SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class SGD(Optimizer):
    """p -= lr * g, with optional L2 weight decay, momentum (buffer b = momentum * b + (1 - dampening) * g,
    b = g on the first step) and Nesterov (g + momentum * b), exactly as torch.optim.SGD."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0,
        nesterov: bool = False,
        weight_decay: float = 0,
        dampening: float = 0,
    ):
        super().__init__(params, lr)
        self._check("momentum", momentum, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self._check("dampening", dampening, lambda v: 0 <= v <= 1, "in [0, 1]")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {type(nesterov).__name__} {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.nesterov, self.weight_decay, self.dampening = momentum, nesterov, weight_decay, dampening

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray) -> None:
        if self.weight_decay:
            g = self._with_weight_decay(p, g, state, self.weight_decay)
        step = state["buf"]
        if self.momentum:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.copy()
            else:
                b *= self.momentum
                np.multiply(g, 1 - self.dampening, out=step)
                b += step
            if self.nesterov:
                np.multiply(b, self.momentum, out=step)
                step += g
                g = step
            else:
                g = b
        np.multiply(g, lr, out=step)
        p -= step
