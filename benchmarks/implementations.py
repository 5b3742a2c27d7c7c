"""Every implementation of one training epoch (forward, MSE loss, backward, SGD update) of the lab's MLP.

Each ``Impl`` builds a ``Runner`` for a Problem: ``step()`` runs one epoch on the problem's data,
``weights()`` returns the current weights as numpy arrays (for the correctness check) and ``prepare()``
runs before each timed block (PyTorch sets its thread count there). Optional libraries (PyTorch, HIPS
autograd, micrograd) are imported only when their runner is built, so the memory subprocesses and the
tests never pay for them.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.problems import Problem


@dataclass
class Runner:
    """One implementation set up on one problem."""

    step: Callable[[], Any]
    weights: Callable[[], list[np.ndarray]]
    prepare: Callable[[], None] = lambda: None
    compiled: Any = None  # the tl.compile object of a captured step (for the profile's notes)
    per_call: int = 1  # epochs one step() runs (timing divides by it)
    single: Callable[[], Any] | None = None  # one epoch, for the check, when step() runs several


@dataclass(frozen=True)
class Impl:
    """An implementation: its table label, how to build a runner, and where it runs."""

    key: str
    label: str
    build: Callable[[Problem], Runner]
    module: str | None = None  # an optional library that must import
    sizes: tuple[str, ...] | None = None  # None: every size
    has_target: bool = False  # a goal sets a target for this row (see GOALS)
    kind: str = ""  # "eager", "captured" (numpy replay) or "native" for the rows with targets
    note: str = ""

    def runs_at(self, size_name: str) -> bool:
        return self.sizes is None or size_name in self.sizes

    def unavailable(self) -> str | None:
        """Why this implementation cannot run here (None when it can)."""
        return _import_error(self.module) if self.module else None


_IMPORT_ERRORS: dict[str, str | None] = {}


def _import_error(module: str) -> str | None:
    if module not in _IMPORT_ERRORS:
        try:
            importlib.import_module(module)
            _IMPORT_ERRORS[module] = None
            if module == "torch":
                _torch_default_threads()
        except Exception as exc:  # noqa: BLE001  (any failure to import means "not installed" here)
            _IMPORT_ERRORS[module] = f"not installed ({type(exc).__name__})"
    return _IMPORT_ERRORS[module]


# ---- the hand-written numpy reference ------------------------------------------------------------------------


def build_reference(p: Problem) -> Runner:
    """tinygrad_lab.lab.reference.Network.train_step: the baseline of every ratio."""
    from tinygrad_lab.lab.reference import Network

    net = Network(weights=p.weights)
    return Runner(lambda: net.train_step(p.x, p.y, p.lr), lambda: [w.copy() for w in net.weights])


# ---- tinygrad_lab ----------------------------------------------------------------------------------------------


def _raw_step(p: Problem) -> tuple[Callable, list, Any, Any]:
    """Plain Tensors for the three weights, loss ((pred - y) ** 2).mean(), update in place on .data."""
    import tinygrad_lab as tl

    ws = [tl.Tensor(w.copy(), requires_grad=True) for w in p.weights]
    lr = p.lr

    def step(x: Any, y: Any) -> Any:
        for w in ws:
            w.grad = None
        h = x
        for w in ws:
            h = (h @ w).sigmoid()
        loss = ((h - y) ** 2).mean()
        loss.backward()
        for w in ws:
            w.data -= lr * w.grad.data
        return loss

    return step, ws, tl.Tensor(p.x), tl.Tensor(p.y)


def _nn_step(p: Problem) -> tuple[Callable, list, Any, Any]:
    """nn.MLP(2, (h1, h2), 1, bias=False, init="randn") + optim.SGD + F.mse_loss, as the lab's train_step."""
    import tinygrad_lab as tl
    import tinygrad_lab.nn.functional as F
    from tinygrad_lab import nn, optim

    size = p.size
    model = nn.MLP(2, (size.h1, size.h2), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    params = list(model.parameters())
    for param, w in zip(params, p.weights):
        np.copyto(param.data, w.T)  # nn.Linear keeps (out, in); the problem writes (in, out)
    opt = optim.SGD(params, lr=p.lr)

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        pred = model(x)
        loss = F.mse_loss(pred, y)
        loss.backward()
        opt.step()
        return loss, pred

    return step, params, tl.Tensor(p.x), tl.Tensor(p.y)


RUN_EPOCHS = 100  # epochs per call of the run(n) row


def _tinygrad(
    make: Callable[[Problem], tuple], compiled: bool, native: bool = False, run: bool = False
) -> Callable[[Problem], Runner]:
    """The step eager, captured (numpy replay) or native; ``run``: RUN_EPOCHS epochs per call of step.run."""

    def build(p: Problem) -> Runner:
        import tinygrad_lab as tl

        step, ws, x, y = make(p)
        fn = tl.compile(step, native=native) if compiled else step
        # the problem's layout is (in, out); an nn.Linear weight is its transpose, (out, in)
        layout = (lambda a: a.T) if make is _nn_step else (lambda a: a)
        weights = lambda: [layout(w.data).copy() for w in ws]  # noqa: E731
        if run:
            return Runner(
                lambda: fn.run(RUN_EPOCHS, x, y), weights, compiled=fn, per_call=RUN_EPOCHS, single=lambda: fn(x, y)
            )
        return Runner(lambda: fn(x, y), weights, compiled=fn if compiled else None)

    return build


# ---- JAX -------------------------------------------------------------------------------------------------------


def build_jax(p: Problem) -> Runner:
    """JAX jit (float64) of the whole epoch: grad of the loss by jax.grad, the update inside the jitted function."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    lr = p.lr

    def loss(ws: list, x: Any, y: Any) -> Any:
        h = x
        for w in ws:
            h = jax.nn.sigmoid(h @ w)
        return jnp.mean((y - h) ** 2)

    @jax.jit
    def epoch(ws: list, x: Any, y: Any) -> tuple:
        value, grads = jax.value_and_grad(loss)(ws, x, y)
        return [w - lr * g for w, g in zip(ws, grads)], value

    x, y = jnp.asarray(p.x), jnp.asarray(p.y)
    state = {"ws": [jnp.asarray(w) for w in p.weights]}

    def step() -> Any:
        state["ws"], value = epoch(state["ws"], x, y)
        return value.block_until_ready()

    return Runner(step, lambda: [np.asarray(w).copy() for w in state["ws"]])


# ---- PyTorch ---------------------------------------------------------------------------------------------------


def _torch(threads: int | None) -> Callable[[Problem], Runner]:
    """PyTorch eager, float64, raw tensors, update ``w.add_(w.grad, alpha=-lr)``; ``threads`` None: all."""

    def build(p: Problem) -> Runner:
        import torch

        default = _torch_default_threads()  # remembered before any runner changes it
        count = threads if threads is not None else default
        x, y = torch.from_numpy(p.x.copy()), torch.from_numpy(p.y.copy())
        ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in p.weights]
        lr = p.lr

        def step() -> Any:
            h = x
            for w in ws:
                h = torch.sigmoid(h @ w)
            loss = ((y - h) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                for w in ws:
                    w.add_(w.grad, alpha=-lr)
                    w.grad = None
            return loss

        return Runner(
            step, lambda: [w.detach().numpy().copy() for w in ws], prepare=lambda: torch.set_num_threads(count)
        )

    return build


_TORCH_THREADS: list[int] = []


def _torch_default_threads() -> int:
    """PyTorch's own thread count at import (all cores), remembered before any set_num_threads."""
    if not _TORCH_THREADS:
        import torch

        _TORCH_THREADS.append(torch.get_num_threads())
    return _TORCH_THREADS[0]


def torch_threads_label() -> str:
    """'all threads (N)' once torch is importable."""
    if _import_error("torch"):
        return "all threads"
    return f"all threads ({_torch_default_threads()})"


# ---- HIPS autograd ---------------------------------------------------------------------------------------------


def build_autograd(p: Problem) -> Runner:
    """HIPS autograd: grad of the loss as a function of the weight list; the update makes new arrays."""
    import autograd.numpy as anp
    from autograd import grad

    def loss(ws: list, x: np.ndarray, y: np.ndarray) -> Any:
        h = x
        for w in ws:
            h = 1.0 / (1.0 + anp.exp(-(h @ w)))
        return anp.mean((y - h) ** 2)

    dloss = grad(loss)
    state = {"ws": [w.copy() for w in p.weights]}

    def step() -> None:
        ws = state["ws"]
        gs = dloss(ws, p.x, p.y)
        state["ws"] = [w - p.lr * g for w, g in zip(ws, gs)]

    return Runner(step, lambda: [w.copy() for w in state["ws"]])


# ---- micrograd -------------------------------------------------------------------------------------------------


def build_micrograd(p: Problem) -> Runner:
    """micrograd's scalar Value engine. It has no sigmoid, so one is added in micrograd's own style (a Value
    whose _backward applies s * (1 - s)); everything else is micrograd's."""
    from micrograd.engine import Value

    def sigmoid(v: Any) -> Any:
        s = 1.0 / (1.0 + math.exp(-v.data))
        out = Value(s, (v,), "sigmoid")

        def _backward() -> None:
            v.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    layers = [[[Value(float(v)) for v in row] for row in w] for w in p.weights]
    params = [v for layer in layers for row in layer for v in row]
    rows = [[float(v) for v in row] for row in p.x]
    targets = [float(t) for t in p.y[:, 0]]
    n = len(rows)

    def step() -> None:
        for v in params:
            v.grad = 0.0
        total = 0.0
        for row, target in zip(rows, targets):
            h: list = row
            for layer in layers:
                h = [sigmoid(sum(h[i] * layer[i][j] for i in range(len(h)))) for j in range(len(layer[0]))]
            total = total + (h[0] - target) ** 2
        loss = total * (1.0 / n)
        loss.backward()
        for v in params:
            v.data -= p.lr * v.grad

    def weights() -> list[np.ndarray]:
        return [np.array([[v.data for v in row] for row in layer]) for layer in layers]

    return Runner(step, weights)


# ---- the list ----------------------------------------------------------------------------------------------------

IMPLS: list[Impl] = [
    Impl("reference", "hand-written numpy (reference)", build_reference),
    Impl(
        "eager_nn",
        "tinygrad_lab eager, nn+optim",
        _tinygrad(_nn_step, compiled=False),
        has_target=True,
        kind="eager",
        note="nn.MLP + optim.SGD + F.mse_loss: the lab's train_step",
    ),
    Impl(
        "eager_raw",
        "tinygrad_lab eager, raw Tensors",
        _tinygrad(_raw_step, compiled=False),
        has_target=True,
        kind="eager",
        note="3 weight Tensors, loss ((pred - y) ** 2).mean(), update w.data -= lr * w.grad.data",
    ),
    Impl(
        "captured_nn",
        "tinygrad_lab captured (numpy replay), nn+optim",
        _tinygrad(_nn_step, compiled=True),
        has_target=True,
        kind="captured",
        note="tl.compile(step, native=False) of the nn+optim step",
    ),
    Impl(
        "captured_raw",
        "tinygrad_lab captured (numpy replay), raw Tensors",
        _tinygrad(_raw_step, compiled=True),
        has_target=True,
        kind="captured",
        note="tl.compile(step, native=False) of the raw-Tensor step",
    ),
    Impl(
        "native_nn",
        "tinygrad_lab native, nn+optim",
        _tinygrad(_nn_step, compiled=True, native=True),
        has_target=True,
        kind="native",
        note="tl.compile of the nn+optim step (the native backend): what `tinygrad-lab train` runs",
    ),
    Impl(
        "native_raw",
        "tinygrad_lab native, raw Tensors",
        _tinygrad(_raw_step, compiled=True, native=True),
        has_target=True,
        kind="native",
        note="tl.compile of the raw-Tensor step (the native backend)",
    ),
    Impl(
        "native_run",
        f"tinygrad_lab native run({RUN_EPOCHS}), nn+optim",
        _tinygrad(_nn_step, compiled=True, native=True, run=True),
        sizes=("S1", "S2", "S3"),
        note=f"step.run({RUN_EPOCHS}, x, y): {RUN_EPOCHS} epochs in one native call, time per epoch (S1-S3)",
    ),
    Impl("torch_1", "PyTorch eager, 1 thread", _torch(1), module="torch"),
    Impl("torch_all", "PyTorch eager, all threads", _torch(None), module="torch"),
    Impl("jax", "JAX jit", build_jax, module="jax"),
    Impl("autograd", "HIPS autograd", build_autograd, module="autograd"),
    Impl("micrograd", "micrograd", build_micrograd, module="micrograd", sizes=("S1", "S2")),
]

BY_KEY = {impl.key: impl for impl in IMPLS}

# The targets, as ratios to the reference per size, in the order they were set: the first speed goals (the eager
# engine and the numpy replay), then the native step's (which also asked the eager S1 step for <= 2.5x).
GOALS: dict[str, dict[str, dict[str, float]]] = {
    "first speed goals": {
        "eager": {"S1": 1.8, "S2": 1.8, "S3": 1.0, "S4": 1.05},
        "captured": {"S1": 0.8, "S2": 0.8, "S3": 0.4, "S4": 1.0},
    },
    "native step goals": {
        "native": {"S1": 0.25, "S2": 0.25, "S3": 0.45, "S4": 0.95},
        "eager": {"S1": 2.5},
    },
}


def target_for(impl: Impl, size_name: str) -> float | None:
    """This row's ratio target at this size (the latest goal that sets one), or None."""
    if not impl.has_target:
        return None
    found = None
    for goal in GOALS.values():
        found = goal.get(impl.kind, {}).get(size_name, found)
    return found


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return os.cpu_count() or 1
