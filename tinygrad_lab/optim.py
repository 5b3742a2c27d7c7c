"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, Adagrad.

    opt = optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

``step()`` updates each parameter's array in place (its identity never changes, so a Module and an
optimizer can share it) with numpy's in-place operations into per-parameter buffers allocated once, and
skips parameters whose ``.grad`` is None. Per-parameter state (step count, moment estimates) is created on
a parameter's first update, as in PyTorch, so a parameter without gradients does not advance its step.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable

import numpy as np

from tinygrad_lab.autograd import no_grad, state as _engine
from tinygrad_lab.tensor import Tensor


class Optimizer:
    """Holds the parameters (a list, made once from any iterable) and the learning rate ``lr``; subclasses
    implement ``_update(param, grad, state)`` on numpy arrays."""

    def __init__(self, params: Iterable[Tensor], lr: float):
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list (a used-up generator?)")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.shape}) must be a leaf Tensor "
                                 "with requires_grad=True")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} appears twice in the parameter list")
            seen.add(id(p))
        self._lr = np.zeros(())  # an array the updates read, so a captured step (tl.compile) sees changes
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _check(self, name: str, value: Any, ok: Callable[[float], bool], rule: str, arg: str = "") -> None:
        """A hyperparameter (the argument ``arg``, by default ``name``) must be a real number, not a string or
        a bool, for which ``ok`` holds."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: {arg or name} must be a number, got {type(value).__name__} "
                            f"{value!r}")
        if not ok(value):
            raise ValueError(f"{type(self).__name__}: invalid {name} {value!r}; it must be {rule}")

    @property
    def lr(self) -> float:
        """The learning rate; set it between steps for a schedule (a captured step reads the new value)."""
        return float(self._lr)

    @lr.setter
    def lr(self, value: float) -> None:
        self._check("learning rate", value, lambda v: v > 0, "positive", arg="lr (the learning rate)")
        self._lr[...] = value

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (set to None), so the next backward starts afresh."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        tracer = _engine.tracing  # tl.compile records the update: it must see the state arrays too
        with no_grad():
            for p, state in zip(self.params, self.state):
                if p.grad is not None:
                    if not state:
                        state["buf"] = np.empty_like(p.data)  # scratch space reused by every step
                        state["lr"] = self._lr  # shared by all parameters
                    if tracer is not None:
                        state = tracer.traced_state(state)
                    self._update(p.data, p.grad.data, state)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _with_weight_decay(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                           weight_decay: float) -> np.ndarray:
        """g + weight_decay * p (L2 penalty) in a buffer of its own; g itself when weight_decay is 0."""
        if not weight_decay:
            return g
        if "decayed" not in state:
            state["decayed"] = np.empty_like(p)
        out = state["decayed"]
        np.multiply(p, weight_decay, out=out)
        out += g
        return out


class SGD(Optimizer):
    """p -= lr * g, with optional L2 weight decay, momentum (buffer b = momentum * b + (1 - dampening) * g,
    b = g on the first step) and Nesterov (g + momentum * b), exactly as torch.optim.SGD."""

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0, nesterov: bool = False,
                 weight_decay: float = 0, dampening: float = 0):
        super().__init__(params, lr)
        self._check("momentum", momentum, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self._check("dampening", dampening, lambda v: 0 <= v <= 1, "in [0, 1]")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {type(nesterov).__name__} {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.nesterov, self.weight_decay, self.dampening = momentum, nesterov, weight_decay, dampening

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
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
        np.multiply(g, state["lr"], out=step)
        p -= step


class Adam(Optimizer):
    """Adam (torch.optim.Adam): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p -= lr * m_hat / (sqrt(v_hat) + eps) with bias-corrected m_hat, v_hat; weight_decay adds an L2 term to g."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: invalid betas {betas!r}: expected two values (beta1, beta2)")
        for i, beta in enumerate(betas):
            self._check(f"beta{i + 1}", beta, lambda v: 0 <= v < 1, "in [0, 1)")
        self._check("eps", eps, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        self._adam(p, self._with_weight_decay(p, g, state, self.weight_decay), state)

    def _adam(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
            state["step"] = np.zeros(())  # an array (as PyTorch's step tensor), so tl.compile records it
        m, v, tmp, t = state["exp_avg"], state["exp_avg_sq"], state["buf"], state["step"]
        t += 1
        m *= beta1
        np.multiply(g, 1 - beta1, out=tmp)
        m += tmp
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        # p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        np.sqrt(v, out=tmp)
        tmp /= np.sqrt(1 - beta2 ** t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= state["lr"] / (1 - beta1 ** t)
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): p -= lr * weight_decay * p, then the Adam step."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        if self.weight_decay:
            p *= 1 - state["lr"] * self.weight_decay
        self._adam(p, g, state)


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop, not centered): v = alpha v + (1 - alpha) g^2, then
    p -= lr * g / (sqrt(v) + eps), or with momentum b = momentum b + g / (sqrt(v) + eps), p -= lr * b."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0, weight_decay: float = 0):
        super().__init__(params, lr)
        self._check("alpha", alpha, lambda v: 0 <= v < 1, "in [0, 1)")
        self._check("eps", eps, lambda v: v >= 0, ">= 0")
        self._check("momentum", momentum, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.alpha, self.eps, self.momentum, self.weight_decay = alpha, eps, momentum, weight_decay

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
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
        tmp *= state["lr"]
        p -= tmp


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): s += g^2, p -= lr * g / (sqrt(s) + eps)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0):
        super().__init__(params, lr)
        self._check("eps", eps, lambda v: v >= 0, ">= 0")
        self._check("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.eps, self.weight_decay = eps, weight_decay

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        g = self._with_weight_decay(p, g, state, self.weight_decay)
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        s, tmp = state["sum"], state["buf"]
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= state["lr"]
        p -= tmp
