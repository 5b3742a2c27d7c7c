"""Adam and AdamW, as torch.optim."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (torch.optim.Adam): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p -= lr * m_hat / (sqrt(v_hat) + eps) with bias-corrected m_hat, v_hat; weight_decay adds an L2 term to g."""

    _unsupported = {**Optimizer._unsupported, "amsgrad": False, "decoupled_weight_decay": False}
    _rules = {"eps": (lambda v: v >= 0, ">= 0"), "weight_decay": (lambda v: v >= 0, ">= 0")}
    _state_keys = _required_state = ("step", "exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        **options: Any,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=False)
        super().__init__(
            params,
            {
                **defaults,
                **{"foreach": None, "capturable": False, "differentiable": False, "fused": None},
                "decoupled_weight_decay": self._unsupported["decoupled_weight_decay"],  # AdamW's is True
            },
            options,
        )

    def _checked(self, key: str, value: Any) -> Any:
        if key != "betas":
            return super()._checked(key, value)
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{type(self).__name__}: invalid betas {value!r}: expected two values (beta1, beta2)")
        for i, beta in enumerate(value):
            self._check(f"beta{i + 1}", beta, lambda v: 0 <= v < 1, "in [0, 1)")
        return tuple(value)

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        self._adam(p, self._with_weight_decay(p, g, state, hyper["weight_decay"]), state, lr, hyper)

    def _adam(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]) -> None:
        beta1, beta2 = hyper["betas"]
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
        t = self._count_step(state)
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], state["buf"]
        m *= beta1
        np.multiply(g, 1 - beta1, out=tmp)
        m += tmp
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        # p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        np.sqrt(v, out=tmp)
        tmp /= np.sqrt(1 - beta2**t)
        tmp += hyper["eps"]
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1 - beta1**t)
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): p -= lr * weight_decay * p, then the Adam step."""

    _unsupported = {**Adam._unsupported, "decoupled_weight_decay": True}

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        **options: Any,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, **options)

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        weight_decay = hyper["weight_decay"]
        if weight_decay:
            p *= 1 - lr * weight_decay
        self._adam(p, g, state, lr, hyper)
