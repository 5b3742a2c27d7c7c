"""Per-op overhead: one op on 4x4 float64 arrays through the engine against raw numpy doing the same math.

"forward" builds the op's graph node (inputs require grad, as in training); "forward + backward" also
runs ``backward`` (with a ones gradient for non-scalar outputs) after clearing the inputs' grads, and the
numpy side computes the same gradients by hand. Each case is timed in blocks of calls; the figure is the
median over repeats, in microseconds per call, with the engine and numpy blocks alternated.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class OpResult:
    op: str
    numpy_fwd: float  # microseconds per call
    engine_fwd: float
    numpy_fwd_bwd: float
    engine_fwd_bwd: float

    @property
    def ratio_fwd(self) -> float:
        return self.engine_fwd / self.numpy_fwd

    @property
    def ratio_fwd_bwd(self) -> float:
        return self.engine_fwd_bwd / self.numpy_fwd_bwd


def _cases() -> dict[str, tuple[Callable, Callable, Callable, Callable]]:
    """op -> (numpy forward, engine forward, numpy forward+backward, engine forward+backward)."""
    import tinygrad_lab as tl

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    ta, tb = tl.Tensor(a.copy(), requires_grad=True), tl.Tensor(b.copy(), requires_grad=True)
    ones = np.ones((4, 4))
    g_ones = tl.Tensor(ones)

    def np_sigmoid_fb() -> tuple:
        s = 1.0 / (1.0 + np.exp(-a))
        return s, ones * s * (1.0 - s)

    def np_mul_fb() -> tuple:
        return a * b, ones * b, ones * a

    def np_matmul_fb() -> tuple:
        return a @ b, ones @ b.T, a.T @ ones

    def np_sum_fb() -> tuple:
        return a.sum(), np.full_like(a, 1.0)

    def fb(make: Callable[[], tl.Tensor], scalar: bool = False) -> Callable[[], None]:
        def run() -> None:
            ta.grad = None
            tb.grad = None
            out = make()
            if scalar:
                out.backward()
            else:
                out.backward(g_ones)

        return run

    return {
        "sigmoid (elementwise)": (
            lambda: 1.0 / (1.0 + np.exp(-a)),
            lambda: ta.sigmoid(),
            np_sigmoid_fb,
            fb(lambda: ta.sigmoid()),
        ),
        "mul (elementwise)": (lambda: a * b, lambda: ta * tb, np_mul_fb, fb(lambda: ta * tb)),
        "matmul": (lambda: a @ b, lambda: ta @ tb, np_matmul_fb, fb(lambda: ta @ tb)),
        "sum": (lambda: a.sum(), lambda: ta.sum(), np_sum_fb, fb(lambda: ta.sum(), scalar=True)),
    }


def _per_call(fn: Callable, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def run_overhead(calls: int = 2000, repeats: int = 7) -> list[OpResult]:
    """Microseconds per call of each op, engine and numpy, forward and forward+backward."""
    results = []
    for name, fns in _cases().items():
        for fn in fns:  # warm-up
            _per_call(fn, max(1, calls // 10))
        samples: list[list[float]] = [[], [], [], []]
        for r in range(repeats):
            order = [0, 1, 2, 3] if r % 2 == 0 else [1, 0, 3, 2]
            for i in order:
                samples[i].append(_per_call(fns[i], calls))
        med = [statistics.median(s) for s in samples]
        results.append(OpResult(name, med[0], med[1], med[2], med[3]))
    return results
