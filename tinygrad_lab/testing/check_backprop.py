"""Judge a hand-written backward pass: ``check_backprop(loss, inputs, grads)`` runs the user's numpy loss on
Tensors, differentiates it, makes sure that autograd result agrees with central finite differences, and
compares the hand-computed gradients with it, naming the classic mistakes (a constant factor, a flipped sign,
a transposed matrix, the wrong shape, all zeros). Where the loss has a kink (relu at exactly 0, a max over tied
values: one-sided differences disagree) no one value is the true gradient: an element there passes between the
gradients around it (the one-sided slopes, autograd's, and autograd's a hair away), as relu'(0) = 0 or 1 does,
and fails outside them, as no convention gives it. The elements at a kink are also judged together, along
yours minus autograd's: two tied maxima may each take any share, not both the whole.

    def loss(w1, w2, w3):                       # the student's own numpy forward and loss, unchanged
        ...
        return np.mean((y - pred) ** 2)
    assert_backprop(loss, [w1, w2, w3], [d_w1, d_w2, d_w3], names=["w1", "w2", "w3"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import grad as _grad
from tinygrad_lab.engine.autograd import no_grad
from tinygrad_lab.engine.tensor import Tensor

_DIRECTIONS = 3  # random directions per input for the finite-difference cross-check
_EPS = 1e-6  # central differences, as gradcheck
_FD_ATOL, _FD_RTOL = 1e-5, 1e-3  # gradcheck's (torch's) tolerances for the cross-check
_KINK_SEARCH = 4096  # the most directions probed (4 losses each) to locate the kinks of one input
_BISECT = 64  # more elements than this where autograd's gradients jump are not bisected: judged from those alone
_ULP = float(np.finfo(np.float64).eps)
_NEAR = 2  # random nearby points per input moved (and all at once), each taken on both sides, when there are kinks
_SAMPLED = 16, 256  # random nearby points, all inputs moved, bounding the slopes along a direction at kinks;
# the second, larger number is drawn before a gradient is failed on them
_HAIR = 1e-10  # how far (relative) those points are: past any tie, too close for curvature to change a gradient


class BackpropCheckError(RuntimeError):
    """The check cannot judge the gradients: the loss is not a differentiable scalar of its inputs here."""


@dataclass
class Row:
    """The verdict on one input's gradient: ``diagnosis`` starts with "ok" when it agrees."""

    name: str
    shape: tuple
    ok: bool
    diagnosis: str
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    worst: str = "-"
    kinks: int = 0  # elements at a kink of the loss, judged against the interval between their one-sided slopes


class BackpropCheck:
    """check_backprop's result: truthy exactly when every gradient agrees; ``str()`` is the table."""

    def __init__(self, rows: list[Row], true_grads: list[np.ndarray], notes: list[str], rtol: float, atol: float):
        self.rows = rows
        self.true_grads = true_grads  # autograd's gradients, float64, cross-checked by finite differences
        self.notes = notes
        self.rtol, self.atol = rtol, atol

    def __bool__(self) -> bool:
        return all(row.ok for row in self.rows)

    def __str__(self) -> str:
        bad = sum(not row.ok for row in self.rows)
        kinks = sum(row.kinks for row in self.rows)
        head = (
            f"check_backprop: all {len(self.rows)} gradients agree"
            if not bad
            else f"check_backprop: {bad} of {len(self.rows)} gradients disagree"
        )
        if kinks:
            head += f"; {kinks} element{'s' * (kinks > 1)} at a kink judged against the gradients around it"
        lines = [f"{head} (rtol={self.rtol:g}, atol={self.atol:g})", " ".join(self.notes)]
        cells = [("name", "shape", "max abs err", "max rel err", "worst element (yours vs true)")] + [
            (r.name, _shape(r.shape), _num(r.max_abs), _num(r.max_rel), r.worst) for r in self.rows
        ]
        widths = [max(len(c[k]) for c in cells) for k in range(5)]
        for k, c in enumerate(cells):
            lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"{r.name}: {r.diagnosis}" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<BackpropCheck {'ok' if self else 'failed'}: "
            + ", ".join(f"{r.name} {'ok' if r.ok else r.diagnosis.split(':')[0]}" for r in self.rows)
            + ">"
        )


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _num(v: float) -> str:
    return "-" if np.isnan(v) else f"{v:.3g}"


def check_backprop(
    loss: Callable[..., Any],
    inputs: Sequence[Any],
    grads: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> BackpropCheck:
    """Compare hand-computed gradients ``grads`` of ``loss(*inputs)`` (numpy code returning a scalar) with the
    true ones, element by element: |yours - true| <= atol + rtol * |true|, where at a kink ``true`` is the value
    nearest yours in the range of the gradients around it. See the module docstring."""
    inputs, grads = list(inputs), list(grads)
    names = [f"inputs[{i}]" for i in range(len(inputs))] if names is None else list(names)
    if not len(inputs) == len(grads) == len(names):
        raise ValueError(
            f"check_backprop: {len(inputs)} inputs, {len(grads)} gradients and {len(names)} names; "
            "give one gradient (and one name) per input, in the same order"
        )
    arrays, notes = _float64_inputs(inputs, names)
    true = _autograd(loss, arrays)
    near = _nearby_grads(loss, arrays)
    jumps = [_jumps(t, n, rtol, atol) for t, n in zip(true, near)]
    kinks = _cross_check(loss, arrays, true, names, jumps)
    found = ", ".join(name for name, j in zip(names, jumps) if j.any())
    searched = ", ".join(name for name, k in zip(names, kinks) if k is not None)
    notes.append(
        f"autograd agreed with central differences along {_DIRECTIONS} random directions per input"
        + (f" (off the elements of {found} where its gradients a hair away jump: kinks)" if found else "")
        + (
            f" (and bisected {searched} down to its elements, where one-sided differences showed a kink)"
            if searched
            else ""
        )
        + "."
    )
    truths = [_Truth.of(t, {} if k is None else k, n, j) for t, k, n, j in zip(true, kinks, near, jumps)]
    rows = [_judge(name, t, g, rtol, atol, truth) for name, t, g, truth in zip(names, true, grads, truths)]
    if any(truth.kink.any() for truth in truths):
        _judge_kinks_together(loss, arrays, grads, true, truths, near, rows, rtol, atol)
    return BackpropCheck(rows, true, notes, rtol, atol)


def assert_backprop(
    loss: Callable[..., Any],
    inputs: Sequence[Any],
    grads: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> None:
    """check_backprop for test suites: raises AssertionError with the table when a gradient disagrees."""
    result = check_backprop(loss, inputs, grads, names=names, rtol=rtol, atol=atol)
    if not result:
        raise AssertionError("\n" + str(result))


def _float64_inputs(inputs: list, names: list) -> tuple[list[np.ndarray], list[str]]:
    arrays, converted = [], []
    for name, x in zip(names, inputs):
        arr = np.asarray(x.data if isinstance(x, Tensor) else x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"check_backprop: input {name} must be numbers, got dtype {arr.dtype}")
        if arr.dtype != np.float64:
            converted.append(f"{name} ({arr.dtype})")
        arrays.append(arr.astype(np.float64))
    notes = [f"computed in float64 from {', '.join(converted)};"] if converted else []
    return arrays, notes


def _call(loss: Callable, tensors: list) -> Tensor:
    """loss(*tensors) as a one-element Tensor, or a one-line reason why it cannot be differentiated."""
    out = loss(*tensors)
    if not isinstance(out, Tensor):
        raise BackpropCheckError(
            f"check_backprop: loss returned {type(out).__name__}, not a Tensor: it left the graph (float(), "
            ".item(), np.asarray or t.numpy() inside the loss?); return the numpy expression itself"
        )
    if out.size != 1:
        raise BackpropCheckError(f"check_backprop: loss must return a scalar, got shape {out.shape}")
    return out


def _autograd(loss: Callable, arrays: list) -> list[np.ndarray]:
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = _call(loss, tensors)
    if not out.requires_grad:
        raise BackpropCheckError(
            "check_backprop: the loss does not depend on any input through the graph "
            "(computed from t.numpy() or np.asarray values?)"
        )
    found = _grad(out, tensors, allow_unused=True)
    return [np.zeros_like(a) if g is None else np.asarray(g.data, dtype=np.float64) for a, g in zip(arrays, found)]


@dataclass
class _Slopes:
    """The loss's derivative along one direction: central, and one-sided from below and above (three-point
    formulas, so curvature cancels and only a kink separates them), with one ulp of the loss over 2 eps."""

    central: float
    below: float
    above: float
    ulp: float

    @property
    def kink(self) -> bool:
        """One-sided slopes further apart than finite differences err (16 losses' rounding, 4 ulps each)."""
        spread = _FD_ATOL + _FD_RTOL * max(abs(self.below), abs(self.above)) + 64 * self.ulp
        return bool(np.isfinite([self.below, self.above]).all() and abs(self.above - self.below) > spread)

    def agrees(self, analytical: float) -> bool:
        # the difference of two large losses keeps their rounding: a few ulps of the loss, over 2 eps
        return abs(analytical - self.central) <= _FD_ATOL + _FD_RTOL * abs(self.central) + 8 * self.ulp


def _slopes(loss: Callable, arrays: list, i: int, v: np.ndarray, f0: float) -> _Slopes:
    f = {t: _value(loss, arrays, i, arrays[i] + t * _EPS * v) for t in (-2, -1, 1, 2)}
    h2 = 2 * _EPS
    return _Slopes(
        central=(f[1] - f[-1]) / h2,
        below=(3 * f0 - 4 * f[-1] + f[-2]) / h2,
        above=(-3 * f0 + 4 * f[1] - f[2]) / h2,
        ulp=_ULP * max(abs(f0), *map(abs, f.values())) / h2,
    )


def _jumps(true: np.ndarray, near: list[np.ndarray], rtol: float, atol: float) -> np.ndarray:
    """The elements at a kink that matters to the verdict: where autograd's gradients a hair away differ from its
    own by more than half the tolerance (a smooth gradient moves by far less over 1e-10). A kink too small for
    one-sided differences to tell from their error is found here, as are thousands of them in a few calls."""
    return np.any([np.abs(g - true) > 0.5 * (atol + rtol * np.abs(true)) for g in near], axis=0)


def _cross_check(
    loss: Callable, arrays: list, true: list, names: list, jumps: list[np.ndarray]
) -> list[dict[int, _Slopes] | None]:
    """Directional derivatives of autograd vs central differences: an engine bug (or a loss that reads values
    outside the graph) must not make a wrong hand-written gradient look right. The directions leave out the
    elements at a kink found by ``jumps``; where one-sided differences still show a kink, the input is bisected
    down to its elements; per input, those kinks by flat index (None: none)."""
    f0, again = _value(loss, arrays, 0, arrays[0]), _value(loss, arrays, 0, arrays[0])
    if not np.isfinite(f0):
        raise BackpropCheckError(
            f"check_backprop: the loss is {f0!r} at the inputs given (log or sqrt of a negative, 0/0, an overflow?); "
            "it has no gradient there"
        )
    if not abs(f0 - again) <= 8 * _ULP * abs(f0):
        raise BackpropCheckError(
            f"check_backprop: the loss is not deterministic ({f0!r}, then {again!r} for the same inputs); "
            "cannot judge the gradients"
        )
    rng = np.random.default_rng(0)
    found: list[dict[int, _Slopes] | None] = []
    for i, (name, base) in enumerate(zip(names, arrays)):
        directions = [rng.standard_normal(base.shape) for _ in range(_DIRECTIONS)]
        slopes = [_slopes(loss, arrays, i, v, f0) for v in directions]
        kink = next(((v, s) for v, s in zip(directions, slopes) if s.kink), None)
        if kink is not None and np.count_nonzero(jumps[i]) <= _BISECT:
            located = _search_kinks(loss, arrays, true, i, name, f0, *kink)
            if located:
                found.append(located)
                continue
            if not jumps[i].any():
                raise _unlocated(name, kink[1], "along no single element")
        if kink is not None:  # judged where the gradients a hair away jump; autograd is checked off them
            directions = [np.where(jumps[i], 0.0, v) for v in directions]
            slopes = [_slopes(loss, arrays, i, v, f0) for v in directions]
            hidden = next(((v, s) for v, s in zip(directions, slopes) if s.kink), None)
            if hidden is not None:  # a kink they missed: bisected along directions that leave them out
                located = _search_kinks(loss, arrays, true, i, name, f0, *hidden)
                if not located:
                    raise _unlocated(name, hidden[1], "along no single element")
                found.append(located)
                continue
        for v, s in zip(directions, slopes):
            if not s.agrees(float(np.sum(true[i] * v))):
                raise _disagreement(name, "along a random direction", float(np.sum(true[i] * v)), s.central)
        found.append(None)
    return found


def _search_kinks(
    loss: Callable, arrays: list, true: list, i: int, name: str, f0: float, v: np.ndarray, seen: _Slopes
) -> dict[int, _Slopes]:
    """The elements of input i along which the loss has a kink, by bisection: both halves of a part that holds
    a kink are probed along ``v`` (the random direction that showed it) restricted to them, a single element
    along its own axis. A half whose one-sided slopes disagree is searched further; one whose slopes agree has
    autograd cross-checked along that direction. When neither half shows the kink, it may hide in their slopes
    (the error allowed grows with them): they are probed again across autograd's gradient, where the slope is
    about 0; if neither shows it still, it lies across both, and both are searched. About 8 k log2(n) losses for
    k kinks in n elements."""
    base = arrays[i]
    probes, kinks = 0, {}

    def probe(part: np.ndarray, across: bool = False) -> tuple[np.ndarray, _Slopes]:
        nonlocal probes
        probes += 1
        if probes > _KINK_SEARCH:
            raise _unlocated(name, seen, f"more than {_KINK_SEARCH} directions probed: too many elements at a kink")
        d = np.zeros(base.size)
        d[part] = 1.0 if part.size == 1 else v.ravel()[part]
        if across and part.size > 1:
            g = true[i].ravel()[part]
            d[part] -= (float(d[part] @ g) / float(g @ g) if g.any() else 0.0) * g
        return d, _slopes(loss, arrays, i, d.reshape(base.shape), f0)

    search = [np.arange(base.size)]
    while search:
        part = search.pop()
        halves = [h for h in (part[: part.size // 2], part[part.size // 2 :]) if h.size]
        probed = [(h, *probe(h)) for h in halves]
        if not any(s.kink for _, _, s in probed) and part.size > 2:
            probed = [(h, *probe(h, across=True)) if h.size > 1 else (h, d, s) for h, d, s in probed]
        hidden = not any(s.kink for _, _, s in probed)
        for h, d, s in probed:
            if s.kink and h.size == 1:
                kinks[int(h[0])] = s
            elif (s.kink or hidden) and h.size > 1:
                search.append(h)
            elif not s.agrees(float(np.sum(true[i].ravel() * d))):
                where = (
                    f"at element {_index(np.unravel_index(int(h[0]), base.shape))}"
                    if h.size == 1
                    else f"along a random direction over {h.size} of its elements"
                )
                raise _disagreement(name, where, float(np.sum(true[i].ravel() * d)), s.central)
    return dict(sorted(kinks.items()))


def _unlocated(name: str, seen: _Slopes, why: str) -> BackpropCheckError:
    return BackpropCheckError(
        f"check_backprop: the loss has a kink in {name} (one-sided slopes {seen.below:.6g} and {seen.above:.6g} "
        f"along a random direction: relu or abs at exactly 0, a max over ties?) that cannot be located ({why}); "
        "cannot judge the gradients: check them at a point off the kink"
    )


def _disagreement(name: str, where: str, analytical: float, numerical: float) -> BackpropCheckError:
    return BackpropCheckError(
        f"check_backprop: autograd and finite differences disagree on d loss/d {name} {where} "
        f"({analytical:.6g} vs {numerical:.6g}): the loss is not smooth here (a kink of relu, abs or max), not "
        "deterministic, or reads values outside the graph; cannot judge the gradients"
    )


def _nearby_grads(loss: Callable, arrays: list) -> list[list[np.ndarray]]:
    """Autograd's gradients at points a hair from the inputs, where the ties that make a kink are broken one way
    or the other: each input moved alone and all of them at once, every element up (or down) together, and along
    random directions, each with its opposite.
    At a kink the valid gradients are those found around it (as in gradient sampling of Clarke's
    subdifferential): a zero-initialised relu layer's relu'(0) = 0 is the gradient where its biases are a hair
    below 0, and lies outside the one-sided slopes along a weight, which move its inputs' rows both ways."""
    rng = np.random.default_rng(1)
    moves = [[i] for i in range(len(arrays))] + ([list(range(len(arrays)))] if len(arrays) > 1 else [])
    found: list[list[np.ndarray]] = [[] for _ in arrays]
    for which in moves:
        for draw in range(_NEAR + 1):
            steps = {
                i: _HAIR * np.maximum(1.0, np.abs(arrays[i])) * (rng.standard_normal(a.shape) if draw else 1.0)
                for i, a in enumerate(arrays)
                if i in which
            }
            for sign in (1.0, -1.0):
                moved = [a + sign * steps[i] if i in steps else a for i, a in enumerate(arrays)]
                for grads, g in zip(found, _autograd(loss, moved)):
                    grads.append(g)
    return found


def _value(loss: Callable, arrays: list, index: int, replacement: np.ndarray) -> float:
    return _value_at(loss, [replacement if k == index else a for k, a in enumerate(arrays)])


def _value_at(loss: Callable, arrays: list) -> float:
    with no_grad():
        return float(_call(loss, [Tensor(a) for a in arrays]).data.reshape(()))


def _judge_kinks_together(
    loss: Callable,
    arrays: list,
    grads: list,
    true: list,
    truths: list,
    near: list,
    rows: list,
    rtol: float,
    atol: float,
) -> None:
    """Elements at a kink are judged one by one, so each of two tied maxima may take the whole gradient, which
    no convention gives both (the loss rises by 1 when both rise by 1, not by 2). So yours must also agree with
    the loss along d = yours - autograd's on the elements at a kink, of each input and of all inputs together:
    <yours, d> must lie between the loss's one-sided slopes along d and <g, d> for autograd's gradient g and
    those a hair away (the nearby ones, those past the ties along d, and random ones, more of them drawn before
    a gradient is failed: where ties pull opposite ways, as tied maxima times negative weights do, the one-sided
    slopes alone fall short of the range), give or take the element tolerances summed along d and the slopes'
    rounding. A row that passed element by element and fails along d fails."""
    given = [np.asarray(g.data if isinstance(g, Tensor) else g, dtype=np.float64) for g in grads]
    diffs = [
        np.where(t.kink, g - a, 0.0) if row.ok and row.kinks else np.zeros_like(a)
        for row, g, a, t in zip(rows, given, true, truths)
    ]
    moved = [i for i, d in enumerate(diffs) if d.any()]
    rng = np.random.default_rng(2)
    sampled: list[list[np.ndarray]] = []
    for which in [[i] for i in moved] + ([moved] if len(moved) > 1 else []):
        if not all(rows[i].ok for i in which):
            continue
        scale = max(float(np.max(np.abs(diffs[i]))) for i in which)
        d = [diffs[i] / scale if i in which else np.zeros_like(a) for i, a in enumerate(arrays)]
        f = {s: _value_at(loss, [a + s * _EPS * v for a, v in zip(arrays, d)]) for s in (-2, -1, 0, 1, 2)}
        h2 = 2 * _EPS
        around = [(3 * f[0] - 4 * f[-1] + f[-2]) / h2, (-3 * f[0] + 4 * f[1] - f[2]) / h2]
        toward = [  # past the ties, on the side where yours routes more (up to autograd's sign) than autograd's
            _autograd(
                loss, [a + _HAIR * np.maximum(1.0, np.abs(a)) * v * s * side for a, v, s in zip(arrays, d, signs)]
            )
            for signs in ([np.where(t < 0, -1.0, 1.0) for t in true], [1.0] * len(true))
            for side in (1.0, -1.0)
        ]
        slope = sum(float(np.sum(given[i] * d[i])) for i in which)
        tol = 32 * _ULP * max(map(abs, f.values())) / h2
        tol += sum(float(np.sum(np.abs(d[i]) * (atol + rtol * np.abs(truths[i].nearest(given[i]))))) for i in which)
        for count in _SAMPLED:
            while len(sampled) < count:
                step = [_HAIR * np.maximum(1.0, np.abs(a)) * rng.standard_normal(a.shape) for a in arrays]
                sampled += [_autograd(loss, [a + side * u for a, u in zip(arrays, step)]) for side in (1.0, -1.0)]
            points = [true, *toward, *sampled, *zip(*near)]
            around += [sum(float(np.sum(g[i] * d[i])) for i in which) for g in points]
            if min(around) - tol <= slope <= max(around) + tol:
                break
        else:
            for i in which:
                others = ", ".join(rows[k].name for k in which if k != i)
                rows[i].ok = False
                rows[i].diagnosis = (
                    f"double counted at a kink: each element at a kink is in its range, but not all together: along "
                    f"yours minus autograd's there{f' (with {others})' if others else ''}, yours gives a slope of "
                    f"{slope:.6g}, the loss's slopes lie from {min(around):.6g} to {max(around):.6g} (each tied "
                    "maximum given the whole gradient?); " + rows[i].diagnosis
                )


@dataclass
class _Truth:
    """The true gradient as an interval per element: one value where the loss is differentiable; at a kink, any
    value between the gradients around it (relu(w) at 0: relu'(0) = 0 and = 1 both are): the one-sided slopes
    along the element, autograd's (torch's convention) and those at nearby points, give or take ``slack``, the
    slopes' own rounding. A value outside is no convention's gradient there."""

    lo: np.ndarray
    hi: np.ndarray
    slack: np.ndarray
    kink: np.ndarray  # bool: the element is at a kink

    @classmethod
    def of(cls, true: np.ndarray, kinks: dict[int, _Slopes], near: list[np.ndarray], jumps: np.ndarray) -> _Truth:
        nearby = np.array([true, *near])
        lo, hi = np.where(jumps, nearby.min(axis=0), true), np.where(jumps, nearby.max(axis=0), true)
        slack, kink = np.zeros_like(true), jumps.copy()
        for k, s in kinks.items():
            around = [s.below, s.above, true.flat[k], *(g.flat[k] for g in near)]
            kink.flat[k] = True
            lo.flat[k], hi.flat[k] = min(lo.flat[k], *around), max(hi.flat[k], *around)
            slack.flat[k] = 32 * s.ulp  # a one-sided slope's 8 losses, 4 ulps of rounding each
        return cls(lo, hi, slack, kink)

    def transposed(self) -> _Truth:
        return _Truth(self.lo.T, self.hi.T, self.slack.T, self.kink.T)

    def scaled(self, c: float) -> _Truth:
        a, b = c * self.lo, c * self.hi
        return _Truth(np.minimum(a, b), np.maximum(a, b), abs(c) * self.slack, self.kink)

    def nearest(self, g: np.ndarray) -> np.ndarray:
        """The true value nearest yours, element by element (NaN where yours is)."""
        return np.clip(g, self.lo, self.hi)

    def excess(self, g: np.ndarray, rtol: float, atol: float) -> np.ndarray:
        """How far each of yours is beyond the tolerance around the true values: <= 0 agrees, NaN does not."""
        near = self.nearest(g)
        return np.abs(g - near) - self.slack - (atol + rtol * np.abs(near))

    def fits(self, g: np.ndarray, rtol: float, atol: float) -> bool:
        return bool(np.all(self.excess(g, rtol, atol) <= 0))

    def text(self, k: tuple) -> str:
        """The true value of element k, or at a kink the interval it may take."""
        if not self.kink[k]:
            return f"{self.lo[k]:.6g}"
        return f"{self.lo[k]:.6g} to {self.hi[k]:.6g} (a kink)"


def _judge(name: str, true: np.ndarray, given: Any, rtol: float, atol: float, truth: _Truth) -> Row:
    """One row: the errors, and which classic mistake (if any) explains the difference; an element at a kink is
    judged against the range of the gradients around it."""
    row = Row(name, true.shape, False, "", kinks=int(truth.kink.sum()))
    if given is None:
        row.diagnosis = "your gradient is None (never assigned, or a function that returned nothing?)"
        return row
    g = np.asarray(given.data if isinstance(given, Tensor) else given, dtype=np.float64)
    if g.shape != true.shape:
        if g.ndim == 2 and g.shape == true.T.shape and truth.transposed().fits(g, rtol, atol):
            row.diagnosis = f"transposed: your gradient has shape {_shape(g.shape)}, it is the true one transposed"
        else:
            row.diagnosis = (
                f"wrong shape: yours is {_shape(g.shape)}, the input (and its gradient) is {_shape(true.shape)}"
            )
        return row
    closest = truth.nearest(g)
    err = np.abs(g - closest)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(closest))
    excess = truth.excess(g, rtol, atol)
    bad = ~(excess <= 0)  # NaN counts as a disagreement
    if g.size:
        row.max_abs, row.max_rel = float(np.max(err)), float(np.max(rel))
        k = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), true.shape)
        row.worst = f"{_index(k)}: {g[k]:.6g} vs {truth.text(k)}"
    row.ok = not bad.any()
    row.diagnosis = "ok" if row.ok else _diagnose(g, truth, bad, rtol, atol)
    if row.kinks:
        row.diagnosis += "; " + _kinks_text(truth)
    return row


def _kinks_text(truth: _Truth) -> str:
    """How many elements are at a kink, and the range of valid gradients at the first few of them."""
    at = np.flatnonzero(truth.kink)
    ranges = ", ".join(
        f"at {_index(k)} {truth.lo[k]:.6g} to {truth.hi[k]:.6g}"
        for k in (np.unravel_index(f, truth.kink.shape) for f in at[:3])
    )
    size = truth.kink.size
    return (
        f"{at.size} of {size} element{'s' * (size > 1)} at a kink of the loss (relu or abs at exactly 0, a max over "
        f"ties?), where any value between the gradients around it is valid: {ranges}{', ...' * (at.size > 3)}"
    )


def _diagnose(g: np.ndarray, truth: _Truth, bad: np.ndarray, rtol: float, atol: float) -> str:
    if not np.any(g) and np.all(np.isfinite(g)):
        return "all zeros: your gradient is zero everywhere, the true one is not (a missing term, or never assigned?)"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and truth.transposed().fits(g, rtol, atol):
        return "transposed: your gradient is the true one transposed (the shape cannot tell for a square matrix)"
    if truth.scaled(-1.0).fits(g, rtol, atol):
        return "flipped sign: your gradient is minus the true one"
    if g.size == 1:
        return f"wrong value: yours {g.item():.6g}, true {truth.text((0,) * g.ndim)}"
    # a fitted factor explains any one element: only two or more nonzero true elements are evidence of one; it is
    # fitted where the true gradient is one value, and must hold at the kinks too
    true, mine = truth.lo[~truth.kink], g[~truth.kink]
    if np.count_nonzero(np.abs(true) > atol) >= 2 and np.all(np.isfinite(g)):
        factor = float(np.sum(mine * true)) / float(np.sum(true * true))  # the least-squares fit g ~ factor * true
        if factor != 0 and truth.scaled(factor).fits(g, rtol, atol):
            return f"constant factor: your gradient is {_factor(factor)} the true one, everywhere"
    excess = truth.excess(g, rtol, atol)
    k = np.unravel_index(int(np.argmax(np.where(bad, np.where(np.isnan(excess), np.inf, excess), -np.inf))), g.shape)
    return (
        f"mismatch: {int(bad.sum())} of {bad.size} elements ({bad.mean():.0%}) disagree; worst at "
        f"{_index(k)}: yours {g[k]:.6g}, true {truth.text(k)}"
    )


def _index(k: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in k) + ")"


def _factor(c: float) -> str:
    """0.5x (1/2), 0.01x (1/100), 100x, -2x: the factor, and the 1/n it is when it is one (a missing n)."""
    text = f"{c:.6g}x"
    fraction = Fraction(c).limit_denominator(10000)
    if abs(fraction.numerator) == 1 and fraction.denominator > 1 and abs(float(fraction) - c) <= 1e-9 * abs(c):
        text += f" ({fraction.numerator}/{fraction.denominator})"
    return text
