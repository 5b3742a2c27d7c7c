"""The lab's full run: 20,000 epochs at S1, timed end to end (tl.compile's warm-up, trace and check included).

"step loop" is what the lab does each epoch: the step, ``float(loss)`` and the accuracy of the epoch's
predictions. "train.fit" is the same run through ``tinygrad_lab.lab.train.fit(..., quiet=True)`` (what
``tinygrad-lab train`` runs), when that module is present; it runs once per path, the loops ``repeats`` times.
"""
from __future__ import annotations

import importlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from benchmarks.implementations import BY_KEY
from benchmarks.problems import Problem, make_problem, sizes_for

TARGET_SECONDS = 1.0  # the issue: the captured 20,000-epoch S1 run takes under 1 s


@dataclass
class LabRun:
    key: str  # "captured" | "eager" | "reference"
    label: str
    seconds: list[float] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    final_loss: float = float("nan")
    accuracy: float = float("nan")

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _loop_reference(p: Problem, epochs: int) -> tuple[float, float, float]:
    from tinygrad_lab.lab.reference import Network

    net = Network(weights=p.weights)
    target = p.y > 0.5
    start = time.perf_counter()
    for _ in range(epochs):
        loss = net.train_step(p.x, p.y, p.lr)
        hits = np.count_nonzero((net.pred_y > 0.5) == target)
    return time.perf_counter() - start, float(loss), 100.0 * hits / len(p.y)


def _loop_tinygrad(key: str) -> Callable[[Problem, int], tuple[float, float, float]]:
    def run(p: Problem, epochs: int) -> tuple[float, float, float]:
        step = BY_KEY[key].build(p).step  # returns (loss, pred)
        target = p.y > 0.5
        start = time.perf_counter()
        for _ in range(epochs):
            loss_t, pred = step()
            loss = float(loss_t.data)
            hits = np.count_nonzero((pred.data > 0.5) == target)
        return time.perf_counter() - start, loss, 100.0 * hits / len(p.y)

    return run


def _fit(p: Problem, epochs: int, compile: bool) -> float | None:
    """Seconds of train.fit for the run, or None when tinygrad_lab.lab.train is not there."""
    try:
        train = importlib.import_module("tinygrad_lab.lab.train")
        import tinygrad_lab.nn.functional as F
        from tinygrad_lab import nn, optim
    except ImportError:
        return None
    model = nn.MLP(2, (p.size.h1, p.size.h2), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    for param, w in zip(model.parameters(), p.weights):
        np.copyto(param.data, w.T)  # nn.Linear keeps (out, in); the problem writes (in, out)
    opt = optim.SGD(model.parameters(), lr=p.lr)
    start = time.perf_counter()
    train.fit(model, p.x, p.y, loss=F.mse_loss, optimizer=opt, epochs=epochs, quiet=True, compile=compile)
    return time.perf_counter() - start


def run_lab(epochs: int = 20_000, repeats: int = 2, smoke: bool = False,
            log: Callable[[str], None] = print) -> list[LabRun]:
    """Wall time of the full S1 run: reference, captured and eager, alternated over ``repeats``."""
    p = make_problem(sizes_for(["S1"], smoke)[0])
    runs = {"captured": LabRun("captured", "tinygrad_lab captured (nn+optim)"),
            "eager": LabRun("eager", "tinygrad_lab eager (nn+optim)"),
            "reference": LabRun("reference", "hand-written numpy (reference)")}
    loops = {"captured": _loop_tinygrad("captured_nn"), "eager": _loop_tinygrad("eager_nn"),
             "reference": _loop_reference}
    for _ in range(repeats):
        for key, loop in loops.items():
            seconds, loss, acc = loop(p, epochs)
            run = runs[key]
            run.seconds.append(seconds)
            run.final_loss, run.accuracy = loss, acc
            if key != "reference" and not run.fit_seconds:  # once: it repeats the loop's work
                fit_seconds = _fit(p, epochs, compile=key == "captured")
                if fit_seconds is not None:
                    run.fit_seconds.append(fit_seconds)
            log(f"  lab run {epochs} epochs {run.label:<36} {seconds:.3f} s")
    return list(runs.values())
