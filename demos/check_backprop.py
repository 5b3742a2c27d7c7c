"""Check the lab report's hand-written backprop with tinygrad_lab.testing.check_backprop, then three classic
mistakes, each diagnosed. Run: python demos/check_backprop.py

The report's code below is copied as printed (sigmoid, derivative_sigmoid, the Network class with forward and
backpropagation); only the indentation of forward's ``return``, which the report prints outside the method,
is fixed. The report does not print derivative_MSE; it is written here as the derivative of its loss.
"""

import copy

import numpy as np

from tinygrad_lab.lab import data
from tinygrad_lab.testing import check_backprop


# ---- the lab report's code -------------------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def derivative_sigmoid(x):
    return np.multiply(x, 1.0 - x)


def derivative_MSE(y, pred_y):  # not printed in the report: d/d pred_y of np.mean((y-pred_y) ** 2)
    return -2 * (y - pred_y) / y.shape[0]


class Network:
    def __init__(self, x_in, h1_neuron, h2_neuron, y_out):
        self.w1 = np.random.randn(x_in, h1_neuron)
        self.w2 = np.random.randn(h1_neuron, h2_neuron)
        self.w3 = np.random.randn(h2_neuron, y_out)

    def forward(self, x):
        self.x = x
        self.z1 = sigmoid(x @ self.w1)
        self.z2 = sigmoid(self.z1 @ self.w2)
        self.z3 = sigmoid(self.z2 @ self.w3)
        self.pred_y = self.z3

        return self.pred_y

    def backpropagation(self, y):
        dy = derivative_MSE(y, self.pred_y)
        dz3 = derivative_sigmoid(self.z3)
        dz2 = derivative_sigmoid(self.z2)
        dz1 = derivative_sigmoid(self.z1)

        self.d_l3 = self.z2.T @ (dz3 * dy)
        self.d_l2 = self.z1.T @ (dz2 * ((dz3 * dy) @ self.w3.T))
        self.d_l1 = self.x.T @ (dz1 * ((dz2 * ((dz3 * dy) @ self.w3.T)) @ self.w2.T))


# ---- three classic mistakes: the same backpropagation with one line changed (marked) ------------------------------
class MissingFactorTwo(Network):
    """The derivative of the square without its 2."""

    def backpropagation(self, y):
        dy = -(y - self.pred_y) / y.shape[0]  # <- was -2 * (y - pred_y) / N
        dz3 = derivative_sigmoid(self.z3)
        dz2 = derivative_sigmoid(self.z2)
        dz1 = derivative_sigmoid(self.z1)

        self.d_l3 = self.z2.T @ (dz3 * dy)
        self.d_l2 = self.z1.T @ (dz2 * ((dz3 * dy) @ self.w3.T))
        self.d_l1 = self.x.T @ (dz1 * ((dz2 * ((dz3 * dy) @ self.w3.T)) @ self.w2.T))


class DerivativeAtTheInput(Network):
    """derivative_sigmoid(z) = z(1-z) needs the activation's output; here it gets its input."""

    def backpropagation(self, y):
        dy = derivative_MSE(y, self.pred_y)
        dz3 = derivative_sigmoid(self.z2 @ self.w3)  # <- was derivative_sigmoid(self.z3)
        dz2 = derivative_sigmoid(self.z2)
        dz1 = derivative_sigmoid(self.z1)

        self.d_l3 = self.z2.T @ (dz3 * dy)
        self.d_l2 = self.z1.T @ (dz2 * ((dz3 * dy) @ self.w3.T))
        self.d_l1 = self.x.T @ (dz1 * ((dz2 * ((dz3 * dy) @ self.w3.T)) @ self.w2.T))


class TransposedProduct(Network):
    """The matrix product of the middle layer the wrong way round: w2 is 4x4, so the shape does not tell."""

    def backpropagation(self, y):
        dy = derivative_MSE(y, self.pred_y)
        dz3 = derivative_sigmoid(self.z3)
        dz2 = derivative_sigmoid(self.z2)
        dz1 = derivative_sigmoid(self.z1)

        self.d_l3 = self.z2.T @ (dz3 * dy)
        self.d_l2 = (dz2 * ((dz3 * dy) @ self.w3.T)).T @ self.z1  # <- was self.z1.T @ (...)
        self.d_l1 = self.x.T @ (dz1 * ((dz2 * ((dz3 * dy) @ self.w3.T)) @ self.w2.T))


# ---- the check -------------------------------------------------------------------------------------------------------
def check(net, x, y):
    """Run the network's own forward and backpropagation, then judge its gradients."""
    net.forward(x)
    net.backpropagation(y)

    def loss(w1, w2, w3):  # the report's forward pass and loss, on the weights given
        trial = copy.copy(net)
        trial.w1, trial.w2, trial.w3 = w1, w2, w3
        pred_y = trial.forward(x)
        return np.mean((y - pred_y) ** 2)

    return check_backprop(loss, [net.w1, net.w2, net.w3], [net.d_l1, net.d_l2, net.d_l3], names=["w1", "w2", "w3"])


def main() -> None:
    x, y = data.generate_linear(100, rng=0)  # the lab's linear task
    for cls, title in [
        (Network, "The report's backpropagation, as printed"),
        (MissingFactorTwo, "Mistake 1: the 2 of the square is missing"),
        (DerivativeAtTheInput, "Mistake 2: derivative_sigmoid applied to the activation's input"),
        (TransposedProduct, "Mistake 3: the gradient of the 4x4 middle layer transposed"),
    ]:
        np.random.seed(1)  # the report draws its weights from np.random
        result = check(cls(2, 4, 4, 1), x, y)
        print(f"== {title}: {'passes' if result else 'fails'}\n{result}\n")


if __name__ == "__main__":
    main()
