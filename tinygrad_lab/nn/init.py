"""Weight initialisation schemes by name: the lab's plain standard normal, Xavier/Glorot and Kaiming/He."""
from __future__ import annotations


import numpy as np

from tinygrad_lab.engine.tensor import Tensor

INITS = ("xavier", "glorot", "kaiming", "he", "randn")


def init_weight(init: str, fan_in: int, fan_out: int, rng: np.random.Generator | None) -> np.ndarray:
    """A (fan_in, fan_out) weight drawn by the named scheme; ``rng`` None uses tl.manual_seed's generator."""
    kind = str(init).lower()
    if kind in ("xavier", "glorot"):
        bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
        return Tensor.uniform(fan_in, fan_out, low=-bound, high=bound, rng=rng).data
    if kind in ("kaiming", "he"):
        return Tensor.randn(fan_in, fan_out, rng=rng).data * np.sqrt(2.0 / fan_in)
    if kind == "randn":
        return Tensor.randn(fan_in, fan_out, rng=rng).data
    raise ValueError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}")
