"""The ndarray methods numpy code calls on its arrays (``x.dot(w)``, ``p.argmax(axis=1)``, ``mask.any()``), for
Tensors: each is the numpy function of the same name, so it is the Tensor op numpy_dispatch maps it to (in the
graph) or numpy's own answer outside the graph, as a Tensor as torch's are (truth values as bool, indices as
int64)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import as_array
from tinygrad_lab.engine.torch_spellings import axis_keepdims


def _answer(name: str, t: Any, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None, dtype: Any) -> Any:
    """numpy's ``name`` (argmax, argmin, any, all) over ``t``'s array, with numpy's keywords or torch's, as a Tensor
    of ``dtype`` outside the graph (indices int64 and truth values bool, as torch's)."""
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_keepdims(name, axis, keepdims, dim, keepdim)
    arr = as_array(getattr(np, name)(t.data, axis=axis, keepdims=keepdims))
    return type(t)._wrap(arr if arr.dtype == dtype else arr.astype(dtype))


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
        return _answer("argmax", self, axis, keepdims, dim, keepdim, np.int64)

    def argmin(
        self: Any,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Any:
        """As argmax, with numpy's argmin."""
        return _answer("argmin", self, axis, keepdims, dim, keepdim, np.int64)

    def any(
        self: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Any:
        """Whether any element (along ``axis``, or torch's ``dim``) is true: a bool Tensor outside the graph."""
        return _answer("any", self, axis, keepdims, dim, keepdim, np.bool_)

    def all(
        self: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Any:
        """Whether every element (along ``axis``, or torch's ``dim``) is true: a bool Tensor outside the graph."""
        return _answer("all", self, axis, keepdims, dim, keepdim, np.bool_)
