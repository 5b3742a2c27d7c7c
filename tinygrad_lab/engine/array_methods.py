"""The ndarray methods numpy code calls on its arrays (``x.dot(w)``, ``p.argmax(axis=1)``, ``mask.any()``), for
Tensors: each is the numpy function of the same name, so it is the Tensor op numpy_dispatch maps it to (in the
graph) or numpy's own answer outside the graph, as a Tensor as torch's are (truth values as bool, indices as
int64)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import as_array
from tinygrad_lab.engine.torch_spellings import axis_keepdims


def _indices(t: Any, found: Any) -> Any:
    """numpy's indices (an intp array, or a scalar for the whole tensor) as an int64 Tensor outside the graph."""
    arr = as_array(found)
    return type(t)._wrap(arr if arr.dtype == np.int64 else arr.astype(np.int64))


def _indices_of(name: str, t: Any, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None) -> Any:
    """numpy's ``name`` ("argmax" or "argmin") over ``t``'s array with numpy's keywords or torch's, as ``_indices``."""
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_keepdims(name, axis, keepdims, dim, keepdim)
    return _indices(t, getattr(np, name)(t.data, axis=axis, keepdims=keepdims))


def _truth(name: str, t: Any, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None) -> Any:
    """numpy's ``name`` ("any" or "all") over ``t``'s array with numpy's keywords or torch's, as a bool Tensor."""
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_keepdims(name, axis, keepdims, dim, keepdim)
    return type(t)._wrap(as_array(getattr(np, name)(t.data, axis=axis, keepdims=keepdims)))


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
        """The indices numpy's argmax gives, as an int64 Tensor outside the graph (torch's); numpy's keywords or
        torch's ``dim`` and ``keepdim``."""
        return _indices_of("argmax", self, axis, keepdims, dim, keepdim)

    def argmin(
        self: Any,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Any:
        """As argmax, with numpy's argmin."""
        return _indices_of("argmin", self, axis, keepdims, dim, keepdim)

    def any(
        self: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Any:
        """Whether any element (along ``axis``, or torch's ``dim``) is true: a bool Tensor outside the graph."""
        return _truth("any", self, axis, keepdims, dim, keepdim)

    def all(
        self: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Any:
        """Whether every element (along ``axis``, or torch's ``dim``) is true: a bool Tensor outside the graph."""
        return _truth("all", self, axis, keepdims, dim, keepdim)
