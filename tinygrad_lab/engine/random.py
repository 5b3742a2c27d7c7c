"""The generator that factories, layers and data loaders draw from when no ``rng`` is given (``manual_seed``)."""

from __future__ import annotations

import numpy as np

from tinygrad_lab.engine import traceable

_default_rng: np.random.Generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator used when no ``rng`` is given; returns it."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)
    return _default_rng


def resolve_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng`` itself, or the default generator when it is None. Every draw of the engine comes through here,
    so a step that draws (a dropout mask, ``Tensor.randn``) is refused by ``tl.compile``, whose replay would
    repeat the first draw."""
    traceable.refuse("draws random numbers (a dropout mask, Tensor.randn, ...) each call")
    return _default_rng if rng is None else rng
