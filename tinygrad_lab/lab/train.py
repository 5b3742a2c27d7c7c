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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab.capture import CompiledStep
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.lab.data import as_rng
from tinygrad_lab.nn.data import DataLoader

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


def select_step(
    model: Any, loss_fn: Callable, optimizer: Any, compile: bool = True
) -> tuple[Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], bool]:
    """THE place where the function each epoch calls is chosen. Returns ``(step, compiled)`` with
    ``step(x, y) -> (loss, pred)`` running ``train_step`` on this model, loss and optimizer.

    With ``compile``, the captured step of ``tl.compile`` (one step traced, its numpy work replayed);
    otherwise, or when a module of the model draws random numbers (dropout while training, which a replay
    would repeat), the eager one.
    """
    modules = model.modules() if callable(getattr(model, "modules", None)) else ()
    if any(getattr(m, "draws_random", False) for m in modules):
        compile = False

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


def _hits_per_step(y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A fast ``preds -> correct predictions`` for fixed targets y, for k steps' predictions stacked on a first
    axis (one step's as ``preds[None]``): the hits of each step, by ``predicted_labels``' rule."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        target = y > 0.5
        return lambda preds: np.count_nonzero((preds > 0.5) == target, axis=(1, 2))
    labels = true_labels(y)

    def hits(preds: np.ndarray) -> np.ndarray:
        if preds.ndim == 3 and preds.shape[2] > 1:
            return np.count_nonzero(np.argmax(preds, axis=2) == labels, axis=1)
        return np.count_nonzero((preds.reshape(len(preds), -1) > 0.5) == labels, axis=1)

    return hits


def format_accuracy(acc: float) -> str:
    """96.0, 57.14, 100.0: the lab's look with at most two decimals."""
    return repr(round(float(acc), 2))


def format_log_line(epoch: int, loss: float, acc: float, val_acc: float | None = None, val_name: str = "val") -> str:
    """The lab's progress line: ``epoch 1000 loss : 0.13396498 acc(%) : 96.0``, followed by
    `` test acc(%) : 95.5`` when there is a validation accuracy (``val_name``: what the held-out set is called)."""
    line = f"epoch {epoch} loss : {loss:.8f} acc(%) : {format_accuracy(acc)}"
    return line if val_acc is None else f"{line} {val_name} acc(%) : {format_accuracy(val_acc)}"


def format_result(pred: np.ndarray, acc: float) -> str:
    """The lab's end of run: the predictions, then the accuracy block."""
    return f"pred_y:\n{np.array2string(np.asarray(pred))}\n=====\nAccuracy(%): {format_accuracy(acc)}"


# ---- the history of a run -------------------------------------------------------------------------------------------


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@dataclass
class History:
    """Per-epoch loss and accuracy (percent, of the forward passes before that epoch's updates: with
    minibatches, averaged over the epoch's batches), the first epoch (1-based) at 100% training accuracy or
    None, the wall time of the loop in seconds, the loss and accuracy of the trained model (one forward after
    the last update), and ``diverged_at``: None, or the first epoch whose loss is not finite (epochs + 1 when
    only the trained model's loss is not). With a validation set, ``val_accuracy`` holds its accuracy after
    each epoch and ``final_val_accuracy`` the trained model's (else [] and NaN); ``batch_size`` is None for
    full-batch training."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    final_val_accuracy: float = math.nan
    batch_size: int | None = None
    epochs_to_100: int | None = None
    wall_time: float = 0.0
    final_loss: float = math.nan
    final_accuracy: float = math.nan
    compiled: bool = False
    backend: str = "eager"  # what ran the epochs: eager, or the captured step's backend (native, numpy (why))
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
        d["final_val_accuracy"] = _finite_or_none(self.final_val_accuracy)
        d["epochs"] = self.epochs
        return d

    @classmethod
    def from_dict(cls, d: dict) -> History:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["loss"] = [math.nan if v is None else v for v in kwargs.get("loss", [])]
        for key in ("final_loss", "final_accuracy", "final_val_accuracy"):
            if kwargs.get(key) is None:
                kwargs[key] = math.nan
        return cls(**kwargs)


# ---- the loop -------------------------------------------------------------------------------------------------------


def _stop_rule(until: float | Callable | None) -> Callable[[int, float, float], bool] | None:
    if until is None or callable(until):
        return until
    threshold = float(until)
    return lambda epoch, loss, acc: acc >= threshold


def _progress_bar(enabled: bool | None, out: TextIO, total: int, unit: str = "epoch") -> Any:
    if enabled is None:
        enabled = bool(getattr(out, "isatty", lambda: False)())
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the plots extra is not installed: no bar, same results
        return None
    return tqdm(total=total, file=out, unit=unit, leave=False, dynamic_ncols=True)


def _as_input(a: Any) -> Tensor:
    """Inputs as a Tensor: float32 stays float32 (the CNN trains in float32), everything else is float64."""
    if isinstance(a, Tensor):
        return a
    a = np.asarray(a)
    return Tensor(a if a.dtype == np.float32 else np.asarray(a, dtype=np.float64))


def _as_target(a: Any) -> Tensor:
    """Targets as a Tensor: a vector of integers stays integer (class labels for cross_entropy), everything
    else is float64 (the lab's 0/1 column)."""
    if isinstance(a, Tensor):
        return a
    a = np.asarray(a)
    if a.ndim == 1 and a.dtype.kind in "iu":
        return Tensor(a, dtype=np.int64)
    return Tensor(np.asarray(a, dtype=np.float64))


def _batch(a: np.ndarray) -> Tensor:
    """A batch as a Tensor of the array's own dtype (Tensor() would turn integer labels into floats)."""
    return Tensor(a, dtype=a.dtype)


def _count_hits(pred: np.ndarray, y: np.ndarray) -> int:
    """Correct predictions among one batch's outputs ``pred`` for targets ``y``."""
    if y.ndim == 2 and y.shape[1] == 1:
        return int(np.count_nonzero((pred > 0.5) == (y > 0.5)))
    return int(np.count_nonzero(predicted_labels(pred) == true_labels(y)))


def _set_training(model: Any, mode: bool) -> bool:
    """Put a Module in training or eval mode; returns the mode it had (True for a plain callable)."""
    before = getattr(model, "training", True)
    if hasattr(model, "train") and callable(model.train) and before != mode:
        model.train(mode)
    return before


def evaluate(
    model: Any, x: Any, y: Any, loss: Callable, batch_size: int | None = None
) -> tuple[float, float, np.ndarray]:
    """``(mean loss, accuracy in percent, outputs)`` of ``model`` on (x, y), without gradients, in eval mode
    (restored afterwards), in batches of ``batch_size`` rows (None: all at once) so memory stays bounded."""
    x_t, y_t = _as_input(x), _as_target(y)
    n = len(y_t.data)
    size = n if batch_size is None else max(1, int(batch_size))
    was_training = _set_training(model, False)
    total, preds = 0.0, []
    try:
        with tl.no_grad():
            for start in range(0, n, size):
                pred = model(_batch(x_t.data[start : start + size]))
                total += float(loss(pred, _batch(y_t.data[start : start + size])).data) * len(pred.data)
                preds.append(pred.data)
    finally:
        _set_training(model, was_training)
    pred = np.concatenate(preds) if preds else np.zeros((0,))
    return total / max(n, 1), accuracy(pred, y_t), pred


def fit(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: Callable,
    optimizer: Any,
    epochs: int,
    batch_size: int | None = None,
    validation: tuple[Any, Any] | None = None,
    val_name: str = "val",
    rng: np.random.Generator | int | None = None,
    log_every: int = 1000,
    until: float | Callable[[int, float, float], bool] | None = None,
    progress: bool | None = None,
    out: TextIO | None = None,
    quiet: bool = False,
    compile: bool = True,
) -> History:
    """Train ``model`` on (x, y) for ``epochs`` epochs and return its History.

    ``batch_size`` None trains full-batch (the lab's way: one update per epoch); a number trains on shuffled
    minibatches of that size (``nn.DataLoader``, shuffled by ``rng``), one update each. ``validation``
    ``(x_val, y_val)`` is evaluated after every epoch (its accuracy is logged as ``val_name`` and kept in the
    History). Prints to ``out`` (default sys.stdout) a line every ``log_every`` epochs (0: none) in the lab's
    format, then the trained model's predictions (a single output; else only its accuracy) and accuracy;
    ``quiet`` prints nothing. ``until`` stops early: a number is an accuracy in percent (``until=100`` stops at
    the first epoch at 100%), a callable gets ``(epoch, loss, accuracy)`` and returns True to stop.
    ``progress``: a tqdm bar (over epochs, or over batches with minibatches); None shows one when ``out`` is
    a terminal and the run is not quiet. ``compile`` asks for the captured step (see select_step). The model
    trains in training mode (``model.train()``); the final loss, accuracy and predictions, and the validation,
    come from eval mode.
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    if log_every < 0:
        raise ValueError(f"fit: log_every must be >= 0, got {log_every}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise ValueError(f"fit: batch_size must be None (full batch) or an integer >= 1, got {batch_size!r}")
    out = sys.stdout if out is None else out
    x_t, y_t = _as_input(x), _as_target(y)
    if len(x_t.data) != len(y_t.data):
        raise ValueError(f"fit: x has shape {x_t.shape} but y has shape {y_t.shape}: they need the same number of rows")
    n = len(y_t.data)
    stop = _stop_rule(until)
    # The captured step replays a fixed-shape step with its data as arguments: the full batch, or each minibatch
    # (a smaller last batch is one more shape, traced once).
    _set_training(model, True)  # as a torch loop's model.train(): dropout and batch statistics while training
    step, compiled = select_step(model, loss, optimizer, compile)
    loader = None if batch_size is None else DataLoader(x_t.data, y_t.data, int(batch_size), rng=as_rng(rng))
    bar = (
        None
        if quiet
        else _progress_bar(
            progress, out, epochs if loader is None else epochs * len(loader), "epoch" if loader is None else "batch"
        )
    )
    write = (lambda line: bar.write(line, file=out)) if bar is not None else (lambda line: print(line, file=out))
    val_accs: list[float] = []

    def validate(held_out: tuple[Any, Any]) -> float:
        acc = float(evaluate(model, held_out[0], held_out[1], loss, batch_size)[1])
        val_accs.append(acc)
        return acc

    losses = np.full(epochs, np.nan)
    accs = np.full(epochs, np.nan)
    first_100 = None
    done = 0
    stopped = False
    start = time.perf_counter()
    try:
        if loader is None and isinstance(step, CompiledStep) and stop is None and validation is None:
            # Nothing to decide between epochs: chunks of epochs in one call each, predictions kept for accuracy.
            hits_each = _hits_per_step(y_t.data)
            chunk = max(1, min(1000, 1_000_000 // max(1, y_t.data.size)))
            while done < epochs:
                k = min(chunk, epochs - done)
                chunk_losses, preds = step.run_with_predictions(k, x_t, y_t)
                losses[done : done + k] = chunk_losses
                accs[done : done + k] = 100.0 * hits_each(preds) / n
                if not quiet and log_every:
                    for epoch in range(done + log_every - done % log_every, done + k + 1, log_every):
                        write(format_log_line(epoch, losses[epoch - 1], accs[epoch - 1]))
                done += k
                if bar is not None:
                    bar.update(done - bar.n)
            reached = np.flatnonzero(accs[:done] == 100.0)
            first_100 = int(reached[0]) + 1 if reached.size else None
        elif loader is None:
            hits_each = _hits_per_step(y_t.data)
        for epoch in range(1, epochs + 1) if done < epochs else ():
            if loader is None:
                loss_t, pred = step(x_t, y_t)
                loss_v = float(loss_t.data)
                acc = 100.0 * hits_each(pred.data[None])[0] / n
            else:
                loss_v, acc = _minibatch_epoch(step, loader, bar)
            losses[epoch - 1] = loss_v
            accs[epoch - 1] = acc
            done = epoch
            if first_100 is None and acc == 100.0:
                first_100 = epoch
            val_acc = None if validation is None else validate(validation)
            if not quiet and log_every and epoch % log_every == 0:
                write(format_log_line(epoch, loss_v, acc, val_acc, val_name))
            if bar is not None and loader is None and (epoch % 100 == 0 or epoch == epochs):
                bar.update(epoch - bar.n)
            if stop is not None and stop(epoch, loss_v, acc):
                stopped = epoch < epochs
                break
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start

    if loader is None:  # the trained model, in eval mode as evaluate() (dropout off, running statistics used)
        was_training = _set_training(model, False)
        try:
            with tl.no_grad():
                final_pred = model(x_t)
                final_loss = float(loss(final_pred, y_t).data)
        finally:
            _set_training(model, was_training)
        final_acc = accuracy(final_pred, y_t)
        final_pred = final_pred.data
    else:
        final_loss, final_acc, final_pred = evaluate(model, x_t, y_t, loss, batch_size)
    final_val = val_accs[-1] if val_accs else math.nan
    if not quiet:
        single = final_pred.ndim < 2 or final_pred.shape[-1] == 1
        print(
            format_result(final_pred, final_acc) if single else f"Accuracy(%): {format_accuracy(final_acc)}", file=out
        )
        if val_accs:
            print(f"{val_name.capitalize()} accuracy(%): {format_accuracy(final_val)}", file=out)
    return History(
        loss=losses[:done].tolist(),
        accuracy=accs[:done].tolist(),
        val_accuracy=val_accs,
        final_val_accuracy=final_val,
        batch_size=batch_size,
        epochs_to_100=first_100,
        wall_time=wall,
        final_loss=final_loss,
        final_accuracy=final_acc,
        compiled=compiled,
        backend=step.backend if isinstance(step, CompiledStep) else "eager",
        stopped_early=stopped,
        diverged_at=_first_non_finite(losses[:done], final_loss),
    )


def _minibatch_epoch(step: Callable, loader: DataLoader, bar: Any) -> tuple[float, float]:
    """One pass over the loader, one update per batch; returns the epoch's (mean loss, accuracy in percent)
    over the batches' forward passes, each weighted by its size."""
    total, hits, seen = 0.0, 0, 0
    for xb, yb in loader:
        loss_t, pred = step(_batch(xb), _batch(yb))
        total += float(loss_t.data) * len(yb)
        hits += _count_hits(pred.data, yb)
        seen += len(yb)
        if bar is not None:
            bar.update(1)
    return total / max(seen, 1), 100.0 * hits / max(seen, 1)


def _first_non_finite(losses: np.ndarray, final_loss: float) -> int | None:
    """History.diverged_at, from one pass over the losses after the loop (nothing is added per epoch)."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return int(bad[0]) + 1
    return None if math.isfinite(final_loss) else len(losses) + 1
