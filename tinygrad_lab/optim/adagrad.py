"""Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): s += g^2, p -= lr * g / (sqrt(s) + eps)."""

    _unsupported = {**Optimizer._unsupported, "lr_decay": 0, "initial_accumulator_value": 0}
    _rules = {"eps": (lambda v: v >= 0, ">= 0"), "weight_decay": (lambda v: v >= 0, ">= 0")}
    _state_keys = _required_state = ("step", "sum")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        **options: Any,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
        )
        super().__init__(
            params, {**defaults, "foreach": None, "maximize": False, "differentiable": False, "fused": None}, options
        )

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        g = self._with_weight_decay(p, g, state, hyper["weight_decay"])
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        self._count_step(state)
        s, tmp = state["sum"], state["buf"]
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += hyper["eps"]
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp
