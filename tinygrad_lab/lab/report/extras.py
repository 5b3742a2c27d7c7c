"""Two short sections the report adds to the lab's questions: the curvature of the loss against 2/lr (in the
learning-rate section), and check_backprop run on the report's own hand-written backprop."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from tinygrad_lab.engine.derivatives import loss_hessian
from tinygrad_lab.lab import data, reference
from tinygrad_lab.lab.config import LOSSES, build_model, model_spec, seeded_rngs
from tinygrad_lab.lab.report.context import Context
from tinygrad_lab.lab.report.experiments import Section
from tinygrad_lab.testing import check_backprop


def curvature(ctx: Context, section: Section, task: str = "xor") -> list[str]:
    """The largest Hessian eigenvalue of the loss in the weights at the start and the end of training, per
    learning rate of the section, against 2/lr (seed 0): above 2/lr gradient descent oscillates."""
    rows = [
        "| setting | 2/lr | largest eigenvalue at the start | at the end | lr x largest at the end |",
        "|---|---:|---:|---:|---:|",
    ]
    start_top = None
    for v in section.variants:
        run = ctx.cell(section.key, task, v.label).runs[0]
        config = run["config"]
        x, y = data.load_task(task, seeded_rngs(config.seed)[0])
        spec = model_spec(config, x.shape[1], y.shape[1])
        start = build_model(spec, seeded_rngs(config.seed)[1])
        end = build_model(spec, np.random.default_rng(0))
        end.load_state_dict(run["state"])
        loss = LOSSES[config.loss]
        start_top = _largest_eigenvalue(start, x, y, loss)
        end_top = _largest_eigenvalue(end, x, y, loss)
        rows.append(
            f"| {v.label} | {2 / config.lr:.4g} | {start_top:.3g} | {end_top:.3g} | {config.lr * end_top:.3g} |"
        )
    return [
        f"**Curvature.** The Hessian of the {task} loss in the weights (seed 0) says why: gradient descent with "
        "step lr multiplies the error along an eigenvector of eigenvalue l by (1 - lr l) per step, so it "
        "oscillates where l > 2/lr and needs about 1/(lr l) steps where lr l is small. Every learning rate "
        f"starts from the same weights, whose largest eigenvalue is {start_top:.3g}:",
        "\n".join(rows),
    ]


def _largest_eigenvalue(model: Any, x: np.ndarray, y: np.ndarray, loss: Any) -> float:
    return float(np.linalg.eigvalsh(loss_hessian(model, x, y, loss))[-1])


def backprop_check_section(n: int = 100, seed: int = 0) -> str:
    """The lab report's section on checking its hand-written backprop, as markdown: check_backprop on the report's
    network (tinygrad_lab.lab.reference, standard normal weights from ``seed``) on the linear task with ``n`` points,
    as derived, then with derivative_sigmoid taken at the activation's input instead of its output."""
    x, y = data.generate_linear(n, rng=seed)
    net = reference.Network(rng=np.random.default_rng(seed))

    def loss(w1: Any, w2: Any, w3: Any) -> Any:  # the report's forward pass and loss, on the weights given
        trial = copy.copy(net)
        trial.w1, trial.w2, trial.w3 = w1, w2, w3
        return np.mean((y - trial.forward(x)) ** 2)

    names = ["w1", "w2", "w3"]
    net.forward(x)
    derived = check_backprop(loss, list(net.weights), list(net.backpropagation(y)), names=names)
    wrong = copy.copy(net)
    wrong.z3 = net.z2 @ net.w3  # derivative_sigmoid(z) = z(1-z) fed the pre-activation instead of the output
    mistaken = check_backprop(loss, list(net.weights), list(wrong.backpropagation(y)), names=names)
    worst = max(row.max_rel for row in derived.rows)
    verdict = (
        f"The derived gradients agree with autograd everywhere (largest relative difference {worst:.1e})."
        if derived
        else "The derived gradients do NOT agree with autograd; see the table."
    )
    return "\n".join(
        [
            "## Checking the hand-written backprop",
            "",
            "`tinygrad_lab.testing.check_backprop` runs the report's own numpy forward pass and loss on Tensors, "
            "differentiates them, checks that result against finite differences, and compares the gradients derived "
            f"by hand with it, element by element. On the linear task ({n} points, seed {seed}):",
            "",
            "```python",
            "def loss(w1, w2, w3):",
            "    trial = copy.copy(net); trial.w1, trial.w2, trial.w3 = w1, w2, w3",
            "    return np.mean((y - trial.forward(x)) ** 2)",
            "net.forward(x)",
            'check_backprop(loss, [net.w1, net.w2, net.w3], net.backpropagation(y), names=["w1", "w2", "w3"])',
            "```",
            "",
            "```text",
            str(derived),
            "```",
            "",
            verdict + " The same check with `derivative_sigmoid` applied to the last layer's input (`z2 @ w3`) "
            "instead of its output `z3`, a common slip:",
            "",
            "```text",
            str(mistaken),
            "```",
            "",
        ]
    )
