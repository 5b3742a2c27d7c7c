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

    _unsupported = {**Optimizer._unsupported, "centered": False}
    _rules = {
        "alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"),
        "eps": (lambda v: v >= 0, ">= 0"),
        "momentum": (lambda v: v >= 0, ">= 0"),
        "weight_decay": (lambda v: v >= 0, ">= 0"),
    }
    _state_keys = ("step", "square_avg", "momentum_buffer")
    _required_state = ("step", "square_avg")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        **options: Any,
    ):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay)
        super().__init__(
            params,
            {**defaults, "capturable": False, "foreach": None, "maximize": False, "differentiable": False},
            options,
        )

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        g = self._with_weight_decay(p, g, state, hyper["weight_decay"])
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
        self._count_step(state)
        alpha, momentum = hyper["alpha"], hyper["momentum"]
        v, tmp = state["square_avg"], state["buf"]
        v *= alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1 - alpha
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += hyper["eps"]
        np.divide(g, tmp, out=tmp)
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(p)
            b = state["momentum_buffer"]
            b *= momentum
            b += tmp
            np.copyto(tmp, b)
        tmp *= lr
        p -= tmp
