"""Statistics of a report cell (one task and setting over its seeds) and their formatting in tables and prose."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Cell:
    """One (task, setting) over its seeds."""

    task: str
    label: str
    runs: list  # run_one results in seed order
    epochs: int

    @property
    def n(self) -> int:
        return len(self.runs)

    def _values(self, key: str, runs: list | None = None) -> np.ndarray:
        return np.array([r[key] for r in (self.runs if runs is None else runs)], dtype=float)

    @property
    def finite_runs(self) -> list:
        """The runs whose final loss is a number (the others diverged to inf or NaN)."""
        return [r for r in self.runs if math.isfinite(r["final_loss"])]

    @property
    def diverged(self) -> int:
        return self.n - len(self.finite_runs)

    @property
    def acc(self) -> np.ndarray:
        """Final accuracies of the runs that did not diverge."""
        return self._values("final_accuracy", self.finite_runs)

    @property
    def loss(self) -> np.ndarray:
        return self._values("final_loss", self.finite_runs)

    @property
    def n_100(self) -> int:
        """Runs whose trained model classifies every training point correctly."""
        return int(np.sum(self.acc == 100.0))

    @property
    def n_reached(self) -> int:
        return sum(r["epochs_to_100"] is not None for r in self.runs)

    @property
    def median_epochs(self) -> float:
        """Median over seeds of the first epoch at 100% accuracy; runs that never get there count as
        infinity, so the median is infinite when half the runs or more never do."""
        return float(
            statistics.median(math.inf if r["epochs_to_100"] is None else r["epochs_to_100"] for r in self.runs)
        )

    @property
    def weight_change(self) -> float:
        return float(np.mean(self._values("weight_change", self.finite_runs)))


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of the finite values."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if v.size > 1 else 0.0


# ---- formatting ------------------------------------------------------------------------------------------------------


def fmt_pct(values: np.ndarray) -> str:
    m, s = mean_std(values)
    return "diverged" if math.isnan(m) else f"{m:.2f} ± {s:.2f}"


def fmt_loss(values: np.ndarray) -> str:
    m, s = mean_std(values)
    return "diverged" if math.isnan(m) else f"{m:.3g} ± {s:.2g}"


def fmt_runs(cell: Cell) -> str:
    text = f"{cell.n_100}/{cell.n}"
    return f"{text} ({cell.diverged} diverged)" if cell.diverged else text


def fmt_int(v: float) -> str:
    return f"{int(round(v)):,}"


def fmt_epochs(cell: Cell) -> str:
    m = cell.median_epochs
    return "never" if math.isinf(m) else fmt_int(m)


def fmt_number(v: float) -> str:
    """A float with 3 significant digits, in words-friendly form (0.0123, 1.23e-05)."""
    return f"{v:.3g}"


def join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def table(cells: Sequence[Cell], extra: Sequence[tuple[str, Callable[[Cell], str]]] = ()) -> str:
    head = ["task", "setting", "final accuracy (%)", "final loss", "runs at 100%", "median epochs to 100%"]
    head += [name for name, _ in extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for c in cells:
        row = [c.task, c.label, fmt_pct(c.acc), fmt_loss(c.loss), fmt_runs(c), fmt_epochs(c)]
        row += [fn(c) for _, fn in extra]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def describe(cell: Cell) -> str:
    """One clause summing a cell up, e.g. '100.00 ± 0.00% accuracy, 5/5 runs at 100%, median 9,140 epochs'."""
    reach = (
        "never reaches 100% in the median run"
        if math.isinf(cell.median_epochs)
        else f"first reaches 100% after a median {fmt_epochs(cell)} epochs"
    )
    acc = "every run diverged" if not cell.finite_runs else f"{fmt_pct(cell.acc)}% final accuracy"
    return f"{acc}, {fmt_runs(cell)} runs at 100%, {reach}"


def ranking(cells: Sequence[Cell], epochs: int) -> str:
    """Sentences ranking the settings of one task by speed to 100%, then by final accuracy."""
    task = cells[0].task
    order = sorted(range(len(cells)), key=lambda i: (cells[i].median_epochs, -_acc_key(cells[i]), i))
    fast = [cells[i] for i in order if not math.isinf(cells[i].median_epochs)]
    never = [cells[i] for i in order if math.isinf(cells[i].median_epochs)]
    slow_list = join([f"{c.label} ({fmt_pct(c.acc)}%, {fmt_runs(c)} runs at 100%)" for c in never])
    if fast:
        text = f"On {task}, {fast[0].label} reaches 100% first (median {fmt_epochs(fast[0])} epochs)"
        if len(fast) > 1:
            text += ", then " + join([f"{c.label} ({fmt_epochs(c)})" for c in fast[1:]])
        text += "."
        if never:
            text += (
                f" {slow_list} {'does' if len(never) == 1 else 'do'} not get the median run there within "
                f"{fmt_int(epochs)} epochs."
            )
    else:
        text = f"On {task}, no setting gets the median run to 100% within {fmt_int(epochs)} epochs: {slow_list}."
    top = max(round(_acc_key(c), 2) for c in cells)
    best = [c for c in cells if round(_acc_key(c), 2) == top]  # ties as the table shows them
    return text + f" Highest final accuracy: {join([c.label for c in best])} ({fmt_pct(best[0].acc)}%)."


def _acc_key(cell: Cell) -> float:
    m = mean_std(cell.acc)[0]
    return -1.0 if math.isnan(m) else m


def verdict(ok: bool) -> str:
    return "**confirmed**" if ok else "**not confirmed**"
