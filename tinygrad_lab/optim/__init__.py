"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, Adagrad.

    opt = optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

``step()`` updates each parameter's array in place (its identity never changes, so a Module and an
optimizer can share it) with numpy's in-place operations into per-parameter buffers allocated once, and
skips parameters whose ``.grad`` is None. Per-parameter state (step count, moment estimates) is created on
a parameter's first update, as in PyTorch, so a parameter without gradients does not advance its step.
"""

from collections.abc import Callable
from functools import partial

from tinygrad_lab.optim.adagrad import Adagrad
from tinygrad_lab.optim.adam import Adam, AdamW
from tinygrad_lab.optim.optimizer import Optimizer
from tinygrad_lab.optim.rmsprop import RMSprop
from tinygrad_lab.optim.sgd import SGD

MOMENTUM = 0.9  # the "momentum" choice: SGD with PyTorch's usual momentum 0.9

# The one registry of optimizers by name, ``factory(params, lr)``; the CLI reads its choices from it.
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": SGD,
    "momentum": partial(SGD, momentum=MOMENTUM),
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "OPTIMIZERS", "MOMENTUM"]
