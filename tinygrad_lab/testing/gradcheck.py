"""gradcheck and gradgradcheck: analytical Jacobians against central finite differences, with torch's defaults."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import enable_grad, no_grad
from tinygrad_lab.engine.autograd import grad as _grad
from tinygrad_lab.engine.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytical and numerical Jacobians disagree (or the function is not checkable)."""


def _as_list(inputs: Tensor | Sequence[Any]) -> list:
    """The inputs as a list: one Tensor is one input (as torch's gradcheck), not a sequence of rows."""
    return [inputs] if isinstance(inputs, Tensor) else list(inputs)


def _outputs(fn: Callable, args: Sequence[Any]) -> tuple:
    """``fn(*args)`` as a tuple of Tensors, or a TypeError saying what fn returned instead."""
    result = fn(*args)
    outputs = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    for j, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            what = f"output {j}" if isinstance(result, (tuple, list)) else "it"
            raise TypeError(
                f"gradcheck: the function returned {type(result).__name__}, and {what} is a "
                f"{type(out).__name__}, not a Tensor: it left the graph (.item(), float(), .numpy()?); "
                "return Tensors"
            )
    return outputs


def _differentiable(inputs: Sequence[Any]) -> list[int]:
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


@contextmanager
def _perturbed(t: Tensor) -> Iterator[np.ndarray]:
    """Within the block, ``t`` holds a float64 working copy of its data for the caller to step in place: the
    same Tensor object, so aliased arguments and closures over it see each step (as torch's gradcheck
    perturbs in place). Its own array is put back afterwards, also when fn raises."""
    original = t.data
    t.data = np.array(original, dtype=np.float64)
    try:
        yield t.data
    finally:
        t.data = original


def _evaluate(fn: Callable, inputs: Sequence[Any]) -> list[np.ndarray]:
    """fn's outputs as float64 arrays, outside the graph."""
    with no_grad():
        return [np.array(o.data, dtype=np.float64) for o in _outputs(fn, inputs)]


def numerical_jacobian(fn: Callable, inputs: Tensor | Sequence[Any], eps: float = 1e-6) -> list[list[np.ndarray]]:
    """Central-difference Jacobians: ``J[i][j]`` is d outputs[j] / d inputs[i], of shape (outputs[j].size,
    inputs[i].size), for every input that requires grad (None for the others). Each input is stepped in
    place, in float64, and left as it was: its array, values and dtype."""
    inputs = _as_list(inputs)
    jacobians: list = [None] * len(inputs)
    for i in _differentiable(inputs):
        with _perturbed(inputs[i]) as x:
            base = x.copy()
            columns = []
            for k in range(x.size):
                x.flat[k] = base.flat[k] + eps
                f_plus = _evaluate(fn, inputs)
                x.flat[k] = base.flat[k] - eps
                f_minus = _evaluate(fn, inputs)
                x.flat[k] = base.flat[k]
                columns.append([(p - m).ravel() / (2 * eps) for p, m in zip(f_plus, f_minus)])
            at_base = _evaluate(fn, inputs)
        jacobians[i] = [
            np.stack([col[j] for col in columns], axis=1) if columns else np.zeros((out.size, 0))
            for j, out in enumerate(at_base)
        ]
    return jacobians


def analytical_jacobian(fn: Callable, inputs: Tensor | Sequence[Any]) -> list[list[np.ndarray]]:
    """The Jacobians that backward computes, laid out as numerical_jacobian's, one backward per output element."""
    inputs = _as_list(inputs)
    diff = _differentiable(inputs)
    outputs = _outputs(fn, inputs)
    jacobians: list = [None] * len(inputs)
    for i in diff:
        jacobians[i] = [np.zeros((o.size, inputs[i].size)) for o in outputs]
    for j, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        for m in range(out.size):
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.flat[m] = 1.0
            grads = _grad(
                out, [inputs[i] for i in diff], grad_outputs=Tensor(seed), retain_graph=True, allow_unused=True
            )
            for i, g in zip(diff, grads):
                if g is not None:
                    jacobians[i][j][m] = np.asarray(g.data, dtype=np.float64).ravel()
    return jacobians


def _excerpt(matrix: np.ndarray, row: int | np.integer, col: int | np.integer, radius: int = 2) -> str:
    r0, c0 = max(row - radius, 0), max(col - radius, 0)
    block = matrix[r0 : row + radius + 1, c0 : col + radius + 1]
    return f"rows {r0}..{r0 + block.shape[0] - 1}, cols {c0}..{c0 + block.shape[1] - 1}:\n" + np.array2string(
        block, precision=6, suppress_small=False
    )


def _compare(analytical: np.ndarray, numerical: np.ndarray, i: int, j: int, atol: float, rtol: float) -> str | None:
    """None when close; otherwise a report naming the input, the output and the worst element."""
    if analytical.shape != numerical.shape:
        return f"Jacobian of output {j} w.r.t. input {i}: shapes differ, {analytical.shape} vs {numerical.shape}"
    excess = np.abs(analytical - numerical) - (atol + rtol * np.abs(numerical))
    bad = ~(excess <= 0)  # NaN on either side counts as a mismatch
    if not bad.any():
        return None
    row, col = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), excess.shape)
    a, n = float(analytical[row, col]), float(numerical[row, col])  # plain floats print plainly
    abs_err = abs(a - n)
    # against a numerical 0 a relative error is no number: say what the reference is instead
    relative = f", relative error {abs_err / abs(n):.3e}" if n != 0 else " against a numerical value of 0"
    return (
        f"Jacobian mismatch for output {j} with respect to input {i}: worst at output element {row}, input "
        f"element {col}: analytical {a!r}, numerical {n!r}; absolute error {abs_err:.3e}{relative} "
        f"(atol={atol}, rtol={rtol}).\nanalytical {_excerpt(analytical, row, col)}\n"
        f"numerical {_excerpt(numerical, row, col)}"
    )


def gradcheck(
    fn: Callable,
    inputs: Tensor | Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check backward's gradients of ``fn(*inputs)`` against central finite differences.

    ``inputs`` is one Tensor or a sequence of arguments: Tensors with requires_grad=True are checked, anything
    else is passed through as a constant. ``fast_mode`` compares random projections u^T J v instead of whole
    Jacobians (one backward and two evaluations per input/output pair). Returns True, or raises GradcheckError
    (returns False when ``raise_exception=False``).
    """
    inputs = _as_list(inputs)
    diff = _differentiable(inputs)
    if not diff:
        return _fail("gradcheck: no input is a Tensor with requires_grad=True", raise_exception)
    for i in diff:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {inputs[i].dtype}, not float64; the finite differences are taken on a "
                f"float64 copy, but backward's gradients are {inputs[i].dtype}, rounded to about "
                f"{np.finfo(inputs[i].dtype).eps:.0e} relative: tight tolerances can fail from rounding alone",
                UserWarning,
                stacklevel=2,
            )
    check = _check_fast if fast_mode else _check_full
    report = check(fn, inputs, diff, eps, atol, rtol, seed)
    return True if report is None else _fail(report, raise_exception)


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _check_full(fn, inputs, diff, eps, atol, rtol, seed) -> str | None:
    numerical = numerical_jacobian(fn, inputs, eps)
    analytical = analytical_jacobian(fn, inputs)
    for i in diff:
        for j, (a, n) in enumerate(zip(analytical[i], numerical[i])):
            report = _compare(a, n, i, j, atol, rtol)
            if report:
                return report
    return None


def _check_fast(fn, inputs, diff, eps, atol, rtol, seed) -> str | None:
    rng = np.random.default_rng(seed)
    outputs = _outputs(fn, inputs)
    for i in diff:
        with _perturbed(inputs[i]) as x:
            base = x.copy()
            v = rng.standard_normal(x.shape)
            x += eps * v
            f_plus = _evaluate(fn, inputs)
            np.copyto(x, base - eps * v)
            f_minus = _evaluate(fn, inputs)
        for j, out in enumerate(outputs):
            u = rng.standard_normal(out.shape)
            numerical = np.sum(u * (f_plus[j] - f_minus[j]) / (2 * eps))
            analytical = 0.0
            if out.requires_grad:
                (g,) = _grad(
                    out, [inputs[i]], grad_outputs=Tensor(u.astype(out.dtype)), retain_graph=True, allow_unused=True
                )
                analytical = 0.0 if g is None else float(np.sum(np.asarray(g.data, np.float64) * v))
            report = _compare(np.array([[analytical]]), np.array([[numerical]]), i, j, atol, rtol)
            if report:
                return "fast mode (projection u^T J v): " + report
    return None


def gradgradcheck(
    fn: Callable,
    inputs: Tensor | Sequence[Any],
    grad_outputs: Sequence[Any] | None = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck the map (inputs, grad_outputs) -> vector-Jacobian product,
    which backward computes with create_graph=True. ``grad_outputs`` default to seeded random tensors."""
    inputs = _as_list(inputs)
    diff = _differentiable(inputs)
    outputs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outputs]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args: Any) -> tuple:
        ins, gos = list(args[:n]), list(args[n:])
        with enable_grad():  # also while gradcheck evaluates finite differences under no_grad
            outs = _outputs(fn, ins)
            pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
            grads = _grad(
                [o for o, _ in pairs],
                [ins[i] for i in diff],
                grad_outputs=[g for _, g in pairs],
                create_graph=True,
                allow_unused=True,
            )
        return tuple(g if g is not None else Tensor(np.zeros(ins[i].shape)) for i, g in zip(diff, grads))

    return gradcheck(
        first_derivatives,
        inputs + grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        fast_mode=fast_mode,
        raise_exception=raise_exception,
        seed=seed,
    )
