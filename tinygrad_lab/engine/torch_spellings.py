"""PyTorch's spellings on Tensor, so code ported from torch runs: its keywords beside numpy's (``dim=`` for
``axis=``, ``keepdim=`` for ``keepdims=``, ``correction=``/``unbiased=`` for ``ddof=``), resolved here only when
one is given (numpy's spelling costs two ``is None`` tests), and torch's methods ``view``, ``numel``, ``clamp``,
``amax``, ``amin`` and ``max(dim=)``/``min(dim=)``'s (values, indices).

Giving both spellings of one parameter is a TypeError naming both. A numpy keyword left at its default counts as
not given: ``x.sum(keepdims=False, keepdim=True)`` keeps dims, as if only torch's had been written.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tinygrad_lab.engine.factories import _shape_arg


class _NotGiven:
    """``var``/``std``'s default ``dim``: an explicit ``dim=None`` is torch's call (all axes, correction 1)."""

    def __repr__(self) -> str:
        return "<all axes>"


NOT_GIVEN: Any = _NotGiven()


def either(op: str, name: str, value: Any, default: Any, torch_name: str, torch_value: Any) -> Any:
    """The value of a parameter numpy calls ``name`` and torch ``torch_name`` (given when not None)."""
    if torch_value is None:
        return value
    if value is not default and value != default:
        raise TypeError(
            f"{op}: got both {name}={value!r} (numpy's name) and {torch_name}={torch_value!r} (torch's); give one"
        )
    return torch_value


def axis_keepdims(op: str, axis: Any, keepdims: Any, dim: Any, keepdim: Any) -> tuple[Any, Any]:
    """``axis`` and ``keepdims`` from numpy's or torch's keywords."""
    return either(op, "axis", axis, None, "dim", dim), either(op, "keepdims", keepdims, False, "keepdim", keepdim)


def var_args(
    op: str, axis: Any, keepdims: Any, ddof: Any, dim: Any, keepdim: Any, correction: Any, unbiased: Any
) -> tuple[Any, Any, Any]:
    """``axis``, ``keepdims`` and ``ddof`` of var/std. Any torch keyword (dim, keepdim, correction, unbiased)
    makes it torch's call, whose default correction is 1: a ported ``x.var(dim=1)`` gives torch's number, not
    numpy's ddof=0 one. ``ddof`` given with ``dim`` is taken as given."""
    if dim is NOT_GIVEN and keepdim is None and correction is None and unbiased is None:
        return axis, keepdims, 0 if ddof is None else ddof
    if dim is not NOT_GIVEN:
        axis = either(op, "axis", axis, None, "dim", dim)
    keepdims = either(op, "keepdims", keepdims, False, "keepdim", keepdim)
    if correction is not None and unbiased is not None:
        raise TypeError(f"{op}: got both correction={correction!r} and unbiased={unbiased!r}; give one (as torch)")
    removed = correction if unbiased is None else int(bool(unbiased))
    if removed is None:
        return axis, keepdims, 1 if ddof is None else ddof
    if ddof is not None:
        name = "correction" if unbiased is None else "unbiased"
        raise TypeError(
            f"{op}: got both ddof={ddof!r} (numpy's name) and {name}={correction if unbiased is None else unbiased!r} "
            "(torch's); give one"
        )
    return axis, keepdims, removed


class ValuesIndices(NamedTuple):
    """What ``max(dim=)`` and ``min(dim=)`` return, as torch's ``torch.return_types.max``."""

    values: Any
    indices: Any


class TorchMethods:
    """Mixed into Tensor; no state of its own."""

    __slots__ = ()

    def numel(self: Any) -> int:
        """The number of elements (torch's name for ``size``)."""
        return int(self.data.size)

    def view(self: Any, *shape: Any) -> Any:
        """``reshape`` that shares this tensor's memory, as torch's view; a shape that needs a copy (a transposed
        tensor flattened) is an error there and here: use ``reshape``, which copies when it must."""
        shape = _shape_arg(shape)
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
            raise TypeError(f"view: takes a shape of ints, got {shape!r} (view(dtype) is not supported: use astype)")
        out = self.reshape(shape)
        plain = self.data.view(np.ndarray)  # numpy's own view, which tl.compile's tracer does not record
        if plain.size and not np.may_share_memory(plain.reshape(shape), plain):
            raise RuntimeError(
                f"view: shape {shape} of a tensor of shape {self.shape} with strides {self.data.strides} needs a copy "
                "(its elements are not in that order in memory), which torch's view refuses too: use reshape(...)"
            )
        return out

    def clamp(self: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002  (torch's names)
        """torch's clamp, out of place (``clamp_`` is in place): ``clip``'s op, gradient 1 inside [min, max] with
        the bounds included and 0 outside, as torch's."""
        if min is None and max is None:
            raise TypeError(f"clamp: at least one of min and max must be given (tensor of shape {self.shape})")
        return self.clip(min, max)

    def amax(self: Any, dim: Any = (), keepdim: bool = False) -> Any:
        """torch's amax: the max over ``dim`` (every axis when empty); tied maxima share the gradient evenly."""
        return self.max(axis=_every_axis_if_empty(dim, self.ndim), keepdims=keepdim)

    def amin(self: Any, dim: Any = (), keepdim: bool = False) -> Any:
        """torch's amin: the min over ``dim`` (every axis when empty); tied minima share the gradient evenly."""
        return self.min(axis=_every_axis_if_empty(dim, self.ndim), keepdims=keepdim)

    def _extreme_torch(self: Any, op: str, axis: Any, keepdims: Any, dim: Any, keepdim: Any) -> ValuesIndices:
        """torch's ``max(dim, keepdim)`` / ``min(dim, keepdim)`` (a positional axis is the dim): the values, whose
        gradient goes to the one element ``indices`` (int64) names, the first of tied ones, as torch's."""
        dim = either(op, "axis", axis, None, "dim", dim)
        keepdim = bool(either(op, "keepdims", keepdims, False, "keepdim", keepdim))
        if dim is None:
            raise TypeError(
                f"{op}: keepdim= goes with a dim (torch's {op}(dim, keepdim) gives values and indices); for the {op} "
                "of every element, keeping dims, write keepdims=True"
            )
        ndim = max(self.ndim, 1)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -ndim <= dim < ndim:
            raise ValueError(
                f"{op}: dim must be one axis of the tensor of shape {self.shape}, got {dim!r} (for several axes: "
                f"a{op}(dim=...))"
            )
        x = self.reshape(1) if self.ndim == 0 else self
        dim = int(dim) % ndim
        if x.shape[dim] == 0:
            raise ValueError(f"{op}: dim {dim} of the tensor of shape {self.shape} has size 0: no {op} to take")
        at = (np.argmax if op == "max" else np.argmin)(x.data, axis=dim, keepdims=True).astype(np.int64)
        grid = [np.arange(s).reshape([s if j == i else 1 for j in range(x.ndim)]) for i, s in enumerate(x.shape)]
        values = x[tuple(at if i == dim else g for i, g in enumerate(grid))]
        shape = at.shape if keepdim and self.ndim else self.shape[:dim] + self.shape[dim + 1 :]
        return ValuesIndices(values.reshape(shape), type(self)._wrap(at.reshape(shape)))


def _every_axis_if_empty(dim: Any, ndim: int) -> Any:
    """torch's ``dim=()`` of amax/amin: every axis (as a tuple, not None, so NaN maxima follow amax's rule)."""
    return tuple(range(ndim)) if isinstance(dim, (tuple, list)) and not dim else dim
