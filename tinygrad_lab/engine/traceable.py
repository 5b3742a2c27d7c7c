"""The numpy that ``tl.compile`` can record, and its rules, written once for ops, layers and optimizers.

``tl.compile`` records a step by running it on traced arrays: ndarray subclasses that record every ufunc, numpy
function, method, view, index and in-place write made on them. Whatever does not touch a traced array is
invisible to it and is frozen into the replay. So, inside a Function, a layer or an optimizer update:

1. make new arrays *like* an input (``zeros(like, shape)``, ``empty(like, shape)``, ``copy_array``), never from
   nothing (``np.zeros(shape)``, ``np.array(x)``), or the replay reuses the first call's values; a Tensor the
   step makes (``Tensor.zeros``, ``tl.tensor(buffer)``) is made again by every replay (``made_in_step``);
2. never branch on values (``if mask.any():``): compute the mask and select with ``where``, always; to reject
   bad values (class indices out of range), pass the array through ``validated``, which every replay runs;
3. never read an array into a Python number (``float(lr)``): keep it a 0-d array and multiply by it, as the
   optimizers do with the learning rate they receive;
4. state that outlives a call (an optimizer's buffers) is recorded only as the tracer's views of it:
   ``active_tracer().traced_state(state)``;
5. what a replay cannot repeat (a fresh random draw each call) calls ``refuse``: the step runs eagerly;
6. of what a trace reads from Python objects, these are checked on every replay: the parameters' arrays and
   requires_grad, the training mode of every module called (Module.__call__, ``note_mode_change``), and
   whether any module had a parameter, buffer or submodule assigned, or an optimizer was made or changed a
   group's parameters, a hyperparameter other than the learning rate (which it keeps in an array) or which state
   arrays it holds, since (``note_assignment``); when one changed, the step is traced again. Other Python state
   (a layer's eps set anew, a number in a dict) stays as traced.

The active tracer lives in one place, the engine's thread-local switches (``autograd.state.tracing``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from tinygrad_lab.engine.autograd import state


def active_tracer() -> Any:
    """The tracer of the ``tl.compile`` call recording in this thread, or None."""
    return state.tracing


def is_traced(arr: Any) -> bool:
    """Whether ``arr`` is one of the tracer's arrays (only while a step is being recorded)."""
    return state.tracing is not None and isinstance(arr, np.ndarray) and type(arr) is not np.ndarray


def untraced(arr: np.ndarray) -> np.ndarray:
    """The plain array behind a traced one (a traced array is a view of it), or ``arr`` itself."""
    return arr.base if is_traced(arr) and arr.base is not None else arr


def zeros(like: np.ndarray, shape: tuple, order: Literal["K", "C"] = "K") -> np.ndarray:
    """Zeros of ``like``'s dtype in ``shape``, made in a way the trace records (rule 1). Untraced, np.zeros
    makes the same array without np.zeros_like's dispatch (__array_function__), the dearer part here.
    ``order="C"``: row-major while tracing too (by default a traced array copies ``like``'s layout), for
    code that writes through ``reshape(-1)``, which is a view only of a row-major array."""
    if state.tracing is not None:
        return np.zeros_like(like, shape=shape, order=order)
    return np.zeros(shape, like.dtype)


def empty(like: np.ndarray, shape: tuple | None = None) -> np.ndarray:
    """An uninitialised array of ``like``'s dtype (and shape, unless ``shape`` is given) the trace records;
    untraced, np.empty (as ``zeros``)."""
    if state.tracing is not None:
        return np.empty_like(like, shape=shape)
    return np.empty(like.shape if shape is None else shape, like.dtype)


def copy_array(data: np.ndarray, dtype: Any) -> np.ndarray:
    """An owned copy of a traced array as ``dtype`` (``np.array(traced)`` would hide the copy from the trace)."""
    return data.astype(dtype)


def made_in_step(source: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``source`` copied as ``dtype``, recorded: how a step makes a Tensor from an array or Python data
    (``Tensor.zeros``, ``tl.tensor(buffer)``) while traced, so that every replay makes it again from ``source``'s
    values then, rather than reusing, or writing on top of, the first call's array (rule 1)."""
    tracer = state.tracing
    assert tracer is not None, "made_in_step is called while a step is traced"
    return tracer.record(("method", "astype"), (source, dtype), {})


def validated(check: Callable[..., np.ndarray], arr: np.ndarray, **attrs: Any) -> np.ndarray:
    """``check(arr, **attrs)``, which raises on bad values and returns ``arr``. Recorded as one operation of
    the step, so every replay checks its call's values as an eager step does (rule 2)."""
    tracer = state.tracing
    if tracer is None or not is_traced(arr):
        return check(arr, **attrs)
    return tracer.record(("call", check), (arr,), attrs, fresh=True)


def refuse(what: str) -> None:
    """Stop ``tl.compile`` from recording a step that does ``what`` (rule 5); nothing happens otherwise."""
    if state.tracing is not None:
        state.tracing.refuse(what)


class _Changes:
    """Counts of what replays depend on outside arrays: ``assignments`` of a module's parameter or submodule
    (Module.__setattr__) and optimizers made; ``modes``, calls of Module.train that changed a training mode."""

    assignments = 0
    modes = 0


changes = _Changes()


def note_assignment() -> None:
    """A module's parameter or submodule was assigned, or an optimizer made or changed (rule 6): replays made
    before trace the step again."""
    changes.assignments += 1


def note_mode_change() -> None:
    """Some module's training mode changed: replays check the modes they recorded (rule 6)."""
    changes.modes += 1
