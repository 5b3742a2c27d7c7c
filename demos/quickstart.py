"""Quickstart: a micrograd-style scalar neuron, then the lab's network trained on XOR, all on Tensors."""

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab.testing import gradcheck

# 1. Scalars are 0-d tensors: the classic neuron o = tanh(x1*w1 + x2*w2 + b).
x1, x2 = tl.tensor(2.0, name="x1"), tl.tensor(0.0, name="x2")
w1 = tl.tensor(-3.0, requires_grad=True, name="w1")
w2 = tl.tensor(1.0, requires_grad=True, name="w2")
b = tl.tensor(6.8813735870195432, requires_grad=True, name="b")
o = (x1 * w1 + x2 * w2 + b).tanh()
o.backward()
print(f"neuron: o = {o.item():.4f}, do/dw1 = {w1.grad.item():.4f}, do/dw2 = {w2.grad.item():.4f}")

# 2. The lab's network (2 -> 4 -> 4 -> 1, sigmoid everywhere, no bias, MSE) on the XOR points.
xs = np.array([[0.1 * i, 0.1 * i] for i in range(11)] + [[0.1 * i, 1 - 0.1 * i] for i in range(11) if i != 5])
ys = np.array([[0.0]] * 11 + [[1.0]] * 10)
rng = np.random.default_rng(0)
weights = [tl.Tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 4), (4, 4), (4, 1)]]


def forward(x, weights=weights):
    for w in weights:
        x = (x @ w).sigmoid()
    return x


for epoch in range(1, 3001):
    loss = ((forward(xs) - ys) ** 2).mean()
    loss.backward()
    with tl.no_grad():
        for w in weights:
            w -= 1.0 * w.grad  # in place, as in torch
            w.grad = None
    if epoch % 1000 == 0:
        acc = ((forward(xs).data > 0.5) == (ys > 0.5)).mean() * 100
        print(f"epoch {epoch} loss : {loss.item():.8f} acc(%) : {acc:.1f}")

# 3. Gradients are checked against finite differences.
print(
    "gradcheck of the network w.r.t. its first weight:",
    gradcheck(lambda w1: ((forward(xs[:4], [w1, *weights[1:]]) - ys[:4]) ** 2).mean(), [weights[0]]),
)
