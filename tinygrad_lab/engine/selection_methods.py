"""torch's indexing, splitting, sorting and scan methods on Tensor (``x.gather(1, idx)``, ``x.sort(descending=True)``,
``x.chunk(3)``, ``x.cumsum(0)``...), with torch's signatures; the ops are in engine/ops/selection.py and
engine/ops/arrange.py. ``repeat`` is torch's (numpy's tile), not ndarray.repeat: that one is ``repeat_interleave``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinygrad_lab.engine.torch_spellings import ValuesIndices


def _selection() -> Any:
    from tinygrad_lab.engine.ops import selection  # imported on use: the ops import Tensor, which mixes this in

    return selection


def _arrange() -> Any:
    from tinygrad_lab.engine.ops import arrange  # as _selection

    return arrange


class SelectionMethods:
    """Mixed into Tensor; no state of its own."""

    __slots__ = ()

    def gather(self: Any, dim: int, index: Any) -> Any:
        """torch's gather: ``out[i][j] = self[index[i][j]][j]`` for dim 0, and so on; index an int64 tensor."""
        return _selection().gather(self, dim, index)

    def index_select(self: Any, dim: int, index: Any) -> Any:
        """torch's index_select: the entries a vector of ints names along ``dim``."""
        return _selection().index_select(self, dim, index)

    def masked_fill(self: Any, mask: Any, value: Any) -> Any:
        """torch's masked_fill: ``value`` (a number or a 0-d tensor) where the boolean mask is true."""
        return _selection().masked_fill(self, mask, value)

    def sort(self: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
        """torch's sort: (values, indices), always stable."""
        return _selection().sort(self, dim, descending, stable)

    def argsort(self: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """torch's argsort: the int64 indices that sort along ``dim``, always stable."""
        return _selection().argsort(self, dim, descending, stable)

    def topk(self: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002  (torch's name)
        """torch's topk: the k largest (or smallest) entries along ``dim`` and their indices."""
        return _selection().topk(self, k, dim, largest, sorted)

    def repeat(self: Any, *sizes: Any) -> Any:
        """torch's repeat: tiled ``sizes[i]`` times along dim i (numpy's tile; numpy's repeat is repeat_interleave)."""
        return _arrange().repeat(self, *sizes)

    def repeat_interleave(self: Any, repeats: Any, dim: int | None = None) -> Any:
        """torch's repeat_interleave: each entry along ``dim`` repeated (numpy's repeat)."""
        return _arrange().repeat_interleave(self, repeats, dim)

    def flip(self: Any, *dims: Any) -> Any:
        """torch's flip: reversed along ``dims``."""
        return _arrange().flip(self, *dims)

    def roll(self: Any, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Any:
        """torch's roll: shifted cyclically along ``dims`` (the flattened tensor without dims)."""
        return _arrange().roll(self, shifts, dims)

    def tril(self: Any, diagonal: int = 0) -> Any:
        """torch's tril: the lower triangle of the last two dims."""
        return _arrange().tril(self, diagonal)

    def triu(self: Any, diagonal: int = 0) -> Any:
        """torch's triu: the upper triangle of the last two dims."""
        return _arrange().triu(self, diagonal)

    def split(self: Any, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple:
        """torch's split: slices of a size, or of the given sizes, along ``dim``."""
        return _arrange().split(self, split_size_or_sections, dim)

    def chunk(self: Any, chunks: int, dim: int = 0) -> tuple:
        """torch's chunk: at most ``chunks`` slices of equal size along ``dim``."""
        return _arrange().chunk(self, chunks, dim)

    def unbind(self: Any, dim: int = 0) -> tuple:
        """torch's unbind: the slices along ``dim``, that dim removed."""
        return _arrange().unbind(self, dim)

    def cumsum(self: Any, dim: int) -> Any:
        """torch's cumsum: running sums along ``dim``."""
        return _arrange().cumsum(self, dim)

    def cumprod(self: Any, dim: int) -> Any:
        """torch's cumprod: running products along ``dim``, the gradient exact at zeros."""
        return _arrange().cumprod(self, dim)
