"""torch.nn.utils' gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, applied to the parameters'
``.grad`` arrays in place after backward and before the optimizer's step, as ported training loops call them."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np

from tinygrad_lab.engine.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor], who: str) -> list[np.ndarray]:
    """The gradient arrays of ``parameters`` (one Tensor or an iterable of them) that have one."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Tensor")
    return [p.grad.data for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale every gradient by ``max_norm / (total_norm + 1e-6)`` when that is below 1, where ``total_norm`` is
    the ``norm_type``-norm of all gradients together (inf: the largest magnitude), as torch's; returns
    ``total_norm`` (``foreach`` is torch's and changes nothing)."""
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    if norm_type == math.inf:
        norms = [np.max(np.abs(g)) if g.size else np.zeros((), g.dtype) for g in grads]
        total = functools.reduce(np.maximum, norms)
    else:  # torch's norm of the per-parameter norms (one pass per array, so tl.compile's native code runs it)
        norms = [np.sum(np.abs(g) ** norm_type) ** (1.0 / norm_type) for g in grads]
        total = functools.reduce(np.add, [n**norm_type for n in norms]) ** (1.0 / norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {float(total)}, so they "
            "cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    coefficient = np.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        np.multiply(g, coefficient.astype(g.dtype), out=g)
    return Tensor(total, dtype=total.dtype)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clip every gradient element into [-clip_value, clip_value] in place, as torch's."""
    for g in _grads(parameters, "clip_grad_value_"):
        np.clip(g, -clip_value, clip_value, out=g)


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
