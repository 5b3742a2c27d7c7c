"""torch's selection ops: gather, index_select, masked_fill, sort, argsort and topk.

Each is indexing (GetItem, whose backward adds the gradient back at the chosen places, repeats accumulating) or
``where``, so gradients of every order and tl.compile come from those ops; what is new here is torch's reading
of the arguments, and its errors. Indices are int64 Tensors outside the graph, as torch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.autograd import state
from tinygrad_lab.engine.ops.common import _axis
from tinygrad_lab.engine.ops.elementwise import where
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.engine.torch_spellings import ValuesIndices


def data_of(t: Tensor) -> np.ndarray:
    """The array of ``t`` that ops compute on: under tl.compile the traced one, so a replay recomputes it."""
    return t.data if state.tracing is None else state.tracing.tensor_data(t)


def index_array(op: str, index: Any) -> np.ndarray:
    """An integer index (a Tensor, array or list) as an int64 array; a copy, so a later write into the index
    tensor does not move the gradient. Floats are refused, as torch refuses them."""
    arr = data_of(index) if isinstance(index, Tensor) else np.asanyarray(index)  # asanyarray: traced stays traced
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: index must hold integers, got dtype {arr.dtype} (make it with dtype=np.int64: "
            "tl.tensor of ints is float64 by default)"
        )
    return arr.astype(np.int64)


def _in_range(arr: np.ndarray, *, op: str, size: int, dim: int) -> np.ndarray:
    """``arr`` when every index is in [0, size), else an IndexError naming the op (torch takes no negative ones)."""
    bad = (arr < 0) | (arr >= size)
    if bad.any():
        raise IndexError(f"{op}: index {int(arr[bad][0])} is out of bounds for dim {dim} with size {size}")
    return arr


def checked_index(op: str, index: Any, size: int, dim: int) -> np.ndarray:
    """An index array checked to lie in [0, size), on every replay of a tl.compile step too."""
    return traceable.validated(_in_range, index_array(op, index), op=op, size=size, dim=dim)


def _grid(index: np.ndarray, dim: int) -> tuple:
    """The advanced index that picks ``x[i_0, ..., index[i], ..., i_n]`` for every position i of ``index``."""
    n = index.ndim
    return tuple(
        index if d == dim else np.arange(s).reshape([s if j == d else 1 for j in range(n)])
        for d, s in enumerate(index.shape)
    )


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """torch.gather: ``out[i][j] = x[index[i][j]][j]`` for dim 0 (and so on); ``index`` has x's number of dims,
    at most x's size in every other dim, and its shape is the output's. Gradients add up at repeated indices."""
    idx = index_array("gather", index)
    if max(idx.ndim, 1) != max(x.ndim, 1):
        raise ValueError(f"gather: index of shape {idx.shape} must have as many dims as the input {x.shape}")
    d = _axis(dim, x.ndim, "gather")
    if x.ndim == 0 or idx.ndim == 0:  # a 0-d tensor or index gathers as shape (1,)
        return gather(x.reshape(1), 0, idx.reshape(1)).reshape(idx.shape)
    if any(i > s for j, (i, s) in enumerate(zip(idx.shape, x.shape)) if j != d):
        raise ValueError(f"gather: index of shape {idx.shape} is larger than the input {x.shape} outside dim {d}")
    return x[_grid(checked_index("gather", idx, x.shape[d], d), d)]


def index_select(x: Tensor, dim: int, index: Any) -> Tensor:
    """torch.index_select: the entries ``index`` (a vector of ints) names along ``dim``, in its order."""
    idx = index_array("index_select", index)
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be a vector, got shape {idx.shape} (input {x.shape})")
    d = _axis(dim, x.ndim, "index_select")
    if x.ndim == 0:  # torch: a 0-d input takes one index and gives a 0-d result
        if idx.size != 1:
            raise ValueError(f"index_select: a 0-d tensor takes one index, got {idx.size}")
        return index_select(x.reshape(1), 0, idx).reshape(())
    return x[(slice(None),) * d + (checked_index("index_select", idx.reshape(-1), x.shape[d], d),)]


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """torch.masked_fill: ``value`` where the boolean ``mask`` (broadcast with x) is true; ``value`` a number or
    a 0-d Tensor, which gets the gradient of the places it fills."""
    m = data_of(mask) if isinstance(mask, Tensor) else np.asanyarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {m.dtype} (shape {m.shape})")
    try:
        np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast with the tensor {x.shape}") from None
    if isinstance(value, Tensor) and value.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    if not isinstance(value, Tensor):
        value = np.asarray(value, dtype=x.dtype)[()]  # a number: x's dtype, as torch
    return where(m, value, x)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort x along ``dim`` (int64), always stable: ties keep their order, in descending order
    too; NaN counts as larger than every number, as in torch."""
    return Tensor._wrap(_order(x, _axis(dim, x.ndim, "argsort"), descending))


def _order(x: Tensor, d: int, descending: bool) -> np.ndarray:
    a = data_of(x)
    if a.ndim == 0:
        return np.zeros_like(a, dtype=np.int64)
    if not descending:
        return np.argsort(a, axis=d, kind="stable")
    # descending and stable: the reversed tensor sorted ascending, read backwards (NaN then comes first)
    n = a.shape[d]
    return np.flip(n - 1 - np.argsort(np.flip(a, d), axis=d, kind="stable"), d)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """torch.sort: (values, indices) along ``dim``, stable (ties in their order; ``stable`` changes nothing);
    each value's gradient goes to the element its index names."""
    d = _axis(dim, x.ndim, "sort")
    idx = _order(x, d, descending)
    return ValuesIndices(_take(x, d, idx), Tensor._wrap(idx))


def _take(x: Tensor, d: int, idx: np.ndarray) -> Tensor:
    """x's entries at ``idx`` along dim d (idx of x's shape but in dim d): gather without its checks."""
    if x.ndim == 0:
        return x[()]
    return x[_grid(idx, d)]


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002  (torch's name)
    """torch.topk: the k largest (or smallest) entries along ``dim`` and their indices, in order (also for
    sorted=False, whose order torch leaves open); tied entries are taken first come first, NaN as the largest."""
    d = _axis(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k={k!r} is out of range for dim {d} of size {n} (tensor of shape {x.shape})")
    idx = _order(x, d, largest)
    if x.ndim:
        idx = idx[(slice(None),) * d + (slice(0, int(k)),)]
    return ValuesIndices(_take(x, d, idx), Tensor._wrap(idx))
