"""The factories ``Tensor.zeros/ones/full/eye/arange/randn/rand/uniform`` (also ``tl.zeros``...), mixed into
Tensor so tensor.py stays about the tensor itself, and ``tl.zeros_like``/``tl.ones_like``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_lab.engine.random import resolve_rng

if TYPE_CHECKING:
    from tinygrad_lab.engine.tensor import Tensor


def _shape_arg(shape: tuple) -> tuple:
    """Accept both f(2, 3) and f((2, 3))."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _new(arr: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    """A Tensor of ``arr``; Tensor is looked up here because tensor.py imports this module to define it."""
    from tinygrad_lab.engine.tensor import Tensor

    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


class Factories:
    """Mixed into Tensor; no state of its own."""

    __slots__ = ()

    @staticmethod
    def zeros(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
        return _new(np.zeros(_shape_arg(shape), dtype=dtype), dtype, requires_grad)

    @staticmethod
    def ones(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
        return _new(np.ones(_shape_arg(shape), dtype=dtype), dtype, requires_grad)

    @staticmethod
    def full(shape: Any, fill_value: float, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return _new(np.full(shape, fill_value, dtype=dtype), dtype, requires_grad)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
        return _new(np.eye(n, m, dtype=dtype), dtype, requires_grad)

    @staticmethod
    def arange(
        start: float, stop: float | None = None, step: float = 1, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """As torch: int64 when start, stop and step are all integers, else float64, unless ``dtype`` is given."""
        if dtype is None:
            dtype = np.int64 if all(isinstance(v, (int, np.integer)) for v in (start, stop or 0, step)) else np.float64
        return _new(np.arange(start, stop, step, dtype=dtype), dtype, requires_grad)

    @staticmethod
    def randn(
        *shape: Any, rng: np.random.Generator | None = None, dtype: Any = np.float64, requires_grad: bool = False
    ) -> Tensor:
        """Standard normal samples; ``rng`` defaults to the generator set by ``manual_seed``."""
        return _new(resolve_rng(rng).standard_normal(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def rand(
        *shape: Any, rng: np.random.Generator | None = None, dtype: Any = np.float64, requires_grad: bool = False
    ) -> Tensor:
        """Uniform samples in [0, 1)."""
        return _new(resolve_rng(rng).random(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def uniform(
        *shape: Any,
        low: float = 0.0,
        high: float = 1.0,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
        requires_grad: bool = False,
    ) -> Tensor:
        """Uniform samples in [low, high)."""
        return _new(resolve_rng(rng).uniform(low, high, _shape_arg(shape)), dtype, requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape and dtype, as torch.zeros_like."""
    return _new(np.zeros_like(t.data), t.dtype, requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape and dtype, as torch.ones_like."""
    return _new(np.ones_like(t.data), t.dtype, requires_grad)
