"""The report being written: its cells, the lab's observations checked so far, and the queue of figures.

Figures are queued as (path, function, arguments) with module-level functions, rendered at the end in a pool
(picklable, so any start method works) and linked from the markdown.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab import files
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.lab import data
from tinygrad_lab.lab.config import TrainConfig, build_model, model_spec, seeded_rngs
from tinygrad_lab.lab.report.experiments import TASKS, Section, Settings
from tinygrad_lab.lab.report.statistics import Cell


@dataclass
class Context:
    """What the section writers share: the output folder, the settings, every cell, the lab's observations
    checked so far and the figures queued for rendering."""

    out: Path
    settings: Settings
    cells: dict  # (section key, task, label) -> Cell
    compile: bool
    claims: list  # (section number, the lab's observation, measured, ok)
    figures: list  # (path, function, arguments): rendered at the end, in a pool

    def cell(self, key: str, task: str, label: str) -> Cell:
        return self.cells[(key, task, label)]

    def section_cells(self, section: Section) -> list[Cell]:
        return [self.cell(section.key, task, v.label) for task in TASKS for v in section.variants]

    def figure(self, name: str, builder: Callable[..., Any], *args: Any) -> str:
        """Queue ``builder(*args)`` (a module-level function returning a figure); returns its markdown link."""
        self.figures.append((self.out / name, builder, args))
        return f"![{name}]({name})"


def curves_figure(ctx: Context, section: Section, name: str) -> str:
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
    return ctx.figure(name, _render_curves, series)


def comparison_figures(ctx: Context, key: str, label: str, prefix: str) -> str:
    """The lab's ground truth | prediction figure for seed 0 of each task, plus its decision boundary."""
    links = []
    for task in TASKS:
        run = ctx.cell(key, task, label).runs[0]
        config = run["config"]
        x, y = data.load_task(task, seeded_rngs(config.seed)[0])
        title = f"{task}, {label}, seed {config.seed}"
        links.append(ctx.figure(f"{prefix}_{task}_comparison.png", _render_comparison, x, y, run["pred"], title))
        links.append(ctx.figure(f"{prefix}_{task}_boundary.png", _render_boundary, config, run["state"], x, y, title))
    return "\n".join(links)


def code_block(lines: Iterable[str]) -> str:
    return "```text\n" + "\n".join(lines) + "\n```"


def _render_curves(series: dict) -> Any:
    from tinygrad_lab.lab import plots

    return plots.curves_grid_figure(series)


def _render_comparison(x: np.ndarray, y: np.ndarray, pred: np.ndarray, title: str) -> Any:
    from tinygrad_lab.lab import plots

    return plots.comparison_figure(x, y, pred, title=title)


def _render_boundary(config: TrainConfig, state: dict, x: np.ndarray, y: np.ndarray, title: str) -> Any:
    from tinygrad_lab.lab import plots

    model = build_model(model_spec(config, x.shape[1], y.shape[1]), np.random.default_rng(0))
    model.load_state_dict(state)

    def predict(points: np.ndarray) -> np.ndarray:
        with tl.no_grad():
            return model(Tensor(points)).data

    return plots.decision_boundary_figure(predict, x, y, title=title)


def _render_figure(job: tuple[Path, Callable[..., Any], tuple]) -> str:
    path, builder, args = job
    files.save_figure(builder(*args), path)
    return path.name


def render_figures(jobs: list, workers: int | None) -> None:
    """Render the queued figures, in a pool when there are several cores (figures are independent)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        for job in jobs:
            _render_figure(job)
        return
    with multiprocessing.Pool(workers) as pool:
        pool.map(_render_figure, jobs, chunksize=1)
