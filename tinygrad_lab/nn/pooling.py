"""Pooling and reshaping layers: ``MaxPool2d``, ``AvgPool2d`` and ``Flatten``, with PyTorch's arguments."""

from __future__ import annotations

from typing import Any

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import avg_pool2d, flatten, max_pool2d
from tinygrad_lab.nn.module import Module


class MaxPool2d(Module):
    """Maximum over kernel_size windows of (N, C, H, W); stride defaults to kernel_size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = (
            kernel_size,
            kernel_size if stride is None else stride,  # a stride of 0 reaches the op's check
            padding,
            dilation,
        )

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}"


class AvgPool2d(Module):
    """Mean over kernel_size windows of (N, C, H, W), zero padding counted; stride defaults to kernel_size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride  # a stride of 0 reaches the op's check

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Flatten(Module):
    """Merge the axes start_dim..end_dim (by default all but the batch axis) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
