"""Every built-in differentiable op: a ``Function`` with a numpy forward and a backward.

Each backward is written once, with operators and methods that numpy arrays and Tensors share, plus the
numpy-like functions of elementwise.py and shape.py (``exp``, ``log``, ``where``...), which take either. So the same
formula runs on arrays in a first-order backward and on Tensors when ``create_graph=True`` records it.
Masks and signs are computed from plain arrays (``_const``): their own derivative is zero, so as constants
they are exact at every order. Gradients may come back broadcast-shaped: the engine sums them to the
input's shape (autograd.sum_to_shape), so no op undoes broadcasting itself.

To add an op: write its Function in the module of its kind, a one-line method in tensor.py (or in a mixin of
Tensor's: selection_methods.py has torch's indexing, splitting and sorting), and a gradcheck in tests/test_ops.py.
"""

from tinygrad_lab.engine.ops.activations import Elu, Erf, Gelu, Hardtanh, Softplus, erf
from tinygrad_lab.engine.ops.arithmetic import Add, Div, MatMul, Mul, Neg, Pow, Sub
from tinygrad_lab.engine.ops.arrange import CumProd, CumSum
from tinygrad_lab.engine.ops.common import _axis, _const, _constant_attr, _keepdims_shape, _normalize_axes
from tinygrad_lab.engine.ops.convolution import Conv, ConvInputGrad, ConvWeightGrad, Linear
from tinygrad_lab.engine.ops.einsum import Einsum, einsum
from tinygrad_lab.engine.ops.elementwise import (
    Abs,
    Cast,
    Clip,
    Clone,
    Exp,
    LeakyReLU,
    Log,
    Maximum,
    Minimum,
    ReLU,
    Sigmoid,
    Sqrt,
    Tanh,
    Where,
    abs,
    exp,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from tinygrad_lab.engine.ops.losses import BinaryCrossEntropy, MseLoss
from tinygrad_lab.engine.ops.pooling import AvgPool, AvgPoolScatter, MaxPool, MaxPoolGather, MaxPoolScatter
from tinygrad_lab.engine.ops.reductions import LogSumExp, Max, Mean, Min, Sum, Var, log_softmax, norm, std
from tinygrad_lab.engine.ops.selection import gather
from tinygrad_lab.engine.ops.shape import (
    Cat,
    Expand,
    GetItem,
    IndexAdd,
    Reshape,
    Stack,
    Transpose,
    broadcast_to,
    cat,
    stack,
)

__all__ = [
    "Elu",
    "Erf",
    "Gelu",
    "Hardtanh",
    "Softplus",
    "erf",
    "CumProd",
    "CumSum",
    "Einsum",
    "einsum",
    "gather",
    "Add",
    "Div",
    "MatMul",
    "Mul",
    "Neg",
    "Pow",
    "Sub",
    "_axis",
    "_const",
    "_constant_attr",
    "_keepdims_shape",
    "_normalize_axes",
    "Conv",
    "ConvInputGrad",
    "ConvWeightGrad",
    "Linear",
    "Abs",
    "Cast",
    "Clip",
    "Clone",
    "Exp",
    "LeakyReLU",
    "Log",
    "Maximum",
    "Minimum",
    "ReLU",
    "Sigmoid",
    "Sqrt",
    "Tanh",
    "Where",
    "abs",
    "exp",
    "log",
    "maximum",
    "minimum",
    "relu",
    "sigmoid",
    "sqrt",
    "tanh",
    "where",
    "BinaryCrossEntropy",
    "MseLoss",
    "AvgPool",
    "AvgPoolScatter",
    "MaxPool",
    "MaxPoolGather",
    "MaxPoolScatter",
    "LogSumExp",
    "Max",
    "Mean",
    "Var",
    "Min",
    "Sum",
    "log_softmax",
    "norm",
    "std",
    "Cat",
    "Expand",
    "GetItem",
    "IndexAdd",
    "Reshape",
    "Stack",
    "Transpose",
    "broadcast_to",
    "cat",
    "stack",
]
