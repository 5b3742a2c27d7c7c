"""Running the report's configs: one training run per worker of a process pool, results keyed by config.

A run is a pure function of its TrainConfig (data and initial weights come from the seed, BLAS runs
single-threaded in the workers), so the same seeds give the same results in any order. Everything shipped to
the workers is a module-level function or plain data, so the pool works with the spawn start method too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from tinygrad_lab.lab import runs, train
from tinygrad_lab.lab.config import TrainConfig, build_model, run_spec, seeded_rngs

CURVE_POINTS = 1000  # epochs kept per learning curve (evenly spaced): plenty for a figure


def _limit_threads() -> None:
    """Workers use one BLAS thread each: the pool already uses every core, and results stay reproducible."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def run_one(job: tuple[TrainConfig, bool, int]) -> dict:
    """Train one config (quietly) and return what the report needs: final numbers, thinned curves, the
    log lines the lab would have printed, predictions, the trained weights and how far they moved."""
    config, compile, log_every = job
    with np.errstate(all="ignore"):  # a diverging run (lr 1, relu) overflows: that is a result, not an error
        run = runs.run(config, quiet=True, compile=compile)
    h = run.history
    every = log_every if config.batch_size is None else 1  # a minibatch run logs every epoch, as train does
    idx = _curve_index(h.epochs)
    _, init_rng = seeded_rngs(config.seed)
    start = build_model(run_spec(config, run.x, run.y), init_rng).state_dict()
    state = run.model.state_dict()
    moved = math.sqrt(sum(float(np.sum((state[k] - start[k]) ** 2)) for k in state))
    return {
        "config": config,
        "final_accuracy": h.final_accuracy,
        "final_loss": h.final_loss,
        "epochs_to_100": h.epochs_to_100,
        "curve_epochs": idx + 1,
        "loss_curve": np.asarray(h.loss)[idx],
        "acc_curve": np.asarray(h.accuracy)[idx],
        "log": [
            train.format_log_line(
                e, h.loss[e - 1], h.accuracy[e - 1], h.val_accuracy[e - 1] if h.val_accuracy else None, "test"
            )
            for e in range(every, h.epochs + 1, every)
        ],
        "val_curve": np.asarray(h.val_accuracy)[idx] if h.val_accuracy else None,
        "test_accuracy": h.final_val_accuracy,
        "test_size": 0 if run.test is None else len(run.test[1]),
        "parameters": sum(int(v.size) for v in run.model.state_dict().values()),
        "pred": run.predict(),
        "state": state,
        "weight_change": moved,
        "wall_time": h.wall_time,
        "compiled": h.compiled,
    }


def _curve_index(n: int) -> np.ndarray:
    from tinygrad_lab.lab.plots import thin

    return thin(n, CURVE_POINTS)


def _cost(config: TrainConfig) -> float:
    """Rough relative cost, to start the slowest runs first (minibatch runs, on images, first of all)."""
    if config.batch_size is not None:
        return math.inf
    sizes = [2, *config.hidden, 1]
    return config.epochs * (10 + sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) / 50)


def run_all(
    configs: Sequence[TrainConfig],
    workers: int | None = None,
    compile: bool = True,
    log_every: int = 1000,
    log: TextIO | None = None,
) -> dict[TrainConfig, dict]:
    """Every config through a process pool (or in this process for one worker); results keyed by config."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(configs)))
    # Slowest first; among runs of equal cost, one seed's runs before the next seed's: runs that differ only
    # in their seed share one native program, and two workers starting them together would both compile it.
    jobs = sorted(((c, compile, log_every) for c in configs), key=lambda j: (-_cost(j[0]), j[0].seed))
    results: dict[TrainConfig, dict] = {}
    done = 0

    def collect(result: dict) -> None:
        nonlocal done
        results[result["config"]] = result
        done += 1
        if log is not None and (done % 10 == 0 or done == len(jobs)):
            print(f"  {done}/{len(jobs)} runs done", file=log, flush=True)

    if workers == 1:
        _limit_threads()
        for job in jobs:
            collect(run_one(job))
    else:
        import multiprocessing

        with multiprocessing.Pool(workers, initializer=_limit_threads) as pool:
            for result in pool.imap_unordered(run_one, jobs, chunksize=1):
                collect(result)
    return results
