"""Activations that composed ops would compute less exactly: ``Erf`` (numpy has no erf), ``Gelu`` (torch's exact
form, x Phi(x)), ``Elu`` (expm1 near 0), ``Softplus`` (overflow-free, torch's threshold) and ``Hardtanh`` (torch's
gradient, 0 at the bounds). Each backward is written with the engine's array-or-Tensor functions, so it holds at
every order of derivative, and each forward uses only ufuncs ``tl.compile``'s native backend lowers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _const
from tinygrad_lab.engine.ops.elementwise import exp, sigmoid, where
from tinygrad_lab.engine.tensor import Tensor

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)
_SQRT1_2 = math.sqrt(0.5)  # torch's M_SQRT1_2
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Below _SERIES_END erf is the series 2/sqrt(pi) x exp(-x^2) sum_n (2x^2)^n / (1 3 5 ... (2n+1)), of positive terms
# (no cancellation); above it, 1 - erfc with erfc's continued fraction exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 /
# (x + (3/2) / ...))). 30 terms and a depth of 50 keep erf within 4 units in the last place of math.erf over all x.
_SERIES_END = 2.0
_SERIES = [2**n / math.prod(range(1, 2 * n + 2, 2)) for n in range(30)]  # 2^n / (2n+1)!!, each correctly rounded
_FRACTION_DEPTH = 50
_ONE_FROM = 6.0  # erfc(6) = 2e-17 is below half an ulp of 1: erf is 1.0 from here on (and no overflow)
_ROUNDER = 1.5 * 2.0**32  # (s + _ROUNDER) - _ROUNDER: s to a multiple of 2^-20, whose square is exact


def _exp_minus_square(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s^2, exp(-s^2)) for float64 s >= 0, with s^2 split as z^2 + d (z = s rounded to 20 fractional bits, so z^2
    is exact) and the exponential taken of the parts: within two ulps where exp(-(s * s)) would be off by s^2 ulps."""
    z = (s + _ROUNDER) - _ROUNDER
    d = (s - z) * (s + z)
    square = z * z
    return square + d, np.exp(-square) * np.exp(-d)


def erf_array(a: np.ndarray) -> np.ndarray:
    """The error function of a float array, to a few units in the last place of float64 (float32 input is computed
    in float64 and rounded back); erf(+-inf) = +-1, NaN stays NaN. Every step is a ufunc or np.where on all elements
    (no branch on values), so ``tl.compile`` records it and its native backend lowers it."""
    x = a.astype(np.float64)
    magnitude = np.abs(x)
    small = np.minimum(magnitude, _SERIES_END)  # each formula on its own range: no overflow, no NaN from the other
    square, gauss = _exp_minus_square(small)
    total = square * _SERIES[-1] + _SERIES[-2]
    for c in reversed(_SERIES[:-2]):
        total = total * square + c
    series = (_TWO_OVER_SQRT_PI * np.minimum(np.maximum(x, -_SERIES_END), _SERIES_END)) * gauss * total
    large = np.minimum(np.maximum(magnitude, _SERIES_END), _ONE_FROM)
    _, gauss = _exp_minus_square(large)
    fraction = large
    for k in range(_FRACTION_DEPTH, 0, -1):
        fraction = large + (0.5 * k) / fraction
    tail = 1.0 - gauss / (_SQRT_PI * fraction)
    return np.where(magnitude <= _SERIES_END, series, np.where(x < 0, -tail, tail)).astype(a.dtype)


class Erf(Function):
    """erf(x); its slope is 2 / sqrt(pi) exp(-x^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (exp(-(x * x)) * _TWO_OVER_SQRT_PI)


def erf(x: Any) -> Any:
    """The error function of a Tensor (recorded) or of an array."""
    if isinstance(x, Tensor):
        return Erf.apply(x)
    return erf_array(x if isinstance(x, np.ndarray) else np.asarray(x, dtype=np.float64))  # (traced arrays stay)


class Gelu(Function):
    """torch's exact GELU, x Phi(x) = x / 2 (1 + erf(x / sqrt(2))); its slope is Phi(x) + x phi(x)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        ctx.cdf = (1.0 + erf_array(a * _SQRT1_2)) * 0.5  # (times 0.5 is exact: a * cdf is torch's a * 0.5 * (1 + erf))
        return a * ctx.cdf

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # a first-order backward reuses the forward's Phi(x); a recorded one computes it again, differentiably
        cdf = (erf(x * _SQRT1_2) + 1.0) * 0.5 if isinstance(x, Tensor) else ctx.cdf
        return grad * (cdf + x * exp(x * x * -0.5) * _INV_SQRT_2PI)


class Elu(Function):
    """x where x > 0, else alpha (exp(x) - 1) by expm1 (exact near 0); slope 1, else alpha exp(x) (alpha at 0, as
    torch)."""

    @staticmethod
    def forward(ctx, a, alpha=1.0):
        ctx.save_for_backward(a)
        ctx.alpha = alpha
        return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0.0))).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        slope = exp(x) if isinstance(x, Tensor) else np.exp(np.minimum(x, 0.0))  # (an array: exp of x > 0 unused)
        return where(_const(x) > 0, grad, grad * slope * ctx.alpha)


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, as max(bx, 0) + log1p(exp(-|bx|)) (never overflows), and x itself where
    beta x > threshold (torch's rule); slope sigmoid(beta x), and 1 above the threshold."""

    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=20.0):
        ctx.save_for_backward(a)
        ctx.beta, ctx.threshold = beta, threshold
        scaled = a * beta
        smooth = (np.maximum(scaled, 0.0) + np.log1p(np.exp(-np.abs(scaled)))) / beta
        return np.where(scaled > threshold, a, smooth).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return where(_const(x) * ctx.beta > ctx.threshold, grad, grad * _sigmoid(x * ctx.beta))


def _sigmoid(z: Any) -> Any:
    """sigmoid of a Tensor (recorded, exact at every order) or of an array (a traced one stays traced), without
    overflow: exp(-|z|) / (1 + exp(-|z|)) below 0."""
    if isinstance(z, Tensor):
        return sigmoid(z)
    small = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, small) / (1.0 + small)


class Hardtanh(Function):
    """x clipped to [min_val, max_val]; slope 1 strictly inside, 0 at the bounds and outside (torch's; clip's
    slope is 1 at the bounds)."""

    backward_reads_input = True

    @staticmethod
    def forward(ctx, a, min_val=-1.0, max_val=1.0):
        ctx.save_for_backward((a > min_val) & (a < max_val))
        return np.minimum(np.maximum(a, min_val), max_val).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return where(inside, grad, 0.0)
