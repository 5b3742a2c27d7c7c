"""One path from a config to a run: ``TrainConfig`` (what defines a run, checked against the size limits) and
``setup(config)``, which makes the data, the model and the optimizer from it for train, predict, graph and the
report alike. A run's model is one of MODELS (the lab's MLP, or a small CNN for image tasks), and a task's
settings start from ``defaults_for(task, model)`` (the lab's on the toy tasks; Adam on minibatches on digits).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.lab import data

# A run names its loss, optimizer and activation by their keys in the one registry of each.
LOSSES = F.LOSSES
OPTIMIZERS = optim.OPTIMIZERS
ACTIVATIONS = nn.ACTIVATIONS

# What one run may allocate, so a mistyped number is an error and not a process killed for memory: the
# history keeps two floats per epoch, the work grows with epochs x data points, and weights, gradients,
# optimizer state and activations with the layers' sizes.
MAX_EPOCHS = 1_000_000
MAX_EPOCH_POINTS = 100_000_000
MAX_WIDTH = 10_000
MAX_LAYERS = 100
MAX_PARAMETERS = 1_000_000
MAX_BATCH_SIZE = 100_000
MAX_ACTIVATIONS = 50_000_000  # floats the layers' outputs (and the CNN's unfolded inputs) hold for one batch


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. The defaults are the lab's settings on XOR.

    ``model`` names an entry of MODELS; for "cnn", ``hidden`` are the channels of its conv layers.
    ``batch_size`` None trains full-batch (the lab's way), a number on shuffled minibatches."""

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
    model: str = "mlp"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        problems = []
        if self.task not in data.TASKS:
            problems.append(f"unknown task {self.task!r} (choose from {', '.join(data.TASKS)})")
        if self.model not in MODELS:
            problems.append(f"unknown model {self.model!r} (choose from {', '.join(MODELS)})")
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
        if self.batch_size is not None and not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            problems.append(f"batch size must be from 1 to {MAX_BATCH_SIZE:,}, got {self.batch_size}")
        if not self.hidden or min(self.hidden) < 1:
            problems.append(f"hidden sizes must be >= 1, got {list(self.hidden)}")
        if self.task in data.TASKS:
            shape = task_shape(self.task)
            if self.model in MODELS and self.hidden and min(self.hidden) >= 1:
                spec = model_spec(self, shape.in_shape, shape.out_features)
                problems += MODELS[self.model].problems(spec) or self._activation_problems(spec, shape.points)
            problems += _loss_problems(self, shape)
            if self.epochs > MAX_EPOCHS:
                problems.append(
                    f"epochs must be at most {MAX_EPOCHS:,} (the limit on a run's length), got {self.epochs:,}"
                )
            elif self.epochs * shape.points > MAX_EPOCH_POINTS:
                problems.append(
                    f"epochs x data points must be at most {MAX_EPOCH_POINTS:,} (the limit on a "
                    f"run's work), got {self.epochs:,} x {shape.points} on task {self.task!r}"
                )
        if self.loss == "bce" and self.activation in ACTIVATIONS and _linear(self.activation):
            problems.append("loss bce needs probabilities, but activation none leaves the output linear")
        if problems:
            raise ValueError("; ".join(problems))

    def _activation_problems(self, spec: dict, points: int) -> list[str]:
        rows = min(points, self.batch_size or points)
        floats = rows * MODELS[self.model].activations(spec)
        if floats > MAX_ACTIVATIONS:
            return [
                f"a batch of {rows:,} through this model holds {floats:,} activations, over the limit of "
                f"{MAX_ACTIVATIONS:,} (use a smaller --batch-size or --hidden)"
            ]
        return []

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def for_task(cls, task: str, model: str | None = None, **changes: Any) -> TrainConfig:
        """The config of ``task`` with its defaults (defaults_for), then ``changes`` (None values are skipped)."""
        settings = defaults_for(task, model)
        settings.update({k: v for k, v in changes.items() if v is not None})
        return cls(task=task, **settings)


def _loss_problems(config: TrainConfig, shape: TaskShape) -> list[str]:
    """A task with integer class labels trains with cross_entropy, and cross_entropy needs one."""
    if shape.classes and config.loss != "cross_entropy":
        return [
            f"task {config.task!r} has {shape.classes} classes as integer labels: use loss cross_entropy, "
            f"not {config.loss}"
        ]
    if not shape.classes and config.loss == "cross_entropy":
        return [
            f"loss cross_entropy needs integer class labels, but task {config.task!r} has 0/1 targets (use mse or bce)"
        ]
    return []


# The settings each task starts from; the toy tasks use the lab's (TrainConfig's defaults).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(
        model="cnn",
        lr=1e-3,
        epochs=20,
        activation="relu",
        loss="cross_entropy",
        optimizer="adam",
        bias=True,
        init="kaiming",
        batch_size=64,
    ),
}
# hidden by (model, task), then (model, any task): the CNN's conv channels, the MLP baseline on digits.
HIDDEN_DEFAULTS: dict[tuple[str, str | None], tuple[int, ...]] = {("cnn", None): (16, 32), ("mlp", "digits"): (128,)}
# The CNN's square kernels, padded by half their size so a conv keeps the image's size (8x8 -> 4x4 -> 2x2 with
# the pools): 5x5 sees more of an 8x8 digit than 3x3 and reaches a higher test accuracy in the same 20 epochs.
CNN_KERNEL_SIZE = 5
MAX_KERNEL_SIZE = 15


def defaults_for(task: str, model: str | None = None) -> dict[str, Any]:
    """The TrainConfig fields a run of ``model`` (None: the task's usual model) on ``task`` starts from."""
    fields: dict[str, Any] = {
        f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name not in ("task", "seed")
    }
    fields.update(TASK_DEFAULTS.get(task, {}))
    if model is not None:
        fields["model"] = model
    kind = fields["model"]
    fields["hidden"] = HIDDEN_DEFAULTS.get((kind, task), HIDDEN_DEFAULTS.get((kind, None), fields["hidden"]))
    return fields


class TaskShape(NamedTuple):
    """What a config needs to know of its task's data: points, the shape of one input, the width of the
    output, and the number of classes when the labels are integers (else 0)."""

    points: int
    in_shape: tuple[int, ...]
    out_features: int
    classes: int


@functools.cache
def task_shape(task: str) -> TaskShape:
    """The TaskShape of a task (its data are small: made once)."""
    x, y = data.load_task(task, 0)
    classes = int(y.max()) + 1 if y.ndim == 1 and y.dtype.kind in "iu" else 0
    return TaskShape(len(x), tuple(int(d) for d in x.shape[1:]), classes or y.shape[1], classes)


def size_problems(in_features: int, hidden: Sequence[int], out_features: int, bias: bool) -> list[str]:
    """Why an MLP of these sizes is over the limits (MAX_WIDTH, MAX_LAYERS, MAX_PARAMETERS); [] if it is not."""
    sizes = [in_features, *hidden, out_features]
    if len(hidden) > MAX_LAYERS:
        return [f"at most {MAX_LAYERS} hidden layers (the limit on a model's depth), got {len(hidden):,}"]
    if max(sizes) > MAX_WIDTH:
        return [f"layer sizes must be at most {MAX_WIDTH:,} (the limit on a layer's width), got {max(sizes):,}"]
    params = sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:]))
    if params > MAX_PARAMETERS:
        return [
            f"the model must have at most {MAX_PARAMETERS:,} parameters (the limit on a model's size), "
            f"hidden {'x'.join(map(str, hidden))} has {params:,}"
        ]
    return []


def seeded_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the data and for the initial weights, both from one seed: the same seed
    gives the same initial weights whatever the task, so settings compared per seed start alike."""
    data_seq, init_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(data_seq), np.random.default_rng(init_seq)


def _linear(activation: str) -> bool:
    """The lab's "without activation functions": an identity activation drops the output's sigmoid too."""
    return ACTIVATIONS[activation] is nn.Identity


def model_spec(
    config: TrainConfig,
    in_shape: int | Sequence[int] = 2,
    out_features: int = 1,
    dtype: str | np.dtype = "float64",
) -> dict:
    """What rebuilds the model (saved into model.npz): its MODELS kind, the shape of one input, sizes,
    activations and the dtype of its parameters (the inputs' float dtype)."""
    in_shape = [int(in_shape)] if isinstance(in_shape, (int, np.integer)) else [int(d) for d in in_shape]
    common = {
        "kind": config.model,
        "in_shape": in_shape,
        "hidden": list(config.hidden),
        "out_features": out_features,
        "activation": config.activation,
        "dtype": str(np.dtype(dtype)),
    }
    if config.model == "cnn":
        return {**common, "kernel_size": CNN_KERNEL_SIZE}
    out_activation = "none" if _linear(config.activation) or config.loss == "cross_entropy" else "sigmoid"
    return {
        **common,
        "in_features": int(np.prod(in_shape)),
        "out_activation": out_activation,
        "bias": config.bias,
        "init": config.init,
    }


def _build_mlp(spec: dict, rng: np.random.Generator | None) -> nn.Module:
    """The MLP a model_spec describes. ``activation`` "none" removes every activation (the lab's
    "without activation functions"), including the output's sigmoid."""
    return nn.MLP(
        int(spec["in_features"]),
        tuple(int(h) for h in spec["hidden"]),
        int(spec["out_features"]),
        activation=spec["activation"],
        out_activation=spec["out_activation"],
        bias=bool(spec["bias"]),
        init=spec.get("init", "randn"),
        rng=rng,
    )


def cnn_kernel_size(spec: dict) -> int:
    """The side of a CNN spec's kernels (a spec without ``kernel_size``, from an older file, has 3x3)."""
    return spec.get("kernel_size", 3)


def _build_cnn(spec: dict, rng: np.random.Generator | None) -> nn.Module:
    """conv kxk (padding k // 2, keeping the size) - activation - max pool 2 per entry of ``hidden`` (its output
    channels), then flatten and one linear layer to the outputs; PyTorch's layers and default initialisation."""
    channels, height, width = spec["in_shape"]
    kernel = cnn_kernel_size(spec)
    layers: dict[str, nn.Module] = {}
    for i, out in enumerate(spec["hidden"], start=1):
        layers[f"conv{i}"] = nn.Conv2d(channels, out, kernel, padding=kernel // 2, rng=rng)
        layers[f"act{i}"] = nn.make_activation(spec["activation"])
        layers[f"pool{i}"] = nn.MaxPool2d(2)
        channels, height, width = out, height // 2, width // 2
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels * height * width, int(spec["out_features"]), rng=rng)
    return nn.Sequential(layers)


def _mlp_problems(spec: dict) -> list[str]:
    return size_problems(int(np.prod(spec["in_shape"])), spec["hidden"], spec["out_features"], spec.get("bias", True))


def _cnn_problems(spec: dict) -> list[str]:
    """Why a CNN of these sizes cannot be built or is over the limits; [] if it is fine."""
    in_shape, hidden = spec["in_shape"], spec["hidden"]
    if len(in_shape) != 3:
        return [
            f"model cnn needs images of shape (channels, height, width), but the inputs have shape "
            f"{tuple(in_shape)} (use model mlp)"
        ]
    channels, height, width = in_shape
    kernel = cnn_kernel_size(spec)
    if not (isinstance(kernel, int) and not isinstance(kernel, bool) and kernel % 2 and 1 <= kernel <= MAX_KERNEL_SIZE):
        return [f"the CNN's kernel size must be an odd integer from 1 to {MAX_KERNEL_SIZE}, got {kernel!r}"]
    if max(hidden) > MAX_WIDTH:
        return [f"conv channels must be at most {MAX_WIDTH:,} (the limit on a layer's width), got {max(hidden):,}"]
    if min(height, width) >> len(hidden) < 1:
        return [
            f"model cnn halves the image after each of its {len(hidden)} conv layers, too many for "
            f"{height}x{width} images (at most {min(height, width).bit_length() - 1})"
        ]
    params, c = 0, channels
    for out in hidden:
        params += c * out * kernel * kernel + out
        c, height, width = out, height // 2, width // 2
    params += c * height * width * spec["out_features"] + spec["out_features"]
    if params > MAX_PARAMETERS:
        return [
            f"the model must have at most {MAX_PARAMETERS:,} parameters (the limit on a model's size), "
            f"cnn with channels {'x'.join(map(str, hidden))} has {params:,}"
        ]
    return []


def _mlp_activations(spec: dict) -> int:
    return int(np.prod(spec["in_shape"])) + sum(spec["hidden"]) + spec["out_features"]


def _cnn_activations(spec: dict) -> int:
    """Per image: each conv layer's unfolded input (k x k values per input channel and pixel) and its output."""
    channels, height, width = spec["in_shape"]
    taps = cnn_kernel_size(spec) ** 2
    total = channels * height * width
    for out in spec["hidden"]:
        total += (taps * channels + 2 * out) * height * width  # unfolded input, conv output, activation
        channels, height, width = out, height // 2, width // 2
    return total + channels * height * width + spec["out_features"]


class ModelKind(NamedTuple):
    """An entry of MODELS: how to build the model from its spec, why a spec is over the limits, the floats
    one sample's forward pass holds, and the keys its spec must have."""

    build: Callable[[dict, np.random.Generator | None], nn.Module]
    problems: Callable[[dict], list[str]]
    activations: Callable[[dict], int]
    keys: tuple[str, ...]


# The one registry of model architectures by name; the CLI's --model choices come from it.
MODELS: dict[str, ModelKind] = {
    "mlp": ModelKind(
        _build_mlp,
        _mlp_problems,
        _mlp_activations,
        ("in_features", "hidden", "out_features", "activation", "out_activation", "bias"),
    ),
    "cnn": ModelKind(_build_cnn, _cnn_problems, _cnn_activations, ("in_shape", "hidden", "out_features", "activation")),
}


def build_model(spec: dict, rng: np.random.Generator | None = None) -> nn.Module:
    """The model a model_spec describes (a spec without ``kind``, from an older file, is an MLP), with its
    parameters in the spec's dtype."""
    model = MODELS[spec.get("kind", "mlp")].build(spec, rng)
    dtype = np.dtype(spec.get("dtype", "float64"))
    for p in model.parameters():
        if p.data.dtype != dtype:
            p.data = p.data.astype(dtype)
    return model


def model_inputs(spec: dict, x: np.ndarray) -> np.ndarray:
    """The task's inputs as the model takes them: an MLP gets each image flattened to a vector."""
    return x.reshape(len(x), -1) if spec.get("kind", "mlp") == "mlp" and x.ndim > 2 else x


class Setup(NamedTuple):
    """What a run starts from: the task's data (as the model takes them), the model with its initial weights,
    the optimizer, the loss, and the task's test set (None when it has none)."""

    x: np.ndarray
    y: np.ndarray
    model: nn.Module
    optimizer: Any
    loss: Callable
    test: tuple[np.ndarray, np.ndarray] | None


def run_spec(config: TrainConfig, x: np.ndarray, y: np.ndarray) -> dict:
    """The model_spec of ``config`` on a task's raw data (x, y)."""
    shape = task_shape(config.task)
    return model_spec(config, x.shape[1:], shape.out_features, x.dtype if x.dtype == np.float32 else "float64")


def setup(config: TrainConfig) -> Setup:
    """The data, model and optimizer of a run, from ``config.seed``: the same config gives the same start."""
    data_rng, init_rng = seeded_rngs(config.seed)
    x, y = data.load_task(config.task, data_rng)
    spec = run_spec(config, x, y)
    model = build_model(spec, init_rng)
    test = data.load_test(config.task)
    if test is not None:
        test = (model_inputs(spec, test[0]), test[1])
    return Setup(
        model_inputs(spec, x),
        y,
        model,
        build_optimizer(config.optimizer, model.parameters(), config.lr),
        LOSSES[config.loss],
        test,
    )


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator that orders a run's minibatches, from its seed (independent of seeded_rngs' two)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def build_optimizer(name: str, params: Any, lr: float) -> optim.Optimizer:
    """The optimizer registered as ``name`` in optim.OPTIMIZERS, at learning rate ``lr``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](params, lr=lr)
