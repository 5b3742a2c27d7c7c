"""Pooling and reshaping layers with PyTorch's arguments: ``MaxPool1d``, ``MaxPool2d``, ``AvgPool1d``,
``AvgPool2d``, ``AdaptiveAvgPool2d`` and ``Flatten``."""

from __future__ import annotations

from typing import Any

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import (
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    flatten,
    max_pool1d,
    max_pool2d,
)
from tinygrad_lab.nn.module import Module


class _MaxPoolNd(Module):
    _pool: Any = None

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride  # a stride of 0 reaches the op's check
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._pool(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """Maximum over kernel_size windows of (N, C, H, W) or (C, H, W); stride defaults to kernel_size."""

    _pool = max_pool2d


class MaxPool1d(_MaxPoolNd):
    """Maximum over kernel_size windows of (N, C, L) or (C, L); stride defaults to kernel_size."""

    _pool = max_pool1d


class _AvgPoolNd(Module):
    """AvgPool1d's and AvgPool2d's arguments and repr, as torch's _AvgPoolNd."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride  # a stride of 0 reaches the op's check
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """Mean over kernel_size windows of (N, C, H, W) or (C, H, W), zero padding counted unless
    count_include_pad=False; stride defaults to kernel_size."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AvgPool1d(_AvgPoolNd):
    """Mean over kernel_size windows of (N, C, L) or (C, L), as AvgPool2d."""

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Mean over output_size bins of (N, C, H, W) or (C, H, W) spread as evenly as torch's; None keeps that axis."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge the axes start_dim..end_dim (by default all but the batch axis) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
