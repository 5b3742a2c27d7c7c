"""Lab 1 (backpropagation), the whole script, on tinygrad_lab: the lab's data, its 2-4-4-1 sigmoid network
without biases, MSE, plain SGD at lr 0.1 for 20000 epochs, its log, and its figures (in demos/out/).

The lab wrote sigmoid, its derivative, the forward pass, the chain rule for three weight matrices and the
update by hand; here the engine derives the backward pass and the optimizer does the update.
"""

import pathlib

import numpy as np

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.files import save_figure
from tinygrad_lab.lab import data, plots

OUT = pathlib.Path(__file__).resolve().parent / "out"
EPOCHS, LR = 20000, 0.1


def train(name, x, y, seed=3):  # a draw on which XOR converges in 20000 epochs, as in the lab; many do not
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(seed))  # the lab's Network
    opt = optim.SGD(model.parameters(), lr=LR)

    @tl.compile  # capture the step once, then replay its numpy work; delete this line to run it eagerly
    def step(x, y):
        opt.zero_grad()
        pred_y = model(x)
        loss = F.mse_loss(pred_y, y)  # np.mean((y - pred_y) ** 2)
        loss.backward()  # the lab's backpropagation(), derived by the engine
        opt.step()  # w -= lr * dw for every weight
        return loss, pred_y

    xs, ys, losses, accs = tl.Tensor(x), tl.Tensor(y), [], []
    for epoch in range(1, EPOCHS + 1):
        loss, pred_y = step(xs, ys)
        acc = 100 * np.mean((pred_y.numpy() > 0.5) == y)
        losses.append(loss.item())
        accs.append(acc)
        if epoch % 1000 == 0:
            print(f"epoch {epoch} loss : {loss.item():.8f} acc(%) : {acc:.1f}")
    with tl.no_grad():
        pred_y = model(xs).numpy()
    print("pred_y:", pred_y, "=====", f"Accuracy(%): {100 * np.mean((pred_y > 0.5) == y):.1f}", sep="\n")
    save_figure(plots.comparison_figure(x, y, pred_y, title=name), OUT / f"lab1_{name}_result.png")
    save_figure(plots.learning_curve_figure(losses, accs, title=f"{name}, lr {LR}"), OUT / f"lab1_{name}_curve.png")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    train("linear", *data.generate_linear(100, rng=np.random.default_rng(0)))
    train("xor", *data.generate_xor_easy())
    print(f"figures in {OUT}")
