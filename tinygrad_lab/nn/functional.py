"""Activations and losses as functions of Tensors: ``import tinygrad_lab.nn.functional as F``.

Everything is composed from Tensor ops, so gradients come from the engine. Losses never broadcast the
prediction against the target: an (n, 1) prediction with an (n,) target would silently give an (n, n)
loss, so differing shapes are a ValueError naming both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.ops import BinaryCrossEntropy, MseLoss, stack
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import (  # noqa: F401  (re-exported: F.conv2d, F.linear, ...)
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    dropout,
    flatten,
    linear,
    max_pool1d,
    max_pool2d,
)

REDUCTIONS = ("mean", "sum", "none")


# ---- activations ----------------------------------------------------------------------------------------------


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), overflow-safe."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def relu(x: Tensor) -> Tensor:
    """max(x, 0); its gradient at 0 is 0."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return x.leaky_relu(negative_slope)


def softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """exp(log_softmax(x)): probabilities along ``axis`` (``dim``, torch's name), stable for large logits."""
    return x.softmax(axis, dim=dim)


def log_softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``axis`` (``dim``, torch's name): stable for logits of any size."""
    return x.log_softmax(axis, dim=dim)


# ---- helpers ----------------------------------------------------------------------------------------------------


def _target(name: str, pred: Tensor, target: Any) -> Any:
    """The target with pred's shape checked; arrays and lists become arrays of pred's dtype (Tensors stay)."""
    if not isinstance(target, Tensor):
        target = np.asanyarray(target, dtype=pred.dtype)  # asanyarray: keeps tl.compile's traced arrays
    if target.shape != pred.shape:
        raise ValueError(
            f"{name}: prediction has shape {pred.shape} but target has shape {tuple(target.shape)}; they must "
            "match exactly (no broadcasting: reshape one of them, e.g. y.reshape(-1, 1))"
        )
    return target


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    """Apply a loss's ``reduction`` argument: "mean", "sum" or "none" (elementwise)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: unknown reduction {reduction!r}; valid reductions: {', '.join(REDUCTIONS)}")


# ---- losses -------------------------------------------------------------------------------------------------------


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(pred - target)^2, averaged by default: the lab's loss."""
    target = _target("mse_loss", pred, target)
    if reduction in ("mean", "sum"):
        return MseLoss.apply(pred, target, mean=reduction == "mean")  # one node, as torch's MseLossBackward0
    diff = pred - target
    return _reduce("mse_loss", diff * diff, reduction)


def _check_unit_interval(what: str, values: np.ndarray, hint: str = "") -> None:
    """binary_cross_entropy's ValueError naming the first value outside [0, 1] (NaN included)."""
    outside = ~((values >= 0) & (values <= 1))
    if outside.any():
        raise ValueError(
            f"binary_cross_entropy: {what} in [0, 1], got {values[outside][0].item()!r} among {values.shape}{hint}"
        )


def binary_cross_entropy(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p (e.g. a sigmoid's output), one node as torch's.

    As in torch, each log term is capped at -100, so p = 0 or 1 costs 100 per element rather than infinity, and
    the gradient in p is (p - y) / max(p (1 - p), 1e-12). A prediction or target outside [0, 1] (or NaN) is a
    ValueError when run eagerly; a captured step does not check them (such a prediction gives NaN there).
    Prefer ``binary_cross_entropy_with_logits`` on the pre-sigmoid values, which is stable everywhere.
    """
    y = _target("binary_cross_entropy", pred, target)
    if traceable.active_tracer() is None:  # a value check: eager only (a replay cannot branch on values)
        hint = " (use binary_cross_entropy_with_logits on values before the sigmoid)"
        _check_unit_interval("every prediction must be a probability", pred.data, hint)
        _check_unit_interval("every target must be", y.data if isinstance(y, Tensor) else np.asarray(y))  # as torch
    return _reduce("binary_cross_entropy", BinaryCrossEntropy.apply(pred, y), reduction)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) as logsumexp([0, x]) = max(x, 0) + log(1 + exp(-|x|)): never overflows, and its
    gradient exp(x - softplus(x)) = sigmoid(x) is exact at x = 0 too (relu and abs composed would give
    their subgradient 0 there, i.e. a wrong 0 instead of 0.5)."""
    return stack([np.zeros_like(x.data), x]).logsumexp(axis=0)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """binary_cross_entropy(sigmoid(logits), target) computed stably as max(x, 0) - x y + log(1 + exp(-|x|)).

    Finite for any logits (also +-1e3), with gradient sigmoid(x) - y.
    """
    y = _target("binary_cross_entropy_with_logits", logits, target)
    return _reduce("binary_cross_entropy_with_logits", _softplus(logits) - logits * y, reduction)


def cross_entropy(logits: Tensor, targets: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of (n, C) logits, computed with log_softmax (stable).

    ``targets`` are either integer class indices of shape (n,) in [0, C), or class probabilities
    (one-hot or soft labels) of float dtype and shape (n, C). The mean is over the n samples.
    """
    name = "cross_entropy"
    if logits.ndim != 2:
        raise ValueError(f"{name}: logits must have shape (n, C), got {logits.shape}")
    log_probs = logits.log_softmax(axis=-1)
    t = targets.data if isinstance(targets, Tensor) else np.asanyarray(targets)  # (asanyarray: traced arrays stay)
    if t.dtype.kind in "iu":
        n, classes = logits.shape
        if t.shape != (n,):
            raise ValueError(
                f"{name}: logits have shape {logits.shape}, so integer class targets must have "
                f"shape ({n},), got {t.shape}"
            )
        loss = -log_probs[np.arange(n), traceable.validated(class_indices_in_range, t, classes=classes)]
    elif t.dtype.kind == "f" and t.shape == logits.shape[:1]:
        raise ValueError(
            f"{name}: logits have shape {logits.shape} and targets of shape {t.shape} have dtype "
            f"{t.dtype}: class indices must be integers (y.astype(np.int64); tl.tensor(y) makes floats of an "
            f"integer array unless given dtype=np.int64); float targets are probabilities of shape {logits.shape}"
        )
    elif t.dtype.kind == "f":
        probs = _target(name, logits, targets)
        loss = -(probs * log_probs).sum(axis=-1)
    else:
        raise ValueError(f"{name}: targets must be integer class indices or float probabilities, got dtype {t.dtype}")
    return _reduce(name, loss, reduction)


def class_indices_in_range(t: np.ndarray, classes: int) -> np.ndarray:
    """``t`` itself when every class index lies in [0, classes); else cross_entropy's one-line error."""
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {classes}), got values in [{t.min()}, {t.max()}]"
        )
    return t


# The one registry of losses by name (the CLI reads it): mse and bce take predictions and targets of the same
# shape, cross_entropy logits (n, C) and integer class labels (n,).
LOSSES: dict[str, Callable[..., Tensor]] = {
    "mse": mse_loss,
    "bce": binary_cross_entropy,
    "cross_entropy": cross_entropy,
}
