"""The base of every optimizer: the parameter list, the learning rate as an array, and ``step()`` calling each
optimizer's ``_update(p, g, state, lr)`` in place on numpy arrays (what ``tl.compile`` records)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import state as engine_state
from tinygrad_lab.engine.autograd import zero_grads
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.engine.traceable import active_tracer, note_assignment


class Optimizer:
    """Holds the parameters (a list, made once from any iterable) and the learning rate ``lr``; subclasses
    implement ``_update(param, grad, state, lr)`` on numpy arrays."""

    def __init__(self, params: Iterable[Tensor], lr: float):
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list (a used-up generator?)")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:  # a frozen parameter (requires_grad False) is kept, and skipped while it has no grad
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} (shape {p.shape}) must be a leaf Tensor, not the result "
                    f"of an op ({type(p.grad_fn).__name__})"
                )
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} appears twice in the parameter list")
            seen.add(id(p))
        note_assignment()  # a captured step traced the optimizer it found: with a new one it traces again
        self._lr = np.zeros(())  # an array the updates read, so a captured step (tl.compile) sees changes
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _check(self, name: str, value: Any, ok: Callable[[Any], bool], rule: str, arg: str = "") -> None:
        """A hyperparameter (the argument ``arg``, by default ``name``) must be a real number, not a string or
        a bool, for which ``ok`` holds (``ok`` takes Any: the stubs' numbers.Real has no comparisons)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{type(self).__name__}: {arg or name} must be a number, got {type(value).__name__} {value!r}"
            )
        if not ok(value):
            raise ValueError(f"{type(self).__name__}: invalid {name} {value!r}; it must be {rule}")

    @property
    def lr(self) -> float:
        """The learning rate; set it between steps for a schedule (a captured step reads the new value)."""
        return float(self._lr)

    @lr.setter
    def lr(self, value: float) -> None:
        # 0 is allowed, as in torch: a schedule may end there
        self._check("learning rate", value, lambda v: v >= 0, ">= 0", arg="lr (the learning rate)")
        self._lr[...] = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (None, as torch's default), or zero it in place with
        ``set_to_none=False``, so the next backward starts afresh."""
        zero_grads(self.params, set_to_none)

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient, with grad mode off (as torch)."""
        tracer = active_tracer()  # tl.compile records the update: it must see the state arrays and lr too
        lr = self._lr if tracer is None else tracer.traced_state({"lr": self._lr})["lr"]
        update = self._update
        grad_was_enabled = engine_state.grad_enabled  # no_grad() without its context manager's cost on the hot path
        engine_state.grad_enabled = False
        try:
            for p, slots in zip(self.params, self.state):
                grad = p.grad
                if grad is not None:
                    g, data = grad.data, p.data
                    if g.shape != data.shape:  # a .grad set by hand: numpy would broadcast it into the update
                        raise ValueError(
                            f"{type(self).__name__}.step: a gradient of shape {g.shape} for a parameter of "
                            f"shape {data.shape}"
                        )
                    if not slots:
                        slots["buf"] = np.empty_like(data)  # scratch space reused by every step
                    update(data, g, slots if tracer is None else tracer.traced_state(slots), lr)
        finally:
            engine_state.grad_enabled = grad_was_enabled

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray) -> None:
        """Update ``p`` in place from its gradient ``g``. ``lr`` is a 0-d array: multiply by it, never read it
        into a Python number, so a captured step follows a changed learning rate."""
        raise NotImplementedError

    def _with_weight_decay(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], weight_decay: float
    ) -> np.ndarray:
        """g + weight_decay * p (L2 penalty) in a buffer of its own; g itself when weight_decay is 0."""
        if not weight_decay:
            return g
        if "decayed" not in state:
            state["decayed"] = np.empty_like(p)
        out = state["decayed"]
        np.multiply(p, weight_decay, out=out)
        out += g
        return out
