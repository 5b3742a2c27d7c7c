"""Activation modules, and ``ACTIVATIONS``: the one registry of activations by name (the CLI reads its choices)."""

from __future__ import annotations

from typing import Any

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.module import Module


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class ReLU(Module):
    """max(x, 0) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Identity(Module):
    """Returns its input unchanged: the "no activation" choice."""

    def forward(self, x: Any) -> Any:
        return x


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


ACTIVATIONS: dict[str, type[Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "none": Identity,
    "identity": Identity,
}


def make_activation(name: str) -> Module:
    """The activation module registered as ``name`` in ACTIVATIONS ("none" and "identity" are Identity)."""
    key = str(name).lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()
