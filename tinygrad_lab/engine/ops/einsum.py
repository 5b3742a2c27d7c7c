"""``tl.einsum``: torch's (and numpy's) Einstein summation, as one Function.

The gradient of an operand is another einsum: the output's gradient contracted with the other operands, onto the
operand's subscripts. A subscript only that operand has (summed away in the forward) is absent from all of them,
so the contraction gives the rest and the gradient is broadcast along it; a size-1 axis the forward broadcast is
summed back by the engine. A subscript repeated in one operand (``"ii->i"``, a diagonal) is read in the forward,
but its gradient would have to be written onto a diagonal: that operand may not require grad.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.shape import broadcast_to
from tinygrad_lab.engine.tensor import Tensor

_LETTERS = string.ascii_letters


def _contract(subscripts: tuple, output: str, operands: list) -> Any:
    """einsum of operands (arrays, or Tensors in a recorded backward) with these subscripts onto ``output``."""
    if any(isinstance(o, Tensor) for o in operands):
        return Einsum.apply(*operands, subscripts=tuple(subscripts), output=output)
    return np.einsum(f"{','.join(subscripts)}->{output}", *operands)


class Einsum(Function):
    """``np.einsum`` of the inputs, each with its subscripts (letters only: einsum() spells out any ``...``)."""

    @staticmethod
    def forward(ctx, *arrays, subscripts=(), output=""):
        ctx.subscripts, ctx.output = subscripts, output
        ctx.save_for_backward(*arrays)
        return np.einsum(f"{','.join(subscripts)}->{output}", *arrays)

    @staticmethod
    def backward(ctx, grad):
        arrays = ctx.saved_tensors
        grads = []
        for i, sub in enumerate(ctx.subscripts):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(s, a) for j, (s, a) in enumerate(zip(ctx.subscripts, arrays)) if j != i]
            present = set(ctx.output).union(*(s for s, _ in others))
            kept = "".join(c for c in sub if c in present)
            g = _contract((ctx.output,) + tuple(s for s, _ in others), kept, [grad] + [a for _, a in others])
            sizes = dict(zip(kept, g.shape))
            if kept != sub:  # subscripts only this operand had: the gradient is the same along them
                g = g.reshape(tuple(sizes.get(c, 1) for c in sub))
            # as large as the operand where the others had size 1 along a subscript (the engine sums back a size-1
            # axis of the operand's that the forward broadcast)
            shape = tuple(max(sizes.get(c, 1), n) for c, n in zip(sub, arrays[i].shape))
            grads.append(g if g.shape == shape else broadcast_to(g, shape))
        return tuple(grads)


def einsum(equation: str, *operands: Any) -> Tensor:
    """torch.einsum: ``tl.einsum("bij,bjk->bik", a, b)``; ``...`` for leading dims, the implicit output (letters
    seen once, in alphabetical order) without ``->``, operands also as one list. Differentiable in every operand
    whose subscripts do not repeat a letter."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or not operands:
        raise TypeError(f"einsum: takes an equation string and at least one operand, got {equation!r}")
    subscripts, output = _parse(equation, [np.ndim(o.data if isinstance(o, Tensor) else o) for o in operands])
    for sub, o in zip(subscripts, operands):
        if len(set(sub)) != len(sub) and isinstance(o, Tensor) and o.requires_grad:
            raise ValueError(
                f"einsum: operand subscripts {sub!r} repeat a letter (a diagonal) in {equation!r}, whose gradient is "
                "not supported: pass that operand detached, or take the diagonal by indexing"
            )
    return Einsum.apply(*operands, subscripts=subscripts, output=output)


def _parse(equation: str, ndims: list) -> tuple[tuple, str]:
    """The operands' subscripts and the output's, letters only: each ``...`` becomes letters the equation does not
    use, aligned from the right as broadcasting aligns dims."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    parts = lhs.split(",")
    if len(parts) != len(ndims):
        raise ValueError(f"einsum: {equation!r} has subscripts for {len(parts)} operands, got {len(ndims)} operands")
    for text in parts + [rhs]:
        bad = set(text.replace("...", "")) - set(_LETTERS)
        if bad or text.count("...") > 1:
            raise ValueError(f"einsum: {equation!r}: subscripts are letters and at most one '...' per operand")
    spare = [c for c in _LETTERS if c not in eq]
    widths = [n - len(p.replace("...", "")) for p, n in zip(parts, ndims)]
    for p, n, w in zip(parts, ndims, widths):
        if w < 0 or (w > 0 and "..." not in p):
            raise ValueError(f"einsum: subscripts {p!r} in {equation!r} do not fit an operand of {n} dims")
    dots = "".join(spare[: max([w for p, w in zip(parts, widths) if "..." in p], default=0)])
    subscripts = tuple(p.replace("...", dots[len(dots) - w :] if w else "") for p, w in zip(parts, widths))
    if arrow:
        output = rhs.replace("...", dots)
        unknown = set(output) - set("".join(subscripts))
        if unknown or len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {rhs!r} of {equation!r} must be distinct input subscripts")
    else:
        letters = "".join(subscripts)
        output = dots + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in dots))
    return subscripts, output
