"""Recording a step: ``TracedArray`` performs every numpy operation for real and records it; the tracer keeps
the record (slots for arrays, ops with their arguments) that the replay is built from."""

from __future__ import annotations

import inspect
import operator
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import state
from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.tensor import Tensor


class CaptureError(RuntimeError):
    """The step cannot be captured (or its replay disagrees with eager execution)."""


_VALUE_READ = (
    "compile: the step reads an array value into Python ({how}) while being captured; a replay cannot "
    "follow data-dependent control flow. Move it out of the step, or run eagerly (--no-compile)."
)


class TracedArray(np.ndarray):
    """An ndarray whose numpy operations are recorded by the active tracer while they run.

    One that escapes its trace (a Tensor the step appended to a list) is, once no step is traced, the plain
    array of the values of that call; while another step is traced, that step reads it as an array from
    outside (``Tracer._template``)."""

    _slot: int | None = None
    _owner: Tracer | None = None  # the tracer that made it

    def __array_finalize__(self, obj: Any) -> None:
        self._slot = None  # made by numpy behind the tracer's back: an error if its tracer ever records it
        self._owner = getattr(obj, "_owner", None)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented  # ndarray (op) Tensor: Tensor's dispatch applies the op, which records its numpy work
        tracer = state.tracing
        if tracer is None:
            return getattr(ufunc, method)(*plain(inputs), **plain(kwargs))
        return tracer.record(("ufunc", ufunc, method), inputs, kwargs)

    # numpy passes a tuple and a dict (NEP 18); its stubs declare Iterable and Mapping
    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:  # type: ignore[override]
        if any(issubclass(t, Tensor) for t in types):
            return NotImplemented
        tracer = state.tracing
        if tracer is None or func in _SHAPE_QUERIES:  # a replay is made for one shape: its queries are not recorded
            return func(*plain(args), **plain(kwargs))
        return tracer.record(("call", func), *_out_by_name(func, args, kwargs))

    def _method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        tracer = state.tracing
        if tracer is None:
            return getattr(np.ndarray, name)(*plain((self,) + args), **plain(kwargs))
        return tracer.record(("method", name), (self,) + args, kwargs)

    def reshape(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reshape", *args, **kwargs)

    def transpose(self, *args: Any) -> Any:
        return self._method("transpose", *args)

    def swapaxes(self, *args: Any) -> Any:
        return self._method("swapaxes", *args)

    def astype(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("astype", *args, **kwargs)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("copy", *args, **kwargs)

    def ravel(self, *args: Any) -> Any:
        return self._method("ravel", *args)

    def view(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # a view as another dtype or type: numpy's own, unrecorded
            return super().view(*args, **kwargs)
        return self._method("view")  # the same memory (Tensor.detach)

    @property
    def T(self) -> Any:
        return self._method("transpose")

    def __getitem__(self, index: Any) -> Any:
        parts = index if isinstance(index, tuple) else (index,)
        if state.tracing is not None and any(isinstance(p, TracedArray) and p.dtype == bool for p in parts):
            raise CaptureError(
                f"compile: the step indexes an array of shape {self.shape} with a boolean mask computed from its "
                "inputs; the result's shape depends on their values, which a replay cannot follow (select with "
                "tl.where instead, or index outside the step)"
            )
        return self._method("__getitem__", index)

    def __setitem__(self, index: Any, value: Any) -> None:
        tracer = state.tracing
        if tracer is None:
            np.ndarray.__setitem__(plain(self), plain(index), plain(value))
            return
        tracer.record(("setitem",), (self, index, value), {})

    def _read(self, how: str, convert: Callable[[np.ndarray], Any]) -> Any:
        if self._owner is not None and self._owner is state.tracing:
            raise CaptureError(_VALUE_READ.format(how=how))
        return convert(plain(self))  # an array from outside the step being traced: its values are fixed

    def __bool__(self) -> bool:
        return self._read("bool()", bool)

    def __float__(self) -> float:
        return self._read("float()", float)

    def __int__(self) -> int:
        return self._read("int()", int)

    def __index__(self) -> int:
        return self._read("use as an index", operator.index)

    def item(self, *args: Any) -> Any:
        return self._read(".item()", lambda a: a.item(*args))

    def tolist(self) -> Any:
        return self._read(".tolist()", np.ndarray.tolist)


_SHAPE_QUERIES = {np.shape, np.ndim, np.size}
_OUT_PARAMETERS: dict = {}  # numpy function -> (position of out, names from there on), or None


def _out_by_name(func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A numpy call with ``out`` (and what follows it) passed by name: ``np.clip(g, lo, hi, g)`` writes into
    ``g`` as ``out=g`` does, and the tracer tells a write from a result by ``out=``. (ufuncs get ``out`` by name
    from numpy already.)"""
    if func not in _OUT_PARAMETERS:
        _OUT_PARAMETERS[func] = _out_parameters(func)
    spec = _OUT_PARAMETERS[func]
    if spec is None or len(args) <= spec[0]:
        return args, kwargs  # out not given by position
    position, names = spec
    by_name = dict(zip(names, args[position:]))
    if len(args) > position + len(names) or not by_name.keys().isdisjoint(kwargs):
        return args, kwargs  # a call numpy rejects with its own TypeError
    return args[:position], {**by_name, **kwargs}


def _out_parameters(func: Any) -> tuple[int, list[str]] | None:
    """Where ``func`` takes ``out`` by position, and the names of its parameters from there on; None if it
    takes no ``out`` by position (or has no signature to tell)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional]
    if "out" not in names:
        return None
    position = names.index("out")
    if any(p.kind is p.POSITIONAL_ONLY for p in positional[position:]):
        return None
    return position, names[position:]


def plain(value: Any) -> Any:
    """``value`` with each traced array in it (through lists, tuples and dicts) as the plain array it stands
    for: the tracer's own array for its slot (one object, so a later trace sees one array), else a view."""
    if isinstance(value, TracedArray):
        owner, slot = value._owner, value._slot
        if owner is not None and slot is not None:
            return owner.slots[slot].value
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Slot:
    """One array of the record: a step input, an external array (parameter, optimizer state, constant
    the step closes over), or the result of a recorded operation."""

    __slots__ = ("kind", "value", "op", "written", "view_of")

    def __init__(self, kind: str, value: np.ndarray, op: int | None = None, view_of: list | None = None):
        self.kind = kind  # "input" | "external" | "result"
        self.value = value  # the real array at trace time (for externals: the live object itself)
        self.op = op
        self.written = False  # written in place by some operation, directly or through a view
        self.view_of = view_of or []  # the argument slots whose memory this result shares


class Ref:
    """Placeholder for a slot inside an operation's recorded arguments."""

    __slots__ = ("slot",)

    def __init__(self, slot: int):
        self.slot = slot


class Op:
    __slots__ = ("kind", "args", "kwargs", "out", "inplace", "is_view", "origin")

    def __init__(self, kind: tuple, args: Any, kwargs: dict, out: int, inplace: bool, is_view: bool):
        self.kind, self.args, self.kwargs, self.out, self.inplace, self.is_view = (
            kind,
            args,
            kwargs,
            out,
            inplace,
            is_view,
        )
        self.origin = _origin()  # the op whose forward or backward made this call, for messages


def _origin(depth: int = 16) -> str | None:
    """ "MaxPool.backward" when a Function's forward or backward is on the stack (the nearest one), else None.
    Read once per recorded call, while tracing: never on the op path."""
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return None
        name = frame.f_code.co_name
        if name in ("forward", "backward") and "ctx" in frame.f_code.co_varnames:
            ctx = frame.f_locals.get("ctx")  # unbound yet in a function that names a local ctx later
            if isinstance(ctx, Function):
                return f"{type(ctx).__name__}.{name}"
        frame = frame.f_back
    return None


class Tracer:
    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.ops: list[Op] = []
        self.external_ids: dict = {}
        self.swapped: list = []  # (tensor, original data) to restore after tracing
        self.views: dict = {}  # id(tensor) -> the traced view swapped in for its data
        self.modules: dict = {}  # id(module) -> each Module called while tracing (Module.__call__)

    # -- slots ----------------------------------------------------------------------------------------
    def _new_slot(
        self, kind: str, value: np.ndarray, op: int | None = None, view_of: list | None = None
    ) -> TracedArray:
        self.slots.append(Slot(kind, value, op, view_of))
        return self._traced(value, len(self.slots) - 1)

    def _traced(self, value: np.ndarray, slot: int) -> TracedArray:
        """The traced view of a slot's array, which records on this tracer."""
        traced = value.view(TracedArray)
        traced._slot, traced._owner = slot, self
        return traced

    def input(self, value: np.ndarray) -> TracedArray:
        """A step argument's values, row-major as the native code reads every argument (NativeStep._bind)."""
        return self._new_slot("input", np.array(value, order="C"))

    def refuse(self, what: str) -> None:
        """The step does something a replay cannot repeat (engine/traceable.py, rule 5)."""
        raise CaptureError(f"compile: the step {what}, which a replay cannot repeat; run it eagerly (--no-compile)")

    def external(self, array: np.ndarray) -> int:
        key = id(array)
        if key not in self.external_ids:
            base = array.base
            while base is not None:  # a view of a traced value that numpy made without telling us
                if any(base is s.value for s in self.slots if s.kind != "external"):
                    raise CaptureError(
                        "compile: an array derived from a traced value escaped the capture (np.asarray or "
                        f"np.array of it, shape {array.shape}); use Tensor ops inside the step"
                    )
                base = getattr(base, "base", None)
            self.external_ids[key] = self._new_slot("external", array)._slot
        return self.external_ids[key]

    def tensor_data(self, t: Tensor) -> TracedArray:
        """Swap a Tensor's plain data (a parameter, a constant) for a traced view of the same memory."""
        data = t.data
        if isinstance(data, TracedArray):
            if data._owner is self:
                return data
            data = plain(data)  # left by an earlier trace: the step reads it as an array from outside
        view = self._traced(data, self.external(data))
        self.swapped.append((t, data))
        self.views[id(t)] = view
        t.data = view
        return view

    def rebound(self) -> list:
        """The swapped Tensors whose ``.data`` the step replaced with another array (``w.data = w.data - ...``):
        a replay updates arrays in place and cannot follow a new one."""
        return [t for t, _ in self.swapped if t.data is not self.views[id(t)]]

    def traced_state(self, arrays: dict) -> dict:
        """A copy of a state dict (an optimizer's buffers) whose arrays are traced views of the originals:
        in-place updates of state that lives across calls must be recorded too."""
        result = {}
        for key, value in arrays.items():
            if isinstance(value, np.ndarray) and not isinstance(value, TracedArray):
                value = self._traced(value, self.external(value))
            result[key] = value
        return result

    # -- recording ------------------------------------------------------------------------------------
    def _template(self, value: Any) -> Any:
        """Arguments with arrays replaced by slot references (recursing into lists and tuples)."""
        if isinstance(value, TracedArray) and value._owner is not self:
            return Ref(self.external(plain(value)))  # left by an earlier trace: an array from outside this one
        if isinstance(value, TracedArray):
            if value._slot is None:
                raise CaptureError(
                    "compile: an array was produced by a numpy operation the capture does not record "
                    f"(shape {value.shape}); use Tensor ops inside the step or run eagerly (--no-compile)"
                )
            return Ref(value._slot)
        if isinstance(value, np.ndarray):
            return Ref(self.external(value))
        if isinstance(value, (list, tuple)):
            return type(value)(self._template(v) for v in value)
        return value

    def _plain(self, template: Any) -> Any:
        if isinstance(template, Ref):
            slot = self.slots[template.slot]
            return slot.value
        if isinstance(template, (list, tuple)):
            return type(template)(self._plain(v) for v in template)
        return template

    def record(self, kind: tuple, args: tuple, kwargs: dict, fresh: bool = False) -> Any:
        """Run one numpy operation on the traced arrays and append it to the record. ``fresh``: its result is a
        new array even when it is its argument (a value check returns what it checked), so every replay runs it;
        recorded as a view, it would run once, when the replay is built."""
        out_arg = kwargs.pop("out", None)
        arg_t = self._template(tuple(args))
        kw_t = {k: self._template(v) for k, v in kwargs.items()}
        plain_args, plain_kwargs = self._plain(arg_t), {k: self._plain(v) for k, v in kw_t.items()}
        inplace_target = None
        if kind[0] == "setitem":
            inplace_target = arg_t[0].slot
        elif kind[0] == "ufunc" and kind[2] == "at" or kind[0] == "call" and kind[1] is np.copyto:
            inplace_target = arg_t[0].slot
        elif out_arg is not None:
            outs = out_arg if isinstance(out_arg, tuple) else (out_arg,)
            if len(outs) != 1 or outs[0] is None:
                raise CaptureError(f"compile: {op_name(kind)} with several outputs is not supported")
            inplace_target = self._template(outs[0]).slot
            plain_kwargs["out"] = self.slots[inplace_target].value

        result = execute(kind, plain_args, plain_kwargs)
        if fresh:
            result = np.array(result)

        index = len(self.ops)
        if inplace_target is not None:
            for slot in with_bases(inplace_target, self.slots):
                self.slots[slot].written = True
            self.ops.append(Op(kind, arg_t, kw_t, inplace_target, True, False))
            if out_arg is None:  # setitem, ufunc.at, np.copyto: they return nothing
                return None
            return out_arg if isinstance(out_arg, np.ndarray) else out_arg[0]
        if not isinstance(result, np.ndarray):
            if (
                isinstance(result, (tuple, list))
                or not np.isscalar(result)
                and result is not None
                and not isinstance(result, np.generic)
            ):
                raise CaptureError(f"compile: {op_name(kind)} returned {type(result).__name__}, which is not supported")
            result = np.asarray(result)
        view_of = [r.slot for r in refs(arg_t) if np.may_share_memory(result, self.slots[r.slot].value)]
        traced = self._new_slot("result", result, index, view_of)
        self.ops.append(Op(kind, arg_t, kw_t, len(self.slots) - 1, False, bool(view_of)))  # the slot just made
        return traced


def with_bases(slot: int, slots: list) -> list:
    """The slot and every slot it is a view of, through chains of views: a write to it changes them all."""
    chain, todo = [], [slot]
    while todo:
        s = todo.pop()
        if s not in chain:
            chain.append(s)
            todo += slots[s].view_of
    return chain


def refs(template: Any) -> list:
    if isinstance(template, Ref):
        return [template]
    if isinstance(template, (list, tuple)):
        return [r for v in template for r in refs(v)]
    if isinstance(template, dict):
        return [r for v in template.values() for r in refs(v)]
    return []


def op_name(kind: tuple) -> str:
    if kind[0] == "ufunc":
        return f"np.{kind[1].__name__}" + ("" if kind[2] == "__call__" else f".{kind[2]}")
    if kind[0] == "call":
        name = getattr(kind[1], "__name__", kind[1])
        return f"np.{name}" if getattr(kind[1], "__module__", "").startswith("numpy") else str(name)
    if kind[0] == "method":
        return f"ndarray.{kind[1]}"
    return "ndarray.__setitem__"


def execute(kind: tuple, args: tuple, kwargs: dict) -> Any:
    if kind[0] == "ufunc":
        ufunc, method = kind[1], kind[2]
        return getattr(ufunc, method)(*args, **kwargs)
    if kind[0] == "call":
        return kind[1](*args, **kwargs)
    if kind[0] == "method":
        return getattr(np.ndarray, kind[1])(*args, **kwargs)
    target, index, value = args
    target[index] = value
    return None
