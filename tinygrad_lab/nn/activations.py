"""Activation modules, and ``ACTIVATIONS``: the one registry of activations by name (the CLI reads its choices)."""

from __future__ import annotations

import warnings
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


def _legacy_softmax_dim(name: str, ndim: int) -> int:
    """torch's implicit axis of Softmax(dim=None): 0 for 0-, 1- and 3-D input, else 1, with torch's warning."""
    warnings.warn(
        f"{name}: implicit dimension choice is deprecated (as in torch); pass dim=", UserWarning, stacklevel=3
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``: probabilities that sum to 1, stable for large inputs."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(dim=_legacy_softmax_dim("Softmax", x.ndim) if self.dim is None else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """x - logsumexp(x) along ``dim`` (what NLLLoss takes), stable for logits of any size."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(dim=_legacy_softmax_dim("LogSoftmax", x.ndim) if self.dim is None else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


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
