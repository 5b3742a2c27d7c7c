"""The report's extra section, "Extra: convolution layers": the lab's MLP against a small CNN on scikit-learn's
handwritten digits, over several seeds, with their learning curves and the CNN's first-layer filters.

Its runs go through the same pool as the lab's (build.py adds ``configs(settings)`` to the report's runs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lab.lab import train
from tinygrad_lab.lab.config import CNN_KERNEL_SIZE, TrainConfig, defaults_for
from tinygrad_lab.lab.report.context import Context, code_block
from tinygrad_lab.lab.report.experiments import Settings
from tinygrad_lab.lab.report.statistics import fmt_pct, mean_std

TITLE = "Extra: convolution layers"
MODELS = ("mlp", "cnn")
SEEDS = 3  # at most; the quick report has 2
QUICK_EPOCHS = 2
TARGET = 97.5  # the CNN's test accuracy to reach, median over seeds, at the full schedule


def epochs(settings: Settings) -> int:
    """The digits runs keep their own schedule (20 epochs of minibatches), whatever the lab's epochs are."""
    return QUICK_EPOCHS if settings.quick else defaults_for("digits")["epochs"]


def configs(settings: Settings) -> list[TrainConfig]:
    """Every digits run of the section: each model over the first SEEDS seeds."""
    return [
        TrainConfig.for_task("digits", model, seed=seed, epochs=epochs(settings))
        for model in MODELS
        for seed in settings.seeds[:SEEDS]
    ]


def _runs(results: dict, settings: Settings, model: str) -> list[dict]:
    return [
        results[TrainConfig.for_task("digits", model, seed=seed, epochs=epochs(settings))]
        for seed in settings.seeds[:SEEDS]
    ]


def _describe(config: TrainConfig) -> str:
    sizes = ", ".join(map(str, config.hidden))
    if config.model == "cnn":
        k = CNN_KERNEL_SIZE
        return (
            f"CNN: conv {k}x{k} ({sizes} channels, padding {k // 2}) - {config.activation} - max pool 2 per "
            "layer, then one linear layer to the 10 classes"
        )
    return f"MLP: hidden {sizes}, {config.activation}, one linear layer to the 10 classes"


def section(ctx: Context, results: dict) -> list[str]:
    """The section's markdown: settings, the table over seeds, the verdict on the target, curves, filters."""
    s = ctx.settings
    runs = {model: _runs(results, s, model) for model in MODELS}
    first = runs["cnn"][0]["config"]
    n_seeds = len(runs["cnn"])
    out = [
        f"## {TITLE}",
        "_Does a small convolutional network beat the MLP on real handwritten digits?_",
        f"scikit-learn's 1,797 handwritten digits (8x8 pixels), split once into {_size(results, 'train')} "
        f"training and {_size(results, 'test')} test images (stratified, the same for every run), the pixels "
        "standardized with the training images' mean and standard deviation. Both models "
        f"train with cross-entropy, Adam at lr {first.lr:g}, minibatches of {first.batch_size}, "
        f"{first.epochs} epochs, float32, over {n_seeds} seeds ({s.seeds[0]}-{s.seeds[n_seeds - 1]}; a seed "
        "fixes the initial weights and the order of the minibatches).",
        "\n".join(f"- {_describe(r[0]['config'])}" for r in runs.values()),
        "| model | test accuracy (%) | median | parameters | seconds per epoch |",
    ]
    rows = ["|---|---|---|---|---|"]
    for model, model_runs in runs.items():
        test = np.array([r["test_accuracy"] for r in model_runs], dtype=float)
        per_epoch = np.median([r["wall_time"] / r["config"].epochs for r in model_runs])
        rows.append(
            f"| {model.upper()} | {fmt_pct(test)} | {np.median(test):.2f} | "
            f"{model_runs[0]['parameters']:,} | {per_epoch:.3f} |"
        )
    out[-1] += "\n" + "\n".join(rows)
    out.append(_answer(runs, s.quick))
    out.append(f"The log of seed {first.seed} of the CNN, in the lab's format with the test accuracy:")
    log = runs["cnn"][0]["log"]
    out.append(code_block(log + [f"Accuracy(%): {train.format_accuracy(runs['cnn'][0]['final_accuracy'])}"]))
    out.append("Learning curves (line: mean over seeds; band: lowest to highest seed):")
    series = [
        (
            model.upper(),
            model_runs[0]["curve_epochs"],
            np.array([r["loss_curve"] for r in model_runs]),
            np.array([r["acc_curve"] for r in model_runs]),
            np.array([r["val_curve"] for r in model_runs]),
        )
        for model, model_runs in runs.items()
    ]
    out.append(ctx.figure("digits_curves.png", _render_curves, series))
    weight = next(v for k, v in runs["cnn"][0]["state"].items() if k.endswith("weight") and v.ndim == 4)
    out.append(
        f"The CNN's {len(weight)} first-layer filters after training (seed {first.seed}; red positive, "
        "blue negative, each scaled to its largest weight):"
    )
    out.append(ctx.figure("digits_filters.png", _render_filters, weight))
    return out


def _size(results: dict, split: str) -> str:
    run = next(r for c, r in results.items() if c.task == "digits")
    return f"{len(run['pred']):,}" if split == "train" else f"{run['test_size']:,}"


def _answer(runs: dict, quick: bool) -> str:
    mlp = np.array([r["test_accuracy"] for r in runs["mlp"]], dtype=float)
    cnn = np.array([r["test_accuracy"] for r in runs["cnn"]], dtype=float)
    gap = mean_std(cnn)[0] - mean_std(mlp)[0]
    better = "beats" if gap > 0 else "trails"
    text = (
        f"**Answer:** the CNN {better} the MLP by {abs(gap):.2f} points of mean test accuracy "
        f"({np.count_nonzero(cnn > mlp)} of {len(cnn)} seeds better), with "
        f"{runs['cnn'][0]['parameters'] / runs['mlp'][0]['parameters']:.2f}x the MLP's parameters."
    )
    if not quick:
        median, images = float(np.median(cnn)), runs["cnn"][0]["test_size"]
        reached = median >= TARGET
        text += (
            f" Its median test accuracy, {median:.2f}% ({round(median / 100 * images)} of {images} test images), "
            f"{'reaches' if reached else 'misses'} the {TARGET}% it aims for ({math.ceil(TARGET / 100 * images)} "
            f"images; one image is {100 / images:.2f} points)."
        )
    return text


def _render_curves(series: list) -> Any:
    from tinygrad_lab.lab import plots

    return plots.classifier_curves_figure(series)


def _render_filters(weight: np.ndarray) -> Any:
    from tinygrad_lab.lab import plots

    return plots.filters_figure(weight, title="CNN: first-layer filters")
