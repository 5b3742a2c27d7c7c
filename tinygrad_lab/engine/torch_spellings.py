"""PyTorch's spellings on Tensor, so code ported from torch runs: its keywords beside numpy's (``dim=`` for
``axis=``, ``keepdim=`` for ``keepdims=``, ``correction=``/``unbiased=`` for ``ddof=``), resolved here only when
one is given (numpy's spelling costs two ``is None`` tests), and ``ValuesIndices``, what torch's ``max(dim)``,
``sort`` and ``topk`` give. torch's methods themselves are in torch_methods.py.

Giving both spellings of one parameter is a TypeError naming both. A numpy keyword left at its default counts as
not given: ``x.sum(keepdims=False, keepdim=True)`` keeps dims, as if only torch's had been written.
"""

from __future__ import annotations

from typing import Any, NamedTuple


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
