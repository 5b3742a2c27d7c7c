"""The lab's figures with matplotlib (Agg, no window): ground truth beside prediction in the lab's red/blue,
learning curves, decision boundaries, and the report's overlaid curves.

Figures are built as ``matplotlib.figure.Figure`` objects (no pyplot state, safe in worker processes) and
saved with ``tinygrad_lab.files.save_figure``, atomically. Label 0 is red and label 1 blue, as the lab draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

RED, BLUE = "#d62728", "#1f77b4"
_DPI = 100
INSTALL = "pip install 'tinygrad-lab[plots]'"  # the extra that brings matplotlib


def available() -> bool:
    """Whether matplotlib imports, so a command can decide before any work whether it can draw."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float, **margins: float) -> Any:
    """A Figure with fixed margins (``subplots_adjust``): automatic layouts cost a full extra draw, which
    is most of a figure's time."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    fig.subplots_adjust(**margins)
    return fig


def _scatter(ax: Any, x: np.ndarray, labels: np.ndarray, **kwargs: Any) -> None:
    labels = np.asarray(labels).reshape(-1) > 0.5
    ax.scatter(x[~labels, 0], x[~labels, 1], c=RED, label="0", **kwargs)
    ax.scatter(x[labels, 0], x[labels, 1], c=BLUE, label="1", **kwargs)


def comparison_figure(x: np.ndarray, y: np.ndarray, pred: np.ndarray, title: str = "") -> Any:
    """The lab's show_result: 'Ground truth' beside 'Predict result', red for 0 and blue for 1."""
    fig = _figure(9, 4.6, left=0.07, right=0.98, bottom=0.08, top=0.84, wspace=0.15)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, labels, name in zip(axes, (y, np.asarray(pred) > 0.5), ("Ground truth", "Predict result")):
        _scatter(ax, x, labels, s=22)
        ax.set_title(name, fontsize=16)
        ax.set_aspect("equal", adjustable="box")
    if title:
        fig.suptitle(title)
    return fig


def thin(n: int, max_points: int = 2000) -> np.ndarray:
    """Indices of at most about ``max_points`` evenly spaced epochs out of n, the last one included:
    enough for a curve's shape, and far faster to draw than 20,000 points."""
    stride = max(1, -(-n // max_points))
    idx = np.arange(0, n, stride)
    return idx if n == 0 or idx[-1] == n - 1 else np.append(idx, n - 1)


def learning_curve_figure(
    loss: Sequence[float],
    accuracy: Sequence[float],
    title: str = "",
    val_accuracy: Sequence[float] | None = None,
    val_name: str = "test",
) -> Any:
    """Loss (log scale) and training accuracy per epoch, with the held-out accuracy when given."""
    fig = _figure(9, 3.8, left=0.08, right=0.98, bottom=0.14, top=0.82, wspace=0.25)
    ax_loss, ax_acc = fig.subplots(1, 2)
    idx = thin(len(loss))
    epochs = idx + 1
    loss, accuracy = np.asarray(loss, dtype=float)[idx], np.asarray(accuracy, dtype=float)[idx]
    ax_loss.plot(epochs, loss, color=BLUE)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, accuracy, color=RED, label="training")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="training accuracy", ylim=(-2, 102))
    if val_accuracy:
        ax_acc.plot(epochs, np.asarray(val_accuracy, dtype=float)[idx], color=BLUE, label=val_name)
        ax_acc.set(title=f"training and {val_name} accuracy")
        ax_acc.legend(fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def decision_boundary_figure(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, title: str = "", resolution: int = 200
) -> Any:
    """The model's output over the plane (red near 0, blue near 1), its 0.5 contour, and the data."""
    fig = _figure(5.6, 4.6, left=0.12, right=0.97, bottom=0.11, top=0.92)
    ax = fig.subplots()
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    gx, gy = np.meshgrid(
        np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution), np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    )
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    z = np.asarray(predict(grid)).reshape(gx.shape)
    z = np.where(np.isfinite(z), z, 0.5)  # a diverged model's NaN outputs: drawn as undecided
    filled = ax.contourf(gx, gy, np.clip(z, 0, 1), levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.55)
    if z.min() < 0.5 < z.max():
        ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=1.2)
    _scatter(ax, x, y, s=22, edgecolors="k", linewidths=0.5)
    fig.colorbar(filled, ax=ax, label="model output")
    ax.set(xlabel="x0", ylabel="x1", title=title or "decision boundary")
    return fig


def curves_grid_figure(series: dict[str, Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]) -> Any:
    """Learning curves overlaid per task: a column per task, loss (log scale) on top and accuracy below.
    ``series[task]`` is a list of (label, epochs, loss, accuracy), loss and accuracy of shape (seeds, points):
    the line is the mean over seeds, the band runs from the lowest to the highest seed."""
    import warnings

    fig = _figure(4.8 * len(series), 6.6, left=0.09, right=0.98, bottom=0.08, top=0.95, wspace=0.28, hspace=0.3)
    axes = fig.subplots(2, len(series), squeeze=False)
    for col, (task, curves) in enumerate(series.items()):
        for label, epochs, loss, acc in curves:
            for row, values in ((0, np.asarray(loss, dtype=float)), (1, np.asarray(acc, dtype=float))):
                with warnings.catch_warnings():  # columns that are all NaN (a diverged run) are left out
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
                ax = axes[row][col]
                (line,) = ax.plot(epochs, mean, label=label, linewidth=1.4)
                if len(values) > 1:
                    ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        axes[0][col].set(title=f"{task}: loss", yscale="log", ylabel="loss")
        axes[1][col].set(title=f"{task}: training accuracy", xlabel="epoch", ylabel="accuracy (%)", ylim=(-2, 102))
        for row in (0, 1):
            axes[row][col].grid(alpha=0.3)
            axes[row][col].legend(fontsize=8)
    return fig


# ---- image classification ------------------------------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted] over the samples."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return counts


def confusion_matrix_figure(labels: np.ndarray, predicted: np.ndarray, classes: int, title: str = "") -> Any:
    """Counts of each (true, predicted) class pair, with the counts written in the cells."""
    counts = confusion_matrix(labels, predicted, classes)
    fig = _figure(5.6, 5.0, left=0.12, right=0.97, bottom=0.1, top=0.9)
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        if value:
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > counts.max() / 2 else "black",
            )
    ax.set(
        xticks=range(classes),
        yticks=range(classes),
        xlabel="predicted",
        ylabel="true",
        title=title or "confusion matrix",
    )
    return fig


def image_grid_figure(
    images: np.ndarray,
    captions: Sequence[str],
    title: str = "",
    columns: int = 8,
    cmap: str = "gray_r",
    limits: tuple[float, float] | None = None,
) -> Any:
    """Images (n, height, width) in a grid, each with its caption; an empty set draws one line saying so."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig = _figure(
        1.2 * columns,
        1.35 * rows + 0.5,
        left=0.02,
        right=0.98,
        bottom=0.02,
        top=1 - 0.5 / (1.35 * rows + 0.5),
        wspace=0.1,
        hspace=0.4,
    )
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, caption in zip(axes, images, captions):
        ax.imshow(
            image,
            cmap=cmap,
            interpolation="nearest",
            **({} if limits is None else {"vmin": limits[0], "vmax": limits[1]}),
        )
        ax.set_title(caption, fontsize=8)
    if n == 0:
        axes[0].text(0, 0.5, "none", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def misclassified_figure(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, limit: int = 32, title: str = ""
) -> Any:
    """The first ``limit`` images whose predicted label is wrong, captioned "pred P (true T)"."""
    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predicted))[:limit]
    shown = np.asarray(images)[wrong].reshape(len(wrong), *np.asarray(images).shape[-2:])
    captions = [f"pred {predicted[i]} (true {labels[i]})" for i in wrong]
    total = int(np.count_nonzero(np.asarray(labels) != np.asarray(predicted)))
    return image_grid_figure(shown, captions, title or f"misclassified: {len(wrong)} of {total} shown")


def filters_figure(weight: np.ndarray, title: str = "") -> Any:
    """A conv layer's filters (out, in, kh, kw) as images, one per output channel (the first input channel),
    on a red-blue scale centred on zero per filter."""
    w = np.asarray(weight, dtype=float)[:, 0]
    scale = np.abs(w).reshape(len(w), -1).max(axis=1)
    w = w / np.where(scale > 0, scale, 1.0)[:, None, None]
    return image_grid_figure(
        w,
        [f"filter {i}" for i in range(len(w))],
        title or "first-layer filters",
        columns=min(8, max(1, len(w))),
        cmap="RdBu_r",
        limits=(-1.0, 1.0),
    )


def classifier_curves_figure(
    series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], val_name: str = "test"
) -> Any:
    """Models compared over epochs: loss (log scale), training accuracy and held-out accuracy side by side.
    Each entry is (label, epochs, loss, accuracy, held-out accuracy), the last three of shape (seeds, points):
    the line is the mean over seeds, the band runs from the lowest to the highest seed."""
    fig = _figure(13, 3.8, left=0.06, right=0.99, bottom=0.14, top=0.88, wspace=0.25)
    axes = fig.subplots(1, 3)
    for label, epochs, *curves in series:
        for ax, values in zip(axes, curves):
            values = np.asarray(values, dtype=float)
            (line,) = ax.plot(epochs, values.mean(0), label=label, linewidth=1.4, marker=".")
            if len(values) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=line.get_color(), alpha=0.15, linewidth=0)
    axes[0].set(title="training loss", yscale="log", xlabel="epoch", ylabel="loss")
    axes[1].set(title="training accuracy", xlabel="epoch", ylabel="accuracy (%)")
    axes[2].set(title=f"{val_name} accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    return fig
