"""Shared by the tl.compile tests: the optimizers they step, the lab's data, and the lab's training step."""

import numpy as np

from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-4),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def lab_data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    return x, (x[:, 0] < x[:, 1]).astype(float).reshape(-1, 1)


def make_step(optimizer="sgd", activation="sigmoid", bias=False, seed=1, loss=F.mse_loss):
    model = nn.MLP(2, (4, 4), 1, bias=bias, init="randn", activation=activation, rng=np.random.default_rng(seed))
    opt = OPTIMIZERS[optimizer](model.parameters())

    def step(x, y):
        opt.zero_grad()
        value = loss(model(x), y)
        value.backward()
        opt.step()
        return value

    return model, step


def mse_sgd_step(model, opt):
    """One training step over this model and optimizer, bound now so each loop pass compiles its own."""

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step
