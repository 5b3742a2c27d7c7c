"""Where computation graphs enter the report: the lab network's forward graph and its backward graphs."""

from __future__ import annotations

import math

import numpy as np

from tinygrad_lab import viz
from tinygrad_lab.lab import runs
from tinygrad_lab.lab.report.context import Context
from tinygrad_lab.lab.report.experiments import SECTIONS, Variant
from tinygrad_lab.lab.report.statistics import fmt_int, fmt_number


def embed_graphs(ctx: Context, render_files: bool = True) -> dict[str, list[str]]:
    """The forward graph of the lab's network and the page that steps through its backward pass (section 1),
    and the backward views after training at the lab's lr and at the lowest one, side by side (section 2).
    Returns markdown paragraphs per section key; ``render_files=False`` writes no file."""
    s = ctx.settings
    lr_variants = next(sec for sec in SECTIONS if sec.key == "lr").variants
    by_lr = sorted(lr_variants, key=lambda v: dict(v.changes)["lr"])
    slow, fast = by_lr[0], by_lr[1]  # 0.0001 against the lab's 0.1
    paths: dict[str, str] = {}
    params: dict[str, dict[str, float]] = {}
    losses: dict[str, float] = {}
    failures: list[str] = []

    def render(name: str, variant: Variant, view: str, epochs: int) -> None:
        cfg = variant.config("xor", max(epochs, 1), 0)
        loss, model = runs.graph_root(cfg, after_epochs=epochs, compile=ctx.compile)
        params[name] = {k: float(np.linalg.norm(p.grad.data)) for k, p in model.named_parameters()}
        losses[name] = loss.item()
        try:
            if render_files:
                viz.render(loss, ctx.out / name, view=view, params=dict(model.named_parameters()))
            paths[name] = name
        except (RuntimeError, OSError) as err:  # no Graphviz dot: the .dot text is written beside
            failures.append(f"{name}: {str(err).splitlines()[0]}")

    render("graph_forward.svg", fast, "forward", 0)
    render(f"graph_backward_{fast.label.replace(' ', '_')}.svg", fast, "backward", s.graph_epochs)
    render(f"graph_backward_{slow.label.replace(' ', '_')}.svg", slow, "backward", s.graph_epochs)
    names = list(params)
    lab_md = [
        "The lab's network and its loss on XOR as a graph (tinygrad_lab.viz; parameters in blue, inputs "
        "yellow, ops grey, the loss green):"
    ]
    if names[0] in paths:
        lab_md.append(f"![forward graph]({paths[names[0]]})")
    page = "backprop_xor.html"
    if render_files:
        runs.explain_page(fast.config("xor", s.graph_epochs, 0), ctx.out / page, after_epochs=s.graph_epochs)
    lab_md.append(
        f"[Step through its backward pass]({page}) after {fmt_int(s.graph_epochs)} epochs at {fast.label}: "
        "one page, opened from disk, that walks the engine's backward order node by node with the "
        "gradient each op receives and sends back."
    )
    b_fast, b_slow = names[1], names[2]
    g_fast, g_slow = params[b_fast], params[b_slow]
    first = next(iter(g_fast))
    last = list(g_fast)[-1]
    lr_md = [
        f"The backward graphs after {fmt_int(s.graph_epochs)} epochs on XOR (seed 0) at {fast.label} and "
        f"{slow.label}, each node coloured by the norm of the gradient reaching it (one colour per decade, "
        "the same scale in both):"
    ]
    if b_fast in paths and b_slow in paths:
        lr_md.append(
            f"| {fast.label} | {slow.label} |\n|---|---|\n| ![backward {fast.label}]({paths[b_fast]}) | "
            f"![backward {slow.label}]({paths[b_slow]}) |"
        )
    lr_fast, lr_slow = dict(fast.changes)["lr"], dict(slow.changes)["lr"]
    text = (
        f"Gradient norms after {fmt_int(s.graph_epochs)} epochs: {first} {fmt_number(g_fast[first])} and {last} "
        f"{fmt_number(g_fast[last])} at {fast.label} (loss {fmt_number(losses[b_fast])}); {first} "
        f"{fmt_number(g_slow[first])} and {last} {fmt_number(g_slow[last])} at {slow.label} (loss "
        f"{fmt_number(losses[b_slow])})."
    )
    shrink = g_slow[last] / g_slow[first] if g_slow[first] > 0 else math.inf
    if shrink > 1:
        text += (
            f" At {slow.label}, still near the initial weights, the gradient reaching {first} is {shrink:.1f}x "
            f"smaller than the one reaching {last}: it shrinks on its way back through the sigmoids, whose "
            "derivative is at most 0.25."
        )
    text += (
        f" One step moves {first} by lr times its gradient norm: {lr_slow * g_slow[first]:.1e} at {slow.label}, "
        f"{lr_fast * g_fast[first]:.1e} at {fast.label}."
    )
    lr_md.append(text)
    if failures:
        note = "_Graphs not rendered: " + "; ".join(failures) + "_"
        lab_md.append(note)
    return {"lab": lab_md, "lr": lr_md}
