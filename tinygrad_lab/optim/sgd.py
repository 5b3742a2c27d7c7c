"""SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class SGD(Optimizer):
    """p -= lr * g, with optional L2 weight decay, momentum (buffer b = momentum * b + (1 - dampening) * g,
    b = g on the first step) and Nesterov (g + momentum * b), exactly as torch.optim.SGD."""

    _rules = {
        "momentum": (lambda v: v >= 0, ">= 0"),
        "weight_decay": (lambda v: v >= 0, ">= 0"),
        "dampening": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    }
    _state_keys = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        **options: Any,
    ):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(
            params, {**defaults, "maximize": False, "foreach": None, "differentiable": False, "fused": None}, options
        )

    def _checked(self, key: str, value: Any) -> Any:
        if key == "nesterov" and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {type(value).__name__} {value!r}")
        return super()._checked(key, value)

    def _check_together(self, group: Mapping[str, Any]) -> None:
        if group.get("nesterov") and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        weight_decay, momentum = hyper["weight_decay"], hyper["momentum"]
        if weight_decay:
            g = self._with_weight_decay(p, g, state, weight_decay)
        step = state["buf"]
        if momentum:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.copy()
            else:
                b *= momentum
                np.multiply(g, 1 - hyper["dampening"], out=step)
                b += step
            if hyper["nesterov"]:
                np.multiply(b, momentum, out=step)
                step += g
                g = step
            else:
                g = b
        np.multiply(g, lr, out=step)
        p -= step
