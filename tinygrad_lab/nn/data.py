"""Minibatches: ``DataLoader(x, y, batch_size)`` iterates over (x, y) pairs of numpy arrays, in a fresh seeded
order each epoch, as torch.utils.data.DataLoader does over a TensorDataset.

    loader = nn.DataLoader(x, y, batch_size=64, shuffle=True, rng=0)
    for epoch in range(20):
        for xb, yb in loader:          # len(loader) batches, the last one smaller unless drop_last
            ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tinygrad_lab.engine.random import resolve_rng as _default_rng


class DataLoader:
    """Batches of ``batch_size`` rows of x and y (arrays with the same first dimension).

    ``shuffle``: each pass draws a new permutation from ``rng`` (a numpy Generator, an int seed, or None for
    the generator ``tl.manual_seed`` sets), so epochs differ and the same seed repeats the same sequence of
    epochs; without it the batches come in order. ``drop_last`` leaves out a final batch smaller than
    ``batch_size``. Batches are copies (fancy indexing) when shuffled and views otherwise.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        rng: np.random.Generator | int | None = None,
    ):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"DataLoader: x and y need the same number of rows, got shapes {x.shape} and {y.shape}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            rng = np.random.default_rng(int(rng))
        elif rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"DataLoader: rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")
        self.rng = rng

    def __len__(self) -> int:
        """Batches per pass."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, size = len(self.x), self.batch_size
        stop = len(self) * size
        if self.shuffle:
            order = (self.rng if self.rng is not None else _default_rng(None)).permutation(n)
            for start in range(0, stop, size):
                idx = order[start : start + size]
                yield self.x[idx], self.y[idx]
        else:
            for start in range(0, stop, size):
                yield self.x[start : start + size], self.y[start : start + size]

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.x)} rows, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last})"
        )
