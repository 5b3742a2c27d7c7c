"""The lab's two datasets, exactly as the lab builds them, plus three toy sets for going further.

Every generator returns ``(inputs, labels)``: inputs of shape (n, 2) and labels of shape (n, 1), both
float64, labels 0.0 or 1.0. Randomness comes from ``rng``: a ``numpy.random.Generator``, an int seed, or
None for the generator ``tl.manual_seed`` sets (the same default every tinygrad_lab factory uses).

    from tinygrad_lab.lab import data
    x, y = data.generate_linear(100, rng=0)    # the lab's Task 1
    x, y = data.generate_xor_easy()            # the lab's Task 2 (21 fixed points)
    x, y = data.load_task("moons", rng=0)      # by name, as the CLI does
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tinygrad_lab.engine.tensor import _rng as _default_rng



def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (itself), an int seed, or None (tinygrad_lab's default generator)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return _default_rng(None)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_n(n: int, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _labels(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def generate_linear(n: int = 100, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 1: n points uniform in [0, 1]^2, labelled 0 when x0 > x1, else 1."""
    n = _check_n(n)
    pts = as_rng(rng).uniform(0, 1, (n, 2))
    return pts, _labels(~(pts[:, 0] > pts[:, 1]))


def generate_xor_easy() -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 2: for i = 0..10, (0.1i, 0.1i) labelled 0 and, unless i == 5 (the centre, already
    there), (0.1i, 1 - 0.1i) labelled 1; 21 points, interleaved in that order as the lab appends them."""
    inputs, labels = [], []
    for i in range(11):
        inputs.append([0.1 * i, 0.1 * i])
        labels.append(0)
        if i == 5:
            continue
        inputs.append([0.1 * i, 1 - 0.1 * i])
        labels.append(1)
    return np.array(inputs, dtype=np.float64), _labels(labels)


def circle(n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.0
           ) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform in [0, 1]^2, labelled 1 inside the disc around (0.5, 0.5) that holds half the
    square's area (radius 1/sqrt(2 pi)), 0 outside. ``noise`` adds Gaussian jitter (std) after labelling."""
    n = _check_n(n)
    gen = as_rng(rng)
    pts = gen.uniform(0, 1, (n, 2))
    inside = np.hypot(pts[:, 0] - 0.5, pts[:, 1] - 0.5) < 1.0 / np.sqrt(2 * np.pi)
    if noise:
        pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(inside)


def spiral(n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.02, turns: float = 1.5
           ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms around (0.5, 0.5), ``turns`` turns each, n points alternating between
    the arms (even index: arm 0, odd: arm 1), radius growing to 0.45, plus Gaussian jitter ``noise``."""
    n = _check_n(n, 2)
    gen = as_rng(rng)
    arm = np.arange(n) % 2
    t = np.sqrt(gen.uniform(0.02, 1.0, n))  # sqrt: points spread evenly along the arm, not bunched at the centre
    angle = 2 * np.pi * turns * t + np.pi * arm
    radius = 0.45 * t
    pts = np.stack([0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)], axis=1)
    pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(arm)


def moons(n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.05
          ) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles, scaled into about [0, 1]^2: n points alternating
    between the upper moon (label 0) and the lower one (label 1), plus Gaussian jitter ``noise``."""
    n = _check_n(n, 2)
    gen = as_rng(rng)
    label = np.arange(n) % 2
    theta = gen.uniform(0, np.pi, n)
    x = np.where(label == 0, np.cos(theta), 1 - np.cos(theta))
    y = np.where(label == 0, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([(x + 1.0) / 3.0, (y + 0.5) / 1.5], axis=1)  # x in [-1, 2], y in [-0.5, 1] -> [0, 1]
    pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(label)


# ---- the registry the CLI and the report use ---------------------------------------------------------------------

def _linear(rng: np.random.Generator, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    return generate_linear(100 if n is None else n, rng=rng)


def _xor(rng: np.random.Generator, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    if n not in (None, 21):
        raise ValueError(f"the xor task has exactly 21 points, got n={n}")
    return generate_xor_easy()


TASKS: dict[str, Callable[[np.random.Generator, int | None], tuple[np.ndarray, np.ndarray]]] = {
    "linear": _linear,
    "xor": _xor,
    "circle": lambda rng, n: circle(200 if n is None else n, rng=rng),
    "spiral": lambda rng, n: spiral(200 if n is None else n, rng=rng),
    "moons": lambda rng, n: moons(200 if n is None else n, rng=rng),
}


def load_task(name: str, rng: np.random.Generator | int | None = None, n: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The dataset of a task by name (see TASKS): linear (100 points), xor (21 fixed points), circle,
    spiral, moons (200 points each); ``n`` overrides the size except for xor."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name](as_rng(rng), n)
