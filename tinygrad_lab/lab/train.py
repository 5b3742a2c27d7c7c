"""The training loop: one function per epoch (``train_step``), the loop around it (``fit``) and its ``History``.

    from tinygrad_lab import nn, optim
    from tinygrad_lab.lab import data, train
    import tinygrad_lab.nn.functional as F
    x, y = data.generate_xor_easy()
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    history = train.fit(model, x, y, loss=F.mse_loss, optimizer=optim.SGD(model.parameters(), lr=0.1),
                        epochs=20000)   # prints the lab's log: "epoch 1000 loss : ... acc(%) : ..."

``fit`` prints a log line every ``log_every`` epochs in the lab's format, then the predictions and
``Accuracy(%): ...`` as the lab prints them, and returns a ``History``. The epoch's work is the single
function ``train_step``; ``select_step`` is the one place that picks the function each epoch calls (the
captured step of ``tl.compile`` when the engine has it, eager ``train_step`` otherwise).
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab.engine.tensor import Tensor

# ---- one epoch ------------------------------------------------------------------------------------------------------

def train_step(model: Callable, x: Tensor, y: Tensor, loss_fn: Callable, optimizer: Any) -> tuple[Tensor, Tensor]:
    """One full-batch epoch: zero the grads, forward, loss, backward, update. Returns ``(loss, pred)``:
    the loss before the update and the forward output it was computed from, so the caller can measure
    accuracy without a second forward pass."""
    optimizer.zero_grad()
    pred = model(x)
    loss = loss_fn(pred, y)
    loss.backward()
    optimizer.step()
    return loss, pred


def select_step(model: Any, loss_fn: Callable, optimizer: Any, compile: bool = True
                ) -> tuple[Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], bool]:
    """THE place where the function each epoch calls is chosen. Returns ``(step, compiled)`` with
    ``step(x, y) -> (loss, pred)`` running ``train_step`` on this model, loss and optimizer.

    With ``compile``, the captured step of ``tl.compile`` (one step traced, its numpy work replayed);
    otherwise the eager one.
    """
    def step(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return train_step(model, x, y, loss_fn, optimizer)

    return (tl.compile(step), True) if compile else (step, False)


# ---- accuracy and the lab's printing ------------------------------------------------------------------------------

def predicted_labels(pred: np.ndarray) -> np.ndarray:
    """Class labels from outputs: 1 where a single sigmoid output is above 0.5 (the lab's round), else 0;
    the argmax for several outputs."""
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] > 1:
        return np.argmax(pred, axis=1)
    return (pred.reshape(-1) > 0.5).astype(np.int64)


def true_labels(y: np.ndarray) -> np.ndarray:
    """Class labels from targets: 0/1 columns as ints, one-hot rows by argmax, integer vectors as they are."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    return (y.reshape(-1) > 0.5).astype(np.int64) if y.dtype.kind == "f" else y.reshape(-1).astype(np.int64)


def accuracy(pred: Any, y: Any) -> float:
    """Percent of samples whose predicted label equals the target's label."""
    pred = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
    y = y.data if isinstance(y, Tensor) else np.asarray(y)
    return 100.0 * np.count_nonzero(predicted_labels(pred) == true_labels(y)) / len(y)


def _hit_counter(y: np.ndarray) -> Callable[[np.ndarray], int]:
    """A fast ``pred -> number of correct predictions`` for fixed targets y (called every epoch)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        target = y > 0.5
        return lambda pred: np.count_nonzero((pred > 0.5) == target)
    labels = true_labels(y)
    return lambda pred: np.count_nonzero(predicted_labels(pred) == labels)


def format_accuracy(acc: float) -> str:
    """96.0, 57.14, 100.0: the lab's look with at most two decimals."""
    return repr(round(float(acc), 2))


def format_log_line(epoch: int, loss: float, acc: float) -> str:
    """The lab's progress line: ``epoch 1000 loss : 0.13396498 acc(%) : 96.0``."""
    return f"epoch {epoch} loss : {loss:.8f} acc(%) : {format_accuracy(acc)}"


def format_result(pred: np.ndarray, acc: float) -> str:
    """The lab's end of run: the predictions, then the accuracy block."""
    return f"pred_y:\n{np.array2string(np.asarray(pred))}\n=====\nAccuracy(%): {format_accuracy(acc)}"


# ---- the history of a run -------------------------------------------------------------------------------------------

def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@dataclass
class History:
    """Per-epoch loss and accuracy (percent, of the forward pass before that epoch's update), the first
    epoch (1-based) at 100% training accuracy or None, the wall time of the loop in seconds, the loss
    and accuracy of the trained model (one forward after the last update), and ``diverged_at``: None, or
    the first epoch whose loss is not finite (epochs + 1 when only the trained model's loss is not)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epochs_to_100: int | None = None
    wall_time: float = 0.0
    final_loss: float = math.nan
    final_accuracy: float = math.nan
    compiled: bool = False
    stopped_early: bool = False
    diverged_at: int | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        """JSON-ready (non-finite losses, from a diverged run, become null)."""
        d = dataclasses.asdict(self)
        d["loss"] = [_finite_or_none(v) for v in self.loss]
        d["final_loss"] = _finite_or_none(self.final_loss)
        d["final_accuracy"] = _finite_or_none(self.final_accuracy)
        d["epochs"] = self.epochs
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["loss"] = [math.nan if v is None else v for v in kwargs.get("loss", [])]
        for key in ("final_loss", "final_accuracy"):
            if kwargs.get(key) is None:
                kwargs[key] = math.nan
        return cls(**kwargs)


# ---- the loop -------------------------------------------------------------------------------------------------------

def _stop_rule(until: float | Callable | None) -> Callable[[int, float, float], bool] | None:
    if until is None or callable(until):
        return until
    threshold = float(until)
    return lambda epoch, loss, acc: acc >= threshold


def _progress_bar(enabled: bool | None, out: TextIO, epochs: int) -> Any:
    if enabled is None:
        enabled = bool(getattr(out, "isatty", lambda: False)())
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the plots extra is not installed: no bar, same results
        return None
    return tqdm(total=epochs, file=out, unit="epoch", leave=False, dynamic_ncols=True)


def fit(model: Any, x: Any, y: Any, *, loss: Callable, optimizer: Any, epochs: int, log_every: int = 1000,
        until: float | Callable[[int, float, float], bool] | None = None, progress: bool | None = None,
        out: TextIO | None = None, quiet: bool = False, compile: bool = True) -> History:
    """Train ``model`` on (x, y) for ``epochs`` full-batch epochs and return its History.

    Prints to ``out`` (default sys.stdout) a line every ``log_every`` epochs (0: none) in the lab's format,
    then the trained model's predictions and accuracy; ``quiet`` prints nothing. ``until`` stops early: a
    number is an accuracy in percent (``until=100`` stops at the first epoch at 100%), a callable gets
    ``(epoch, loss, accuracy)`` and returns True to stop. ``progress``: a tqdm bar; None shows one when
    ``out`` is a terminal and the run is not quiet. ``compile`` asks for the captured step (see select_step).
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    if log_every < 0:
        raise ValueError(f"fit: log_every must be >= 0, got {log_every}")
    out = sys.stdout if out is None else out
    x_t = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
    y_t = y if isinstance(y, Tensor) else Tensor(np.asarray(y, dtype=np.float64))
    hits = _hit_counter(y_t.data)
    n = len(y_t.data)
    stop = _stop_rule(until)
    step, compiled = select_step(model, loss, optimizer, compile)
    bar = None if quiet else _progress_bar(progress, out, epochs)
    write = (lambda line: bar.write(line, file=out)) if bar is not None else (lambda line: print(line, file=out))

    losses = np.full(epochs, np.nan)
    accs = np.full(epochs, np.nan)
    first_100 = None
    done = 0
    stopped = False
    start = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            loss_t, pred = step(x_t, y_t)
            loss_v = float(loss_t.data)
            acc = 100.0 * hits(pred.data) / n
            losses[epoch - 1] = loss_v
            accs[epoch - 1] = acc
            done = epoch
            if first_100 is None and acc == 100.0:
                first_100 = epoch
            if not quiet and log_every and epoch % log_every == 0:
                write(format_log_line(epoch, loss_v, acc))
            if bar is not None and (epoch % 100 == 0 or epoch == epochs):
                bar.update(epoch - bar.n)
            if stop is not None and stop(epoch, loss_v, acc):
                stopped = epoch < epochs
                break
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start

    with tl.no_grad():
        final_pred = model(x_t)
        final_loss = float(loss(final_pred, y_t).data)
    final_acc = accuracy(final_pred, y_t)
    if not quiet:
        print(format_result(final_pred.data, final_acc), file=out)
    return History(loss=losses[:done].tolist(), accuracy=accs[:done].tolist(), epochs_to_100=first_100,
                   wall_time=wall, final_loss=final_loss, final_accuracy=final_acc, compiled=compiled,
                   stopped_early=stopped, diverged_at=_first_non_finite(losses[:done], final_loss))


def _first_non_finite(losses: np.ndarray, final_loss: float) -> int | None:
    """History.diverged_at, from one pass over the losses after the loop (nothing is added per epoch)."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return int(bad[0]) + 1
    return None if math.isfinite(final_loss) else len(losses) + 1
