"""``tinygrad-lab report --out report/``: rerun every experiment of the lab report, over several seeds, and
write report/README.md with tables, figures and prose answers generated from the numbers.

The experiments (sections 1-7) are cells of (task, setting); every cell runs once per seed, each run in a
worker of a process pool over the machine's cores. A run is a pure function of its TrainConfig (data and
initial weights come from the seed, BLAS runs single-threaded in the workers), and results are put back in
a fixed order, so the same seeds give byte-identical tables. README.md holds nothing that depends on the
machine (timings go to timing.json and to the terminal).

No result is typed in by hand: every number, and every verdict on the lab's observations, is computed from
the runs below.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

import numpy as np

from tinygrad_lab import data, files, train
from tinygrad_lab.train import TrainConfig

TASKS = ("linear", "xor")
LAB = TrainConfig(task="xor", hidden=(4, 4), lr=0.1, epochs=20000, activation="sigmoid", loss="mse",
                  optimizer="sgd", bias=False, init="randn")  # the lab's settings
FULL_SEEDS, FULL_EPOCHS = 5, LAB.epochs
QUICK_SEEDS, QUICK_EPOCHS = 2, 300
CURVE_POINTS = 1000  # epochs kept per learning curve (evenly spaced): plenty for a figure


@dataclass(frozen=True)
class Settings:
    epochs: int
    seeds: tuple[int, ...]
    quick: bool = False

    @property
    def log_every(self) -> int:
        """The lab logged every 1000 of 20000 epochs: 20 lines."""
        return max(1, self.epochs // 20)

    @property
    def graph_epochs(self) -> int:
        """Training before the graphs are drawn: a tenth of the run (2000 epochs in the full report)."""
        return max(1, self.epochs // 10)


def settings_for(quick: bool = False, seeds: int | None = None, epochs: int | None = None) -> Settings:
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else FULL_SEEDS)
    return Settings(epochs=epochs if epochs is not None else (QUICK_EPOCHS if quick else FULL_EPOCHS),
                    seeds=tuple(range(n_seeds)), quick=quick)


# ---- the experiments ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    label: str
    changes: tuple  # (field, value) pairs applied to LAB

    def config(self, task: str, epochs: int, seed: int) -> TrainConfig:
        return LAB.replace(task=task, epochs=epochs, seed=seed, **dict(self.changes))


def _v(label: str, **changes: Any) -> Variant:
    return Variant(label, tuple(sorted(changes.items())))


@dataclass(frozen=True)
class Section:
    number: int
    key: str
    title: str
    question: str
    variants: tuple[Variant, ...]


SECTIONS = (
    Section(1, "lab", "The lab's settings on linear and XOR",
            "Does the lab's network (sigmoid everywhere, MSE, SGD, no bias) learn both tasks?",
            (_v("lab settings"),)),
    Section(2, "lr", "Learning rates", "How does the learning rate change training?",
            (_v("lr 1", lr=1.0), _v("lr 0.1", lr=0.1), _v("lr 0.0001", lr=0.0001))),
    Section(3, "hidden", "Hidden units", "How does the number of hidden units change training?",
            (_v("2x1", hidden=(2, 1)), _v("4x4", hidden=(4, 4)), _v("32x32", hidden=(32, 32)))),
    Section(4, "noact", "Without activation functions", "What happens without activation functions?",
            (_v("sigmoid", activation="sigmoid"), _v("no activation", activation="none"))),
    Section(5, "activation", "Activation functions", "Which hidden activation trains best?",
            (_v("sigmoid", activation="sigmoid"), _v("tanh", activation="tanh"), _v("relu", activation="relu"),
             _v("leaky relu", activation="leaky_relu"))),
    Section(6, "optimizer", "Optimizers", "Which optimizer trains best?",
            (_v("SGD", optimizer="sgd"), _v("SGD + momentum", optimizer="momentum"), _v("Adam", optimizer="adam"),
             _v("RMSprop", optimizer="rmsprop"))),
    Section(7, "loss", "Loss: MSE vs binary cross-entropy", "Does cross-entropy train faster than MSE?",
            (_v("MSE", loss="mse"), _v("BCE", loss="bce"))),
)


def all_configs(settings: Settings) -> list[TrainConfig]:
    """Every distinct run of the report (cells shared by several sections run once)."""
    seen: dict[TrainConfig, None] = {}
    for section in SECTIONS:
        for variant in section.variants:
            for task in TASKS:
                for seed in settings.seeds:
                    seen.setdefault(variant.config(task, settings.epochs, seed))
    return list(seen)


# ---- one run, in a worker -------------------------------------------------------------------------------------------

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
        run = train.run(config, quiet=True, compile=compile)
    h = run.history
    idx = _curve_index(h.epochs)
    _, init_rng = train.seeded_rngs(config.seed)
    start = train.build_model(train.model_spec(config, run.x.shape[1], run.y.shape[1]), init_rng).state_dict()
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
        "log": [train.format_log_line(e, h.loss[e - 1], h.accuracy[e - 1])
                for e in range(log_every, h.epochs + 1, log_every)],
        "pred": run.predict(),
        "state": state,
        "weight_change": moved,
        "wall_time": h.wall_time,
        "compiled": h.compiled,
    }


def _curve_index(n: int) -> np.ndarray:
    from tinygrad_lab.plots import thin

    return thin(n, CURVE_POINTS)


def _cost(config: TrainConfig) -> float:
    """Rough relative cost, to start the slowest runs first."""
    sizes = [2, *config.hidden, 1]
    return config.epochs * (10 + sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) / 50)


def run_all(configs: Sequence[TrainConfig], workers: int | None = None, compile: bool = True,
            log_every: int = 1000, log: TextIO | None = None) -> dict[TrainConfig, dict]:
    """Every config through a process pool (or in this process for one worker); results keyed by config."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(configs)))
    jobs = sorted(((c, compile, log_every) for c in configs), key=lambda j: -_cost(j[0]))
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


# ---- statistics of a cell -------------------------------------------------------------------------------------------

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
        return float(statistics.median(math.inf if r["epochs_to_100"] is None else r["epochs_to_100"]
                                       for r in self.runs))

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


def fmt_runs(cell: "Cell") -> str:
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


def _join(items: Sequence[str]) -> str:
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
    reach = ("never reaches 100% in the median run" if math.isinf(cell.median_epochs)
             else f"first reaches 100% after a median {fmt_epochs(cell)} epochs")
    acc = "every run diverged" if not cell.finite_runs else f"{fmt_pct(cell.acc)}% final accuracy"
    return f"{acc}, {fmt_runs(cell)} runs at 100%, {reach}"


def ranking(cells: Sequence[Cell], epochs: int) -> str:
    """Sentences ranking the settings of one task by speed to 100%, then by final accuracy."""
    task = cells[0].task
    order = sorted(range(len(cells)), key=lambda i: (cells[i].median_epochs, -_acc_key(cells[i]), i))
    fast = [cells[i] for i in order if not math.isinf(cells[i].median_epochs)]
    never = [cells[i] for i in order if math.isinf(cells[i].median_epochs)]
    slow_list = _join([f"{c.label} ({fmt_pct(c.acc)}%, {fmt_runs(c)} runs at 100%)" for c in never])
    if fast:
        text = f"On {task}, {fast[0].label} reaches 100% first (median {fmt_epochs(fast[0])} epochs)"
        if len(fast) > 1:
            text += ", then " + _join([f"{c.label} ({fmt_epochs(c)})" for c in fast[1:]])
        text += "."
        if never:
            text += (f" {slow_list} {'does' if len(never) == 1 else 'do'} not get the median run there within "
                     f"{fmt_int(epochs)} epochs.")
    else:
        text = f"On {task}, no setting gets the median run to 100% within {fmt_int(epochs)} epochs: {slow_list}."
    top = max(round(_acc_key(c), 2) for c in cells)
    best = [c for c in cells if round(_acc_key(c), 2) == top]  # ties as the table shows them
    return text + f" Highest final accuracy: {_join([c.label for c in best])} ({fmt_pct(best[0].acc)}%)."


def _acc_key(cell: Cell) -> float:
    m = mean_std(cell.acc)[0]
    return -1.0 if math.isnan(m) else m


def verdict(ok: bool) -> str:
    return "**confirmed**" if ok else "**not confirmed**"


# ---- the report ---------------------------------------------------------------------------------------------------------

@dataclass
class Context:
    out: Path
    settings: Settings
    cells: dict  # (section key, task, label) -> Cell
    compile: bool
    claims: list  # (section number, the lab's observation, measured, ok)
    figures: list  # (path, builder) rendered at the end, in a pool

    def cell(self, key: str, task: str, label: str) -> Cell:
        return self.cells[(key, task, label)]

    def section_cells(self, section: Section) -> list[Cell]:
        return [self.cell(section.key, task, v.label) for task in TASKS for v in section.variants]

    def figure(self, name: str, builder: Callable[[], Any]) -> str:
        """Queue a figure for rendering; returns its markdown image link."""
        self.figures.append((self.out / name, builder))
        return f"![{name}]({name})"


def _curves_figure(ctx: Context, section: Section, name: str) -> str:
    """Loss and accuracy curves of every setting of a section, overlaid per task (mean over seeds, band
    from the lowest to the highest seed)."""
    series = {}
    for task in TASKS:
        curves = []
        for v in section.variants:
            cell = ctx.cell(section.key, task, v.label)
            epochs = cell.runs[0]["curve_epochs"]
            loss = np.array([r["loss_curve"] for r in cell.runs])
            acc = np.array([r["acc_curve"] for r in cell.runs])
            curves.append((v.label, epochs, loss, acc))
        series[task] = curves
    return ctx.figure(name, lambda: _render_curves(series))


def _render_curves(series: dict) -> Any:
    from tinygrad_lab import plots

    return plots.curves_grid_figure(series)


def _comparison_figures(ctx: Context, key: str, label: str, prefix: str) -> str:
    """The lab's ground truth | prediction figure for seed 0 of each task, plus its decision boundary."""
    links = []
    for task in TASKS:
        run = ctx.cell(key, task, label).runs[0]
        config = run["config"]
        x, y = data.load_task(task, train.seeded_rngs(config.seed)[0])
        pred = run["pred"]
        title = f"{task}, {label}, seed {config.seed}"
        links.append(ctx.figure(f"{prefix}_{task}_comparison.png",
                                _partial(_render_comparison, x, y, pred, title)))
        links.append(ctx.figure(f"{prefix}_{task}_boundary.png",
                                _partial(_render_boundary, config, run["state"], x, y, title)))
    return "\n".join(links)


def _partial(fn: Callable, *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)


def _render_comparison(x: np.ndarray, y: np.ndarray, pred: np.ndarray, title: str) -> Any:
    from tinygrad_lab import plots

    return plots.comparison_figure(x, y, pred, title=title)


def _render_boundary(config: TrainConfig, state: dict, x: np.ndarray, y: np.ndarray, title: str) -> Any:
    import tinygrad_lab as tl
    from tinygrad_lab import plots
    from tinygrad_lab.tensor import Tensor

    model = train.build_model(train.model_spec(config, x.shape[1], y.shape[1]), np.random.default_rng(0))
    model.load_state_dict(state)

    def predict(points: np.ndarray) -> np.ndarray:
        with tl.no_grad():
            return model(Tensor(points)).data

    return plots.decision_boundary_figure(predict, x, y, title=title)


def _code(lines: Iterable[str]) -> str:
    return "```text\n" + "\n".join(lines) + "\n```"


# ---- the sections' prose: every number and verdict below comes from the runs ------------------------------------------

def section_lab(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    out = []
    label = section.variants[0].label
    cells = [ctx.cell(section.key, t, label) for t in TASKS]
    out.append(f"Settings: hidden {'x'.join(map(str, LAB.hidden))}, {LAB.activation} after every layer, "
               f"{LAB.loss.upper()} loss, SGD with lr {LAB.lr}, no bias, weights drawn from a standard normal, "
               f"{fmt_int(s.epochs)} full-batch epochs.")
    out.append(table(cells))
    for c in cells:
        out.append(f"- **{c.task}**: {describe(c)}.")
    both = all(c.n_100 == c.n for c in cells)
    measured = "; ".join(f"{c.task}: {c.n_100}/{c.n} runs at 100%" for c in cells)
    ctx.claims.append((section.number, "Both tasks reach 100% accuracy (one run each).", measured, both))
    if both:
        out.append(f"The lab's single runs reached 100% on both tasks, and so does every one of the {cells[0].n} "
                   f"seeds here: {verdict(True)}.")
    else:
        out.append(f"The lab's single runs reached 100% on both tasks; here {measured}: {verdict(False)} for every "
                   "seed, so the lab's result depends on the draw of the initial weights.")
    slow = max(cells, key=lambda c: c.median_epochs)
    fast = min(cells, key=lambda c: c.median_epochs)
    if slow is not fast and not math.isinf(fast.median_epochs):
        if math.isinf(slow.median_epochs):
            out.append(f"{fast.task} gets there after a median {fmt_epochs(fast)} epochs; {slow.task}'s median run "
                       f"does not get there within {fmt_int(s.epochs)}.")
        else:
            out.append(f"{slow.task} needs {slow.median_epochs / fast.median_epochs:.1f}x as many epochs as "
                       f"{fast.task} to reach 100% (medians {fmt_epochs(slow)} and {fmt_epochs(fast)}).")
    for c in cells:
        out.append(f"The log of seed {c.runs[0]['config'].seed} on {c.task}, in the lab's format:")
        out.append(_code(c.runs[0]["log"] + [f"Accuracy(%): {train.format_accuracy(c.runs[0]['final_accuracy'])}"]))
    out.append("Ground truth beside prediction (red: label 0, blue: label 1) and the decision boundary, seed 0:")
    out.append(_comparison_figures(ctx, section.key, label, "lab"))
    out.append("Learning curves (line: mean over seeds; band: lowest to highest seed):")
    out.append(_curves_figure(ctx, section, "lab_curves.png"))
    return out


def section_lr(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    lrs = [dict(v.changes)["lr"] for v in section.variants]
    hi, base, lo = (labels[lrs.index(max(lrs))], labels[lrs.index(sorted(lrs)[1])], labels[lrs.index(min(lrs))])
    out = [table(ctx.section_cells(section), [("weight change ‖Δw‖", lambda c: fmt_number(c.weight_change))])]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    # the lab: lr 1 converges faster than lr 0.1, especially on XOR
    speed, saved = {}, {}
    for task in TASKS:
        a, b = ctx.cell(section.key, task, hi), ctx.cell(section.key, task, base)
        speed[task] = (b.median_epochs / a.median_epochs) if not math.isinf(a.median_epochs) else 0.0
        saved[task] = b.median_epochs - a.median_epochs
    faster = all(v > 1 for v in speed.values())
    measured = "; ".join(
        f"{t}: median {fmt_epochs(ctx.cell(section.key, t, hi))} epochs to 100% at {hi}, "
        f"{fmt_epochs(ctx.cell(section.key, t, base))} at {base}" for t in TASKS)
    ctx.claims.append((section.number, f"{hi} converges faster than {base}.", measured, faster))
    especially = faster and speed["xor"] > 1.1 * speed["linear"]  # a clearly larger factor, not rounding
    factors = "; ".join(f"{t}: {_factor(v)}" for t, v in speed.items())
    ctx.claims.append((section.number, "... especially on XOR.", f"speed-up {base} / {hi}: {factors}", especially))
    text = (f"The lab saw {hi} converge faster than {base}, especially on XOR. Faster on both tasks: "
            f"{verdict(faster)} (speed-up in median epochs to 100%: {factors}). Especially on XOR, as a larger "
            f"speed-up factor: {verdict(especially)}.")
    lr_ratio = max(lrs) / sorted(lrs)[1]
    if faster and all(abs(v / lr_ratio - 1) < 0.15 for v in speed.values()):
        text += (f" Both factors are close to the ratio of the learning rates, {lr_ratio:g}x: with these small "
                 f"steps gradient descent follows about the same path, {lr_ratio:g} times faster.")
    if faster and all(math.isfinite(v) for v in saved.values()):
        text += (f" In epochs saved, though, XOR gains {'more' if saved['xor'] > saved['linear'] else 'less'} "
                 f"({fmt_int(saved['xor'])} against {fmt_int(saved['linear'])} on linear), because it needs "
                 f"{'more' if ctx.cell(section.key, 'xor', base).median_epochs > ctx.cell(section.key, 'linear', base).median_epochs else 'fewer'} "
                 f"epochs to begin with, which is what a single learning curve shows.")
    out.append(text)
    # the lab: lr 0.0001 does not converge
    small = [ctx.cell(section.key, t, lo) for t in TASKS]
    none = all(c.n_100 == 0 for c in small)
    measured = "; ".join(f"{c.task}: {fmt_pct(c.acc)}%, {c.n_100}/{c.n} runs at 100%" for c in small)
    ctx.claims.append((section.number, f"{lo} does not converge on either task.", measured, none))
    ratio = s.epochs * min(lrs) / sorted(lrs)[1]
    moved = {label: ctx.cell(section.key, "xor", label).weight_change for label in labels}
    out.append(f"The lab saw {lo} fail on both tasks: here {measured}: {verdict(none)}. The reason is the step "
               f"size: {fmt_int(s.epochs)} epochs at {lo} move the weights about as far as {ratio:g} epochs at "
               f"{base} (to first order), and indeed on XOR the weights moved {fmt_number(moved[lo])} (L2 norm of "
               f"the change, mean over seeds) at {lo} against {fmt_number(moved[base])} at {base}.")
    out.append(_curves_figure(ctx, section, "lr_curves.png"))
    return out


def _factor(v: float) -> str:
    return f"{v:.1f}x" if math.isfinite(v) and v > 0 else ("not measurable" if v == 0 else "unbounded")


def _parameter_count(hidden: tuple[int, ...]) -> int:
    sizes = [2, *hidden, 1]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def section_hidden(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    sizes = {v.label: dict(v.changes)["hidden"] for v in section.variants}
    out = [table(ctx.section_cells(section),
                 [("weights", lambda c: fmt_int(_parameter_count(sizes[c.label])))])]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    big = max(labels, key=lambda label: _parameter_count(sizes[label]))
    tiny = min(labels, key=lambda label: _parameter_count(sizes[label]))
    big_cells = [ctx.cell(section.key, t, big) for t in TASKS]
    ok_big = all(c.n_100 == c.n for c in big_cells)
    measured = "; ".join(f"{c.task}: {c.n_100}/{c.n} runs at 100%" for c in big_cells)
    ctx.claims.append((section.number, f"{big} still performs well on both tasks.", measured, ok_big))
    out.append(f"The lab saw {big} still perform well on both tasks: {measured}: {verdict(ok_big)}.")
    tiny_cells = [ctx.cell(section.key, t, tiny) for t in TASKS]
    ok_tiny = all(c.n_100 == 0 for c in tiny_cells)
    measured = "; ".join(f"{c.task}: {fmt_pct(c.acc)}%, {c.n_100}/{c.n} runs at 100%" for c in tiny_cells)
    ctx.claims.append((section.number, f"{tiny} cannot converge within the epochs.", measured, ok_tiny))
    out.append(f"The lab saw {tiny} fail to converge within {fmt_int(s.epochs)} epochs: {measured}: "
               f"{verdict(ok_tiny)}. With {_parameter_count(sizes[tiny])} weights and a one-unit second layer, every "
               f"prediction is a function of a single number.")
    out.append(_curves_figure(ctx, section, "hidden_curves.png"))
    return out


def _majority_rate(task: str) -> float:
    _, y = data.load_task(task, train.seeded_rngs(0)[0])
    share = float(np.mean(y > 0.5))
    return 100.0 * max(share, 1 - share)


def _least_squares_accuracy(task: str) -> float:
    """Accuracy of the best bias-free linear map under MSE (least squares) on seed 0's data."""
    x, y = data.load_task(task, train.seeded_rngs(0)[0])
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    return train.accuracy(x @ w, y)


def section_noact(ctx: Context, section: Section) -> list[str]:
    label = section.variants[-1].label
    out = [table(ctx.section_cells(section))]
    lin, xor = ctx.cell(section.key, "linear", label), ctx.cell(section.key, "xor", label)
    chance = {t: _majority_rate(t) for t in TASKS}
    best_linear = {t: _least_squares_accuracy(t) for t in TASKS}
    lin_m = mean_std(lin.acc)[0]
    learns = bool(lin.finite_runs) and lin.n_100 < lin.n and lin_m > chance["linear"]
    ctx.claims.append((section.number, "Linear: accuracy drops but the network still learns something.",
                       f"linear: {'diverged' if not lin.finite_runs else fmt_pct(lin.acc) + '%'} (majority class: "
                       f"{chance['linear']:.1f}%), {fmt_runs(lin)} runs at 100%", learns))
    fails = xor.n_100 == 0
    ctx.claims.append((section.number, "XOR: the network cannot learn it.",
                       f"xor: {'diverged' if not xor.finite_runs else fmt_pct(xor.acc) + '%'} (majority class: "
                       f"{chance['xor']:.1f}%), {fmt_runs(xor)} runs at 100%", fails))
    text = ("Without activations the layers compose into a single linear map with no bias, x @ (W1 W2 W3), "
            "whose decision rule, output > 0.5, is one straight line through the plane.")
    finite = (xor.finite_runs or lin.finite_runs)
    if finite:  # evidence: a trained network's outputs equal the product of its weight matrices applied to x
        run = finite[0]
        x, _ = data.load_task(run["config"].task, train.seeded_rngs(run["config"].seed)[0])
        product = np.linalg.multi_dot([run["state"][k] for k in run["state"]])
        gap = float(np.max(np.abs(x @ product - run["pred"])))
        text += (f" For seed {run['config'].seed} on {run['config'].task} the trained network's outputs equal "
                 f"x @ (W1 W2 W3) to within {gap:.1e}.")
    out.append(text)
    diverged = lin.diverged + xor.diverged
    if diverged:
        out.append(f"{diverged} of {lin.n + xor.n} runs diverged (the loss became NaN or infinite) at lr {LAB.lr}: "
                   "without the sigmoids nothing bounds the outputs, and the products of standard-normal weight "
                   "matrices make the first gradients large enough for SGD to overshoot. The statistics below "
                   "are over the runs that did not diverge.")
    for cell in (lin, xor):
        task = cell.task
        line = (f"- **{task}**: {describe(cell)}. The majority class alone gives {chance[task]:.1f}%, and the best "
                f"any bias-free linear map can do under MSE (the least-squares fit on seed 0's data) is "
                f"{best_linear[task]:.1f}%. ")
        if task == "linear":
            line += f"The lab saw accuracy drop while the network still learned something: {verdict(learns)}."
        else:
            line += f"The lab saw the network fail on XOR, whose classes no single line separates: {verdict(fails)}."
        out.append(line)
    out.append("Seed 0 without activations, ground truth beside prediction and decision boundary:")
    out.append(_comparison_figures(ctx, section.key, label, "noact"))
    out.append(_curves_figure(ctx, section, "noact_curves.png"))
    return out


def answer(ctx: Context, section: Section) -> str:
    """The section's question answered across both tasks: which setting is fastest to 100% on each, and
    which settings bring every run to 100% on both."""
    labels = [v.label for v in section.variants]
    fastest = {}
    for task in TASKS:
        cells = [ctx.cell(section.key, task, label) for label in labels]
        quickest = min(c.median_epochs for c in cells)
        fastest[task] = [] if math.isinf(quickest) else [c.label for c in cells if c.median_epochs == quickest]
    if not any(fastest.values()):
        text = (f"**Answer:** within {fmt_int(ctx.settings.epochs)} epochs no setting gets the median run to 100% "
                "on either task.")
    elif fastest[TASKS[0]] and fastest[TASKS[0]] == fastest[TASKS[1]]:
        text = f"**Answer:** {_join(fastest[TASKS[0]])} reaches 100% fastest on both tasks."
    else:
        text = "**Answer:** no setting is fastest on both tasks (" + "; ".join(
            f"{task}: {_join(f) if f else 'none reaches 100% in the median run'}" for task, f in fastest.items()) + ")."
    reliable = [label for label in labels
                if all(ctx.cell(section.key, t, label).n_100 == ctx.cell(section.key, t, label).n for t in TASKS)]
    if reliable:
        text += f" Every run ends at 100% on both tasks with {_join(reliable)}."
    else:
        text += " No setting brings every run to 100% on both tasks."
    return text


def _generic(ctx: Context, section: Section, note: str = "") -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    out = [table(ctx.section_cells(section))]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    out.append(answer(ctx, section))
    if note:
        out.append(note)
    out.append(_curves_figure(ctx, section, f"{section.key}_curves.png"))
    return out


def section_activation(ctx: Context, section: Section) -> list[str]:
    return _generic(ctx, section, f"The hidden layers use the named activation; the output keeps its sigmoid, "
                                  f"everything else is the lab's (lr {LAB.lr}, no bias).")


def section_optimizer(ctx: Context, section: Section) -> list[str]:
    return _generic(ctx, section, f"Every optimizer runs at the lab's lr {LAB.lr} (momentum: "
                                  f"{train.MOMENTUM}; Adam and RMSprop with PyTorch's default betas / alpha).")


def section_loss(ctx: Context, section: Section) -> list[str]:
    return _generic(ctx, section, "The two losses are on different scales, so compare accuracies and epochs, "
                                  "not loss values.")


WRITERS = {"lab": section_lab, "lr": section_lr, "hidden": section_hidden, "noact": section_noact,
           "activation": section_activation, "optimizer": section_optimizer, "loss": section_loss}


# ---- graphs (tinygrad_lab.viz) ------------------------------------------------------------------------------------------

def embed_graphs(ctx: Context, render_files: bool = True) -> dict[str, list[str]]:
    """THE place where computation graphs enter the report (issue 4): the forward graph of the lab's network
    (section 1) and the backward views after training at the lab's lr and at the lowest one, side by side
    (section 2). Returns markdown paragraphs per section key; ``render_files=False`` writes no file."""
    try:
        from tinygrad_lab import viz
    except ImportError:
        return {"lab": ["_Graphs need tinygrad_lab.viz, which is not installed._"]}
    s = ctx.settings
    lr_variants = next(sec for sec in SECTIONS if sec.key == "lr").variants
    by_lr = sorted(lr_variants, key=lambda v: dict(v.changes)["lr"])
    slow, fast = by_lr[0], by_lr[1]  # 0.0001 against the lab's 0.1
    paths: dict[str, str] = {}
    params: dict[str, dict[str, float]] = {}
    losses: dict[str, float] = {}
    failures: list[str] = []

    def render(name: str, variant: Variant, view: str, epochs: int) -> None:
        cfg = variant.config("xor", max(epochs, 1), 0)
        loss, model = train.graph_root(cfg, after_epochs=epochs, compile=ctx.compile)
        params[name] = {k: float(np.linalg.norm(p.grad.data)) for k, p in model.named_parameters()}
        losses[name] = loss.item()
        try:
            if render_files:
                viz.render(loss, ctx.out / name, view=view, params=dict(model.named_parameters()))
            paths[name] = name
        except (RuntimeError, OSError) as err:  # no Graphviz dot: the .dot text is written beside
            failures.append(f"{name}: {str(err).splitlines()[0]}")

    render("graph_forward.svg", fast, "forward", 0)
    render(f"graph_backward_{fast.label.replace(' ', '_')}.svg", fast, "backward", s.graph_epochs)
    render(f"graph_backward_{slow.label.replace(' ', '_')}.svg", slow, "backward", s.graph_epochs)
    names = list(params)
    lab_md = ["The lab's network and its loss on XOR as a graph (tinygrad_lab.viz; parameters in blue, inputs "
              "yellow, ops grey, the loss green):"]
    if names[0] in paths:
        lab_md.append(f"![forward graph]({paths[names[0]]})")
    b_fast, b_slow = names[1], names[2]
    g_fast, g_slow = params[b_fast], params[b_slow]
    first = next(iter(g_fast))
    last = list(g_fast)[-1]
    lr_md = [f"The backward graphs after {fmt_int(s.graph_epochs)} epochs on XOR (seed 0) at {fast.label} and "
             f"{slow.label}, each node coloured by the norm of the gradient reaching it (one colour per decade, "
             "the same scale in both):"]
    if b_fast in paths and b_slow in paths:
        lr_md.append(f"| {fast.label} | {slow.label} |\n|---|---|\n| ![backward {fast.label}]({paths[b_fast]}) | "
                     f"![backward {slow.label}]({paths[b_slow]}) |")
    lr_fast, lr_slow = dict(fast.changes)["lr"], dict(slow.changes)["lr"]
    text = (f"Gradient norms after {fmt_int(s.graph_epochs)} epochs: {first} {fmt_number(g_fast[first])} and {last} "
            f"{fmt_number(g_fast[last])} at {fast.label} (loss {fmt_number(losses[b_fast])}); {first} "
            f"{fmt_number(g_slow[first])} and {last} {fmt_number(g_slow[last])} at {slow.label} (loss "
            f"{fmt_number(losses[b_slow])}).")
    shrink = g_slow[last] / g_slow[first] if g_slow[first] > 0 else math.inf
    if shrink > 1:
        text += (f" At {slow.label}, still near the initial weights, the gradient reaching {first} is {shrink:.1f}x "
                 f"smaller than the one reaching {last}: it shrinks on its way back through the sigmoids, whose "
                 "derivative is at most 0.25.")
    text += (f" One step moves {first} by lr times its gradient norm: {lr_slow * g_slow[first]:.1e} at {slow.label}, "
             f"{lr_fast * g_fast[first]:.1e} at {fast.label}.")
    lr_md.append(text)
    if failures:
        note = "_Graphs not rendered: " + "; ".join(failures) + "_"
        lab_md.append(note)
    return {"lab": lab_md, "lr": lr_md}


# ---- assembling ---------------------------------------------------------------------------------------------------------

def _render_figure(job: tuple[Path, Callable[[], Any]]) -> str:
    path, builder = job
    files.save_figure(builder(), path)
    return path.name


def build_report(out: str | os.PathLike, settings: Settings | None = None, workers: int | None = None,
                 compile: bool = True, log: TextIO | None = None, figures: bool = True) -> Path:
    """Run every experiment and write out/README.md with its figures (``figures=False``: the text only, for
    checking that two runs agree); returns the README's path."""
    settings = settings or settings_for()
    out = Path(out)
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    configs = all_configs(settings)
    if log is not None:
        print(f"report: {len(configs)} runs of {fmt_int(settings.epochs)} epochs "
              f"({len(settings.seeds)} seeds) on {workers or os.cpu_count()} workers", file=log, flush=True)
    results = run_all(configs, workers=workers, compile=compile, log_every=settings.log_every, log=log)
    t_runs = time.perf_counter() - t0

    cells = {}
    for section in SECTIONS:
        for v in section.variants:
            for task in TASKS:
                runs = [results[v.config(task, settings.epochs, seed)] for seed in settings.seeds]
                cells[(section.key, task, v.label)] = Cell(task, v.label, runs, settings.epochs)
    ctx = Context(out, settings, cells, compile, claims=[], figures=[])

    body = []
    graphs = embed_graphs(ctx, render_files=figures)
    for section in SECTIONS:
        body.append(f"## {section.number}. {section.title}")
        body.append(f"_{section.question}_")
        body.extend(WRITERS[section.key](ctx, section))
        body.extend(graphs.get(section.key, []))

    t1 = time.perf_counter()
    if figures:
        _render_all(ctx.figures, workers)
    t_figs = time.perf_counter() - t1

    text = "\n\n".join(_header(settings, len(configs), ctx.claims) + body) + "\n"
    readme = files.write_text(out / "README.md", text)
    timing = {"runs": len(configs), "epochs": settings.epochs, "seeds": len(settings.seeds),
              "workers": workers or os.cpu_count(), "compiled": all(r["compiled"] for r in results.values()),
              "training_s": round(t_runs, 3), "figures_s": round(t_figs, 3),
              "total_s": round(time.perf_counter() - t0, 3),
              "seconds_per_epoch_median": float(np.median([r["wall_time"] / settings.epochs
                                                           for r in results.values()]))}
    files.write_json(out / "timing.json", timing)
    if log is not None:
        print(f"report: training {t_runs:.1f} s, figures {t_figs:.1f} s, total {timing['total_s']:.1f} s "
              f"({timing['seconds_per_epoch_median'] * 1e6:.0f} us per epoch, "
              f"{'captured' if timing['compiled'] else 'eager'} step)", file=log, flush=True)
    return readme


_JOBS: list = []  # the figure jobs, set before the pool forks so workers inherit the closures


def _render_figure_at(i: int) -> str:
    return _render_figure(_JOBS[i])


def _render_all(jobs: list, workers: int | None) -> None:
    """Render the queued figures, in a pool when there are several cores (figures are independent)."""
    global _JOBS
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    import multiprocessing

    if workers == 1 or multiprocessing.get_start_method() != "fork":  # closures only travel by fork
        for job in jobs:
            _render_figure(job)
        return
    _JOBS = jobs
    try:
        with multiprocessing.Pool(workers) as pool:
            pool.map(_render_figure_at, range(len(jobs)), chunksize=1)
    finally:
        _JOBS = []


def _header(settings: Settings, n_runs: int, claims: list) -> list[str]:
    seeds = settings.seeds
    head = ["# The backprop lab, rerun on tinygrad_lab",
            "Generated by `tinygrad-lab report` (`make demo`): every experiment of the Lab 1 (backpropagation) "
            "report and its extra questions, rerun on tinygrad_lab. Every number, figure and verdict below is "
            "computed from the runs; none is typed in."]
    if settings.quick:
        head.append(f"> **Quick smoke run** ({fmt_int(settings.epochs)} epochs, {len(seeds)} seeds): the "
                    "numbers only show that every part of the report runs. Run `tinygrad-lab report` "
                    "without `--quick` for the real report.")
    head.append(f"Each setting ran with {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}; a seed fixes the data "
                f"and the initial weights, and the same seed gives the same initial weights to every task and "
                f"setting), {fmt_int(settings.epochs)} full-batch epochs, {n_runs} runs in all. Tables show the "
                "mean ± sample standard deviation over seeds of the final training accuracy and loss, how many "
                "runs end at 100%, and the median over seeds of the first epoch at 100% accuracy (a run that "
                "never gets there counts as never, so the median is 'never' when half the runs or more never "
                "do). A run whose loss becomes NaN or infinite is counted as diverged and left out of the means. "
                "The lab drew one run per setting, which cannot tell luck from effect.")
    head.append("## The lab's observations, checked")
    rows = ["| section | the lab observed | measured here | verdict |", "|---|---|---|---|"]
    for number, claim, measured, ok in claims:
        rows.append(f"| {number} | {claim} | {measured} | {'confirmed' if ok else 'not confirmed'} |")
    head.append("\n".join(rows))
    return head


if __name__ == "__main__":  # pragma: no cover
    build_report(sys.argv[1] if len(sys.argv) > 1 else "report", settings_for(quick="--quick" in sys.argv),
                 log=sys.stdout)
