"""The lab's figures with matplotlib (Agg, no window): ground truth beside prediction in the lab's red/blue,
learning curves, decision boundaries, and the report's overlaid curves.

Figures are built as ``matplotlib.figure.Figure`` objects (no pyplot state, safe in worker processes) and
saved with ``tinygrad_lab.files.save_figure``, atomically. Label 0 is red and label 1 blue, as the lab draws.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

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


def learning_curve_figure(loss: Sequence[float], accuracy: Sequence[float], title: str = "") -> Any:
    """Loss (log scale) and training accuracy per epoch."""
    fig = _figure(9, 3.8, left=0.08, right=0.98, bottom=0.14, top=0.82, wspace=0.25)
    ax_loss, ax_acc = fig.subplots(1, 2)
    idx = thin(len(loss))
    epochs = idx + 1
    loss, accuracy = np.asarray(loss, dtype=float)[idx], np.asarray(accuracy, dtype=float)[idx]
    ax_loss.plot(epochs, loss, color=BLUE)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, accuracy, color=RED)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="training accuracy", ylim=(-2, 102))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def decision_boundary_figure(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                             title: str = "", resolution: int = 200) -> Any:
    """The model's output over the plane (red near 0, blue near 1), its 0.5 contour, and the data."""
    fig = _figure(5.6, 4.6, left=0.12, right=0.97, bottom=0.11, top=0.92)
    ax = fig.subplots()
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
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
