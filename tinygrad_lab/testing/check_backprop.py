"""Judge a hand-written backward pass: ``check_backprop(loss, inputs, grads)`` runs the user's numpy loss on
Tensors, differentiates it, makes sure that autograd result agrees with central finite differences, and
compares the hand-computed gradients with it, naming the classic mistakes (a constant factor, a flipped sign,
a transposed matrix, the wrong shape, all zeros). Elements where the loss has a kink (relu at exactly 0, a max
over tied values: one-sided differences disagree) have no true gradient; they are reported, not judged.

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
_KINK_SEARCH = 1000  # the most elements of one input searched one by one for a kink (4 losses each)
_ULP = float(np.finfo(np.float64).eps)


class BackpropCheckError(RuntimeError):
    """The check cannot judge the gradients: the loss is not a differentiable scalar of its inputs here."""


@dataclass
class Row:
    """The verdict on one input's gradient: ``diagnosis`` is "ok" when it agrees."""

    name: str
    shape: tuple
    ok: bool
    diagnosis: str
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    worst: str = "-"
    unjudged: int = 0  # elements at a kink of the loss, where no gradient is the true one


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
        unjudged = sum(row.unjudged for row in self.rows)
        head = (
            f"check_backprop: all {len(self.rows)} gradients agree"
            if not bad
            else f"check_backprop: {bad} of {len(self.rows)} gradients disagree"
        )
        if unjudged:
            kinked = f"{unjudged} element{'s' * (unjudged > 1)} at a kink not judged"
            head += f"; {kinked}" if bad else f" where the loss is differentiable; {kinked}"
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
    true ones, element by element: |yours - true| <= atol + rtol * |true|. See the module docstring."""
    inputs, grads = list(inputs), list(grads)
    names = [f"inputs[{i}]" for i in range(len(inputs))] if names is None else list(names)
    if not len(inputs) == len(grads) == len(names):
        raise ValueError(
            f"check_backprop: {len(inputs)} inputs, {len(grads)} gradients and {len(names)} names; "
            "give one gradient (and one name) per input, in the same order"
        )
    arrays, notes = _float64_inputs(inputs, names)
    true = _autograd(loss, arrays)
    kinks = _cross_check(loss, arrays, true, names)
    searched = ", ".join(name for name, k in zip(names, kinks) if k is not None)
    notes.append(
        f"autograd agreed with central differences along {_DIRECTIONS} random directions per input"
        + (f" (element by element for {searched}, where one-sided differences showed a kink)." if searched else ".")
    )
    rows = [_judge(name, t, g, rtol, atol, {} if k is None else k) for name, t, g, k in zip(names, true, grads, kinks)]
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


def _cross_check(loss: Callable, arrays: list, true: list, names: list) -> list[dict[int, _Slopes] | None]:
    """Directional derivatives of autograd vs central differences: an engine bug (or a loss that reads values
    outside the graph) must not make a wrong hand-written gradient look right. Where one-sided differences
    show a kink, the input is searched element by element; per input, its kinks by flat index (None: none)."""
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
        kink = next((s for s in slopes if s.kink), None)
        if kink is not None:
            found.append(_search_kinks(loss, arrays, true, i, name, f0, kink))
            continue
        for v, s in zip(directions, slopes):
            if not s.agrees(float(np.sum(true[i] * v))):
                raise _disagreement(name, "along a random direction", float(np.sum(true[i] * v)), s.central)
        found.append(None)
    return found


def _search_kinks(
    loss: Callable, arrays: list, true: list, i: int, name: str, f0: float, seen: _Slopes
) -> dict[int, _Slopes]:
    """The elements of input i along which the loss has a kink; autograd cross-checked on the others."""
    base = arrays[i]
    if base.size > _KINK_SEARCH:
        raise _unlocated(
            name, seen, f"{name} has {base.size} elements, more than the {_KINK_SEARCH} searched one by one"
        )
    kinks = {}
    for k in range(base.size):
        e = np.zeros(base.shape)
        e.flat[k] = 1.0
        s = _slopes(loss, arrays, i, e, f0)
        if s.kink:
            kinks[k] = s
        elif not s.agrees(float(true[i].flat[k])):
            where = f"at element {_index(np.unravel_index(k, base.shape))}"
            raise _disagreement(name, where, float(true[i].flat[k]), s.central)
    if not kinks:
        raise _unlocated(name, seen, "along no single element")
    return kinks


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


def _value(loss: Callable, arrays: list, index: int, replacement: np.ndarray) -> float:
    args = [Tensor(replacement if k == index else a) for k, a in enumerate(arrays)]
    with no_grad():
        return float(_call(loss, args).data.reshape(()))


def _judge(name: str, true: np.ndarray, given: Any, rtol: float, atol: float, kinks: dict[int, _Slopes]) -> Row:
    """One row: the errors, and which classic mistake (if any) explains the difference; elements at a kink
    are left out and listed."""
    row = Row(name, true.shape, False, "", unjudged=len(kinks))
    if given is None:
        row.diagnosis = "your gradient is None (never assigned, or a function that returned nothing?)"
        return row
    g = np.asarray(given.data if isinstance(given, Tensor) else given, dtype=np.float64)
    if g.shape != true.shape:
        if g.ndim == 2 and g.shape == true.T.shape and _close(g, true.T, rtol, atol):
            row.diagnosis = f"transposed: your gradient has shape {_shape(g.shape)}, it is the true one transposed"
        else:
            row.diagnosis = (
                f"wrong shape: yours is {_shape(g.shape)}, the input (and its gradient) is {_shape(true.shape)}"
            )
        return row
    judged = np.ones(true.shape, dtype=bool)
    judged.flat[list(kinks)] = False
    g, true = np.where(judged, g, 0.0), np.where(judged, true, 0.0)  # a kink's element agrees with nothing
    err = np.abs(g - true)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(true))
    excess = np.where(judged, err - (atol + rtol * np.abs(true)), -np.inf)
    bad = ~(excess <= 0)  # NaN counts as a disagreement
    if judged.any():
        row.max_abs, row.max_rel = float(np.max(err[judged])), float(np.max(rel[judged]))
        k = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), true.shape)
        row.worst = f"{_index(k)}: {g[k]:.6g} vs {true[k]:.6g}"
    row.ok = not bad.any()
    row.diagnosis = "ok" if row.ok else _diagnose(g, true, bad, rtol, atol)
    if kinks:
        judged_text = "ok elsewhere" if row.ok else row.diagnosis
        row.diagnosis = (f"{judged_text}; " if judged.any() else "") + _kinks_text(kinks, true.shape)
    return row


def _kinks_text(kinks: dict[int, _Slopes], shape: tuple) -> str:
    """Which elements were not judged, and the two slopes that make the first few of them a kink."""
    size = int(np.prod(shape))
    slopes = ", ".join(
        f"at {_index(np.unravel_index(k, shape))} {s.below:.6g} from below, {s.above:.6g} from above"
        for k, s in list(kinks.items())[:3]
    )
    more = ", ..." if len(kinks) > 3 else ""
    return (
        f"not judged: {len(kinks)} of {size} element{'s' * (size > 1)}, where the loss has a kink and no gradient "
        f"is the true one (slopes {slopes}{more}; relu or abs at exactly 0, a max over ties?)"
    )


def _diagnose(g: np.ndarray, true: np.ndarray, bad: np.ndarray, rtol: float, atol: float) -> str:
    if not np.any(g) and np.all(np.isfinite(g)):
        return "all zeros: your gradient is zero everywhere, the true one is not (a missing term, or never assigned?)"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and _close(g, true.T, rtol, atol):
        return "transposed: your gradient is the true one transposed (the shape cannot tell for a square matrix)"
    if _close(g, -true, rtol, atol):
        return "flipped sign: your gradient is minus the true one"
    if g.size == 1:
        return f"wrong value: yours {g.item():.6g}, true {true.item():.6g}"
    # a fitted factor explains any one element: only two or more nonzero true elements are evidence of one
    if np.count_nonzero(np.abs(true) > atol) >= 2 and np.all(np.isfinite(g)):
        factor = float(np.sum(g * true)) / float(np.sum(true * true))  # the least-squares fit g ~ factor * true
        if _close(g, factor * true, rtol, atol):
            return f"constant factor: your gradient is {_factor(factor)} the true one, everywhere"
    k = np.unravel_index(int(np.argmax(np.where(bad, np.abs(g - true), -np.inf))), true.shape)
    return (
        f"mismatch: {int(bad.sum())} of {bad.size} elements ({bad.mean():.0%}) disagree; worst at "
        f"{_index(k)}: yours {g[k]:.6g}, true {true[k]:.6g}"
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


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
