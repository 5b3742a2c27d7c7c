"""Shared by the tests of tinygrad_lab.viz: reading DOT text back, and small programs with known graphs."""

import re

import numpy as np

import tinygrad_lab as tl

NODE = re.compile(r"^\t(n\d+) \[(.*)\]$", re.M)
EDGE = re.compile(r"^\t(n\d+) -> (n\d+)(?: \[(.*)\])?$", re.M)


def nodes(dot: str) -> dict:
    return dict(NODE.findall(dot))


def edges(dot: str) -> list:
    return EDGE.findall(dot)


def attr(attrs: str, key: str) -> str | None:
    m = re.search(rf'(?:^| ){key}="((?:[^"\\]|\\.)*)"', attrs)
    return m.group(1) if m else None


def find(dot: str, text: str) -> list:
    """Ids of the nodes whose label contains text."""
    return [n for n, a in nodes(dot).items() if text in (attr(a, "label") or "")]


def clusters(dot: str) -> dict:
    """Cluster label -> ids of the nodes in it."""
    out = {}
    for label, body in re.findall(r'\tsubgraph cluster_\d+ \{\n\t\tlabel="([^"]*)"[^\n]*\n\t\t([^\n]*)\n\t\}', dot):
        out[label] = body.split()
    return out


def neuron(backward=True):
    x1, x2 = tl.tensor(2.0, name="x1"), tl.tensor(0.0, name="x2")
    w1 = tl.tensor(-3.0, requires_grad=True, name="w1")
    w2 = tl.tensor(1.0, requires_grad=True, name="w2")
    b = tl.tensor(6.8813735870195432, requires_grad=True, name="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.name = "o"
    if backward:
        o.backward()
    return o


class Lin:
    def __init__(self, n_in, n_out, rng):
        self.weight = tl.Tensor(rng.standard_normal((n_in, n_out)), requires_grad=True)
        self.bias = tl.Tensor(np.zeros(n_out), requires_grad=True)

    def __call__(self, x):
        return (x @ self.weight + self.bias).sigmoid()


class Net:
    """Duck-typed model: only named_parameters() and named_modules() are used by viz."""

    def __init__(self, dims, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [Lin(a, b, rng) for a, b in zip(dims[:-1], dims[1:])]

    def named_parameters(self):
        for i, layer in enumerate(self.layers):
            yield f"fc{i}.weight", layer.weight
            yield f"fc{i}.bias", layer.bias

    def named_modules(self):
        yield "", self
        for i, layer in enumerate(self.layers):
            yield f"fc{i}", layer

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def net_loss(dims=(2, 4, 4, 1), backward=True, seed=0):
    net = Net(dims, seed)
    rng = np.random.default_rng(1)
    x = tl.Tensor(rng.random((6, dims[0])), name="x")
    loss = ((net(x) - rng.random((6, dims[-1]))) ** 2).mean()
    if backward:
        loss.backward()
    return net, loss


def chain(steps):
    w = tl.tensor(0.9, requires_grad=True, name="w")
    b = tl.tensor(0.1, requires_grad=True, name="b")
    x = tl.tensor(0.5, name="x0")
    for _ in range(steps):
        x = (x * w + b).tanh()
    return x
