"""Neural-network building blocks in PyTorch's shape: ``Module``, ``Parameter``, ``Linear``, ``Sequential``,
the containers ``ModuleList`` and ``ModuleDict``, activation modules, the lab's ``MLP``, the layers of a CNN
(``Conv1d``, ``Conv2d``, ``MaxPool1d``, ``MaxPool2d``, ``AvgPool1d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``,
``BatchNorm1d``, ``BatchNorm2d``, ``Dropout``, ``Flatten``), the loss modules (``MSELoss``, ``L1Loss``, ``BCELoss``,
``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``NLLLoss``, each calling its function in ``nn.functional``), and
``DataLoader`` (minibatches).

    import tinygrad_lab.nn as nn
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))  # the lab's network
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()                        # every Parameter in model.parameters() now has .grad

A Module registers the Parameters and sub-Modules assigned to its attributes, in assignment order, so
``named_parameters()`` yields dotted paths (``fc1.weight``) and ``state_dict()`` saves them by those names.
"""

from tinygrad_lab.nn import functional, init, utils
from tinygrad_lab.nn.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    Hardtanh,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    make_activation,
)
from tinygrad_lab.nn.containers import ModuleDict, ModuleList
from tinygrad_lab.nn.conv import Conv1d, Conv2d
from tinygrad_lab.nn.data import DataLoader
from tinygrad_lab.nn.init import INITS
from tinygrad_lab.nn.layers import MLP, Embedding, Linear, Sequential
from tinygrad_lab.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from tinygrad_lab.nn.module import IncompatibleKeys, Module, Parameter, StateDictKeyError
from tinygrad_lab.nn.normalization import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm
from tinygrad_lab.nn.pooling import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Flatten, MaxPool1d, MaxPool2d

__all__ = [
    "functional",
    "init",
    "utils",
    "DataLoader",
    "ACTIVATIONS",
    "INITS",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "GELU",
    "SiLU",
    "ELU",
    "Softplus",
    "Hardtanh",
    "ReLU6",
    "make_activation",
    "MLP",
    "Linear",
    "Embedding",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "IncompatibleKeys",
    "Module",
    "Parameter",
    "StateDictKeyError",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Flatten",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "LayerNorm",
    "MSELoss",
    "L1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "NLLLoss",
]
