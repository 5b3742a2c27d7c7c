"""One path from a config to a run: ``TrainConfig`` (what defines a run, checked against the size limits) and
``setup(config)``, which makes the data, the model and the optimizer from it for train, predict, graph and the
report alike.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

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
        if self.loss == "bce" and self.activation in ACTIVATIONS and _linear(self.activation):
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


def _linear(activation: str) -> bool:
    """The lab's "without activation functions": an identity activation drops the output's sigmoid too."""
    return ACTIVATIONS[activation] is nn.Identity


def model_spec(config: TrainConfig, in_features: int = 2, out_features: int = 1) -> dict:
    """What rebuilds the model (saved into model.npz)."""
    out_activation = "none" if _linear(config.activation) else "sigmoid"
    return {"in_features": in_features, "hidden": list(config.hidden), "out_features": out_features,
            "activation": config.activation, "out_activation": out_activation, "bias": config.bias,
            "init": config.init}


def build_model(spec: dict, rng: np.random.Generator | None = None) -> nn.MLP:
    """The MLP a model_spec describes. ``activation`` "none" removes every activation (the lab's
    "without activation functions"), including the output's sigmoid."""
    return nn.MLP(int(spec["in_features"]), tuple(int(h) for h in spec["hidden"]), int(spec["out_features"]),
                  activation=spec["activation"], out_activation=spec["out_activation"], bias=bool(spec["bias"]),
                  init=spec.get("init", "randn"), rng=rng)


class Setup(NamedTuple):
    """What a run starts from: the task's data, the model with its initial weights, the optimizer, the loss."""

    x: np.ndarray
    y: np.ndarray
    model: nn.MLP
    optimizer: Any
    loss: Callable


def setup(config: TrainConfig) -> Setup:
    """The data, model and optimizer of a run, from ``config.seed``: the same config gives the same start."""
    data_rng, init_rng = seeded_rngs(config.seed)
    x, y = data.load_task(config.task, data_rng)
    model = build_model(model_spec(config, x.shape[1], y.shape[1]), init_rng)
    return Setup(x, y, model, build_optimizer(config.optimizer, model.parameters(), config.lr), LOSSES[config.loss])


def build_optimizer(name: str, params: Any, lr: float) -> optim.Optimizer:
    """The optimizer registered as ``name`` in optim.OPTIMIZERS, at learning rate ``lr``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](params, lr=lr)
