"""The sections' prose: tables, rankings, answers and a verdict on each of the lab's observations.

Every number and verdict comes from the runs; nothing is typed in.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_lab.lab import data, train
from tinygrad_lab.lab.config import seeded_rngs
from tinygrad_lab.lab.report.context import Context, code_block, comparison_figures, curves_figure
from tinygrad_lab.lab.report.experiments import LAB, TASKS, Section
from tinygrad_lab.lab.report.statistics import (
    describe,
    fmt_epochs,
    fmt_int,
    fmt_number,
    fmt_pct,
    fmt_runs,
    join,
    mean_std,
    ranking,
    table,
    verdict,
)
from tinygrad_lab.optim import MOMENTUM


def section_lab(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    out = []
    label = section.variants[0].label
    cells = [ctx.cell(section.key, t, label) for t in TASKS]
    out.append(
        f"Settings: hidden {'x'.join(map(str, LAB.hidden))}, {LAB.activation} after every layer, "
        f"{LAB.loss.upper()} loss, SGD with lr {LAB.lr}, no bias, weights drawn from a standard normal, "
        f"{fmt_int(s.epochs)} full-batch epochs."
    )
    out.append(table(cells))
    for c in cells:
        out.append(f"- **{c.task}**: {describe(c)}.")
    both = all(c.n_100 == c.n for c in cells)
    measured = "; ".join(f"{c.task}: {c.n_100}/{c.n} runs at 100%" for c in cells)
    ctx.claims.append((section.number, "Both tasks reach 100% accuracy (one run each).", measured, both))
    if both:
        out.append(
            f"The lab's single runs reached 100% on both tasks, and so does every one of the {cells[0].n} "
            f"seeds here: {verdict(True)}."
        )
    else:
        out.append(
            f"The lab's single runs reached 100% on both tasks; here {measured}: {verdict(False)} for every "
            "seed, so the lab's result depends on the draw of the initial weights."
        )
    slow = max(cells, key=lambda c: c.median_epochs)
    fast = min(cells, key=lambda c: c.median_epochs)
    if slow is not fast and not math.isinf(fast.median_epochs):
        if math.isinf(slow.median_epochs):
            out.append(
                f"{fast.task} gets there after a median {fmt_epochs(fast)} epochs; {slow.task}'s median run "
                f"does not get there within {fmt_int(s.epochs)}."
            )
        else:
            out.append(
                f"{slow.task} needs {slow.median_epochs / fast.median_epochs:.1f}x as many epochs as "
                f"{fast.task} to reach 100% (medians {fmt_epochs(slow)} and {fmt_epochs(fast)})."
            )
    for c in cells:
        out.append(f"The log of seed {c.runs[0]['config'].seed} on {c.task}, in the lab's format:")
        out.append(
            code_block(c.runs[0]["log"] + [f"Accuracy(%): {train.format_accuracy(c.runs[0]['final_accuracy'])}"])
        )
    out.append("Ground truth beside prediction (red: label 0, blue: label 1) and the decision boundary, seed 0:")
    out.append(comparison_figures(ctx, section.key, label, "lab"))
    out.append("Learning curves (line: mean over seeds; band: lowest to highest seed):")
    out.append(curves_figure(ctx, section, "lab_curves.png"))
    return out


def section_lr(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    lrs = [dict(v.changes)["lr"] for v in section.variants]
    hi, base, lo = (labels[lrs.index(max(lrs))], labels[lrs.index(sorted(lrs)[1])], labels[lrs.index(min(lrs))])
    out = [table(ctx.section_cells(section), [("weight change ‖Δw‖", lambda c: fmt_number(c.weight_change))])]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    # the lab: lr 1 converges faster than lr 0.1, especially on XOR
    speed, saved = {}, {}
    for task in TASKS:
        a, b = ctx.cell(section.key, task, hi), ctx.cell(section.key, task, base)
        speed[task] = (b.median_epochs / a.median_epochs) if not math.isinf(a.median_epochs) else 0.0
        saved[task] = b.median_epochs - a.median_epochs
    faster = all(v > 1 for v in speed.values())
    measured = "; ".join(
        f"{t}: median {fmt_epochs(ctx.cell(section.key, t, hi))} epochs to 100% at {hi}, "
        f"{fmt_epochs(ctx.cell(section.key, t, base))} at {base}"
        for t in TASKS
    )
    ctx.claims.append((section.number, f"{hi} converges faster than {base}.", measured, faster))
    especially = faster and speed["xor"] > 1.1 * speed["linear"]  # a clearly larger factor, not rounding
    factors = "; ".join(f"{t}: {_factor(v)}" for t, v in speed.items())
    ctx.claims.append((section.number, "... especially on XOR.", f"speed-up {base} / {hi}: {factors}", especially))
    text = (
        f"The lab saw {hi} converge faster than {base}, especially on XOR. Faster on both tasks: "
        f"{verdict(faster)} (speed-up in median epochs to 100%: {factors}). Especially on XOR, as a larger "
        f"speed-up factor: {verdict(especially)}."
    )
    lr_ratio = max(lrs) / sorted(lrs)[1]
    if faster and all(abs(v / lr_ratio - 1) < 0.15 for v in speed.values()):
        text += (
            f" Both factors are close to the ratio of the learning rates, {lr_ratio:g}x: with these small "
            f"steps gradient descent follows about the same path, {lr_ratio:g} times faster."
        )
    if faster and all(math.isfinite(v) for v in saved.values()):
        xor_epochs = ctx.cell(section.key, "xor", base).median_epochs
        linear_epochs = ctx.cell(section.key, "linear", base).median_epochs
        text += (
            f" In epochs saved, though, XOR gains {'more' if saved['xor'] > saved['linear'] else 'less'} "
            f"({fmt_int(saved['xor'])} against {fmt_int(saved['linear'])} on linear), because it needs "
            f"{'more' if xor_epochs > linear_epochs else 'fewer'} "
            f"epochs to begin with, which is what a single learning curve shows."
        )
    out.append(text)
    # the lab: lr 0.0001 does not converge
    small = [ctx.cell(section.key, t, lo) for t in TASKS]
    none = all(c.n_100 == 0 for c in small)
    measured = "; ".join(f"{c.task}: {fmt_pct(c.acc)}%, {c.n_100}/{c.n} runs at 100%" for c in small)
    ctx.claims.append((section.number, f"{lo} does not converge on either task.", measured, none))
    ratio = s.epochs * min(lrs) / sorted(lrs)[1]
    moved = {label: ctx.cell(section.key, "xor", label).weight_change for label in labels}
    out.append(
        f"The lab saw {lo} fail on both tasks: here {measured}: {verdict(none)}. The reason is the step "
        f"size: {fmt_int(s.epochs)} epochs at {lo} move the weights about as far as {ratio:g} epochs at "
        f"{base} (to first order), and indeed on XOR the weights moved {fmt_number(moved[lo])} (L2 norm of "
        f"the change, mean over seeds) at {lo} against {fmt_number(moved[base])} at {base}."
    )
    out.append(curves_figure(ctx, section, "lr_curves.png"))
    return out


def _factor(v: float) -> str:
    return f"{v:.1f}x" if math.isfinite(v) and v > 0 else ("not measurable" if v == 0 else "unbounded")


def _parameter_count(hidden: tuple[int, ...]) -> int:
    sizes = [2, *hidden, 1]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def section_hidden(ctx: Context, section: Section) -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    sizes = {v.label: dict(v.changes)["hidden"] for v in section.variants}
    out = [table(ctx.section_cells(section), [("weights", lambda c: fmt_int(_parameter_count(sizes[c.label])))])]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    big = max(labels, key=lambda label: _parameter_count(sizes[label]))
    tiny = min(labels, key=lambda label: _parameter_count(sizes[label]))
    big_cells = [ctx.cell(section.key, t, big) for t in TASKS]
    ok_big = all(c.n_100 == c.n for c in big_cells)
    measured = "; ".join(f"{c.task}: {c.n_100}/{c.n} runs at 100%" for c in big_cells)
    ctx.claims.append((section.number, f"{big} still performs well on both tasks.", measured, ok_big))
    out.append(f"The lab saw {big} still perform well on both tasks: {measured}: {verdict(ok_big)}.")
    tiny_cells = [ctx.cell(section.key, t, tiny) for t in TASKS]
    ok_tiny = all(c.n_100 == 0 for c in tiny_cells)
    measured = "; ".join(f"{c.task}: {fmt_pct(c.acc)}%, {c.n_100}/{c.n} runs at 100%" for c in tiny_cells)
    ctx.claims.append((section.number, f"{tiny} cannot converge within the epochs.", measured, ok_tiny))
    out.append(
        f"The lab saw {tiny} fail to converge within {fmt_int(s.epochs)} epochs: {measured}: "
        f"{verdict(ok_tiny)}. With {_parameter_count(sizes[tiny])} weights and a one-unit second layer, every "
        f"prediction is a function of a single number."
    )
    out.append(curves_figure(ctx, section, "hidden_curves.png"))
    return out


def _majority_rate(task: str) -> float:
    _, y = data.load_task(task, seeded_rngs(0)[0])
    share = float(np.mean(y > 0.5))
    return 100.0 * max(share, 1 - share)


def _least_squares_accuracy(task: str) -> float:
    """Accuracy of the best bias-free linear map under MSE (least squares) on seed 0's data."""
    x, y = data.load_task(task, seeded_rngs(0)[0])
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    return train.accuracy(x @ w, y)


def section_noact(ctx: Context, section: Section) -> list[str]:
    label = section.variants[-1].label
    out = [table(ctx.section_cells(section))]
    lin, xor = ctx.cell(section.key, "linear", label), ctx.cell(section.key, "xor", label)
    chance = {t: _majority_rate(t) for t in TASKS}
    best_linear = {t: _least_squares_accuracy(t) for t in TASKS}
    lin_m = mean_std(lin.acc)[0]
    learns = bool(lin.finite_runs) and lin.n_100 < lin.n and lin_m > chance["linear"]
    ctx.claims.append(
        (
            section.number,
            "Linear: accuracy drops but the network still learns something.",
            f"linear: {'diverged' if not lin.finite_runs else fmt_pct(lin.acc) + '%'} (majority class: "
            f"{chance['linear']:.1f}%), {fmt_runs(lin)} runs at 100%",
            learns,
        )
    )
    fails = xor.n_100 == 0
    ctx.claims.append(
        (
            section.number,
            "XOR: the network cannot learn it.",
            f"xor: {'diverged' if not xor.finite_runs else fmt_pct(xor.acc) + '%'} (majority class: "
            f"{chance['xor']:.1f}%), {fmt_runs(xor)} runs at 100%",
            fails,
        )
    )
    text = (
        "Without activations the layers compose into a single linear map with no bias, x @ W1ᵀ W2ᵀ W3ᵀ, "
        "whose decision rule, output > 0.5, is one straight line through the plane."
    )
    finite = xor.finite_runs or lin.finite_runs
    if finite:  # evidence: a trained network's outputs equal the product of its weight matrices applied to x
        run = finite[0]
        x, _ = data.load_task(run["config"].task, seeded_rngs(run["config"].seed)[0])
        product = np.linalg.multi_dot([run["state"][k].T for k in run["state"]])  # weights are (out, in)
        gap = float(np.max(np.abs(x @ product - run["pred"])))
        text += (
            f" For seed {run['config'].seed} on {run['config'].task} the trained network's outputs equal "
            f"x @ W1ᵀ W2ᵀ W3ᵀ to within {gap:.1e}."
        )
    out.append(text)
    diverged = lin.diverged + xor.diverged
    if diverged:
        out.append(
            f"{diverged} of {lin.n + xor.n} runs diverged (the loss became NaN or infinite) at lr {LAB.lr}: "
            "without the sigmoids nothing bounds the outputs, and the products of standard-normal weight "
            "matrices make the first gradients large enough for SGD to overshoot. The statistics below "
            "are over the runs that did not diverge."
        )
    for cell in (lin, xor):
        task = cell.task
        line = (
            f"- **{task}**: {describe(cell)}. The majority class alone gives {chance[task]:.1f}%, and the best "
            f"any bias-free linear map can do under MSE (the least-squares fit on seed 0's data) is "
            f"{best_linear[task]:.1f}%. "
        )
        if task == "linear":
            line += f"The lab saw accuracy drop while the network still learned something: {verdict(learns)}."
        else:
            line += f"The lab saw the network fail on XOR, whose classes no single line separates: {verdict(fails)}."
        out.append(line)
    out.append("Seed 0 without activations, ground truth beside prediction and decision boundary:")
    out.append(comparison_figures(ctx, section.key, label, "noact"))
    out.append(curves_figure(ctx, section, "noact_curves.png"))
    return out


def answer(ctx: Context, section: Section) -> str:
    """The section's question answered across both tasks: which setting is fastest to 100% on each, and
    which settings bring every run to 100% on both."""
    labels = [v.label for v in section.variants]
    fastest = {}
    for task in TASKS:
        cells = [ctx.cell(section.key, task, label) for label in labels]
        quickest = min(c.median_epochs for c in cells)
        fastest[task] = [] if math.isinf(quickest) else [c.label for c in cells if c.median_epochs == quickest]
    if not any(fastest.values()):
        text = (
            f"**Answer:** within {fmt_int(ctx.settings.epochs)} epochs no setting gets the median run to 100% "
            "on either task."
        )
    elif fastest[TASKS[0]] and fastest[TASKS[0]] == fastest[TASKS[1]]:
        text = f"**Answer:** {join(fastest[TASKS[0]])} reaches 100% fastest on both tasks."
    else:
        text = (
            "**Answer:** no setting is fastest on both tasks ("
            + "; ".join(
                f"{task}: {join(f) if f else 'none reaches 100% in the median run'}" for task, f in fastest.items()
            )
            + ")."
        )
    reliable = [
        label
        for label in labels
        if all(ctx.cell(section.key, t, label).n_100 == ctx.cell(section.key, t, label).n for t in TASKS)
    ]
    if reliable:
        text += f" Every run ends at 100% on both tasks with {join(reliable)}."
    else:
        text += " No setting brings every run to 100% on both tasks."
    return text


def _generic(ctx: Context, section: Section, note: str = "") -> list[str]:
    s = ctx.settings
    labels = [v.label for v in section.variants]
    out = [table(ctx.section_cells(section))]
    for task in TASKS:
        out.append("- " + ranking([ctx.cell(section.key, task, label) for label in labels], s.epochs))
    out.append(answer(ctx, section))
    if note:
        out.append(note)
    out.append(curves_figure(ctx, section, f"{section.key}_curves.png"))
    return out


def section_activation(ctx: Context, section: Section) -> list[str]:
    return _generic(
        ctx,
        section,
        f"The hidden layers use the named activation; the output keeps its sigmoid, "
        f"everything else is the lab's (lr {LAB.lr}, no bias).",
    )


def section_optimizer(ctx: Context, section: Section) -> list[str]:
    return _generic(
        ctx,
        section,
        f"Every optimizer runs at the lab's lr {LAB.lr} (momentum: "
        f"{MOMENTUM}; Adam and RMSprop with PyTorch's default betas / alpha).",
    )


def section_loss(ctx: Context, section: Section) -> list[str]:
    return _generic(
        ctx, section, "The two losses are on different scales, so compare accuracies and epochs, not loss values."
    )


WRITERS = {
    "lab": section_lab,
    "lr": section_lr,
    "hidden": section_hidden,
    "noact": section_noact,
    "activation": section_activation,
    "optimizer": section_optimizer,
    "loss": section_loss,
}
