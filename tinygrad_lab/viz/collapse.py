"""Collapsing big graphs to at most ``max_nodes`` drawn nodes: repeated module calls once, then same-structure
nodes merged, then the nodes farthest from the output replaced by one."""

from __future__ import annotations

from collections.abc import Iterable

from tinygrad_lab.viz.views import Graph, Vertex
from tinygrad_lab.viz.walk import Context


def _intern(keys: Iterable) -> list:
    table: dict = {}
    return [table.setdefault(k, len(table)) for k in keys]


def _quotient_edges(group_of: list, es: list) -> list:
    seen: dict = {}
    for s, d, pos, kind in es:
        seen.setdefault((group_of[s], group_of[d], pos, kind), None)
    return list(seen)


def _fold_module_runs(vs: list, es: list, ctx: Context) -> tuple[list, list]:
    """Consecutive module clusters with identical structure collapse onto the first of the run.
    Returns group_of (vertex -> group) and, per folded run, the list of module paths it stands for."""
    by_module: dict = {}
    for i, v in enumerate(vs):
        if v.module is not None:
            by_module.setdefault(v.module, []).append(i)
    local = {}
    for mod, members in by_module.items():
        for j, i in enumerate(members):
            local[i] = (mod, j)
    ins: dict = {}
    for s, d, pos, kind in es:
        ins.setdefault(d, []).append((s, pos, kind))

    def signature(mod: str) -> tuple:
        parts = []
        for i in by_module[mod]:
            srcs = []
            for s, pos, kind in ins.get(i, []):
                src = ("in", local[s][1]) if local.get(s, (None,))[0] == mod else ("out", vs[s].sig)
                srcs.append((src, pos, kind))
            parts.append((vs[i].kind, vs[i].sig, tuple(srcs)))
        return tuple(parts)

    mods = list(by_module)
    sigs = [signature(m) for m in mods]
    group_of = list(range(len(vs)))
    runs = []
    i = 0
    while i < len(mods):
        j = i + 1
        while j < len(mods) and sigs[j] == sigs[i]:
            j += 1
        if j - i > 1:
            runs.append(mods[i:j])
            first = by_module[mods[i]]
            for m in mods[i + 1 : j]:
                for a, b in zip(by_module[m], first):
                    group_of[a] = b
        i = j
    return _intern(group_of), runs


def _refine(sig: list, edges: list, limit: int) -> list | None:
    """Weisfeiler-Lehman refinement over both edge directions: the finest partition with at most ``limit``
    classes (None when even the vertices' own signatures give more)."""
    n = len(sig)
    ins: list[list[tuple]] = [[] for _ in range(n)]  # per vertex: (source, position, kind)
    outs: list[list[tuple]] = [[] for _ in range(n)]  # per vertex: (destination, position, kind)
    for s, d, pos, kind in edges:
        ins[d].append((s, pos, kind))
        outs[s].append((d, pos, kind))
    cls = _intern(sig)
    count = max(cls) + 1 if cls else 0
    if count > limit:
        return None
    while True:
        new = _intern(
            (
                cls[v],
                tuple(sorted((pos, kind, cls[s]) for s, pos, kind in ins[v])),
                tuple(sorted((pos, kind, cls[d]) for d, pos, kind in outs[v])),
            )
            for v in range(n)
        )
        new_count = max(new) + 1 if new else 0
        if new_count > limit:
            return cls
        if new_count == count:
            return new
        cls, count = new, new_count


def _truncate(n: int, edges: list, start: int, limit: int) -> list:
    """Keep the ``limit - 1`` groups nearest ``start`` (breadth first over edges both ways); the rest -> one."""
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for s, d, _, _ in edges:
        nbrs[d].append(s)
        nbrs[s].append(d)
    seen = {start: 0} if limit > 1 else {}  # max_nodes=1: the one node drawn is the one that stands for all
    queue = list(seen)
    for u in queue:
        if len(seen) >= limit - 1:
            break
        for w in nbrs[u]:
            if w not in seen and len(seen) < limit - 1:
                seen[w] = len(seen)
                queue.append(w)
    kept = sorted(seen)
    new = {g: i for i, g in enumerate(kept)}
    hidden = len(kept)
    return [new.get(g, hidden) for g in range(n)]


_KIND_NAMES = {
    "tensor": "tensors",
    "const": "constants",
    "leaf": "leaves",
    "acc": "AccumulateGrad",
    "saved": "saved tensors",
}


def collapse(ctx: Context, graph: Graph, max_nodes: int | None) -> tuple[list, list, str]:
    """Groups of vertices to draw as one node each, the module runs folded, and a note for the label.

    Beyond ``max_nodes``: first (with group_modules) runs of consecutive module clusters with identical structure
    are drawn once, labelled with the count; then nodes with the same structure are merged (the finest merging that
    fits is kept, so structure near the inputs and the output stays distinct and the repeated middle is drawn
    once, as a cycle, with ``×count``); if even that does not fit, the nodes farthest from the output become one."""
    vs, es = graph.vs, graph.es
    n = len(vs)
    identity = [[i] for i in range(n)]
    if max_nodes is None or n <= max_nodes:
        return identity, [], ""
    group_of = list(range(n))
    runs: list = []
    steps = []
    if ctx.group:
        group_of, runs = _fold_module_runs(vs, es, ctx)
        if runs:
            steps.append(f"{sum(len(r) - 1 for r in runs)} repeated module call(s) drawn once")
    groups = max(group_of) + 1
    hidden = False
    if groups > max_nodes:
        first: dict[int, int] = {}  # group -> its first vertex
        for i, g in enumerate(group_of):
            first.setdefault(g, i)
        gsig = [vs[first[g]].sig for g in range(groups)]
        qedges = _quotient_edges(group_of, es)
        cls = _refine(gsig, qedges, max_nodes)
        if cls is not None:
            group_of = [cls[g] for g in group_of]
            steps.append("nodes with the same structure merged (×count)")
        else:
            start = next(i for i, v in enumerate(vs) if v.role == "output")
            cut = _truncate(groups, qedges, group_of[start], max_nodes)
            group_of = [cut[g] for g in group_of]
            hidden = True
    members: dict = {}
    for i, g in enumerate(group_of):
        members.setdefault(g, []).append(i)
    result = [members[g] for g in sorted(members, key=lambda g: members[g][0])]
    if hidden:
        last = max(group_of)
        lost = members[last]
        kinds: dict = {}
        for i in lost:
            v = vs[i]
            what = _KIND_NAMES.get(v.kind) or type(v.obj).__name__ + ("Backward" if v.kind == "bwd" else "")
            kinds[what] = kinds.get(what, 0) + 1
        top = ", ".join(f"{c} {k}" for k, c in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
        text = f"… {len(lost)} more nodes not drawn\n({top})"
        marker = Vertex("hidden", "collapsed", None, None, text)
        result = [m if m is not lost else [marker, *lost] for m in result]
        steps.append(f"the {len(lost)} nodes farthest from the output replaced by one node")
    note = f"collapsed (max_nodes={max_nodes}): {n} nodes drawn as {len(result)}; " + "; ".join(steps)
    return result, runs, note
