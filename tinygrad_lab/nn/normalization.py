"""``BatchNorm1d``, ``BatchNorm2d`` and ``Dropout``: layers that behave differently in training and in evaluation
(``module.train()`` / ``module.eval()``). Batch norm keeps its running statistics as buffers, saved in state_dict.
``LayerNorm`` normalises each sample by its own statistics, the same in both modes."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import (
    batch_norm,
    dropout,
    dropout_probability,
    layer_norm,
    normalized_shape_of,
    not_in_place,
    state_array,
)
from tinygrad_lab.nn.module import Module, Parameter


class _BatchNorm(Module):
    running_mean: Tensor | None  # buffers, registered in __init__
    running_var: Tensor | None
    num_batches_tracked: Tensor | None
    _ndims: tuple = ()
    _name = ""
    _layout = ""
    optional_buffers = ("num_batches_tracked",)  # older torch state dicts lack it, as torch accepts

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = np.float64,
    ):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"{self._name}: num_features must be an int >= 1, got {num_features!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype), dtype=dtype))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype), dtype=dtype))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64), dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._ndims:
            raise ValueError(f"{self._name}: expected input of shape {self._layout}, got shape {x.shape}")
        factor: Any = 0.0 if self.momentum is None else self.momentum
        tracked = self.num_batches_tracked
        if self.training and tracked is not None:  # a buffer exactly when track_running_stats
            count = state_array(tracked)  # tl.compile records the count too
            count += 1
            if self.momentum is None:  # a cumulative average, as torch; a 0-d array, so a replay follows the count
                factor = 1.0 / count
        use_batch = self.training or not self.track_running_stats  # untracked: batch statistics in eval too
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L): per-channel statistics over every axis but C."""

    _ndims, _name, _layout = (2, 3), "BatchNorm1d", "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W): per-channel statistics over N, H and W."""

    _ndims, _name, _layout = (4,), "BatchNorm2d", "(N, C, H, W)"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p)); identity in eval mode.
    ``rng`` draws the masks (tl.manual_seed's generator when None)."""

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: np.random.Generator | None = None):
        super().__init__()
        not_in_place("Dropout", inplace)
        self.p, self.rng, self.inplace = dropout_probability(p, "Dropout"), rng, False

    @property
    def draws_random(self) -> bool:
        """Whether forward draws a mask (training with p > 0): a step that does cannot be captured by tl.compile."""
        return self.training and self.p > 0

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


class LayerNorm(Module):
    """torch's layer norm: each sample normalised over its last ``len(normalized_shape)`` axes, then scaled by
    ``weight`` (ones) and shifted by ``bias`` (zeros), both of shape ``normalized_shape``, when
    ``elementwise_affine`` (``bias=False``: no shift)."""

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.normalized_shape = normalized_shape_of("LayerNorm", normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        affine = elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
