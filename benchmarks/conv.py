"""conv2d forward + backward against PyTorch eager, float32, at the sizes a digits CNN meets (8x8 to 28x28 images,
1 to 32 channels, 3x3 kernels, padding 1, batch 64). Both run on one thread (numpy's BLAS and OpenMP pools and
PyTorch's): with two libraries' pools alternating on a small machine, each one's idle threads spin while the
other works, which swamps the figures.

One call: y = conv2d(x, w, b); (y * g).sum().backward(), with x, w and b requiring grad (their grads cleared before
each call). Median over repeats of alternated blocks, milliseconds per call; the gradients are checked against
PyTorch's first.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# (batch, in channels, out channels, image side)
CASES = [(64, 1, 16, 8), (64, 16, 32, 4), (64, 1, 16, 28), (64, 16, 32, 14), (64, 32, 32, 28)]
SMOKE_CASES = [(4, 1, 4, 8), (4, 4, 8, 14)]
THREADS = 1


@dataclass
class ConvResult:
    case: str
    threads: int
    engine_ms: float
    torch_ms: float | None  # None when PyTorch is not installed
    max_grad_diff: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.torch_ms is None else self.engine_ms / self.torch_ms


def _ms_per_call(fn: Callable[[], object], block: float) -> float:
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= block:
            return elapsed / calls * 1e3


def _pair(n: int, cin: int, cout: int, side: int) -> tuple[Callable, Callable | None, float | None]:
    """The engine's call and PyTorch's on the same float32 data, and the largest gradient difference."""
    import tinygrad_lab as tl
    import tinygrad_lab.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, side, side)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    g = rng.standard_normal((n, cout, side, side)).astype(np.float32)
    xs, ws, bs = (tl.Tensor(a, requires_grad=True) for a in (x, w, b))

    def engine() -> list:
        xs.grad = ws.grad = bs.grad = None
        F.conv2d(xs, ws, bs, padding=1).backward(g)
        return [xs.grad.data, ws.grad.data, bs.grad.data]

    try:
        import torch
    except ImportError:
        return engine, None, None
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    gt = torch.from_numpy(g)

    def reference() -> list:
        xt.grad = wt.grad = bt.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gt)
        return [xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]

    diff = max(float(np.max(np.abs(a - r)) / (np.max(np.abs(r)) or 1.0)) for a, r in zip(engine(), reference()))
    return engine, reference, diff


def run_conv(
    repeats: int = 7, block: float = 0.2, smoke: bool = False, log: Callable[[str], None] = print
) -> list[ConvResult]:
    """Milliseconds per conv2d forward + backward, engine and PyTorch, at each case."""
    with _threads(THREADS):
        return [_case(case, repeats, block, log) for case in (SMOKE_CASES if smoke else CASES)]


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """numpy's BLAS, any OpenMP pool (threadpoolctl) and PyTorch limited to ``count`` threads."""
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=count))
        except ImportError:
            pass
        try:
            import torch
        except ImportError:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _case(case: tuple, repeats: int, block: float, log: Callable[[str], None]) -> ConvResult:
    """One case, engine and PyTorch blocks alternated."""
    n, cin, cout, side = case
    engine, reference, diff = _pair(n, cin, cout, side)
    fns = [engine] + ([reference] if reference else [])
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        _ms_per_call(fn, block / 4)  # warm-up
    for r in range(repeats):
        for i in range(len(fns)) if r % 2 == 0 else reversed(range(len(fns))):
            samples[i].append(_ms_per_call(fns[i], block))
    med = [statistics.median(s) for s in samples]
    name = f"{n}x{cin}x{side}x{side} -> {cout} channels, 3x3, padding 1"
    log(f"  conv2d {name}: engine {med[0]:.2f} ms" + (f", torch {med[1]:.2f} ms" if reference else ""))
    return ConvResult(name, THREADS, med[0], med[1] if reference else None, diff)
