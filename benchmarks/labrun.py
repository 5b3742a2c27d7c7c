"""The lab's full run: 20,000 epochs at S1, timed end to end (tl.compile's warm-up, trace and check included).

"step loop" is what the lab does each epoch: the step, ``float(loss)`` and the accuracy of the epoch's
predictions. "train.fit" is the same run through ``tinygrad_lab.lab.train.fit(..., quiet=True)`` (what
``tinygrad-lab train`` runs), when that module is present; it runs once per path, the loops ``repeats`` times.
"native run(n), fresh process": a new Python process with an empty compile cache builds the step and runs
``step.run(epochs, x, y)`` (warm-up, trace, check, C compile and every epoch, timed after the imports), then
once more with the cache it left: the first is the lab's run as a new user sees it.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.implementations import BY_KEY
from benchmarks.problems import Problem, make_problem, sizes_for

TARGET_SECONDS = {"captured": 1.0, "native_fresh": 0.3}  # the issues' targets for the 20,000-epoch S1 run
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class LabRun:
    key: str  # "native" | "captured" | "eager" | "reference" | "native_fresh" | "native_cached"
    label: str
    seconds: list[float] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    final_loss: float = float("nan")
    accuracy: float = float("nan")
    compile_seconds: float | None = None  # the C compiler's time (fresh-process rows)

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


_FRESH = """
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.implementations import _nn_step
from benchmarks.problems import make_problem, sizes_for
from tinygrad_lab.lab.reference import Network
import tinygrad_lab as tl
p = make_problem(sizes_for([{size!r}], {smoke!r})[0])
start = time.perf_counter()
step, ws, x, y = _nn_step(p)
compiled = tl.compile(step)
losses = compiled.run({epochs!r}, x, y)
pred = Network(weights=[w.data.T for w in ws]).forward(p.x)  # nn.Linear keeps (out, in)
seconds = time.perf_counter() - start
native = next(iter(compiled._replays.values())).native
print(json.dumps({{"seconds": seconds, "loss": float(losses[-1]), "backend": compiled.backend,
                  "accuracy": 100.0 * float(((pred > 0.5) == (p.y > 0.5)).mean()),
                  "compile": native.compile_seconds if native is not None else None}}))
"""


def fresh_run(size: str, epochs: int, cache: str, smoke: bool = False) -> dict:
    """The native run(epochs) at a size in a new process whose compile cache is ``cache``."""
    env = dict(os.environ, TINYGRAD_LAB_CACHE=cache)
    script = _FRESH.format(root=ROOT, size=size, smoke=smoke, epochs=epochs)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the fresh-process run failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_lab(
    epochs: int = 20_000, repeats: int = 2, smoke: bool = False, log: Callable[[str], None] = print
) -> list[LabRun]:
    """Wall time of the full S1 run: reference, native, captured (numpy replay) and eager, alternated over
    ``repeats``; then the native run(n) in a fresh process, with an empty cache and with the cache it left."""
    p = make_problem(sizes_for(["S1"], smoke)[0])
    runs = {
        "native": LabRun("native", "tinygrad_lab native step (nn+optim)"),
        "captured": LabRun("captured", "tinygrad_lab captured, numpy replay (nn+optim)"),
        "eager": LabRun("eager", "tinygrad_lab eager (nn+optim)"),
        "reference": LabRun("reference", "hand-written numpy (reference)"),
    }
    loops = {
        "native": _loop_tinygrad("native_nn"),
        "captured": _loop_tinygrad("captured_nn"),
        "eager": _loop_tinygrad("eager_nn"),
        "reference": _loop_reference,
    }
    for _ in range(repeats):
        for key, loop in loops.items():
            seconds, loss, acc = loop(p, epochs)
            run = runs[key]
            run.seconds.append(seconds)
            run.final_loss, run.accuracy = loss, acc
            if key in ("native", "eager") and not run.fit_seconds:  # once: it repeats the loop's work
                fit_seconds = _fit(p, epochs, compile=key == "native")
                if fit_seconds is not None:
                    run.fit_seconds.append(fit_seconds)
            log(f"  lab run {epochs} epochs {run.label:<36} {seconds:.3f} s")
    with tempfile.TemporaryDirectory(prefix="tinygrad-lab-cache-") as cache:
        for key, label in [
            ("native_fresh", "native run(n), fresh process, empty cache"),
            ("native_cached", "native run(n), fresh process, cached"),
        ]:
            result = fresh_run("S1", epochs, cache, smoke)
            run = runs[key] = LabRun(
                key,
                label,
                [result["seconds"]],
                final_loss=result["loss"],
                accuracy=result["accuracy"],
                compile_seconds=result["compile"],
            )
            log(
                f"  lab run {epochs} epochs {run.label:<36} {run.best:.3f} s ({result['backend']}, compile "
                f"{result['compile'] or 0:.3f} s)"
            )
    return list(runs.values())
