"""Activation modules, and ``ACTIVATIONS``: the one registry of activations by name (the CLI reads its choices)."""

from __future__ import annotations

from typing import Any

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn import functional as F
from tinygrad_lab.nn.module import Module


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class _InPlaceFlag(Module):
    """An activation with torch's ``inplace`` argument, which only False is accepted for (a new tensor each call)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        F.not_in_place(type(self).__name__, inplace)
        self.inplace = False


class ReLU(_InPlaceFlag):
    """max(x, 0) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Identity(Module):
    """Returns its input unchanged: the "no activation" choice."""

    def forward(self, x: Any) -> Any:
        return x


class LeakyReLU(_InPlaceFlag):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x Phi(x), exactly (``approximate="none"``) or by torch's tanh formula (``approximate="tanh"``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_InPlaceFlag):
    """x sigmoid(x) (swish)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ReLU6(_InPlaceFlag):
    """min(max(x, 0), 6)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


class ELU(_InPlaceFlag):
    """x where x > 0, else alpha (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Hardtanh(_InPlaceFlag):
    """x clipped to [min_val, max_val], gradient 0 at the bounds (torch's)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} must not exceed max_val {max_val}")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class _SoftmaxNd(Module):
    """Softmax's and LogSoftmax's ``dim`` and repr."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _dim(self, name: str, ndim: int) -> int:
        """``dim``, or when None torch's implicit choice, 0 for 0-, 1- and 3-D input, else 1, with torch's warning."""
        return self.dim if self.dim is not None else F.implicit_dim(name, ndim, stacklevel=4)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxNd):
    """exp(x) / sum(exp(x)) along ``dim``: probabilities that sum to 1, stable for large inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(dim=self._dim("Softmax", x.ndim))


class LogSoftmax(_SoftmaxNd):
    """x - logsumexp(x) along ``dim`` (what NLLLoss takes), stable for logits of any size."""

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(dim=self._dim("LogSoftmax", x.ndim))


ACTIVATIONS: dict[str, type[Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "gelu": GELU,
    "silu": SiLU,
    "elu": ELU,
    "softplus": Softplus,
    "none": Identity,
    "identity": Identity,
}


def make_activation(name: str) -> Module:
    """The activation module registered as ``name`` in ACTIVATIONS ("none" and "identity" are Identity)."""
    key = str(name).lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()
