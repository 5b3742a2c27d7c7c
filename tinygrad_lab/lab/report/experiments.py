"""The report's experiments: the lab's settings, the variants each section compares, and the seeds.

A section is a question of the lab report; each of its variants changes a few fields of the lab's TrainConfig.
Every (variant, task, seed) is one run; runs shared by several sections run once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinygrad_lab.lab.config import TrainConfig

TASKS = ("linear", "xor")
LAB = TrainConfig(
    task="xor",
    hidden=(4, 4),
    lr=0.1,
    epochs=20000,
    activation="sigmoid",
    loss="mse",
    optimizer="sgd",
    bias=False,
    init="randn",
)  # the lab's settings
FULL_SEEDS, FULL_EPOCHS = 5, LAB.epochs
QUICK_SEEDS, QUICK_EPOCHS = 2, 300


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
    return Settings(
        epochs=epochs if epochs is not None else (QUICK_EPOCHS if quick else FULL_EPOCHS),
        seeds=tuple(range(n_seeds)),
        quick=quick,
    )


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
    Section(
        1,
        "lab",
        "The lab's settings on linear and XOR",
        "Does the lab's network (sigmoid everywhere, MSE, SGD, no bias) learn both tasks?",
        (_v("lab settings"),),
    ),
    Section(
        2,
        "lr",
        "Learning rates",
        "How does the learning rate change training?",
        (_v("lr 1", lr=1.0), _v("lr 0.1", lr=0.1), _v("lr 0.0001", lr=0.0001)),
    ),
    Section(
        3,
        "hidden",
        "Hidden units",
        "How does the number of hidden units change training?",
        (_v("2x1", hidden=(2, 1)), _v("4x4", hidden=(4, 4)), _v("32x32", hidden=(32, 32))),
    ),
    Section(
        4,
        "noact",
        "Without activation functions",
        "What happens without activation functions?",
        (_v("sigmoid", activation="sigmoid"), _v("no activation", activation="none")),
    ),
    Section(
        5,
        "activation",
        "Activation functions",
        "Which hidden activation trains best?",
        (
            _v("sigmoid", activation="sigmoid"),
            _v("tanh", activation="tanh"),
            _v("relu", activation="relu"),
            _v("leaky relu", activation="leaky_relu"),
        ),
    ),
    Section(
        6,
        "optimizer",
        "Optimizers",
        "Which optimizer trains best?",
        (
            _v("SGD", optimizer="sgd"),
            _v("SGD + momentum", optimizer="momentum"),
            _v("Adam", optimizer="adam"),
            _v("RMSprop", optimizer="rmsprop"),
        ),
    ),
    Section(
        7,
        "loss",
        "Loss: MSE vs binary cross-entropy",
        "Does cross-entropy train faster than MSE?",
        (_v("MSE", loss="mse"), _v("BCE", loss="bce")),
    ),
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
