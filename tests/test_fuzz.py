"""Differential fuzzer: hypothesis builds random programs from every op and checks each three ways.

A program is a list of instructions over 1-4 float64 inputs (0-d, size-1, size-0 and broadcast shapes),
each instruction an op applied to earlier values (so nodes are reused) with drawn attributes (axes,
keepdims, every index kind). Every program is run

- against PyTorch (CPU, float64): forward values, first-order gradients through ``backward`` and through
  ``retain_grad`` of an intermediate, and second-order gradients through ``create_graph``;
- against finite differences: ``gradcheck``, and ``gradgradcheck`` when every op is smooth;
- against ``tl.compile`` of the same program as a training step (outputs and gradients).

Finite differences are skipped (PyTorch still checks) where they cannot be trusted: a kinked op whose input
is within 1e-3 of its kink, a float32 round trip, or values that are not finite or above 1e4.

``FUZZ_EXAMPLES`` sets the number of programs (``make fuzz`` runs 3000). A failing program is printed as
text, and hypothesis prints the ``@reproduce_failure`` line that replays it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tinygrad_lab as tl
from tinygrad_lab.testing import gradcheck, gradgradcheck

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))  # about 20 s on 2 idle cores
KINK = 1e-3  # finite differences need inputs of kinked ops this far from the kink
RTOL, ATOL = 1e-7, 1e-9  # engine against torch, both float64

# ---- the two libraries, behind one set of names ------------------------------------------------------------


def _pos(x):
    """x * x + 0.5: a smooth positive input for log, sqrt, division and fractional powers."""
    return x * x + 0.5


def _t_index(index):
    """A numpy index as torch takes it (integer and boolean arrays become tensors)."""
    parts = index if isinstance(index, tuple) else (index,)
    return tuple(torch.from_numpy(p) if isinstance(p, np.ndarray) else p for p in parts)


def _t_axes(x, axis):
    return tuple(range(x.ndim)) if axis is None else axis


def _t_reduce(fn_all, fn_dim):
    """torch reductions take dim=None badly for 0-d tensors and empty tuples; spell the cases out."""

    def run(x, axis, keepdims):
        if x.ndim == 0:
            return fn_all(x)
        return fn_dim(x, _t_axes(x, axis), keepdims)

    return run


UNARY = {  # name: (ours, torch, smooth)
    "neg": (lambda x: -x, lambda x: -x, True),
    "exp": (lambda x: x.exp(), torch.exp, True),
    "log": (lambda x: _pos(x).log(), lambda x: _pos(x).log(), True),
    "sqrt": (lambda x: _pos(x).sqrt(), lambda x: _pos(x).sqrt(), True),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, True),
    "tanh": (lambda x: x.tanh(), torch.tanh, True),
    "clone": (lambda x: x.clone(), torch.clone, True),
    "abs": (lambda x: x.abs(), torch.abs, False),
    "relu": (lambda x: x.relu(), torch.relu, False),
    "clip": (lambda x: x.clip(-0.5, 1.0), lambda x: x.clamp(-0.5, 1.0), False),
    "clip_lo": (lambda x: x.clip(0.0, None), lambda x: x.clamp(0.0, None), False),
    "float32": (
        lambda x: x.astype(np.float32).astype(np.float64),
        lambda x: x.to(torch.float32).to(torch.float64),
        False,
    ),
}
BINARY = {  # name: (ours, torch, smooth)
    "add": (lambda a, b: a + b, lambda a, b: a + b, True),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, True),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, True),
    "div": (lambda a, b: a / _pos(b), lambda a, b: a / _pos(b), True),
    "pow": (lambda a, b: _pos(a) ** b.tanh(), lambda a, b: _pos(a) ** b.tanh(), True),
    "pow_relu": (lambda a, b: a.relu() ** (b.sigmoid() * 3.0), lambda a, b: a.relu() ** (b.sigmoid() * 3.0), False),
    "maximum": (tl.maximum, torch.maximum, False),
    "minimum": (tl.minimum, torch.minimum, False),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, True),
}
SCALAR = {  # name: (ours, torch, smooth); c is a Python number or a 0-d array
    "add_c": (lambda x, c: x + c, lambda x, c: x + c, True),
    "rsub_c": (lambda x, c: c - x, lambda x, c: c - x, True),
    "mul_c": (lambda x, c: c * x, lambda x, c: c * x, True),
    "rdiv_c": (lambda x, c: c / _pos(x), lambda x, c: c / _pos(x), True),
    "pow_c": (lambda x, c: x**c, lambda x, c: x**c, True),
    "rpow_c": (lambda x, c: abs(c) ** x, lambda x, c: abs(c) ** x, True),
    "leaky_relu": (lambda x, c: x.leaky_relu(c), lambda x, c: torch.nn.functional.leaky_relu(x, c), False),
}
REDUCE = {  # name: (ours(x, axis, keepdims), torch(x, axis, keepdims), smooth, accepts a tuple of axes)
    "sum": (lambda x, a, k: x.sum(a, k), _t_reduce(torch.sum, lambda x, a, k: x.sum(a, keepdim=k)), True, True),
    "mean": (lambda x, a, k: x.mean(a, k), _t_reduce(torch.mean, lambda x, a, k: x.mean(a, keepdim=k)), True, True),
    "var": (
        lambda x, a, k: x.var(a, k),
        _t_reduce(lambda x: x.var(correction=0), lambda x, a, k: x.var(a, keepdim=k, correction=0)),
        True,
        True,
    ),
    "var1": (
        lambda x, a, k: x.var(a, k, ddof=1),
        _t_reduce(lambda x: x.var(correction=1), lambda x, a, k: x.var(a, keepdim=k, correction=1)),
        True,
        True,
    ),
    "max": (
        lambda x, a, k: x.max(axis=a, keepdims=k),
        _t_reduce(torch.amax, lambda x, a, k: x.amax(a, keepdim=k)),
        False,
        True,
    ),
    "min": (
        lambda x, a, k: x.min(axis=a, keepdims=k),
        _t_reduce(torch.amin, lambda x, a, k: x.amin(a, keepdim=k)),
        False,
        True,
    ),
    "logsumexp": (
        lambda x, a, k: x.logsumexp(a, k),
        _t_reduce(lambda x: torch.logsumexp(x, 0), lambda x, a, k: torch.logsumexp(x, a, keepdim=k)),
        True,
        True,
    ),
    "softmax": (lambda x, a, k: x.softmax(a), lambda x, a, k: torch.softmax(x, a), True, False),
    "log_softmax": (lambda x, a, k: x.log_softmax(a), lambda x, a, k: torch.log_softmax(x, a), True, False),
}


SHAPE = {  # name: (ours(x, arg), torch(x, arg))
    "reshape": (lambda x, s: x.reshape(s), lambda x, s: x.reshape(s)),
    "permute": (lambda x, p: x.permute(p), lambda x, p: x.permute(p)),
    "T": (lambda x, _: x.T, lambda x, _: x.permute(tuple(reversed(range(x.ndim))))),
    "expand": (lambda x, s: x.expand(s), lambda x, s: x.expand(s)),
    "broadcast_to": (lambda x, s: x.broadcast_to(s), torch.broadcast_to),
    "squeeze": (lambda x, a: x.squeeze(a), lambda x, a: x.squeeze() if a is None else x.squeeze(a)),
    "unsqueeze": (lambda x, a: x.unsqueeze(a), lambda x, a: x.unsqueeze(a)),
    "flatten": (lambda x, se: x.flatten(*se), lambda x, se: x.flatten(*se)),
    "swapaxes": (lambda x, aa: x.swapaxes(*aa), lambda x, aa: x.swapaxes(*aa)),
    "getitem": (lambda x, i: x[i], lambda x, i: x[_t_index(i)]),
    "flip": (lambda x, d: x.flip(d), lambda x, d: x.flip(d)),
    "roll": (lambda x, sd: x.roll(*sd), lambda x, sd: x.roll(*sd)),
    "repeat": (lambda x, r: x.repeat(r), lambda x, r: x.repeat(r)),
    "tril": (lambda x, k: x.tril(k), lambda x, k: x.tril(k)),
    "triu": (lambda x, k: x.triu(k), lambda x, k: x.triu(k)),
    "cumsum": (lambda x, d: x.cumsum(d), lambda x, d: x.cumsum(d)),
    "cumprod": (lambda x, d: x.cumprod(d), lambda x, d: x.cumprod(d)),
    "gather": (lambda x, di: x.gather(*di), lambda x, di: x.gather(di[0], torch.from_numpy(di[1]))),
    "index_select": (lambda x, di: x.index_select(*di), lambda x, di: x.index_select(di[0], torch.from_numpy(di[1]))),
    "masked_fill": (lambda x, mv: x.masked_fill(*mv), lambda x, mv: x.masked_fill(torch.from_numpy(mv[0]), mv[1])),
    "split": (lambda x, a: x.split(a[0], a[1])[a[2]], lambda x, a: x.split(a[0], a[1])[a[2]]),
    "chunk": (lambda x, a: x.chunk(a[0], a[1])[a[2]], lambda x, a: x.chunk(a[0], a[1])[a[2]]),
    "unbind": (lambda x, a: x.unbind(a[0])[a[1]], lambda x, a: x.unbind(a[0])[a[1]]),
    "sort": (lambda x, a: x.sort(*a).values, lambda x, a: x.sort(*a).values),
    "topk": (lambda x, a: x.topk(*a).values, lambda x, a: x.topk(*a).values),
    "einsum": (lambda x, eq: tl.einsum(eq, x), lambda x, eq: torch.einsum(eq, x)),
}
SORTING = ("sort", "topk")  # kinked where two entries along the dim are (nearly) tied


# ---- drawing a program ---------------------------------------------------------------------------------------


def _axis_choice(draw, ndim: int, tuples: bool):
    """An axis argument valid for ndim: None, an int (maybe negative), or (if allowed) a tuple of axes."""
    n = max(ndim, 1)
    kinds = ["none", "int"] + (["tuple"] if tuples and ndim >= 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def _reduced(shape: tuple, axis) -> list:
    if axis is None:
        return list(range(len(shape)))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return [a % len(shape) for a in axes] if shape else []


def _draw_index(draw, shape: tuple, rng: np.random.Generator):
    """An index mixing every kind: slices (steps, empty ranges), None, Ellipsis, and ints or at most one integer
    array (repeats and negatives) or boolean mask; ints beside the array are taken first, as torch does."""
    parts, axis, advanced = [], 0, False
    ellipsis_used, arrays = False, draw(st.booleans())
    while axis < len(shape) and (ellipsis_used or draw(st.booleans())):  # after ..., index up to the last axis
        size = shape[axis]
        kinds = ["slice", "none"] + (["int"] if size else []) + ([] if ellipsis_used else ["ellipsis"])
        if arrays and not advanced:
            kinds += (["array"] if size else []) + ["mask"]
        kind = draw(st.sampled_from(kinds))
        if kind == "slice":
            start = draw(st.integers(-size - 1, size + 1))
            stop = draw(st.integers(-size - 1, size + 1))
            parts.append(
                slice(
                    draw(st.sampled_from([None, start])),
                    draw(st.sampled_from([None, stop])),
                    draw(st.sampled_from([None, 1, 2])),
                )
            )
            axis += 1
        elif kind == "none":
            parts.append(None)
        elif kind == "int":
            parts.append(draw(st.integers(-size, size - 1)))
            axis += 1
        elif kind == "ellipsis":
            parts.append(Ellipsis)
            ellipsis_used = True
            axis = len(shape) - draw(st.integers(0, len(shape) - axis))  # Ellipsis covers the axes in between
        elif kind == "array":
            n = draw(st.integers(0, 4))
            parts.append(rng.integers(-size, size, size=n).astype(np.int64))
            advanced = True
            axis += 1
        else:
            parts.append(rng.random(size) > 0.5)
            advanced = True
            axis += 1
    if not parts:
        parts.append(Ellipsis if draw(st.booleans()) else None)
    return tuple(parts)


def _shapes_like(draw, shape: tuple) -> tuple:
    """A shape that broadcasts with ``shape``: some leading axes dropped, some sides replaced by 1."""
    lead = draw(st.integers(0, len(shape)))
    return tuple(1 if s != 0 and draw(st.integers(0, 3)) == 0 else s for s in shape[lead:])


@st.composite
def programs(draw):
    """(inputs, instructions): instructions are (name, kind, argument indices, attribute) tuples."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    side = st.sampled_from([1, 2, 3, 2, 3, 0]) if draw(st.integers(0, 5)) == 0 else st.sampled_from([1, 2, 3])
    base = tuple(draw(st.lists(side, min_size=0, max_size=3)))
    shapes = [base] + [_shapes_like(draw, base) for _ in range(draw(st.integers(0, 3)))]
    inputs = [rng.standard_normal(s) for s in shapes]
    values = [tl.tensor(x) for x in inputs]  # to know each value's shape while drawing
    instructions = []
    for _ in range(draw(st.integers(1, 20))):
        kind = draw(
            st.sampled_from(["unary", "binary", "scalar", "reduce", "shape", "shape", "join", "where", "setitem"])
        )
        k = draw(st.integers(0, len(values) - 1))
        x = values[k]
        shape, ndim = x.shape, x.ndim
        if kind == "unary":
            step = (draw(st.sampled_from(sorted(UNARY))), kind, (k,), None)
        elif kind == "binary":
            name = draw(st.sampled_from(sorted(BINARY)))
            if name == "matmul":
                if ndim == 0:
                    continue
                fits = [
                    j
                    for j, v in enumerate(values)
                    if v.ndim >= 1
                    and v.shape[-2 if v.ndim > 1 else 0] == shape[-1]
                    and (v.ndim < 3 or ndim < 3 or v.shape[:-2] == shape[:-2])
                ]
                step = (name, kind, (k, draw(st.sampled_from(fits))), None) if fits else None
                if step is None:  # x @ x.T always fits: the transpose is a new instruction
                    instructions.append(("swapaxes", "shape", (k,), (-1, -2) if ndim > 1 else (0, 0)))
                    values.append(x.swapaxes(-1, -2) if ndim > 1 else x)
                    step = (name, kind, (k, len(values) - 1), None)
            else:
                fits = [j for j, v in enumerate(values) if _broadcasts(v.shape, shape)]
                step = (name, kind, (k, draw(st.sampled_from(fits))), None)
        elif kind == "scalar":
            name = draw(st.sampled_from(sorted(SCALAR)))
            if name == "pow_c":
                c = draw(st.sampled_from([0, 1, 2, 3, 2.0, -1]))
            elif name == "leaky_relu":
                c = draw(st.sampled_from([0.01, 0.2]))
            elif name == "rpow_c":
                c = draw(st.sampled_from([0.0, 0.5, 2.0]))
            else:
                c = draw(st.sampled_from([2.0, -0.5, 0.0, 3]))
            step = (
                name,
                kind,
                (k,),
                np.array(c, dtype=np.float64) if draw(st.booleans()) and name != "leaky_relu" else c,
            )
        elif kind == "reduce":
            name = draw(st.sampled_from(sorted(REDUCE)))
            axis = _axis_choice(draw, ndim, REDUCE[name][3])
            if name in ("softmax", "log_softmax") and axis is None:
                axis = -1
            if name in ("max", "min") and any(shape[a] == 0 for a in _reduced(shape, axis)):
                continue  # no maximum of nothing, in torch either
            step = (name, kind, (k,), (axis, draw(st.booleans())))
        elif kind == "shape":
            name = draw(st.sampled_from(sorted(SHAPE)))
            arg = _shape_arg(draw, name, shape, rng)
            if arg is False:
                continue
            step = (name, kind, (k,), arg)
        elif kind == "join":
            same = [j for j, v in enumerate(values) if v.shape == shape]
            parts = tuple(draw(st.lists(st.sampled_from(same), min_size=1, max_size=3)))
            if ndim == 0 or draw(st.booleans()):
                step = ("stack", kind, parts, draw(st.integers(-ndim - 1, ndim)))
            else:
                step = ("cat", kind, parts, draw(st.integers(-ndim, ndim - 1)))
        elif kind == "setitem":
            index = _draw_index(draw, shape, rng)
            written = tl.tensor(np.arange(x.size).reshape(shape))[index].data  # the positions written, torch's layout
            fits = [j for j, v in enumerate(values) if _broadcasts(v.shape, written.shape, into=True)]
            if len(np.unique(written)) < written.size or not fits:
                continue  # torch leaves which of repeated writes wins unspecified
            step = ("setitem", kind, (k, draw(st.sampled_from(fits))), index)
        else:
            j = draw(st.sampled_from([j for j, v in enumerate(values) if _broadcasts(v.shape, shape)]))
            cond = np.asarray(rng.random(np.broadcast_shapes(shape, values[j].shape)) > 0.5)
            step = ("where", kind, (k, j), cond)
        instructions.append(step)
        with np.errstate(all="ignore"):
            values.append(_apply(step, values, TL))
    if len(values) == len(inputs):  # every drawn op was inapplicable
        instructions.append(("neg", "unary", (0,), None))
        values.append(-values[0])
    n_out = draw(st.integers(1, 2))
    outputs = tuple(draw(st.lists(st.integers(len(inputs), len(values) - 1), min_size=n_out, max_size=n_out)))
    weights = [rng.standard_normal(values[j].shape) for j in outputs]
    retained = draw(st.integers(len(inputs), len(values) - 1))
    return Program(inputs, instructions, outputs, weights, retained, seed)


def _broadcasts(a: tuple, b: tuple, into: bool = False) -> bool:
    """Whether shapes a and b broadcast together (``into``: and a broadcasts to b itself)."""
    try:
        return np.broadcast_shapes(a, b) == b or not into
    except ValueError:
        return False


def _shape_arg(draw, name: str, shape: tuple, rng: np.random.Generator):
    """The argument of a shape op, valid for ``shape``; False when the op does not apply."""
    ndim, n = len(shape), max(len(shape), 1)
    if name == "reshape":
        size = int(np.prod(shape))
        options = [(size,), (1, size), (size, 1), ()] if size == 1 else [(size,), (1, size), (size, 1)]
        if size and size % 2 == 0:
            options.append((2, size // 2))
        return draw(st.sampled_from(options))
    if name == "permute":
        return tuple(draw(st.permutations(range(ndim))))
    if name == "T":
        return None
    if name in ("expand", "broadcast_to"):
        grown = tuple(draw(st.sampled_from([2, 3])) if s == 1 else s for s in shape)
        lead = tuple(draw(st.lists(st.sampled_from([1, 2]), max_size=2)))
        if name == "expand" and grown and draw(st.booleans()):
            grown = (-1,) + grown[1:]
        return lead + grown
    if name == "squeeze":  # any axis: one larger than 1 stays, as in torch
        return draw(st.sampled_from([None] + (list(range(-ndim, ndim)) if ndim else [0, -1])))
    if name == "unsqueeze":
        return draw(st.integers(-ndim - 1, ndim))
    if name == "flatten":
        start = draw(st.integers(-n, n - 1))
        end = draw(st.integers(-n, n - 1))
        return (start, end) if start % n <= end % n else (end, start)
    if name == "swapaxes":
        return (draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1)))
    if name in _SELECTION_ARGS:
        return _SELECTION_ARGS[name](draw, shape, rng)
    if ndim == 0 and draw(st.booleans()):
        return draw(st.sampled_from([(None,), (Ellipsis,), (None, Ellipsis)]))
    return _draw_index(draw, shape, rng)


def _dim(draw, shape: tuple, sized: bool = False):
    """A dim of ``shape`` (maybe negative; 0 or -1 for a 0-d shape); ``sized``: one of size > 0, or None."""
    n = max(len(shape), 1)
    dims = [d for d in range(-n, n) if not sized or not shape or shape[d]]
    return draw(st.sampled_from(dims)) if dims else None


def _gather_arg(draw, shape, rng):
    d = _dim(draw, shape, sized=True)
    if d is None:
        return False
    if not shape:
        return (d, np.zeros((), np.int64))
    sides = [draw(st.integers(0, 3)) if i == d % len(shape) else draw(st.integers(0, s)) for i, s in enumerate(shape)]
    return (d, rng.integers(0, shape[d], size=sides).astype(np.int64))


def _index_select_arg(draw, shape, rng):
    d = _dim(draw, shape, sized=True)
    if d is None:
        return False
    return (d, rng.integers(0, shape[d] if shape else 1, size=draw(st.integers(0, 3)) if shape else 1))


def _pieces_arg(draw, shape, rng):
    """(size or chunks, dim, which piece) for split and chunk: pieces exist for a dim of size > 0."""
    d = _dim(draw, shape, sized=True)
    if d is None or not shape:
        return False
    k = draw(st.integers(1, 3))
    return (k, d, draw(st.integers(0, -(-shape[d] // k) - 1 if k <= shape[d] else 0)))


def _einsum_arg(draw, shape, rng):
    """A one-operand equation: x's axes permuted, some summed away ("abc->ca")."""
    letters = "abcdefgh"[: len(shape)]
    kept = draw(st.permutations(letters))[: draw(st.integers(0, len(letters)))]
    return f"{letters}->{''.join(kept)}"


_SELECTION_ARGS = {
    "einsum": _einsum_arg,
    "flip": lambda draw, shape, rng: draw(st.lists(st.integers(0, len(shape) - 1), unique=True)) if shape else [],
    "roll": lambda draw, shape, rng: (
        draw(st.integers(-4, 4)),
        draw(st.sampled_from([None, _dim(draw, shape)])) if shape else None,
    ),
    # sizes from 1: torch's gradient through a repeat 0 times is a zeros tensor outside any recorded graph
    "repeat": lambda draw, shape, rng: tuple(
        draw(st.lists(st.integers(1, 2), min_size=max(len(shape), 1), max_size=len(shape) + 1))
    ),
    "tril": lambda draw, shape, rng: draw(st.integers(-2, 2)) if len(shape) >= 2 else False,
    "triu": lambda draw, shape, rng: draw(st.integers(-2, 2)) if len(shape) >= 2 else False,
    "cumsum": lambda draw, shape, rng: _dim(draw, shape),
    "cumprod": lambda draw, shape, rng: _dim(draw, shape),
    "gather": _gather_arg,
    "index_select": _index_select_arg,
    "masked_fill": lambda draw, shape, rng: (
        np.asarray(rng.random(_shapes_like(draw, shape)) > 0.5),
        draw(st.sampled_from([0.0, 2.5])),
    ),
    "split": _pieces_arg,
    "chunk": lambda draw, shape, rng: (lambda a: a if a is False else (a[0], a[1], 0))(_pieces_arg(draw, shape, rng)),
    "unbind": lambda draw, shape, rng: (
        lambda d: False if d is None or not shape else (d, draw(st.integers(0, shape[d] - 1)))
    )(_dim(draw, shape, sized=True)),
    "sort": lambda draw, shape, rng: (_dim(draw, shape), draw(st.booleans())),
    "topk": lambda draw, shape, rng: (
        lambda d: (draw(st.integers(0, shape[d] if shape else 1)), d, draw(st.booleans()))
    )(_dim(draw, shape)),
}


# ---- running a program ---------------------------------------------------------------------------------------

TL, TORCH = "tl", "torch"


def _apply(step, values, lib):
    name, kind, args, attr = step
    xs = [values[a] for a in args]
    which = 0 if lib == TL else 1
    if kind == "unary":
        return UNARY[name][which](xs[0])
    if kind == "binary":
        return BINARY[name][which](*xs)
    if kind == "scalar":
        c = attr if lib == TL or not isinstance(attr, np.ndarray) else torch.from_numpy(attr)
        return SCALAR[name][which](xs[0], c)
    if kind == "reduce":
        return REDUCE[name][which](xs[0], *attr)
    if kind == "shape":
        return SHAPE[name][which](xs[0], attr)
    if kind == "setitem":  # a clone written at the index: the input itself may be a leaf or a view
        out = xs[0].clone()
        out[attr if lib == TL else _t_index(attr)] = xs[1]
        return out
    if kind == "join":
        fn = {(TL, "cat"): tl.cat, (TL, "stack"): tl.stack, (TORCH, "cat"): torch.cat, (TORCH, "stack"): torch.stack}
        return fn[lib, name](xs, attr)
    cond = attr if lib == TL else torch.from_numpy(attr)
    return (tl.where if lib == TL else torch.where)(cond, *xs)


class Program:
    """A drawn program: inputs, instructions, which values are summed (with weights) into the loss."""

    def __init__(self, inputs, instructions, outputs, weights, retained, seed):
        self.inputs, self.instructions, self.outputs = inputs, instructions, outputs
        self.weights, self.retained, self.seed = weights, retained, seed

    def run(self, xs, lib):
        """Every value of the program (inputs first) and the loss sum_k (out_k * w_k).sum()."""
        values = list(xs)
        for step in self.instructions:
            values.append(_apply(step, values, lib))
        loss = 0.0
        for j, w in zip(self.outputs, self.weights):
            loss = loss + (values[j] * (w if lib == TL else torch.from_numpy(w))).sum()
        return values, loss

    def smooth(self) -> bool:
        table = {"unary": UNARY, "binary": BINARY, "scalar": SCALAR}
        return all(
            table[kind][name][2] if kind in table else REDUCE[name][2] if kind == "reduce" else True
            for name, kind, _, _ in self.instructions
        )

    def __str__(self) -> str:
        n = len(self.inputs)
        lines = [f"seed {self.seed}"] + [f"v{i} = input of shape {x.shape}" for i, x in enumerate(self.inputs)]
        for k, (name, _kind, args, attr) in enumerate(self.instructions):
            shown = "" if attr is None else f", {attr!r}"
            lines.append(f"v{n + k} = {name}({', '.join(f'v{a}' for a in args)}{shown})")
        outs = ", ".join(f"v{j}" for j in self.outputs)
        lines.append(
            f"loss = sum of (v * w).sum() over {outs} (w drawn from the seed); retain_grad on v{self.retained}"
        )
        return "\n".join(lines)

    __repr__ = __str__  # hypothesis prints the falsifying program as its text


def _near_kink(program, values) -> bool:
    """Whether a kinked op sees an input within KINK of its kink (ties included), where finite differences lie."""
    for (name, _kind, args, attr), _out in zip(program.instructions, values[len(program.inputs) :]):
        xs = [values[a].data for a in args]
        if name in ("abs", "relu", "leaky_relu") and np.any(np.abs(xs[0]) < KINK):
            return True
        if name == "pow_relu" and np.any(np.abs(xs[0]) < KINK):
            return True
        if name in ("maximum", "minimum") and np.any(np.abs(xs[0] - xs[1]) < KINK):
            return True
        if name in ("max", "min") and xs[0].ndim:
            axes = tuple(_reduced(xs[0].shape, attr[0]))
            best = (np.max if name == "max" else np.min)(xs[0], axis=axes, keepdims=True)
            if np.any((np.abs(xs[0] - best) < KINK).sum(axis=axes) > 1):
                return True
        if name in ("clip", "clip_lo") and np.any(np.abs(xs[0]) < KINK) | np.any(np.abs(xs[0] - 1.0) < KINK) | np.any(
            np.abs(xs[0] + 0.5) < KINK
        ):
            return True
        if name == "float32":
            return True
        if name in SORTING and xs[0].ndim:
            d = attr[0] if name == "sort" else attr[1]
            if xs[0].shape[d] > 1 and np.any(np.diff(np.sort(xs[0], axis=d), axis=d) < KINK):
                return True
    return False


def _moderate(values) -> bool:
    return all(np.all(np.isfinite(v.data)) and np.all(np.abs(v.data) < 1e4) for v in values)


def _plain(t) -> np.ndarray:
    """torch's tensor as numpy, through a plain tensor it is added into: a gradient can be a ZeroTensor or a lazy
    negation, and numpy(force=True) segfaulted inside torch on a create_graph gradient in two fuzz runs."""
    t = t.detach()
    return torch.zeros(tuple(t.shape), dtype=t.dtype).add_(t).numpy()


def _close(ours, theirs, what: str) -> None:
    """Ours (a Tensor, or None for zero) against torch's (a tensor, or None): torch's NaN allows anything."""
    if ours is None and theirs is None:
        return
    expected = np.zeros(ours.shape) if theirs is None else _plain(theirs)
    got = np.zeros(expected.shape) if ours is None else np.asarray(ours.data)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, torch {expected.shape}"
    free = np.isnan(expected)  # torch has no value here (e.g. pow at base 0, second order): ours may be finite
    np.testing.assert_allclose(
        np.where(free, 0.0, got), np.where(free, 0.0, expected), rtol=RTOL, atol=ATOL, err_msg=what
    )


# ---- the checks ------------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.filterwarnings(r"ignore:var\(\)")  # torch's "degrees of freedom is <= 0", for one value
@FUZZ
@given(programs())
def test_programs_match_torch_finite_differences_and_compile(program):
    with np.errstate(all="ignore"):
        _against_torch(program)
        _against_finite_differences(program)
        _against_compile(program)


def _against_torch(program) -> None:
    xs = [tl.tensor(x, requires_grad=True) for x in program.inputs]
    values, loss = program.run(xs, TL)
    txs = [torch.tensor(x, requires_grad=True) for x in program.inputs]
    tvalues, tloss = program.run(txs, TORCH)
    for k, (v, tv) in enumerate(zip(values, tvalues)):
        assert v.dtype == np.float64, f"v{k} has dtype {v.dtype}"
        _close(v, tv, f"value v{k}")
    _close(loss, tloss, "loss")

    values[program.retained].retain_grad()
    tvalues[program.retained].retain_grad()
    loss.backward(retain_graph=True)
    tloss.backward(retain_graph=True)
    for k, (x, tx) in enumerate(zip(xs, txs)):
        _close(x.grad, tx.grad, f"gradient of input v{k}")
    _close(values[program.retained].grad, tvalues[program.retained].grad, f"retained gradient of v{program.retained}")

    grads = tl.grad(loss, xs, create_graph=True, allow_unused=True)
    tgrads = torch.autograd.grad(tloss, txs, create_graph=True, allow_unused=True)
    for k, (g, tg) in enumerate(zip(grads, tgrads)):
        _close(g, tg, f"create_graph gradient of input v{k}")
    if not all(np.isfinite(_plain(t)).all() for t in [tloss] + [g for g in tgrads if g is not None]):
        return  # a NaN or inf first derivative has no meaningful second (torch's own are inconsistent there)
    for k, (g, tg) in enumerate(zip(grads, tgrads)):
        # differentiable again exactly where torch's is; not compared for an empty gradient, which holds no value
        # to differentiate (torch's is one way or the other by op: abs(x) requires grad, abs(cat([x])) does not)
        if g is not None and tg is not None and g.size:
            assert g.requires_grad == tg.requires_grad, f"create_graph gradient of v{k}: requires_grad"
    rng = np.random.default_rng(program.seed + 1)
    probes = [rng.standard_normal(x.shape) for x in program.inputs]
    terms = [(g * p).sum() for g, p in zip(grads, probes) if g is not None and g.requires_grad]
    tterms = [(g * torch.from_numpy(p)).sum() for g, p in zip(tgrads, probes) if g is not None and g.requires_grad]
    second = tl.grad(sum(terms), xs, allow_unused=True) if terms else [None] * len(xs)
    tsecond = torch.autograd.grad(sum(tterms), txs, allow_unused=True) if tterms else [None] * len(xs)
    event("second order against torch")
    for k, (x, g, tg) in enumerate(zip(xs, second, tsecond)):
        _close(g if g is not None or tg is None else tl.Tensor.zeros(x.shape), tg, f"second-order gradient of v{k}")


def _against_finite_differences(program) -> None:
    xs = [tl.tensor(x, requires_grad=True) for x in program.inputs]
    values, _ = program.run(xs, TL)
    if _near_kink(program, values) or not _moderate(values) or sum(x.size for x in xs) > 30:
        return

    def loss(*ts):
        return program.run(ts, TL)[1]

    event("gradcheck")
    assert gradcheck(loss, xs)
    if program.smooth() and sum(x.size for x in xs) <= 12:
        event("gradgradcheck")
        assert gradgradcheck(loss, xs)


def _against_compile(program) -> None:
    def step(*ts):
        for t in ts:
            t.grad = None
        values, loss = program.run(ts, TL)
        loss.backward()
        return loss, values[program.outputs[0]]

    xs = [tl.tensor(x, requires_grad=True) for x in program.inputs]
    eager_loss, eager_out = step(*xs)
    eager_grads = [x.grad for x in xs]
    event(f"{len(program.instructions) // 5 * 5}+ instructions")
    compiled = tl.compile(step)
    for call in range(4):  # warm-up, trace, check against eager, replay
        loss, out = compiled(*xs)
        for what, got, want in [("loss", loss, eager_loss), ("output", out, eager_out)] + [
            (f"gradient of v{k}", x.grad, g) for k, (x, g) in enumerate(zip(xs, eager_grads))
        ]:
            if want is None:
                continue
            assert got is not None and got.dtype == want.dtype, f"compile call {call}: {what} dtype"
            np.testing.assert_allclose(
                got.data, want.data, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"compile call {call}: {what}"
            )
