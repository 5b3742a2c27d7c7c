"""Where the time goes: cProfile of the S1 training loop, top functions by their own time (tottime), and the
time the cyclic garbage collector takes per epoch.

Counts and times are per epoch (the profiler's totals divided by the epochs); cProfile's own overhead
inflates every figure, more for many small calls, so read them as shares, not as absolute times.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import re
import time
from dataclasses import dataclass

from benchmarks.implementations import BY_KEY
from benchmarks.problems import make_problem, sizes_for


@dataclass
class Hotspot:
    function: str
    calls_per_epoch: float
    tottime_us: float  # own time per epoch
    cumtime_us: float  # including callees, per epoch
    share: float  # of the profiled total own time


@dataclass
class Profile:
    key: str
    epochs: int
    total_us: float  # profiled time per epoch
    calls_per_epoch: float  # function calls per epoch
    top: list[Hotspot]
    groups: list[tuple[str, float]]  # (where, share of own time), largest first
    replay_lines: int | None = None  # statements in tl.compile's replay function (captured steps)


def _group(file: str, func: str) -> str:
    """Where a function's own time goes, coarsely: which tinygrad_lab module, numpy's C or Python side."""
    if file == "~":
        return "numpy C calls (ufunc methods, array methods)" if "numpy" in func else "Python builtins"
    if "tinygrad_lab.compile replay" in file:
        return "tl.compile replay function (its numpy kernels included)"
    if "tinygrad_lab/" in file:
        return "tinygrad_lab/" + file.split("tinygrad_lab/", 1)[1]
    if "/numpy/" in file:
        return "numpy Python wrappers"
    return "other"


def _replay_lines(compiled: object) -> int | None:
    """Statements of the replay tl.compile built (its internals, read defensively; None if they change)."""
    try:
        entry = next(iter(compiled._replays.values()))  # type: ignore[attr-defined]
        return int(entry.replay.source.count("\n")) - 1
    except Exception:  # noqa: BLE001
        return None


def _name(file: str, line: int, func: str) -> str:
    if file == "~":  # a builtin: cProfile names it like "<method 'reduce' of 'numpy.ufunc' objects>"
        return re.sub(r" at 0x[0-9a-f]+", "", func)
    for marker in ("tinygrad_lab/", "benchmarks/"):
        if marker in file:
            return f"{marker}{file.split(marker, 1)[1]}:{line}({func})"
    return f"{file.rsplit('/', 1)[-1]}:{line}({func})"


def profile(key: str = "eager_nn", epochs: int = 2000, top: int = 15, smoke: bool = False) -> Profile:
    """Profile ``epochs`` epochs of an implementation at S1 (after 5 unprofiled warm-up epochs)."""
    runner = BY_KEY[key].build(make_problem(sizes_for(["S1"], smoke)[0]))
    for _ in range(5):  # past tl.compile's warm-up, trace (and native compile) and verification calls
        runner.step()
    step = runner.step
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(epochs):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values()) or 1e-12
    calls = sum(nc for (_, nc, _, _, _) in entries.values())
    rows = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    hot = [
        Hotspot(_name(*where), nc / epochs, tt / epochs * 1e6, ct / epochs * 1e6, tt / total)
        for where, (_, nc, tt, ct, _) in rows
    ]
    groups: dict[str, float] = {}
    for (file, _, func), (_, _, tt, _, _) in entries.items():
        key_ = _group(file, func)
        groups[key_] = groups.get(key_, 0.0) + tt / total
    ordered = sorted(groups.items(), key=lambda kv: kv[1], reverse=True)
    replay = _replay_lines(runner.compiled) if runner.compiled is not None else None
    return Profile(key, epochs, total / epochs * 1e6, calls / epochs, hot, ordered, replay)


@dataclass
class GcStats:
    key: str
    epochs: int
    epoch_us: float  # unprofiled time per epoch (GC included)
    collections: tuple[float, float, float]  # per epoch, generations 0, 1, 2
    gc_us: float  # time inside the collector per epoch


def gc_stats(key: str, epochs: int, smoke: bool = False) -> GcStats:
    """Run ``epochs`` epochs at S1 with a gc callback that times every collection."""
    runner = BY_KEY[key].build(make_problem(sizes_for(["S1"], smoke)[0]))
    for _ in range(5):
        runner.step()
    counts = [0, 0, 0]
    spent = [0.0, 0.0]  # total, start of the running collection

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]
            counts[info["generation"]] += 1

    step = runner.step
    gc.callbacks.append(callback)
    try:
        start = time.perf_counter()
        for _ in range(epochs):
            step()
        elapsed = time.perf_counter() - start
    finally:
        gc.callbacks.remove(callback)
    return GcStats(
        key,
        epochs,
        elapsed / epochs * 1e6,
        (counts[0] / epochs, counts[1] / epochs, counts[2] / epochs),
        spent[0] / epochs * 1e6,
    )
