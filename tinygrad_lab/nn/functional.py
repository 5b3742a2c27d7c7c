"""Activations and losses as functions of Tensors: ``import tinygrad_lab.nn.functional as F``.

Everything is composed from Tensor ops, so gradients come from the engine. Losses never broadcast the
prediction against the target: an (n, 1) prediction with an (n,) target would silently give an (n, n)
loss, so differing shapes are a ValueError naming both.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.ops import BinaryCrossEntropy, Elu, Gelu, Hardtanh, MseLoss, Softplus, stack, where
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import (  # noqa: F401  (re-exported: F.conv2d, F.linear, ...)
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    dropout,
    embedding,
    flatten,
    layer_norm,
    linear,
    max_pool1d,
    max_pool2d,
    not_in_place,
)

REDUCTIONS = ("mean", "sum", "none")


# ---- activations ----------------------------------------------------------------------------------------------


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), overflow-safe."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); its gradient at 0 is 0."""
    not_in_place("relu", inplace)
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    not_in_place("leaky_relu", inplace)
    return x.leaky_relu(negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) with Phi the standard normal CDF, exactly (erf to float64 accuracy), as torch; ``approximate="tanh"``
    is torch's 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    if approximate == "none":
        return Gelu.apply(x)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (inner.tanh() + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x) (swish)."""
    not_in_place("silu", inplace)
    return x * x.sigmoid()


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1), computed with expm1."""
    not_in_place("elu", inplace)
    return Elu.apply(x, alpha=alpha)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, never overflowing, and x where beta x > threshold (torch's rule)."""
    return Softplus.apply(x, beta=beta, threshold=threshold)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val], with torch's gradient: 0 at the bounds (clip's is 1 there)."""
    not_in_place("hardtanh", inplace)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    return Hardtanh.apply(x, min_val=min_val, max_val=max_val)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6), gradient 0 at 0 and 6 as torch's."""
    not_in_place("relu6", inplace)
    return Hardtanh.apply(x, min_val=0.0, max_val=6.0)


def implicit_dim(name: str, ndim: int, stacklevel: int = 3) -> int:
    """torch's softmax dim when none is given: 0 for 0-, 1- and 3-D input, else 1, with torch's warning (reported
    ``stacklevel`` frames up: the caller of F.softmax)."""
    warnings.warn(
        f"{name}: implicit dimension choice is deprecated (as in torch); pass dim=", UserWarning, stacklevel=stacklevel
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """exp(log_softmax(x)): probabilities along ``axis`` (``dim``, torch's name), stable for large logits; with
    neither, torch's implicit choice (implicit_dim), so a ported ``F.softmax(x)`` gives torch's numbers."""
    if axis is None and dim is None:
        axis = implicit_dim("softmax", x.ndim)
    return x.softmax(dim=dim) if axis is None else x.softmax(axis, dim=dim)


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``axis`` (``dim``, torch's name): stable for logits of any size; with neither,
    torch's implicit choice (implicit_dim)."""
    if axis is None and dim is None:
        axis = implicit_dim("log_softmax", x.ndim)
    return x.log_softmax(dim=dim) if axis is None else x.log_softmax(axis, dim=dim)


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


def check_reduction(name: str, reduction: str) -> None:
    """A loss's ValueError for a ``reduction`` other than "mean", "sum" or "none", listing them."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: unknown reduction {reduction!r}; valid reductions: {', '.join(REDUCTIONS)}")


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    """Apply a loss's ``reduction`` argument: "mean", "sum" or "none" (elementwise)."""
    check_reduction(name, reduction)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


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


def l1_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|pred - target|, averaged by default; its gradient at pred = target is 0, as torch's."""
    target = _target("l1_loss", pred, target)
    return _reduce("l1_loss", (pred - target).abs(), reduction)


def _elementwise_weight(name: str, what: str, weight: Any, pred: Tensor) -> Any:
    """A weight (or pos_weight) that multiplies the loss elementwise: it must broadcast to the prediction's shape
    without growing it. Arrays and lists become arrays of pred's dtype; Tensors stay (and are differentiated)."""
    if not isinstance(weight, Tensor):
        try:
            weight = np.asanyarray(weight, dtype=pred.dtype)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {what} must be numbers, got {weight!r}") from None
    shape = tuple(weight.shape)
    try:
        fits = np.broadcast_shapes(shape, pred.shape) == pred.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: {what} of shape {shape} does not broadcast to the prediction's shape {pred.shape}")
    return weight


def binary_cross_entropy(pred: Tensor, target: Any, weight: Any = None, *, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p (e.g. a sigmoid's output), one node as torch's, times
    ``weight`` elementwise when given (it broadcasts to p's shape; "mean" still divides by the element count).

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
    loss = BinaryCrossEntropy.apply(pred, y)
    if weight is not None:
        loss = loss * _elementwise_weight("binary_cross_entropy", "weight", weight, pred)
    return _reduce("binary_cross_entropy", loss, reduction)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) as logsumexp([0, x]) = max(x, 0) + log(1 + exp(-|x|)): never overflows, and its
    gradient exp(x - softplus(x)) = sigmoid(x) is exact at x = 0 too (relu and abs composed would give
    their subgradient 0 there, i.e. a wrong 0 instead of 0.5)."""
    return stack([np.zeros_like(x.data), x]).logsumexp(axis=0)


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Any, weight: Any = None, *, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """binary_cross_entropy(sigmoid(logits), target) computed stably, as torch: (1 - y) x + l softplus(-x), where
    softplus(-x) = -log(sigmoid(x)) and l = 1 + (pos_weight - 1) y weighs the positive term (pos_weight, e.g. one
    per class of shape (C,), broadcasts to the logits' shape), then times ``weight`` elementwise when given.

    Finite for any logits (also +-1e3), with gradient sigmoid(x) - y without pos_weight.
    """
    name = "binary_cross_entropy_with_logits"
    y = _target(name, logits, target)
    positive = _softplus(-logits)
    if pos_weight is not None:
        pos_weight = _elementwise_weight(name, "pos_weight", pos_weight, logits)
        positive = positive * ((pos_weight - 1.0) * y + 1.0)
    loss = logits * (1.0 - y) + positive
    if weight is not None:
        loss = loss * _elementwise_weight(name, "weight", weight, logits)
    return _reduce(name, loss, reduction)


def cross_entropy(
    logits: Tensor,
    targets: Any,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of (N, C) logits, computed with log_softmax (stable), with torch's arguments: the
    class-index case is ``nll_loss(log_softmax(logits), targets)``.

    ``targets`` are either integer class indices of shape (N,) in [0, C), or class probabilities (one-hot or
    soft labels) of float dtype and the logits' shape. ``weight`` (C,) scales each class's term; with class indices
    "mean" divides by the summed weights of the targets (the count when unweighted), with probabilities by N.
    Samples whose target is ``ignore_index`` add nothing (all ignored: "mean" is NaN, its gradient 0, as torch).
    ``label_smoothing`` e mixes each target with the uniform distribution: (1 - e) target + e / C. As torch, the
    classes may also be axis 1 of (N, C, d1, ...) logits (targets (N, d1, ...)) or the only axis of (C,) ones.
    """
    name = "cross_entropy"
    check_reduction(name, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    t = targets.data if isinstance(targets, Tensor) else np.asanyarray(targets)  # (asanyarray: traced arrays stay)
    if t.dtype.kind in "iu":  # class indices, the common case: log_softmax, then nll_loss's terms
        rows, t, shape = _class_rows(name, logits, t)
        return _nll(name, rows.log_softmax(axis=-1), t, shape, weight, ignore_index, reduction, label_smoothing)
    if t.dtype.kind != "f":
        raise ValueError(f"{name}: targets must be integer class indices or float probabilities, got dtype {t.dtype}")
    if t.shape == (logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()):
        raise ValueError(
            f"{name}: logits have shape {logits.shape} and targets of shape {t.shape} have dtype "
            f"{t.dtype}: class indices must be integers (y.astype(np.int64); tl.tensor(y) makes floats of an "
            f"integer array unless given dtype=np.int64); float targets are probabilities of shape {logits.shape}"
        )
    if ignore_index >= 0:
        raise ValueError(f"{name}: ignore_index {ignore_index} applies to class indices, not to probabilities")
    rows, _, shape = _class_rows(name, logits, None)
    probs = _as_rows(_target(name, logits, targets))
    classes = rows.shape[1]
    w = None if weight is None else _class_weights(name, weight, classes, logits.dtype)
    if label_smoothing:
        probs = probs * (1.0 - label_smoothing) + label_smoothing / classes
    coefficients = -probs if w is None else probs * -w
    terms = rows.log_softmax(axis=-1) * (coefficients / rows.shape[0] if reduction == "mean" else coefficients)
    return terms.sum(axis=-1).reshape(shape) if reduction == "none" else terms.sum()


def nll_loss(
    input: Tensor, target: Any, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of (N, C) log-probabilities (a log_softmax's output) at integer class indices (N,):
    -w[y] input[y] per sample, with torch's ``weight`` (C,), ``ignore_index`` and ``reduction`` ("mean" divides
    by the summed weights of the targets). As torch, the classes may also be axis 1 of (N, C, d1, ...) input
    (target (N, d1, ...)) or the only axis of (C,) input (a 0-d target)."""
    name = "nll_loss"
    check_reduction(name, reduction)
    t = target.data if isinstance(target, Tensor) else np.asanyarray(target)  # (asanyarray: traced arrays stay)
    rows, t, shape = _class_rows(name, input, t)
    return _nll(name, rows, t, shape, weight, ignore_index, reduction, 0.0)


def _class_rows(name: str, x: Tensor, t: np.ndarray | None) -> tuple[Tensor, Any, tuple]:
    """torch's layouts of class scores, (N, C), (C,) or (N, C, d1, ...), as rows (M, C) with the class-index
    targets flattened to (M,) (checked: integers, one per row), and the shape a "none" reduction gives back."""
    if x.ndim == 0:
        raise ValueError(f"{name}: input must have shape (N, C), (C,) or (N, C, d1, ...), got a 0-d tensor")
    shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if t is not None:
        if t.dtype.kind not in "iu":
            raise ValueError(f"{name}: targets must be integer class indices, got dtype {t.dtype}")
        if t.shape != shape:
            raise ValueError(
                f"{name}: input has shape {x.shape}, so integer class targets must have shape {shape}, got {t.shape}"
            )
    if x.ndim == 2:
        return x, t, shape
    return _as_rows(x), (None if t is None else t.reshape(-1)), shape


def _as_rows(x: Any) -> Any:
    """Class scores or probabilities (a Tensor or an array) of shape (N, C), (C,) or (N, C, d1, ...) as (M, C)."""
    if x.ndim == 2:
        return x
    if x.ndim == 1:
        return x.reshape(1, -1)
    return np.transpose(x, (0, *range(2, x.ndim), 1)).reshape(-1, x.shape[1])  # (a Tensor's transpose for one)


def _nll(
    name: str,
    log_probs: Tensor,
    t: np.ndarray,
    shape: tuple,
    weight: Any,
    ignore_index: int,
    reduction: str,
    smoothing: float,
) -> Tensor:
    """The loss of (M, C) log-probabilities at class indices t (M,), smoothed by ``smoothing``; "none" gives
    ``shape``. Shared by nll_loss and cross_entropy."""
    classes = log_probs.shape[1]
    w = None if weight is None else _class_weights(name, weight, classes, log_probs.dtype)
    t = traceable.validated(class_indices_in_range, t, classes=classes, ignore_index=ignore_index, name=name)
    mask, coefficients = _class_index_terms(t, classes, w, ignore_index, reduction, smoothing, log_probs)
    terms = where(mask, log_probs, 0.0) * coefficients  # where: a -inf log-probability of an unused class adds 0
    if reduction != "none":
        return terms.sum()
    out = terms.sum(axis=-1)
    return out if out.shape == shape else out.reshape(shape)


def _class_weights(name: str, weight: Any, classes: int, dtype: np.dtype) -> np.ndarray:
    """The per-class weights of cross_entropy or nll_loss as a constant array of the input's dtype, (classes,)."""
    if isinstance(weight, Tensor):
        if weight.requires_grad:
            raise ValueError(
                f"{name}: weight is used as a constant (torch does not differentiate it either); pass weight.detach()"
            )
        weight = weight.data
    w = np.asanyarray(weight)
    if w.shape != (classes,) or w.dtype.kind not in "iuf":
        raise ValueError(
            f"{name}: weight must hold a number for each of the {classes} classes, got shape {w.shape} "
            f"and dtype {w.dtype}"
        )
    return w.astype(dtype)


def _class_index_terms(
    t: np.ndarray,
    classes: int,
    w: np.ndarray | None,
    ignore_index: int,
    reduction: str,
    smoothing: float,
    logits: Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """What cross_entropy with class indices sums, as constants of the logits' shape: ``mask`` the log-probabilities
    used (each kept sample's target class, or its whole row with label smoothing) and ``coefficients`` their
    factors: -(1 - e) w[t] at the target, -e w[c] / C in every class of the row, divided by the targets' summed
    weights for "mean" (0 of them gives torch's NaN, with gradient 0 for ignored samples). Every step is a numpy
    operation on ``t``, so a captured step recomputes it on each call."""
    dtype = logits.dtype
    target = t[:, None] == np.arange(classes)  # (n, C): the one-hot targets of the kept samples
    if 0 <= ignore_index < classes:  # (another ignore_index matches no class)
        target &= (t != ignore_index)[:, None]
    target_weights = target.astype(dtype) if w is None else target * w
    with np.errstate(divide="ignore", invalid="ignore"):  # a mean of nothing: NaN, as torch
        denominator = target_weights.sum() if reduction == "mean" else 1.0
        coefficients = target_weights * (-(1.0 - smoothing) / denominator)
        if not smoothing:
            return target, coefficients.astype(dtype, copy=False)
        kept = (t != ignore_index)[:, None]
        coefficients = coefficients + kept * ((-smoothing / classes / denominator) * (1.0 if w is None else w))
    return np.broadcast_to(kept, logits.shape), coefficients.astype(dtype, copy=False)


def class_indices_in_range(
    t: np.ndarray, classes: int, ignore_index: int = -100, name: str = "cross_entropy"
) -> np.ndarray:
    """``t`` itself when every class index other than ``ignore_index`` lies in [0, classes); else the loss's
    one-line error."""
    if not t.size or 0 <= t.min() and t.max() < classes:
        return t
    used = t[t != ignore_index]
    if used.size and (used.min() < 0 or used.max() >= classes):
        raise ValueError(
            f"{name}: class indices must lie in [0, {classes}), got values in [{used.min()}, {used.max()}] "
            f"(ignore_index {ignore_index} aside)"
        )
    return t


# The one registry of losses by name (the CLI reads it): mse and bce take predictions and targets of the same
# shape, cross_entropy logits (n, C) and integer class labels (n,).
LOSSES: dict[str, Callable[..., Tensor]] = {
    "mse": mse_loss,
    "bce": binary_cross_entropy,
    "cross_entropy": cross_entropy,
}
