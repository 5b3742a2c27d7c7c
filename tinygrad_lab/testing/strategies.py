"""hypothesis strategies for shapes, broadcastable shapes, arrays and tensors kept away from kinks and domain edges."""

from __future__ import annotations

import operator
import weakref
from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor

# Imported lazily: hypothesis is a test-time dependency (the `dev` extra), not a runtime one.

# The domain (low, high, away_from, margin) of each strategy elements() made: distinct draws space their
# values within it, which they cannot do for a strategy they know nothing about.
_DOMAINS: weakref.WeakKeyDictionary[Any, tuple[float, float, float | None, float]] = weakref.WeakKeyDictionary()


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> Any:
    """Array shapes, 0-d and size-1 axes included."""
    from hypothesis.extra import numpy as hnp

    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(n: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> Any:
    """Tuples of ``n`` shapes that broadcast together (different ranks and size-1 axes included)."""
    from hypothesis.extra import numpy as hnp

    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims, max_side=max_side).map(
        lambda s: s.input_shapes
    )


def elements(low: float = -3.0, high: float = 3.0, *, away_from: float | None = None, margin: float = 1e-2) -> Any:
    """Finite floats in [low, high]; with ``away_from=c`` none within ``margin`` of c (a kink such as relu's or
    abs's 0, where finite differences straddle two slopes)."""
    from hypothesis import strategies as st

    values = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    if away_from is not None:
        values = values.filter(lambda v: abs(v - away_from) >= margin)
    _DOMAINS[values] = (float(low), float(high), away_from, margin)
    return values


def positive_elements(low: float = 0.1, high: float = 3.0) -> Any:
    """Floats bounded away from 0: the domain of log, sqrt and division denominators."""
    return elements(low, high)


def arrays(shape: Any, elements: Any = None, *, distinct: bool = False, gap: float = 1e-2) -> Any:
    """float64 arrays of a shape (an int, a tuple or a strategy of shapes), drawn from ``elements`` (default
    ``elements()``). ``distinct=True`` draws values at least ``gap`` apart, so max/min/sort have no ties within
    finite-difference reach, from the domain of an ``elements()`` or ``positive_elements()`` strategy."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    shape_strategy = shape if isinstance(shape, st.SearchStrategy) else st.just(_as_shape(shape))
    values = _default_elements() if elements is None else elements  # never bool() a strategy
    if distinct:
        if values not in _DOMAINS:
            raise ValueError(
                f"arrays: distinct=True spaces values within the bounds of an elements() or positive_elements() "
                f"strategy, and cannot know those of {values!r}; give elements(low, high, away_from=...) instead"
            )
        return shape_strategy.flatmap(lambda s: _spaced(s, *_DOMAINS[values], gap))
    return shape_strategy.flatmap(lambda s: hnp.arrays(np.float64, s, elements=values))


def _as_shape(shape: Any) -> tuple:
    """A shape as numpy reads one: an int is a 1-d shape."""
    try:
        return (operator.index(shape),)
    except TypeError:
        return tuple(shape)


def _spaced(shape: tuple, low: float, high: float, away_from: float | None, margin: float, gap: float) -> Any:
    """Arrays of ``shape`` whose values lie in [low, high], none within ``margin`` of ``away_from``, and are
    pairwise at least ``gap`` apart: sorted offsets in the allowed length less the gaps, each spread by its
    rank's share of them, then laid onto the allowed intervals (skipping the excluded one) and shuffled. A
    single-point domain holds one value, or any number with gap 0."""
    from hypothesis import strategies as st

    size = int(np.prod(shape))
    slack = 16 * float(np.spacing(max(abs(low), abs(high), 1.0)))  # rounding must not close a gap or an edge
    intervals = [(low, high)]
    if away_from is not None:
        intervals = [(low, min(high, away_from - margin)), (max(low, away_from + margin), high)]
    # an interval too short to step inside its edges by the slack still holds its midpoint
    intervals = [(a + slack, b - slack) if b - a > 2 * slack else ((a + b) / 2,) * 2 for a, b in intervals if b >= a]
    step = gap + slack if gap > 0 else 0.0  # no gap to keep, none for rounding to close
    free = sum(b - a for a, b in intervals) - (size - 1) * step
    if size and (free < 0 or not intervals):
        raise ValueError(f"arrays: {size} values {gap} apart do not fit in {_describe(low, high, away_from, margin)}")

    def lay(offsets: list, order: list) -> np.ndarray:
        flat = np.empty(size)
        for rank, (k, t) in enumerate(zip(order, sorted(offsets))):
            t += rank * step
            for a, b in intervals:
                if t <= b - a or (a, b) == intervals[-1]:
                    flat[k] = min(a + t, b)
                    break
                t -= b - a
        return flat.reshape(shape)

    offsets = st.lists(st.floats(0.0, max(free, 0.0)), min_size=size, max_size=size)
    return st.tuples(offsets, st.permutations(range(size))).map(lambda drawn: lay(*drawn))


def _describe(low: float, high: float, away_from: float | None, margin: float) -> str:
    where = f"[{low}, {high}]"
    return where if away_from is None else f"{where} without the {margin} around {away_from}"


def _default_elements() -> Any:
    return elements()


def tensors(shape: Any = None, elements: Any = None, *, requires_grad: bool = True, distinct: bool = False) -> Any:
    """float64 Tensors (requiring grad by default) drawn like ``arrays``; shape defaults to ``shapes()``."""
    return arrays(shapes() if shape is None else shape, elements, distinct=distinct).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )
