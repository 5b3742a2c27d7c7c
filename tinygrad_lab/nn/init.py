"""Weight initialisation schemes by name: PyTorch's default, the lab's plain standard normal, Xavier/Glorot and
Kaiming/He. Weights come out in PyTorch's layout, (out_features, in_features) and (out, in/groups, *kernel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.random import resolve_rng as _rng

INITS = ("default", "xavier", "glorot", "kaiming", "he", "randn")


def uniform_fan_in(shape: tuple, fan_in: int, rng: np.random.Generator | None, dtype: Any = np.float64) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights (kaiming_uniform with a=sqrt(5)) and
    biases of Linear and Conv layers."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return _rng(rng).uniform(-bound, bound, shape).astype(dtype, copy=False)


def init_weight(
    init: str, fan_in: int, fan_out: int, rng: np.random.Generator | None, dtype: Any = np.float64
) -> np.ndarray:
    """An (fan_out, fan_in) weight drawn by the named scheme; ``rng`` None uses tl.manual_seed's generator.

    "default" is PyTorch's; the others draw an (fan_in, fan_out) array, as the lab writes x @ w, and return its
    transpose (a view), so the lab's "randn" weights are the very numbers, in the very memory, of its reference."""
    kind = str(init).lower()
    if kind == "default":
        return uniform_fan_in((fan_out, fan_in), fan_in, rng, dtype)
    gen = _rng(rng)
    if kind in ("xavier", "glorot"):
        bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
        w = gen.uniform(-bound, bound, (fan_in, fan_out))
    elif kind in ("kaiming", "he"):
        w = gen.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    elif kind == "randn":
        w = gen.standard_normal((fan_in, fan_out))
    else:
        raise ValueError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}")
    return w.astype(dtype, copy=False).T
