"""numpy's dispatch protocols for ``Tensor`` (NEP 13 ``__array_ufunc__``, NEP 18 ``__array_function__``), so
numpy code written for arrays runs on Tensors and is differentiated:

    z = 1.0 / (1.0 + np.exp(-(x @ w)))      # x an ndarray, w a Tensor: z is a Tensor in the graph
    loss = np.mean((y - z) ** 2)

Each supported ufunc and array function maps onto a Tensor op, with numpy's argument names and defaults.
Comparisons, logical and rounding functions, and ``np.zeros_like`` and its kin, give Tensors outside the graph
(like ``t > 0``); queries (``np.shape``, ``np.argmax``, ``np.allclose``...) give numpy's own result. Anything
else raises a TypeError naming the function: a silent conversion would drop the gradient. ``out=`` and
in-place ufuncs (``np.add(t, 1, out=t)``, ``arr += t``) are refused: the write would not be in the graph.
Tensor's own operators and methods never come through here, so the eager op path costs nothing more.
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine import ops
from tinygrad_lab.engine.autograd import as_array, state
from tinygrad_lab.engine.tensor import Tensor

_LEAVE = "to leave the graph on purpose, use t.detach() or t.numpy()"


def _name(func: Any) -> str:
    """``np.exp``, ``np.linalg.svd``: the function as the user wrote the call."""
    name = getattr(func, "__name__", repr(func))
    if getattr(np, name, None) is func:
        return f"np.{name}"
    return f"{getattr(func, '__module__', None) or 'numpy'}.{name}".replace("numpy", "np", 1)


def unsupported(name: str, what: str = "is not supported on Tensors (it would drop the gradient)") -> TypeError:
    """The one error for numpy calls the graph cannot follow."""
    return TypeError(f"{name} {what}; {_LEAVE}")


def dropped_gradient(t: Tensor, into: str) -> RuntimeError:
    """The error for numpy turning a tensor that requires grad into ``into``, which would drop its gradient without a
    word. A RuntimeError, as torch's: numpy turns a TypeError from float(t) into its own 'setting an array element
    with a sequence'."""
    return RuntimeError(
        f"a Tensor of shape {t.shape} that requires grad was converted to {into}, which would drop its gradient: "
        "write X @ W for X.dot(W), fill a np.zeros_like(t) (a Tensor) rather than an ndarray, join with np.stack "
        "rather than np.array([...]); leave the graph on purpose with t.detach(), t.numpy() or under tl.no_grad()"
    )


_STORE_SUBSCR = dis.opmap["STORE_SUBSCR"]


def storing_an_item() -> bool:
    """Whether the Python code that converted a tensor to a number is an item assignment (numpy's ``arr[i] = t``
    calls ``float(t)``), rather than a float(t) or a print: the frame two up is the caller of ``Tensor.__float__``."""
    frame = sys._getframe(2)
    return frame.f_code.co_code[frame.f_lasti] == _STORE_SUBSCR


def _refuse_out(name: str) -> TypeError:
    return TypeError(
        f"{name}: out= and in-place operators with Tensors (arr += t, np.add(t, 1, out=t)) are not "
        "supported, the write would not be in the graph; assign the result instead (arr = arr + t)"
    )


def _data(x: Any) -> Any:
    """Plain numpy values: Tensors unwrapped, also inside lists and tuples (for functions outside the graph)."""
    if isinstance(x, Tensor):  # under tl.compile, the traced array: the replay computes the values again
        return x.data if state.tracing is None else state.tracing.tensor_data(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_data(v) for v in x)
    return x


def _tensor(x: Any) -> Any:
    """A Tensor for x: itself, a stack of a (nested) sequence holding Tensors, or a constant."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)):
        return ops.stack([_tensor(v) for v in x]) if _holds_tensor(x) else Tensor._wrap(np.asarray(x))
    return Tensor._wrap(np.asarray(x))


def _holds_tensor(x: Any) -> bool:
    return isinstance(x, Tensor) or isinstance(x, (list, tuple)) and any(_holds_tensor(v) for v in x)


def _operand(x: Any) -> Any:
    """An op argument: sequences holding Tensors become stacked Tensors; anything else passes as a constant."""
    return _tensor(x) if isinstance(x, (list, tuple)) and _holds_tensor(x) else x


# ---- ufuncs (NEP 13) ---------------------------------------------------------------------------------------------


def _outside(ufunc: np.ufunc) -> Callable:
    """A ufunc whose result carries no gradient (comparisons, logic, rounding): a Tensor outside the graph."""
    return lambda *inputs: Tensor._wrap(np.asarray(ufunc(*_data(inputs))))


UFUNCS: dict[np.ufunc, Callable] = {
    np.add: ops.Add.apply,
    np.subtract: ops.Sub.apply,
    np.multiply: ops.Mul.apply,
    np.true_divide: ops.Div.apply,
    np.power: ops.Pow.apply,
    np.matmul: ops.MatMul.apply,
    np.negative: ops.Neg.apply,
    np.positive: lambda a: a,  # +t is t, as Tensor.__pos__
    np.square: lambda a: ops.Pow.apply(a, 2),
    np.reciprocal: lambda a: ops.Div.apply(1.0, a),
    np.exp: ops.Exp.apply,
    np.log: ops.Log.apply,
    np.sqrt: ops.Sqrt.apply,
    np.tanh: ops.Tanh.apply,
    np.absolute: ops.Abs.apply,
    np.maximum: ops.Maximum.apply,
    np.minimum: ops.Minimum.apply,
}
UFUNCS.update(
    {
        u: _outside(u)
        for u in (
            np.greater,
            np.greater_equal,
            np.less,
            np.less_equal,
            np.equal,
            np.not_equal,
            np.logical_and,
            np.logical_or,
            np.logical_xor,
            np.logical_not,
            np.isfinite,
            np.isinf,
            np.isnan,
            np.signbit,
            np.sign,
            np.floor,
            np.ceil,
            np.rint,
            np.trunc,
        )
    }
)

# What numpy passes when the caller left an option alone; anything else is refused by name.
_UFUNC_DEFAULTS = {"casting": "same_kind", "order": "K", "dtype": None, "subok": True, "where": True, "signature": None}


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: run the Tensor op for ``ufunc`` on inputs where at least one is a Tensor."""
    handler = UFUNCS.get(ufunc)
    if kwargs or method != "__call__" or handler is None:
        if not _carries_gradient(inputs, kwargs):  # nothing to drop (w.data -= lr * w.grad): numpy's own call
            return getattr(ufunc, method)(*_data(inputs), **{k: _data(v) for k, v in kwargs.items()})
        handler = _check_ufunc_call(ufunc, method, kwargs, handler)
    for x in inputs:
        if isinstance(x, (list, tuple)):
            return handler(*[_operand(v) for v in inputs])
    return handler(*inputs)


def _check_ufunc_call(ufunc: np.ufunc, method: str, kwargs: dict, handler: Callable | None) -> Callable:
    """Refuse out=, ufunc methods (reduce, at...), ufuncs without a Tensor op and options the op cannot honour;
    return the handler once the call is accepted."""
    name = f"np.{ufunc.__name__}"
    if any(o is not None for o in kwargs.get("out", ())):
        raise _refuse_out(name)
    if method != "__call__":
        raise unsupported(f"{name}.{method}")
    if handler is None:
        raise unsupported(name)
    for key, value in kwargs.items():
        if key != "out" and (key not in _UFUNC_DEFAULTS or not _is_default(value, _UFUNC_DEFAULTS[key])):
            raise unsupported(f"{name}({key}=...)", "is not supported on Tensors")
    return handler


def _is_default(value: Any, default: Any) -> bool:
    return value is default or isinstance(value, str) and value == default


# ---- array functions (NEP 18), with numpy's signatures -----------------------------------------------------------


def _only_defaults(name: str, **given: Any) -> None:
    """Refuse options the Tensor op cannot honour (``out``, ``where``, ``initial``...); None means not given."""
    for key, value in given.items():
        if value is not None and value is not np._NoValue:
            if key == "out":
                raise _refuse_out(name)
            raise unsupported(f"{name}({key}=...)", "is not supported on Tensors")


def _cast(a: Any, dtype: Any) -> Tensor:
    t = _tensor(a)
    return t if dtype is None else t.astype(dtype)


def _keep(keepdims: Any) -> bool:
    return False if keepdims is np._NoValue else bool(keepdims)


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _only_defaults("np.sum", out=out, initial=initial, where=where)
    return _cast(a, dtype).sum(axis=axis, keepdims=_keep(keepdims))


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _only_defaults("np.mean", out=out, where=where)
    return _cast(a, dtype).mean(axis=axis, keepdims=_keep(keepdims))


def _extreme(name: str) -> Callable:
    def reduce(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _only_defaults(f"np.{name}", out=out, initial=initial, where=where)
        t = _tensor(a)
        return (t.max if name in ("max", "amax") else t.min)(axis=axis, keepdims=_keep(keepdims))

    return reduce


def _ddof(name: str, ddof: Any, correction: Any) -> Any:
    """numpy's two names for the degrees of freedom removed, of which a call gives at most one."""
    if correction is None or correction is np._NoValue:
        return ddof
    if ddof != 0:
        raise ValueError(f"{name}: ddof and correction can't be provided simultaneously (as numpy)")
    return correction


def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    _only_defaults("np.var", out=out, where=where, mean=mean)
    return _cast(a, dtype).var(axis=axis, keepdims=_keep(keepdims), ddof=_ddof("np.var", ddof, correction))


def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    _only_defaults("np.std", out=out, where=where, mean=mean)  # Tensor.std: gradient 0 where the spread is 0
    return _cast(a, dtype).std(axis=axis, keepdims=_keep(keepdims), ddof=_ddof("np.std", ddof, correction))


def _ndim(x: Any) -> int:
    return x.ndim if isinstance(x, Tensor) else np.ndim(x)


def _dot(a, b, out=None):
    _only_defaults("np.dot", out=out)
    a, b = _operand(a), _operand(b)
    if _ndim(a) == 0 or _ndim(b) == 0:
        return ops.Mul.apply(a, b)
    if _ndim(b) > 2:  # np.dot pairs a's last axis with b's second-to-last: np.matmul's, up to a 2-d b
        raise unsupported(
            f"np.dot of {_ndim(a)}-d and {_ndim(b)}-d arrays",
            "is not supported on Tensors (np.matmul and np.dot differ there)",
        )
    return ops.MatMul.apply(a, b)


def _transpose(a, axes=None):
    return _tensor(a).transpose(axes)


def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise unsupported(f"np.reshape(order={order!r})", "is not supported on Tensors")
    return _tensor(a).reshape(newshape if shape is None else shape)


def _ravel(a, order="C"):
    return _reshape(a, -1, order)


def _squeeze(a, axis=None):
    t = _tensor(a)
    for i in () if axis is None else ops._normalize_axes(axis, t.ndim, "squeeze"):
        if t.shape[i] != 1:  # numpy refuses what torch's squeeze leaves alone
            raise ValueError(f"squeeze: axis {i} has size {t.shape[i]}, not 1 (shape {t.shape})")
    return t.squeeze(axis)


def _expand_dims(a, axis):
    t = _tensor(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = t.ndim + len(axes)
    if any(not -ndim <= x < ndim for x in axes) or len({int(x) % ndim for x in axes}) != len(axes):
        raise ValueError(
            f"np.expand_dims: axis {axis} is out of range or repeated for a {ndim}-d result (input shape {t.shape})"
        )
    positions = {int(x) % ndim for x in axes}
    shape = iter(t.shape)
    return t.reshape(tuple(1 if i in positions else next(shape) for i in range(ndim)))


def _broadcast_to(array, shape, subok=False):
    return _tensor(array).broadcast_to((shape,) if isinstance(shape, (int, np.integer)) else shape)


def _swapaxes(a, axis1, axis2):
    return _tensor(a).swapaxes(axis1, axis2)


def _concatenate(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _only_defaults("np.concatenate", out=out, dtype=dtype, casting=casting)
    if axis is None:
        return ops.cat([_tensor(a).reshape(-1) for a in arrays], axis=0)
    return ops.cat([_operand(a) for a in arrays], axis=axis)


def _stack(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _only_defaults("np.stack", out=out, dtype=dtype, casting=casting)
    return ops.stack([_operand(a) for a in arrays], axis=axis)


def _where(condition, x=np._NoValue, y=np._NoValue):
    if x is np._NoValue and y is np._NoValue:  # the indices where condition holds: no gradient to keep
        return np.where(_data(condition))
    return ops.Where.apply(_data(condition), _operand(x), _operand(y))


def _clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue, **kwargs):
    _only_defaults("np.clip", out=out, **kwargs)
    lo = a_min if a_min is not np._NoValue else None if min is np._NoValue else min
    hi = a_max if a_max is not np._NoValue else None if max is np._NoValue else max
    for bound in (lo, hi):
        if isinstance(bound, Tensor) and bound.requires_grad:
            raise unsupported(
                "np.clip with Tensor bounds that require grad",
                "is not supported (the bounds are constants); use np.maximum/np.minimum",
            )
    lo, hi = (b.item() if isinstance(b, np.generic) else _data(b) for b in (lo, hi))  # numpy scalars stay weak
    return ops.Clip.apply(_operand(a), lo=lo, hi=hi)


def _copy(a, order="K", subok=False):
    return ops.Clone.apply(_tensor(a))


def _einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    """numpy's einsum (its subscripts-string form) as tl.einsum; ``optimize`` only picks an order of summing."""
    _only_defaults("np.einsum", out=out, dtype=dtype)
    return ops.einsum(*operands)


def _flip(m, axis=None):
    t = _tensor(m)
    return t.flip(tuple(range(t.ndim)) if axis is None else axis)


def _roll(a, shift, axis=None):
    if isinstance(axis, (tuple, list)) and isinstance(shift, (int, np.integer)):
        shift = (shift,) * len(axis)  # numpy broadcasts one shift over the axes
    return _tensor(a).roll(shift, axis)


def _tile(A, reps):
    t = _tensor(A)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    return t.repeat((1,) * (t.ndim - len(reps)) + reps)  # numpy pads reps with leading 1s, torch's repeat does not


def _tril(m, k=0):
    return _tensor(m).tril(k)


def _triu(m, k=0):
    return _tensor(m).triu(k)


def _cumsum(a, axis=None, dtype=None, out=None):
    _only_defaults("np.cumsum", out=out)
    t = _cast(a, dtype)
    return t.reshape(-1).cumsum(0) if axis is None else t.cumsum(axis)


def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    _only_defaults("np.sort", order=order)
    t = _tensor(a)
    return t.reshape(-1).sort(0).values if axis is None else t.sort(axis).values  # stable, whatever the kind


def _values(func: Callable) -> Callable:
    """Queries and index functions: numpy's own answer on the values (no gradient to keep)."""
    return lambda *args, **kwargs: func(*_data(args), **{k: _data(v) for k, v in kwargs.items()})


def _outside_fn(func: Callable) -> Callable:
    """Functions without a useful gradient (np.round, np.isclose, np.zeros_like): a Tensor outside the graph."""
    return lambda *args, **kwargs: Tensor._wrap(as_array(_values(func)(*args, **kwargs)))  # traced arrays kept


FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _sum,
    np.mean: _mean,
    np.var: _var,
    np.std: _std,
    np.max: _extreme("max"),
    np.amax: _extreme("amax"),
    np.min: _extreme("min"),
    np.amin: _extreme("amin"),
    np.dot: _dot,
    np.transpose: _transpose,
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.squeeze: _squeeze,
    np.expand_dims: _expand_dims,
    np.broadcast_to: _broadcast_to,
    np.swapaxes: _swapaxes,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.where: _where,
    np.clip: _clip,
    np.copy: _copy,
    np.einsum: _einsum,
    np.flip: _flip,
    np.roll: _roll,
    np.tile: _tile,
    np.tril: _tril,
    np.triu: _triu,
    np.cumsum: _cumsum,
    np.sort: _sort,
}
FUNCTIONS.update(
    {
        f: _values(f)
        for f in (
            np.shape,
            np.ndim,
            np.size,
            np.argmax,
            np.argmin,
            np.allclose,
            np.array_equal,
            np.array_equiv,
            np.any,
            np.all,
            np.count_nonzero,
            np.argsort,
            np.flatnonzero,
            np.nonzero,
        )
    }
)
# np.zeros_like(t) is a Tensor, so numpy code that fills it (out[i] = t[i] * 2) writes into the graph
_OUTSIDE = (np.round, np.around, np.isclose, np.zeros_like, np.ones_like, np.empty_like, np.full_like)
FUNCTIONS.update({f: _outside_fn(f) for f in _OUTSIDE})


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: the Tensor version of a numpy function called with a Tensor among its
    arguments."""
    handler = FUNCTIONS.get(func)
    if handler is None or kwargs.get("out") is not None:
        if not _carries_gradient(args, kwargs):  # nothing to drop (np.unique(t > 0)): numpy's own call
            return func(*_data(args), **{k: _data(v) for k, v in kwargs.items()})
        if handler is None:
            raise unsupported(_name(func))
    return handler(*args, **kwargs)


def _carries_gradient(args: tuple, kwargs: dict) -> bool:
    """Whether a Tensor that requires grad is among a numpy call's arguments in grad mode (or a Tensor is its
    out=, whose write would bypass the graph): only then can a call the graph cannot follow drop a gradient."""
    if any(isinstance(o, Tensor) for o in _flat(kwargs.get("out"))):
        return True
    return state.grad_enabled and any(
        isinstance(x, Tensor) and x.requires_grad for x in _flat(args) + _flat(tuple(kwargs.values()))
    )


def _flat(value: Any) -> list:
    """The values inside nested lists and tuples (numpy's arguments: np.stack([a, b]), out=(buf,))."""
    if isinstance(value, (list, tuple)):
        return [y for v in value for y in _flat(v)]
    return [value]
