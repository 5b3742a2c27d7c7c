"""The ndarray methods numpy code calls on its arrays (``x.dot(w)``, ``p.argmax(axis=1)``, ``mask.any()``), for
Tensors: each is the numpy function of the same name, so it is the Tensor op numpy_dispatch maps it to (in the
graph) or numpy's own answer (indices and truth values, which carry no gradient)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.torch_spellings import axis_keepdims


class ArrayMethods:
    """Mixed into Tensor; no state of its own."""

    __slots__ = ()

    def dot(self: Any, other: Any) -> Any:
        return np.dot(self, other)

    def ravel(self: Any) -> Any:
        return np.ravel(self)

    def copy(self: Any) -> Any:
        """A copy in the graph (numpy's copy, torch's clone)."""
        return np.copy(self)

    def round(self: Any, decimals: int = 0) -> Any:
        """Rounded values outside the graph (their slope is 0 almost everywhere)."""
        return np.round(self, decimals)

    def argmax(
        self: Any,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Any:
        """numpy's argmax (an integer array), also under torch's keyword names ``dim`` and ``keepdim``."""
        if dim is not None or keepdim is not None:
            axis, keepdims = axis_keepdims("argmax", axis, keepdims, dim, keepdim)
        return np.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(
        self: Any,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Any:
        """numpy's argmin (an integer array), also under torch's keyword names ``dim`` and ``keepdim``."""
        if dim is not None or keepdim is not None:
            axis, keepdims = axis_keepdims("argmin", axis, keepdims, dim, keepdim)
        return np.argmin(self, axis=axis, keepdims=keepdims)

    def any(self: Any, axis: int | tuple | None = None, keepdims: bool = False) -> Any:
        return np.any(self, axis=axis, keepdims=keepdims)

    def all(self: Any, axis: int | tuple | None = None, keepdims: bool = False) -> Any:
        return np.all(self, axis=axis, keepdims=keepdims)
