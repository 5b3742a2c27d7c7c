"""tinygrad_lab: a small, exact reverse-mode autodiff engine over numpy, and the backprop lab built on it.

import tinygrad_lab as tl
x = tl.tensor([1.0, 2.0], requires_grad=True)
(x * x).sum().backward()
x.grad  # Tensor([2., 4.])
"""

# engine.tensor first: importing engine.function before it is a cycle (tensor imports the ops, which need Function).
# isort: off
from tinygrad_lab.engine.tensor import Tensor, tensor
from tinygrad_lab.engine.factories import ones_like, zeros_like
from tinygrad_lab.engine.random import manual_seed
from tinygrad_lab.engine.autograd import detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad
from tinygrad_lab.engine.function import Function
from tinygrad_lab.capture import CaptureError, compile
from tinygrad_lab.engine.derivatives import hessian, hvp, jacobian, jvp, vhp, vjp
from tinygrad_lab.engine.ops import (
    abs,
    broadcast_to,
    cat,
    einsum,
    exp,
    gather,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    stack,
    tanh,
    where,
)
from tinygrad_lab.engine.torch_functions import *  # noqa: F403  (torch's functions: tl.sum, tl.max, ..., its __all__)
from tinygrad_lab.engine.torch_functions import __all__ as _torch_functions
from tinygrad_lab.engine.dtypes import *  # noqa: F403  (tl.float32, tl.long, ...: its __all__)
from tinygrad_lab.engine.dtypes import __all__ as _dtypes
from tinygrad_lab.engine.dtypes import bool as bool, float as float, int as int  # re-exported, not in __all__
# isort: on

# torch's factory functions: tl.zeros(2, 3) is Tensor.zeros(2, 3)
zeros, ones, full, eye, arange = Tensor.zeros, Tensor.ones, Tensor.full, Tensor.eye, Tensor.arange
randn, rand, uniform = Tensor.randn, Tensor.rand, Tensor.uniform

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "einsum",
    "gather",
    "compile",
    "CaptureError",
    "tensor",
    "zeros",
    "ones",
    "full",
    "eye",
    "arange",
    "randn",
    "rand",
    "uniform",
    "zeros_like",
    "ones_like",
    "manual_seed",
    "grad",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "abs",
    "broadcast_to",
    "cat",
    "exp",
    "log",
    "maximum",
    "minimum",
    "relu",
    "sigmoid",
    "sqrt",
    "stack",
    "tanh",
    "where",
    "jacobian",
    "hessian",
    "vjp",
    "jvp",
    "hvp",
    "vhp",
    *_torch_functions,
    *_dtypes,
]
