"""The digits CNN's training epoch against PyTorch eager in the same run: `tinygrad-lab train --task digits --model
cnn` and its PyTorch twin, both from benchmarks/digits.py (same recipe, float32, batch 64, the test set evaluated
after each epoch), on the same thread count as the conv2d rows. Runs of the two alternate; each side's figure is
the least seconds per epoch over its runs (min of repeats: the machine's other work only adds time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import digits
from benchmarks.conv import THREADS, _threads

TARGET_RATIO = 2.0  # the engine's epoch at most this many times PyTorch eager's


@dataclass
class CnnResult:
    threads: int
    epochs: int  # per run
    runs: int  # per side
    engine_s: float | None  # seconds per epoch; None when the digits data cannot be loaded
    torch_s: float | None  # None when PyTorch is not installed
    engine_accuracy: float | None  # test accuracy (percent) after the last run's epochs
    torch_accuracy: float | None
    error: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.engine_s is None or self.torch_s is None else self.engine_s / self.torch_s


def run_cnn(epochs: int, runs: int, log: Callable[[str], None] = print) -> CnnResult:
    """Seconds per digits CNN epoch, the engine's and PyTorch's, ``runs`` alternated runs of ``epochs`` each."""
    try:
        import torch  # noqa: F401

        sides: list[Callable[[int, int], tuple[float, float]]] = [digits.ours, digits.pytorch]
    except ImportError:
        sides = [digits.ours]
    best: list[float] = [float("inf")] * len(sides)
    accuracy: list[float] = [0.0] * len(sides)
    with _threads(THREADS):
        try:
            for r in range(runs):
                for i in range(len(sides)) if r % 2 == 0 else reversed(range(len(sides))):
                    accuracy[i], per_epoch = sides[i](0, epochs)
                    best[i] = min(best[i], per_epoch)
        except ImportError as exc:  # the digits need scikit-learn
            return CnnResult(THREADS, epochs, runs, None, None, None, None, f"not run: {exc}")
    torch_s, torch_acc = (best[1], accuracy[1]) if len(sides) > 1 else (None, None)
    result = CnnResult(THREADS, epochs, runs, best[0], torch_s, accuracy[0], torch_acc)
    log(
        f"  digits CNN epoch: engine {best[0] * 1e3:.1f} ms"
        + ("" if result.ratio is None else f", torch {best[1] * 1e3:.1f} ms, {result.ratio:.2f}x")
    )
    return result
