"""Render computation graphs into demos/out/: micrograd's scalar neuron, and the lab's MLP forward and backward.

    python demos/graphs.py [OUT_DIR]

Each picture is written as SVG and PNG through Graphviz's `dot`; where `dot` is missing, the DOT text is
written instead (same name, .dot) and a note says how to install Graphviz.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab import viz

OUT = Path(__file__).resolve().parent / "out"


def neuron() -> tl.Tensor:
    """micrograd's neuron o = tanh(x1*w1 + x2*w2 + b) on 0-d tensors, after backward."""
    x1, x2 = tl.tensor(2.0, name="x1"), tl.tensor(0.0, name="x2")
    w1 = tl.tensor(-3.0, requires_grad=True, name="w1")
    w2 = tl.tensor(1.0, requires_grad=True, name="w2")
    b = tl.tensor(6.8813735870195432, requires_grad=True, name="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.name = "o"
    o.backward()
    return o


def mlp(seed: int = 0) -> tl.Tensor:
    """The lab's network (2 -> 4 -> 4 -> 1, sigmoid, no bias, MSE) on the XOR points, after one backward that
    keeps the graph (retain_graph=True), so the backward view also shows the tensors saved for backward."""
    xs = np.array([[0.1 * i, 0.1 * i] for i in range(11)] + [[0.1 * i, 1 - 0.1 * i] for i in range(11) if i != 5])
    ys = np.array([[0.0]] * 11 + [[1.0]] * 10)
    rng = np.random.default_rng(seed)
    h = tl.Tensor(xs, name="x")
    for i, shape in enumerate([(2, 4), (4, 4), (4, 1)], start=1):
        w = tl.Tensor(rng.standard_normal(shape), requires_grad=True, name=f"w{i}")
        h = (h @ w).sigmoid()
    loss = ((h - ys) ** 2).mean()
    loss.name = "loss"
    loss.backward(retain_graph=True)
    return loss


def pictures() -> dict:
    """File stem -> (root tensor, to_dot options) for every picture this demo draws."""
    loss = mlp()
    return {
        "neuron": (neuron(), {}),
        "mlp_forward": (loss, {"rankdir": "TB"}),
        "mlp_backward": (loss, {"rankdir": "TB", "view": "backward"}),
    }


def main(out_dir: Path = OUT) -> list:
    out_dir = Path(out_dir)
    written = []
    for stem, (root, options) in pictures().items():
        for suffix in (".svg", ".png"):
            try:
                written.append(viz.render(root, out_dir / (stem + suffix), **options))
            except viz.DotNotFoundError as err:
                print(err, file=sys.stderr)
                written.append(err.dot_path)
                break
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
