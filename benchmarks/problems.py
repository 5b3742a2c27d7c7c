"""The benchmark problems: the lab's MLP (sigmoid on every layer, no bias, MSE mean, full batch, float64,
SGD with lr 0.1) at four sizes, with the data and initial weights every implementation starts from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LR = 0.1
DATA_SEED = 0
WEIGHT_SEED = 1


@dataclass(frozen=True)
class Size:
    """One benchmark size: ``n`` points of 2 inputs, hidden layers ``h1`` x ``h2``, 1 output."""

    name: str
    title: str
    n: int
    h1: int
    h2: int
    xor: bool = False  # the lab's fixed 21-point XOR set instead of n random points

    def scaled(self, n: int, hidden: int | None = None) -> Size:
        """A smaller version for smoke mode: ``n`` points (and ``hidden`` x ``hidden`` layers if given)."""
        h1, h2 = (self.h1, self.h2) if hidden is None else (hidden, hidden)
        shape = "" if hidden is None else f", hidden {h1}x{h2}"
        return Size(self.name, f"{self.title} [smoke: {n} points{shape}]", n, h1, h2, self.xor)


SIZES: dict[str, Size] = {
    "S1": Size("S1", "S1: 100 points, hidden 4x4", 100, 4, 4),
    "S2": Size("S2", "S2: XOR easy, 21 points, hidden 4x4", 21, 4, 4, xor=True),
    "S3": Size("S3", "S3: 1000 points, hidden 64x64", 1000, 64, 64),
    "S4": Size("S4", "S4: 4096 points, hidden 512x512", 4096, 512, 512),
}

# Smoke mode shrinks the batches (and S4's layers) so that every part runs in seconds: (points, hidden).
SMOKE_SHAPES: dict[str, tuple[int, int | None]] = {"S1": (20, None), "S3": (100, None), "S4": (32, 128)}


@dataclass
class Problem:
    """Data and initial weights (w1, w2, w3) of one size; implementations copy, never modify, them."""

    size: Size
    x: np.ndarray
    y: np.ndarray
    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    lr: float = LR


def linear_points(n: int, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 1: n points uniform in [0, 1]^2, labelled 0 when x0 > x1, else 1."""
    x = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return x, (~(x[:, 0] > x[:, 1])).astype(np.float64).reshape(-1, 1)


def xor_easy() -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 2: (0.1i, 0.1i) labelled 0 and (0.1i, 1 - 0.1i) labelled 1, 21 points."""
    inputs, labels = [], []
    for i in range(11):
        inputs.append([0.1 * i, 0.1 * i])
        labels.append(0.0)
        if i != 5:
            inputs.append([0.1 * i, 1 - 0.1 * i])
            labels.append(1.0)
    return np.array(inputs, dtype=np.float64), np.array(labels, dtype=np.float64).reshape(-1, 1)


def make_problem(size: Size, seed: int = WEIGHT_SEED) -> Problem:
    """The data and the lab's randn initial weights (drawn as reference.Network draws them) of a size."""
    x, y = xor_easy() if size.xor else linear_points(size.n)
    rng = np.random.default_rng(seed)
    weights = (
        rng.standard_normal((2, size.h1)),
        rng.standard_normal((size.h1, size.h2)),
        rng.standard_normal((size.h2, 1)),
    )
    return Problem(size, x, y, weights)


def sizes_for(names: list[str], smoke: bool) -> list[Size]:
    """The Size objects for names like ["S1", "S3"], shrunk for smoke mode."""
    result = []
    for name in names:
        size = SIZES[name]
        if smoke and name in SMOKE_SHAPES:
            size = size.scaled(*SMOKE_SHAPES[name])
        result.append(size)
    return result
