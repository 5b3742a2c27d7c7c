"""Convolution layers ``Conv1d`` and ``Conv2d``: PyTorch's arguments, weight layout (out, in/groups, *kernel) and
default initialisation (weight and bias uniform in +-1/sqrt(fan_in), fan_in = in/groups * kernel size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.functional_conv import _tuple, conv1d, conv2d, conv_padding
from tinygrad_lab.nn.init import uniform_fan_in
from tinygrad_lab.nn.module import Module, Parameter


class _ConvNd(Module):
    _d = 0
    _name = ""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        name, d = self._name, self._d
        for label, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: {label} must be an int >= 1, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _tuple(name, "kernel_size", kernel_size, d, 1)
        self.stride = _tuple(name, "stride", stride, d, 1)
        self.dilation = _tuple(name, "dilation", dilation, d, 1)
        conv_padding(name, padding, self.kernel_size, self.stride, self.dilation)  # a bad padding fails here
        self.padding = padding if isinstance(padding, str) else _tuple(name, "padding", padding, d, 0)
        if padding_mode != "zeros":
            raise ValueError(
                f"{name}: padding_mode {padding_mode!r} is not supported, only 'zeros' (torch also has 'reflect', "
                "'replicate' and 'circular')"
            )
        self.padding_mode = padding_mode
        fan_in = in_channels // groups * int(np.prod(self.kernel_size))
        self.weight = Parameter(
            uniform_fan_in((out_channels, in_channels // groups) + self.kernel_size, fan_in, rng, dtype)
        )
        self.bias = Parameter(uniform_fan_in((out_channels,), fan_in, rng, dtype)) if bias else None

    def extra_repr(self) -> str:
        one = (1,) * self._d
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._d:
            text += f", padding={self.padding}"
        if self.dilation != one:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L); weight (out_channels, in_channels/groups, kernel_size)."""

    _d, _name = 1, "Conv1d"

    def forward(self, x: Tensor) -> Tensor:
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W); weight (out_channels, in_channels/groups, kh, kw)."""

    _d, _name = 2, "Conv2d"

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
