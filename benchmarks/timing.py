"""Per-epoch timing: check every implementation against the reference, then time them round-robin.

For one size: every implementation starts from the same data and weights and runs ``CHECK_STEPS`` epochs;
its weights must equal the reference's (max |difference| <= ``TOLERANCE`` relative to the weights' scale),
else it is reported as wrong and not timed. (Weights after k SGD steps differ by lr times the gradients'
difference, so this checks the gradients; it also runs tl.compile's warm-up, trace and verification calls,
so the timed calls of a captured step are all replays.) Each implementation is then warmed up for
``warmup`` seconds, which also sets how many epochs make one timed block (about ``block`` seconds). Each
round times one block of every implementation, in an order rotated every round, so that slow drifts of a
shared machine hit all of them alike; the ratio to the reference is taken within each round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.implementations import IMPLS, Impl, Runner, build_reference, target_for
from benchmarks.problems import Problem, Size, make_problem

CHECK_STEPS = 5
TOLERANCE = 1e-9
GAP_SECONDS = 0.005  # pause before each block: lets another library's spinning threads go idle
BLOCK_LIMIT = 3.0  # a block stops after this many times its planned length


@dataclass
class Row:
    """One implementation at one size: its check and its timings."""

    impl: Impl
    status: str  # "ok" | "wrong" | "error" | "not installed" | "n/a" (not run at this size)
    check_diff: float | None = None
    detail: str = ""
    epochs_per_block: int = 0
    seconds: list[float] = field(default_factory=list)  # per epoch, one per round
    ratios: list[float] = field(default_factory=list)  # to the reference in the same round

    @property
    def timed(self) -> bool:
        return self.status == "ok" and bool(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ratio(self) -> float:
        """Median over rounds of (this row's time / the reference's time in the same round)."""
        return statistics.median(self.ratios)

    def target(self, size_name: str) -> float | None:
        return target_for(self.impl, size_name)

    def met(self, size_name: str, target: float | None = None) -> str:
        """'met', 'not met', or '' when the row has no target (or no timing); against ``target`` when given,
        else the row's own (target_for)."""
        target = self.target(size_name) if target is None else target
        if target is None:
            return ""
        if not self.timed:
            return "not met (not timed)"
        return "met" if self.ratio <= target else "not met"


@dataclass
class SizeResult:
    size: Size
    rows: list[Row]
    rounds: int


def max_weight_diff(ours: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Largest absolute difference over all weights (inf when the shapes differ)."""
    diffs = []
    for a, b in zip(ours, reference):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        diffs.append(float(np.max(np.abs(a - b))) if a.size else 0.0)
    return max(diffs) if len(ours) == len(reference) else float("inf")


def _time_block(runner: Runner, epochs: int, limit: float) -> float:
    """Seconds per epoch over one block of ``epochs`` epochs, cut short after ``limit`` seconds (an
    implementation that stalls on a busy machine must not stretch the whole run)."""
    runner.prepare()
    time.sleep(GAP_SECONDS)
    step, clock = runner.step, time.perf_counter
    start = clock()
    deadline = start + limit
    done = 0
    while done < epochs:
        step()
        done += 1
        if clock() > deadline:
            break
    return (clock() - start) / (done * runner.per_call)


def _calibrate(runner: Runner, warmup: float, block: float, max_epochs: int) -> int:
    """Warm up for ``warmup`` seconds (at least 1 epoch; the check ran 5 already), in chunks that double up
    to ~20 ms; return the epochs that fill ``block`` seconds at the fastest chunk's rate (a stall in one
    chunk, from other work on the machine, must not shrink every block)."""
    runner.prepare()
    step = runner.step
    best, chunk, done, start = float("inf"), 1, 0, time.perf_counter()
    while done < 1 or time.perf_counter() - start < warmup:
        t0 = time.perf_counter()
        for _ in range(chunk):
            step()
        best = min(best, (time.perf_counter() - t0) / chunk)
        done += chunk
        if best * chunk < 0.02:
            chunk *= 2
    return int(min(max_epochs, max(1, round(block / best))))


def check(impl: Impl, problem: Problem, reference_weights: list[np.ndarray]) -> tuple[Row, Runner | None]:
    """Build the implementation, run CHECK_STEPS epochs, compare its weights with the reference's."""
    try:
        runner = impl.build(problem)
        runner.prepare()
        for _ in range(CHECK_STEPS):
            (runner.single or runner.step)()
        diff = max_weight_diff(runner.weights(), reference_weights)
    except Exception as exc:  # noqa: BLE001  (a broken implementation is reported, not fatal)
        return Row(impl, "error", detail=f"{type(exc).__name__}: {exc}"[:200]), None
    scale = max(1.0, max(float(np.max(np.abs(w))) for w in reference_weights))
    if not diff <= TOLERANCE * scale:  # also catches NaN
        return Row(impl, "wrong", check_diff=diff, detail="weights differ from the reference: not timed"), None
    return Row(impl, "ok", check_diff=diff), runner


def run_size(
    size: Size,
    rounds: int,
    warmup: float,
    block: float,
    max_epochs: int = 100_000,
    impls: list[Impl] | None = None,
    log: Callable[[str], None] = print,
) -> SizeResult:
    """Check and time every implementation at one size."""
    impls = IMPLS if impls is None else impls
    problem = make_problem(size)
    reference = build_reference(problem)
    for _ in range(CHECK_STEPS):
        reference.step()
    ref_weights = reference.weights()

    rows: list[Row] = []
    runners: dict[str, Runner] = {}
    for impl in impls:
        if impl.key == "reference":
            rows.append(Row(impl, "ok", check_diff=0.0, detail="the oracle"))
            runners[impl.key] = reference
            continue
        if not impl.runs_at(size.name):
            rows.append(Row(impl, "n/a", detail="not run at this size"))
            continue
        why = impl.unavailable()
        if why:
            rows.append(Row(impl, "not installed", detail=why))
            continue
        row, runner = check(impl, problem, ref_weights)
        rows.append(row)
        shown = "-" if row.check_diff is None else f"{row.check_diff:.2e}"
        log(
            f"  check {size.name} {impl.label:<40} max |dw| after {CHECK_STEPS} steps = {shown}  {row.status}"
            + (f" ({row.detail})" if row.status == "error" else "")
        )
        if runner is not None:
            runners[impl.key] = runner

    by_key = {row.impl.key: row for row in rows}
    for key, runner in list(runners.items()):
        try:
            by_key[key].epochs_per_block = _calibrate(runner, warmup, block, max_epochs)
        except Exception as exc:  # noqa: BLE001
            by_key[key].status, by_key[key].detail = "error", f"{type(exc).__name__} in warm-up: {exc}"[:200]
            del runners[key]

    keys = list(runners)
    for r in range(rounds):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]
        this_round: dict[str, float] = {}
        for key in order:
            row = by_key[key]
            if row.status != "ok":
                continue
            try:
                this_round[key] = _time_block(runners[key], row.epochs_per_block, BLOCK_LIMIT * block)
            except Exception as exc:  # noqa: BLE001
                row.status, row.detail = "error", f"{type(exc).__name__} while timing: {exc}"[:200]
        ref_time = this_round.get("reference")
        for key, seconds in this_round.items():
            by_key[key].seconds.append(seconds)
            if ref_time:
                by_key[key].ratios.append(seconds / ref_time)
    return SizeResult(size, rows, rounds)
