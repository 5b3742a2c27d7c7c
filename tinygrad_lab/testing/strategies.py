"""hypothesis strategies for shapes, broadcastable shapes, arrays and tensors kept away from kinks and domain edges."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor

# Imported lazily: hypothesis is a test-time dependency (the `dev` extra), not a runtime one.


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
    return values


def positive_elements(low: float = 0.1, high: float = 3.0) -> Any:
    """Floats bounded away from 0: the domain of log, sqrt and division denominators."""
    return elements(low, high)


def arrays(shape: Any, elements: Any = None, *, distinct: bool = False, gap: float = 1e-2) -> Any:
    """float64 arrays of a shape (or a strategy of shapes). ``distinct=True`` draws values at least ``gap``
    apart, so max/min/sort have no ties within finite-difference reach."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    shape_strategy = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
    if distinct:

        def spaced(shape: tuple) -> Any:
            size = int(np.prod(shape))
            return st.permutations(range(size)).flatmap(
                lambda perm: st.floats(-1.0, 1.0).map(
                    lambda offset: (np.array(perm, dtype=np.float64) * gap * 10 + offset - size * gap * 5).reshape(
                        shape
                    )
                )
            )

        return shape_strategy.flatmap(spaced)
    values = _default_elements() if elements is None else elements  # never bool() a strategy
    return shape_strategy.flatmap(lambda s: hnp.arrays(np.float64, s, elements=values))


def _default_elements() -> Any:
    return elements()


def tensors(shape: Any = None, elements: Any = None, *, requires_grad: bool = True, distinct: bool = False) -> Any:
    """float64 Tensors (requiring grad by default) drawn like ``arrays``; shape defaults to ``shapes()``."""
    return arrays(shapes() if shape is None else shape, elements, distinct=distinct).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )
