"""Training: one function per epoch (``train_step``), the loop around it (``fit``) and what the CLI and the
report share (``TrainConfig``, ``build_model``, ``run``, ``load_model``).

    from tinygrad_lab import data, nn, optim, train
    import tinygrad_lab.functional as F
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
import functools
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TextIO

import numpy as np

import tinygrad_lab as tl
import tinygrad_lab.functional as F
from tinygrad_lab import data, files, nn, optim
from tinygrad_lab.tensor import Tensor

LOSSES: dict[str, Callable] = {"mse": F.mse_loss, "bce": F.binary_cross_entropy}
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "none")
MOMENTUM = 0.9  # the "momentum" optimizer: SGD with PyTorch's usual momentum 0.9

# What one run may allocate, so a mistyped number is an error and not a process killed for memory: the
# history keeps two floats per epoch, the work grows with epochs x data points, and weights, gradients,
# optimizer state and activations with the layers' sizes.
MAX_EPOCHS = 1_000_000
MAX_EPOCH_POINTS = 100_000_000
MAX_WIDTH = 10_000
MAX_LAYERS = 100
MAX_PARAMETERS = 1_000_000


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


# ---- configurations: what the CLI and the report run ----------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. The defaults are the lab's settings on XOR."""

    task: str = "xor"
    hidden: tuple[int, ...] = (4, 4)
    lr: float = 0.1
    epochs: int = 20000
    activation: str = "sigmoid"
    loss: str = "mse"
    optimizer: str = "sgd"
    seed: int = 0
    bias: bool = False
    init: str = "randn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        problems = []
        if self.task not in data.TASKS:
            problems.append(f"unknown task {self.task!r} (choose from {', '.join(data.TASKS)})")
        if self.activation not in ACTIVATIONS:
            problems.append(f"unknown activation {self.activation!r} (choose from {', '.join(ACTIVATIONS)})")
        if self.loss not in LOSSES:
            problems.append(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown optimizer {self.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if not self.hidden or min(self.hidden) < 1:
            problems.append(f"hidden sizes must be >= 1, got {list(self.hidden)}")
        if self.task in data.TASKS:
            points, n_in, n_out = task_shape(self.task)
            if self.hidden and min(self.hidden) >= 1:
                problems += size_problems(n_in, self.hidden, n_out, self.bias)
            if self.epochs > MAX_EPOCHS:
                problems.append(f"epochs must be at most {MAX_EPOCHS:,} (the limit on a run's length), "
                                f"got {self.epochs:,}")
            elif self.epochs * points > MAX_EPOCH_POINTS:
                problems.append(f"epochs x data points must be at most {MAX_EPOCH_POINTS:,} (the limit on a "
                                f"run's work), got {self.epochs:,} x {points} on task {self.task!r}")
        if self.loss == "bce" and self.activation == "none":
            problems.append("loss bce needs probabilities, but activation none leaves the output linear")
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@functools.lru_cache(maxsize=None)
def task_shape(task: str) -> tuple[int, int, int]:
    """(data points, input features, output features) of a task (its data are small: made once)."""
    x, y = data.load_task(task, 0)
    return len(x), x.shape[1], y.shape[1]


def size_problems(in_features: int, hidden: Sequence[int], out_features: int, bias: bool) -> list[str]:
    """Why a model of these sizes is over the limits (MAX_WIDTH, MAX_LAYERS, MAX_PARAMETERS); [] if it is not."""
    sizes = [in_features, *hidden, out_features]
    if len(hidden) > MAX_LAYERS:
        return [f"at most {MAX_LAYERS} hidden layers (the limit on a model's depth), got {len(hidden):,}"]
    if max(sizes) > MAX_WIDTH:
        return [f"layer sizes must be at most {MAX_WIDTH:,} (the limit on a layer's width), got {max(sizes):,}"]
    params = sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:]))
    if params > MAX_PARAMETERS:
        return [f"the model must have at most {MAX_PARAMETERS:,} parameters (the limit on a model's size), "
                f"hidden {'x'.join(map(str, hidden))} has {params:,}"]
    return []


def seeded_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the data and for the initial weights, both from one seed: the same seed
    gives the same initial weights whatever the task, so settings compared per seed start alike."""
    data_seq, init_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(data_seq), np.random.default_rng(init_seq)


def model_spec(config: TrainConfig, in_features: int = 2, out_features: int = 1) -> dict:
    """What rebuilds the model (saved into model.npz)."""
    out_activation = "none" if config.activation == "none" else "sigmoid"
    return {"in_features": in_features, "hidden": list(config.hidden), "out_features": out_features,
            "activation": config.activation, "out_activation": out_activation, "bias": config.bias,
            "init": config.init}


def build_model(spec: dict, rng: np.random.Generator | None = None) -> nn.MLP:
    """The MLP a model_spec describes. ``activation`` "none" removes every activation (the lab's
    "without activation functions"), including the output's sigmoid."""
    return nn.MLP(int(spec["in_features"]), tuple(int(h) for h in spec["hidden"]), int(spec["out_features"]),
                  activation=spec["activation"], out_activation=spec["out_activation"], bias=bool(spec["bias"]),
                  init=spec.get("init", "randn"), rng=rng)


def build_optimizer(name: str, params: Any, lr: float) -> Any:
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=MOMENTUM)
    if name == "adam":
        return optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")


@dataclass
class Run:
    """A finished run: its config, the trained model, the data it saw and its History."""

    config: TrainConfig
    model: Any
    x: np.ndarray
    y: np.ndarray
    history: History

    def predict(self, x: np.ndarray | None = None) -> np.ndarray:
        with tl.no_grad():
            return self.model(Tensor(self.x if x is None else x)).data


def run(config: TrainConfig, *, log_every: int = 1000, out: TextIO | None = None, quiet: bool = False,
        progress: bool | None = None, compile: bool = True, until: Any = None) -> Run:
    """Make the task's data and the model from ``config.seed``, train, and return the Run."""
    data_rng, init_rng = seeded_rngs(config.seed)
    x, y = data.load_task(config.task, data_rng)
    model = build_model(model_spec(config, x.shape[1], y.shape[1]), init_rng)
    opt = build_optimizer(config.optimizer, model.parameters(), config.lr)
    try:
        history = fit(model, x, y, loss=LOSSES[config.loss], optimizer=opt, epochs=config.epochs,
                      log_every=log_every, until=until, progress=progress, out=out, quiet=quiet, compile=compile)
    except tl.CaptureError as err:
        # The captured step refused this model or disagreed with eager execution (it checks itself on its
        # first replays): start the whole run again eagerly; the seed makes it the same run.
        if not quiet:
            print(f"warning: the captured step failed ({str(err).splitlines()[0]}); running eagerly",
                  file=sys.stderr)
        return run(config, log_every=log_every, out=out, quiet=quiet, progress=progress, compile=False, until=until)
    return Run(config, model, x, y, history)


def graph_root(config: TrainConfig, after_epochs: int = 0, compile: bool = True) -> tuple[Tensor, Any]:
    """The lab's network and its loss on the task, after ``after_epochs`` epochs of training, with one more
    forward and backward whose graph is kept (retain_graph) and whose gradients are in ``.grad``: what
    tinygrad_lab.viz draws. Returns ``(loss, model)``."""
    data_rng, init_rng = seeded_rngs(config.seed)
    x, y = data.load_task(config.task, data_rng)
    model = build_model(model_spec(config, x.shape[1], y.shape[1]), init_rng)
    opt = build_optimizer(config.optimizer, model.parameters(), config.lr)
    loss_fn = LOSSES[config.loss]
    if after_epochs > 0:
        fit(model, x, y, loss=loss_fn, optimizer=opt, epochs=after_epochs, quiet=True, compile=compile)
    model.zero_grad()
    loss = loss_fn(model(Tensor(x, name="x")), Tensor(y, name="y"))
    loss.name = "loss"
    loss.backward(retain_graph=True)
    return loss, model


# ---- model files ----------------------------------------------------------------------------------------------------

def save_run(path: Any, run_: Run) -> Any:
    """model.npz: the state_dict plus the model spec and the training config."""
    spec = model_spec(run_.config, run_.x.shape[1], run_.y.shape[1])
    return files.save_model(path, run_.model, {"model": spec, "config": run_.config.to_dict()})


def load_model(path: Any) -> tuple[nn.MLP, dict]:
    """The model saved by save_run and its metadata; every problem is a files.ModelFileError. The metadata
    is checked (types, names, the size limits) before anything is built from it."""
    meta, arrays = files.read_model_file(path)
    spec = meta.get("model")
    if not isinstance(spec, dict):
        raise files.ModelFileError(path, "metadata is missing key 'model' (the layer sizes and activation)")
    for key in ("in_features", "hidden", "out_features", "activation", "out_activation", "bias"):
        if key not in spec:
            raise files.ModelFileError(path, f"metadata is missing key 'model.{key}'")
    problem = _spec_problem(spec) or _config_problem(meta.get("config", {}))
    if problem:
        raise files.ModelFileError(path, f"metadata {problem}")
    model = build_model(spec, np.random.default_rng(0))
    files.check_state(path, model, arrays)
    model.load_state_dict(arrays)
    return model, meta


def _is_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _spec_problem(spec: dict) -> str | None:
    """Why a model spec read from a file cannot be built, or None."""
    for key in ("in_features", "out_features"):
        if not _is_int(spec[key]):
            return f"'model.{key}' must be an integer >= 1, got {spec[key]!r}"
    hidden = spec["hidden"]
    if not isinstance(hidden, list) or not hidden or not all(_is_int(h) for h in hidden):
        return f"'model.hidden' must be a non-empty list of integers >= 1, got {_short(hidden)}"
    for key, allowed in (("activation", ACTIVATIONS), ("out_activation", ("sigmoid", "none")),
                         ("init", nn.INITS)):
        if key in spec and spec[key] not in allowed:
            return f"'model.{key}' must be one of {', '.join(allowed)}, got {_short(spec[key])}"
    if not isinstance(spec["bias"], bool):
        return f"'model.bias' must be true or false, got {_short(spec['bias'])}"
    problems = size_problems(spec["in_features"], hidden, spec["out_features"], spec["bias"])
    return f"'model' is over the limits: {problems[0]}" if problems else None


def _config_problem(config: Any) -> str | None:
    """Why the training config read from a file cannot give predict its task and seed, or None."""
    if not isinstance(config, dict):
        return f"'config' must be an object, got {type(config).__name__}"
    if "task" in config and not (isinstance(config["task"], str) and config["task"] in data.TASKS):
        return f"'config.task' must be one of {', '.join(data.TASKS)}, got {_short(config['task'])}"
    if "seed" in config and not _is_int(config["seed"], 0):
        return f"'config.seed' must be an integer >= 0, got {_short(config['seed'])}"
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
