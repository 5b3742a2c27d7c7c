"""The lab report's network with its hand-derived backprop, in plain numpy: the oracle the engine is tested
against and the baseline every benchmark is measured against.

Three weight matrices, no biases, a sigmoid after every layer, loss mean((y - pred)^2), gradients by the
chain of matrix products the lab derives by hand (derivative_sigmoid(z) = z * (1 - z) of a sigmoid output z),
and a plain SGD step.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def derivative_sigmoid(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid written in terms of its output z = sigmoid(x)."""
    return np.multiply(z, 1.0 - z)


def mse(y: np.ndarray, pred_y: np.ndarray) -> float:
    return float(np.mean((y - pred_y) ** 2))


def derivative_mse(y: np.ndarray, pred_y: np.ndarray) -> np.ndarray:
    """d mean((y - pred)^2) / d pred."""
    return -2.0 * (y - pred_y) / y.size


class Network:
    """The lab's 2-hidden-layer sigmoid MLP: x @ w1 -> sigmoid -> @ w2 -> sigmoid -> @ w3 -> sigmoid."""

    def __init__(
        self,
        x_in: int = 2,
        h1: int = 4,
        h2: int = 4,
        y_out: int = 1,
        rng: np.random.Generator | None = None,
        weights: tuple | None = None,
    ):
        if weights is not None:
            self.w1, self.w2, self.w3 = (np.array(w, dtype=np.float64) for w in weights)
        else:
            rng = np.random.default_rng(0) if rng is None else rng
            self.w1 = rng.standard_normal((x_in, h1))
            self.w2 = rng.standard_normal((h1, h2))
            self.w3 = rng.standard_normal((h2, y_out))

    @property
    def weights(self) -> tuple:
        return self.w1, self.w2, self.w3

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.z1 = sigmoid(x @ self.w1)
        self.z2 = sigmoid(self.z1 @ self.w2)
        self.z3 = sigmoid(self.z2 @ self.w3)
        self.pred_y = self.z3
        return self.pred_y

    def backpropagation(self, y: np.ndarray) -> tuple:
        """The lab's hand-derived gradients of the MSE loss w.r.t. w1, w2, w3 (after a forward)."""
        dy = derivative_mse(y, self.pred_y)
        delta3 = derivative_sigmoid(self.z3) * dy
        delta2 = derivative_sigmoid(self.z2) * (delta3 @ self.w3.T)
        delta1 = derivative_sigmoid(self.z1) * (delta2 @ self.w2.T)
        self.d_l3 = self.z2.T @ delta3
        self.d_l2 = self.z1.T @ delta2
        self.d_l1 = self.x.T @ delta1
        return self.d_l1, self.d_l2, self.d_l3

    def step(self, lr: float) -> None:
        """Plain gradient descent on the last computed gradients."""
        self.w1 -= lr * self.d_l1
        self.w2 -= lr * self.d_l2
        self.w3 -= lr * self.d_l3

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One full-batch epoch as the lab runs it: forward, loss, backprop, update. Returns the loss."""
        pred = self.forward(x)
        loss = mse(y, pred)
        self.backpropagation(y)
        self.step(lr)
        return loss
