"""torch's top-level functions for the ops that exist (``tl.sum(x, dim=0)``, ``tl.max(x, 1)``, ``tl.matmul(a, b)``,
``tl.softmax(x, dim=1)``, ``tl.from_numpy(arr)``...), each a call of the Tensor method of the same name with
torch's signature, so a ported ``torch.f(x, ...)`` reads ``tl.f(x, ...)``. Re-exported by the package.

The functions named as Python's builtins (``sum``, ``max``, ``min``, ``pow``) shadow them in this module: nothing
here calls the builtins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.ops import MatMul, maximum, minimum
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.engine.torch_methods import _check_device

__all__ = [
    "sum",
    "mean",
    "var",
    "std",
    "logsumexp",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "matmul",
    "softmax",
    "log_softmax",
    "clamp",
    "clip",
    "neg",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "flatten",
    "reshape",
    "transpose",
    "permute",
    "squeeze",
    "unsqueeze",
    "t",
    "numel",
    "is_tensor",
    "from_numpy",
    "as_tensor",
    "index_select",
    "masked_fill",
    "sort",
    "argsort",
    "topk",
    "cumsum",
    "cumprod",
    "flip",
    "roll",
    "tril",
    "triu",
    "split",
    "chunk",
    "unbind",
    "repeat_interleave",
]


def _tensor(op: str, input: Any) -> Tensor:
    """``input`` itself, which torch's functions need to be a tensor; anything else is a TypeError naming ``op``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"tl.{op}: expected a Tensor, got {type(input).__name__} (tl.tensor or tl.as_tensor makes one)")
    return input


# ---- reductions ----------------------------------------------------------------------------------------------------
def sum(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """``input.sum(dim, keepdim)``: over every element unless ``dim`` (an int or a tuple) is given."""
    return _tensor("sum", input).sum(dim=dim, keepdim=keepdim)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _tensor("mean", input).mean(dim=dim, keepdim=keepdim)


def var(
    input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None
) -> Tensor:
    """torch.var: correction 1 unless ``correction=`` or ``unbiased=`` says otherwise (not numpy's ddof 0)."""
    return _tensor("var", input).var(dim=dim, keepdim=keepdim, correction=correction, unbiased=unbiased)


def std(
    input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None
) -> Tensor:
    """torch.std: correction 1 unless ``correction=`` or ``unbiased=`` says otherwise (not numpy's ddof 0)."""
    return _tensor("std", input).std(dim=dim, keepdim=keepdim, correction=correction, unbiased=unbiased)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return _tensor("logsumexp", input).logsumexp(dim=dim, keepdim=keepdim)


def max(input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """torch.max: ``max(x)`` the largest element; ``max(x, dim, keepdim=False)`` the (values, indices) along dim;
    ``max(x, other)`` with a tensor ``other``, the elementwise maximum (``tl.maximum``)."""
    x = _tensor("max", input)
    if other is not None or isinstance(dim, (Tensor, np.ndarray)):
        return maximum(x, dim if other is None else other)
    return x.max() if dim is None and not keepdim else x.max(dim, keepdim)


def min(input: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """torch.min: ``min(x)`` the smallest element; ``min(x, dim, keepdim=False)`` the (values, indices) along dim;
    ``min(x, other)`` with a tensor ``other``, the elementwise minimum (``tl.minimum``)."""
    x = _tensor("min", input)
    if other is not None or isinstance(dim, (Tensor, np.ndarray)):
        return minimum(x, dim if other is None else other)
    return x.min() if dim is None and not keepdim else x.min(dim, keepdim)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    return _tensor("amax", input).amax(dim, keepdim)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    return _tensor("amin", input).amin(dim, keepdim)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """The int64 indices of the largest elements, outside the graph (of the flattened tensor unless ``dim``)."""
    return _tensor("argmax", input).argmax(dim=dim, keepdim=keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _tensor("argmin", input).argmin(dim=dim, keepdim=keepdim)


def softmax(input: Tensor, dim: int) -> Tensor:
    return _tensor("softmax", input).softmax(dim=dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return _tensor("log_softmax", input).log_softmax(dim=dim)


# ---- arithmetic and comparisons -----------------------------------------------------------------------------------
def matmul(input: Any, other: Any) -> Tensor:
    """``input @ other``."""
    return MatMul.apply(_tensor("matmul", input), other)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    return _tensor("clamp", input).clamp(min, max)


clip = clamp  # torch.clip is torch.clamp


def neg(input: Tensor) -> Tensor:
    return -_tensor("neg", input)


def add(input: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other``."""
    return _tensor("add", input).add(other, alpha=alpha)


def sub(input: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other``."""
    return _tensor("sub", input).sub(other, alpha=alpha)


def mul(input: Tensor, other: Any) -> Tensor:
    return _tensor("mul", input).mul(other)


def div(input: Tensor, other: Any) -> Tensor:
    return _tensor("div", input).div(other)


def pow(input: Tensor, exponent: Any) -> Tensor:
    return _tensor("pow", input).pow(exponent)


def eq(input: Tensor, other: Any) -> Tensor:
    """``input == other``: a boolean tensor outside the graph (as ``ne lt le gt ge``)."""
    return _tensor("eq", input).eq(other)


def ne(input: Tensor, other: Any) -> Tensor:
    return _tensor("ne", input).ne(other)


def lt(input: Tensor, other: Any) -> Tensor:
    return _tensor("lt", input).lt(other)


def le(input: Tensor, other: Any) -> Tensor:
    return _tensor("le", input).le(other)


def gt(input: Tensor, other: Any) -> Tensor:
    return _tensor("gt", input).gt(other)


def ge(input: Tensor, other: Any) -> Tensor:
    return _tensor("ge", input).ge(other)


# ---- shape ---------------------------------------------------------------------------------------------------------
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _tensor("flatten", input).flatten(start_dim, end_dim)


def reshape(input: Tensor, shape: Any) -> Tensor:
    return _tensor("reshape", input).reshape(shape)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (torch.transpose; for numpy's permutation, ``x.transpose(axes)`` or ``tl.permute``)."""
    return _tensor("transpose", input).swapaxes(dim0, dim1)


def permute(input: Tensor, dims: Any) -> Tensor:
    return _tensor("permute", input).permute(dims)


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    return _tensor("squeeze", input).squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return _tensor("unsqueeze", input).unsqueeze(dim)


def t(input: Tensor) -> Tensor:
    return _tensor("t", input).t()


def numel(input: Tensor) -> int:
    return _tensor("numel", input).numel()


# ---- selecting, sorting, scans (Tensor's methods of selection_methods.py) ------------------------------------------
def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    return _tensor("index_select", input).index_select(dim, index)


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    return _tensor("masked_fill", input).masked_fill(mask, value)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """torch.sort: ``(values, indices)``, stable here always."""
    return _tensor("sort", input).sort(dim, descending, stable)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return _tensor("argsort", input).argsort(dim, descending, stable)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002  (torch's name)
    return _tensor("topk", input).topk(k, dim, largest, sorted)


def cumsum(input: Tensor, dim: int) -> Tensor:
    return _tensor("cumsum", input).cumsum(dim)


def cumprod(input: Tensor, dim: int) -> Tensor:
    return _tensor("cumprod", input).cumprod(dim)


def flip(input: Tensor, dims: Any) -> Tensor:
    return _tensor("flip", input).flip(dims)


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    return _tensor("roll", input).roll(shifts, dims)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return _tensor("tril", input).tril(diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return _tensor("triu", input).triu(diagonal)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    return _tensor("split", tensor).split(split_size_or_sections, dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    return _tensor("chunk", input).chunk(chunks, dim)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    return _tensor("unbind", input).unbind(dim)


def repeat_interleave(input: Tensor, repeats: Any, dim: int | None = None) -> Tensor:
    return _tensor("repeat_interleave", input).repeat_interleave(repeats, dim)


# ---- making tensors --------------------------------------------------------------------------------------------------
def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A Tensor over ``ndarray``'s memory in its dtype, as torch.from_numpy: a write to either shows in the other
    (ints stay ints, where ``tl.tensor`` makes float64). In a step ``tl.compile`` records, the values are copied, so
    that each replay takes the array's values then."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"tl.from_numpy: expected an np.ndarray, got {type(ndarray).__name__}")
    return _sharing("from_numpy", ndarray)


def _sharing(op: str, arr: np.ndarray) -> Tensor:
    """A Tensor over ``arr``'s memory (a copy while ``tl.compile`` records a step)."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"tl.{op}: the data's dtype {arr.dtype} is not a number type (bools, integers, floats)")
    if traceable.active_tracer() is not None:
        return Tensor(arr, dtype=arr.dtype)
    return Tensor._wrap(arr)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a Tensor, as torch.as_tensor: a Tensor itself (cast if ``dtype`` differs), an array's memory
    (``from_numpy``) when the dtype matches; the dtype numpy infers (int64 for ints, bool for bools) by default."""
    _check_device("tl.as_tensor", device)
    if not isinstance(data, Tensor):
        data = _sharing("as_tensor", data if isinstance(data, np.ndarray) else np.asarray(data))
    return data if dtype is None else data.to(dtype)
