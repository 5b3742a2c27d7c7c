"""``tl.compile``: capture one fixed-shape training step and replay its numpy work without the graph.

    step = tl.compile(train_step)      # train_step(x, y) does zero_grad, forward, backward, optimizer step
    for epoch in range(20000):
        loss = step(x, y)

How it works. The first call runs eagerly (it creates optimizer state). The second call runs eagerly too,
but with every array the step touches swapped for a ``TracedArray``: an ndarray subclass that performs
each numpy operation for real and records it (ufuncs, numpy functions, views, indexing, in-place writes).
The Tensor graph, the backward walk and the optimizer run as usual; only their numpy work is kept. The
record becomes one straight-line Python function in which every result has a preallocated buffer and
every ufunc and matmul writes into it with ``out=``; views are made once, values that depend on no input
or parameter are computed once, and work whose result nobody reads is dropped. The third call checks the
replay against an eager run of the same step (both from the same state): the arrays the step writes, the
gradients and the outputs must agree. If they differ it raises ``CaptureError``, drops the replay, and later
calls with that signature run eagerly; otherwise later calls just replay.

Where a C compiler is found, the replay runs as native code instead (``tinygrad_lab.native``: compiled in a
thread while the numpy replay runs, then checked against eager in the same way); ``step.backend`` says which
runs and why, ``step.run(n, *args)`` runs n steps and returns their losses, ``native=False`` keeps numpy.

After a replay a parameter's ``.grad`` is the replay's buffer, overwritten by the next call (copy it to
keep it). A Tensor argument that ``backward`` reaches gets a ``.grad`` of its own on each call: that call's
gradient (replacing, not adding to, a ``.grad`` it already had).

What a step may do: anything built from Tensor ops, ``backward`` and in-place optimizer updates. What it
must not do: read array values into Python (``.item()``, ``if loss > x``): that is data-dependent control
flow, which a replay cannot follow, so it raises ``CaptureError`` while tracing. An optimizer's ``lr`` may
change at any time: it lives in an array the replay reads. Other Python numbers the step uses (a learning
rate of its own, a step counter kept as an int) are frozen at their values on the traced (second) call: the
check catches a change between the second and third call, nothing catches a later one. A call with other
shapes, dtypes, ``requires_grad`` or Python arguments traces again (one replay is kept per signature).
"""
from __future__ import annotations

import builtins
import functools
from typing import Any, Callable

import numpy as np

from tinygrad_lab.autograd import state
from tinygrad_lab.tensor import Tensor


class CaptureError(RuntimeError):
    """The step cannot be captured (or its replay disagrees with eager execution)."""


_VALUE_READ = (
    "compile: the step reads an array value into Python ({how}) while being captured; a replay cannot "
    "follow data-dependent control flow. Move it out of the step, or run eagerly (--no-compile)."
)


class TracedArray(np.ndarray):
    """An ndarray whose numpy operations are recorded by the active tracer while they run."""

    _slot: int | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self._slot = None  # made by numpy behind the tracer's back: an error if it is ever used

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _tracer().record(("ufunc", ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return _tracer().record(("call", func), args, kwargs)

    def _method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return _tracer().record(("method", name), (self,) + args, kwargs)

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

    @property
    def T(self) -> Any:
        return self._method("transpose")

    def __getitem__(self, index: Any) -> Any:
        return self._method("__getitem__", index)

    def __setitem__(self, index: Any, value: Any) -> None:
        _tracer().record(("setitem",), (self, index, value), {})

    def _read(self, how: str) -> Any:
        raise CaptureError(_VALUE_READ.format(how=how))

    def __bool__(self) -> bool:
        return self._read("bool()")

    def __float__(self) -> float:
        return self._read("float()")

    def __int__(self) -> int:
        return self._read("int()")

    def __index__(self) -> int:
        return self._read("use as an index")

    def item(self, *args: Any) -> Any:
        return self._read(".item()")

    def tolist(self) -> Any:
        return self._read(".tolist()")


_active: list = []


def _tracer() -> "_Tracer":
    if not _active:
        raise CaptureError("a TracedArray was used outside of compile's tracing; this is a bug in the capture")
    return _active[-1]


class _Slot:
    """One array of the record: a step input, an external array (parameter, optimizer state, constant
    the step closes over), or the result of a recorded operation."""

    __slots__ = ("kind", "value", "op", "written", "view_of")

    def __init__(self, kind: str, value: np.ndarray, op: int | None = None, view_of: list | None = None):
        self.kind = kind  # "input" | "external" | "result"
        self.value = value  # the real array at trace time (for externals: the live object itself)
        self.op = op
        self.written = False  # written in place by some operation, directly or through a view
        self.view_of = view_of or []  # the argument slots whose memory this result shares


class _Ref:
    """Placeholder for a slot inside an operation's recorded arguments."""

    __slots__ = ("slot",)

    def __init__(self, slot: int):
        self.slot = slot


class _Op:
    __slots__ = ("kind", "args", "kwargs", "out", "inplace", "is_view")

    def __init__(self, kind: tuple, args: Any, kwargs: dict, out: int | None, inplace: bool, is_view: bool):
        self.kind, self.args, self.kwargs, self.out, self.inplace, self.is_view = kind, args, kwargs, out, inplace, is_view


class _Tracer:
    def __init__(self) -> None:
        self.slots: list[_Slot] = []
        self.ops: list[_Op] = []
        self.external_ids: dict = {}
        self.swapped: list = []  # (tensor, original data) to restore after tracing

    # -- slots ----------------------------------------------------------------------------------------
    def _new_slot(self, kind: str, value: np.ndarray, op: int | None = None,
                  view_of: list | None = None) -> TracedArray:
        self.slots.append(_Slot(kind, value, op, view_of))
        traced = value.view(TracedArray)
        traced._slot = len(self.slots) - 1
        return traced

    def input(self, value: np.ndarray) -> TracedArray:
        return self._new_slot("input", np.array(value))

    def external(self, array: np.ndarray) -> int:
        key = id(array)
        if key not in self.external_ids:
            base = array.base
            while base is not None:  # a view of a traced value that numpy made without telling us
                if any(base is s.value for s in self.slots if s.kind != "external"):
                    raise CaptureError(
                        "compile: an array derived from a traced value escaped the capture (np.asarray or "
                        f"np.array of it, shape {array.shape}); use Tensor ops inside the step")
                base = getattr(base, "base", None)
            self.external_ids[key] = self._new_slot("external", array)._slot
        return self.external_ids[key]

    def tensor_data(self, t: Tensor) -> TracedArray:
        """Swap a Tensor's plain data (a parameter, a constant) for a traced view of the same memory."""
        data = t.data
        if isinstance(data, TracedArray):
            return data
        view = data.view(TracedArray)
        view._slot = self.external(data)
        self.swapped.append((t, data))
        t.data = view
        return view

    def traced_state(self, arrays: dict) -> dict:
        """A copy of a state dict (an optimizer's buffers) whose arrays are traced views of the originals:
        in-place updates of state that lives across calls must be recorded too."""
        result = {}
        for key, value in arrays.items():
            if isinstance(value, np.ndarray) and not isinstance(value, TracedArray):
                view = value.view(TracedArray)
                view._slot = self.external(value)
                value = view
            result[key] = value
        return result

    # -- recording ------------------------------------------------------------------------------------
    def _template(self, value: Any) -> Any:
        """Arguments with arrays replaced by slot references (recursing into lists and tuples)."""
        if isinstance(value, TracedArray):
            if value._slot is None:
                raise CaptureError(
                    "compile: an array was produced by a numpy operation the capture does not record "
                    f"(shape {value.shape}); use Tensor ops inside the step or run eagerly (--no-compile)")
            return _Ref(value._slot)
        if isinstance(value, np.ndarray):
            return _Ref(self.external(value))
        if isinstance(value, (list, tuple)):
            return type(value)(self._template(v) for v in value)
        return value

    def _plain(self, template: Any) -> Any:
        if isinstance(template, _Ref):
            slot = self.slots[template.slot]
            return slot.value
        if isinstance(template, (list, tuple)):
            return type(template)(self._plain(v) for v in template)
        return template

    def record(self, kind: tuple, args: tuple, kwargs: dict) -> Any:
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
                raise CaptureError(f"compile: {_name(kind)} with several outputs is not supported")
            inplace_target = self._template(outs[0]).slot
            plain_kwargs["out"] = self.slots[inplace_target].value

        result = _execute(kind, plain_args, plain_kwargs)

        index = len(self.ops)
        if inplace_target is not None:
            for slot in _with_bases(inplace_target, self.slots):
                self.slots[slot].written = True
            self.ops.append(_Op(kind, arg_t, kw_t, inplace_target, True, False))
            if out_arg is None:  # setitem, ufunc.at, np.copyto: they return nothing
                return None
            return out_arg if isinstance(out_arg, np.ndarray) else out_arg[0]
        if not isinstance(result, np.ndarray):
            if isinstance(result, (tuple, list)) or not np.isscalar(result) and result is not None \
                    and not isinstance(result, np.generic):
                raise CaptureError(f"compile: {_name(kind)} returned {type(result).__name__}, which is not supported")
            result = np.asarray(result)
        view_of = [r.slot for r in _refs(arg_t) if np.may_share_memory(result, self.slots[r.slot].value)]
        self.ops.append(_Op(kind, arg_t, kw_t, None, False, bool(view_of)))
        traced = self._new_slot("result", result, index, view_of)
        self.ops[index].out = traced._slot
        return traced


def _with_bases(slot: int, slots: list) -> list:
    """The slot and every slot it is a view of, through chains of views: a write to it changes them all."""
    chain, todo = [], [slot]
    while todo:
        s = todo.pop()
        if s not in chain:
            chain.append(s)
            todo += slots[s].view_of
    return chain


def _refs(template: Any) -> list:
    if isinstance(template, _Ref):
        return [template]
    if isinstance(template, (list, tuple)):
        return [r for v in template for r in _refs(v)]
    if isinstance(template, dict):
        return [r for v in template.values() for r in _refs(v)]
    return []


def _name(kind: tuple) -> str:
    if kind[0] == "ufunc":
        return f"np.{kind[1].__name__}" + ("" if kind[2] == "__call__" else f".{kind[2]}")
    if kind[0] == "call":
        return f"np.{getattr(kind[1], '__name__', kind[1])}"
    if kind[0] == "method":
        return f"ndarray.{kind[1]}"
    return "ndarray.__setitem__"


def _execute(kind: tuple, args: tuple, kwargs: dict) -> Any:
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


# ---- from the record to a replay function -----------------------------------------------------------------

_OUT_CALLS = {np.clip, np.concatenate, np.sum, np.max, np.min, np.mean, np.matmul}
# Results that depend only on their argument's shape and dtype: constants, or a refill of their buffer.
_FILLS = {np.empty_like: None, np.zeros_like: 0, np.ones_like: 1}


class _Replay:
    """The compiled form of one trace: straight-line numpy with preallocated outputs.

    Slots fall in four groups: constants (they depend on no input, parameter or state: their traced value
    is their value on every call, so nothing is emitted), arguments (read straight from the call's
    arrays), views (made once from stable buffers, or per call when they view an argument) and buffers
    (allocated once, written with ``out=`` on every call)."""

    def __init__(self, tracer: _Tracer, input_slots: list, output_slots: Any, grad_slots: list):
        self.tracer = tracer
        self.input_slots = input_slots
        # Read arguments in place unless the step writes into them or returns (a view of) one of them.
        if not self._build(input_slots, output_slots, grad_slots, direct=True):
            self._build(input_slots, output_slots, grad_slots, direct=False)

    def _build(self, input_slots: list, output_slots: list, grad_slots: list, direct: bool) -> bool:
        slots, ops = self.tracer.slots, self.tracer.ops
        if direct and any(slots[i].written for i in input_slots):
            return False
        live = self._live_ops(slots, ops, output_slots, grad_slots)
        last_write = {s: index for index, op in enumerate(ops) if op.inplace for s in _with_bases(op.out, slots)}
        variable = self._variable_slots(slots, ops, live, last_write)
        per_call = set(input_slots) if direct else set()  # slots bound anew on every call
        arrays: dict[int, Any] = {}
        for i, slot in enumerate(slots):
            if slot.kind == "external" or i not in variable:
                arrays[i] = slot.value
            elif i not in per_call and not (slot.op is not None and ops[slot.op].is_view):
                arrays[i] = np.empty_like(slot.value)
        names: dict[str, Any] = {"np_copyto": np.copyto}
        # Arguments are the parameters s<slot> themselves, or are copied into those buffers.
        lines = [] if direct else [f"np_copyto(s{i}, a{k}, casting='unsafe')" for k, i in enumerate(input_slots)]
        # The same statements as data, for the native backend: ("in"|"out", arg, slot), ("alias", slot, source),
        # ("view"|"op", op index).
        program: list = [] if direct else [("in", k, i) for k, i in enumerate(input_slots)]
        seen: dict = {}  # common subexpressions: (operation, arguments) -> slot
        lent: set = set()  # slots whose buffer a copy already shares
        for index in live:
            op = ops[index]
            if op.out not in variable:
                continue  # folded: computed once, at trace time
            source = self._same_value(index, op, slots, last_write, seen, lent)
            if source is not None:
                if source in per_call:
                    lines.append(f"s{op.out} = s{source}")
                    program.append(("alias", op.out, source))
                    per_call.add(op.out)
                else:
                    arrays[op.out] = arrays[source]
                continue
            if op.is_view and not op.inplace:
                if any(r.slot in per_call for r in _refs(op.args) + _refs(op.kwargs)):
                    lines.append(f"s{op.out} = " + self._call(index, op, names, arrays))
                    program.append(("view", index))
                    per_call.add(op.out)
                else:  # a view of stable buffers: made once, valid on every call
                    arrays[op.out] = _execute(op.kind, _bind(op.args, arrays), _bind(op.kwargs, arrays))
                continue
            line = self._emit(index, op, names, arrays)
            if line:
                lines.append(line)
                program.append(("op", index))
        if per_call & (set(output_slots) | set(grad_slots)):
            return False
        if not direct:  # the step wrote into its arguments: so does the replay
            lines += [f"np_copyto(a{k}, s{i})" for k, i in enumerate(input_slots) if slots[i].written]
            program += [("out", k, i) for k, i in enumerate(input_slots) if slots[i].written]
        for i, a in arrays.items():
            names[f"s{i}"] = a
        params = ", ".join(f"s{i}" if direct else f"a{k}" for k, i in enumerate(input_slots))
        defaults = ", ".join(sorted(f"{n}={n}" for n in names))
        body = "\n    ".join(lines) or "pass"
        source = f"def replay({params}{', ' if params else ''}*, {defaults}):\n    {body}\n"
        exec(builtins.compile(source, "<tinygrad_lab.compile replay>", "exec"), names)
        self.run = names["replay"]
        self.source = source
        self.arrays = arrays
        self.live_ops = len(lines)
        self.program, self.direct, self.per_call = program, direct, per_call
        return True

    @staticmethod
    def _same_value(index: int, op: _Op, slots: list, last_write: dict, seen: dict, lent: set) -> int | None:
        """An earlier slot whose buffer the operation's result can share, as it holds the same value for good:
        the source of a copy that is not written afterwards and lends its buffer to no other copy (two
        gradients must not be one array), or the first result of the same operation on the same arguments
        when neither is ever written in place. Results written in place share nothing."""
        if slots[op.out].written:
            return None
        source = _copy_source(op)
        if source is not None:
            if source in lent or _written_after(source, index, slots, last_write):
                return None
        else:
            key = None if op.inplace or op.is_view or _rereads(op, index, slots, last_write) else _cse_key(op)
            if key is None:
                return None
            source = seen.setdefault(key, op.out)
            if source == op.out:
                return None
        if slots[source].value.dtype != slots[op.out].value.dtype:
            return None
        lent.add(source)
        return source

    @staticmethod
    def _live_ops(slots: list, ops: list, output_slots: list, grad_slots: list) -> list:
        """Indices of the operations whose effects are observable: outputs, gradients, writes to inputs and
        externals (directly or through views)."""
        needed: set = set()  # slots read later, with the arrays they are views of

        def need(slot: int) -> None:
            needed.update(_with_bases(slot, slots))

        for slot in output_slots + grad_slots:
            need(slot)
        live = []
        for index in range(len(ops) - 1, -1, -1):
            op = ops[index]
            # An in-place write is live when it changes an input, an external or a needed slot, maybe through views.
            if op.out in needed or op.inplace and any(s in needed or slots[s].kind != "result"
                                                      for s in _with_bases(op.out, slots)):
                live.append(index)
                for r in _refs(op.args) + _refs(op.kwargs):
                    need(r.slot)
                need(op.out)  # the target of a write must exist, even when out= is its only mention
        live.reverse()
        return live

    @staticmethod
    def _variable_slots(slots: list, ops: list, live: list, last_write: dict) -> set:
        """Slots whose value can differ between calls: inputs, externals, what is computed from them, and
        constants that are read before their last in-place write (their writes must be replayed in order)."""
        variable = {i for i, s in enumerate(slots) if s.kind in ("input", "external")}
        changed = True
        while changed:  # a later in-place write can make an earlier slot variable: iterate to a fixed point
            changed = False
            for index in live:
                op = ops[index]
                reads = [r.slot for r in _refs(op.args) + _refs(op.kwargs)]
                for r in reads:
                    if r not in variable and r != op.out and last_write.get(r, -1) > index:
                        variable.add(r)
                        changed = True
                if op.out in variable or op.kind[0] == "call" and op.kind[1] in _FILLS:
                    continue
                if any(r in variable for r in reads):
                    variable.add(op.out)
                    changed = True
        return variable

    @staticmethod
    def _arg(value: Any, key: str, names: dict, arrays: dict) -> str:
        """Source text for an argument: a slot's name, a literal, or a name bound to the value."""
        if isinstance(value, _Ref):
            return f"s{value.slot}"
        if isinstance(value, (list, tuple)) and _refs(value):
            parts = [_Replay._arg(v, f"{key}_{k}", names, arrays) for k, v in enumerate(value)]
            return f"[{', '.join(parts)}]" if isinstance(value, list) else f"({', '.join(parts)},)"
        if isinstance(value, (bool, int, str, type(None))) and not isinstance(value, np.generic) or \
                type(value) is float and np.isfinite(value):
            return repr(value)
        names[key] = value
        return key

    @staticmethod
    def _call(index: int, op: _Op, names: dict, arrays: dict) -> str:
        """``f(args, **kwargs)`` for an operation, with the function bound as f{index}."""
        kind = op.kind
        if kind[0] == "ufunc":
            names[f"f{index}"] = kind[1] if kind[2] == "__call__" else getattr(kind[1], kind[2])
        elif kind[0] == "call":
            names[f"f{index}"] = kind[1]
        else:
            names[f"f{index}"] = getattr(np.ndarray, kind[1])
        args = ", ".join(_Replay._arg(a, f"c{index}_{k}", names, arrays) for k, a in enumerate(op.args))
        kw = "".join(f", {k}={_Replay._arg(v, f'k{index}_{k}', names, arrays)}" for k, v in op.kwargs.items())
        return f"f{index}({args}{kw})"

    @staticmethod
    def _emit(index: int, op: _Op, names: dict, arrays: dict) -> str:
        kind = op.kind
        out = f"s{op.out}"
        if kind[0] == "setitem":
            target, idx, value = op.args
            return (f"s{target.slot}[{_Replay._arg(idx, f'c{index}_i', names, arrays)}] = "
                    f"{_Replay._arg(value, f'c{index}_v', names, arrays)}")
        if kind[0] == "call" and kind[1] in _FILLS:
            fill = _FILLS[kind[1]]  # a shape-only creation whose buffer is written later: refill it
            return "" if fill is None else f"{out}.fill({fill})"
        if kind[0] == "method" and kind[1] in ("astype", "copy"):
            return f"np_copyto({out}, {_Replay._arg(op.args[0], f'c{index}_0', names, arrays)}, casting='unsafe')"
        if kind[0] == "method" and op.inplace:
            raise CaptureError(f"compile: in-place {_name(kind)} is not supported")
        call = _Replay._call(index, op, names, arrays)
        if kind[0] == "ufunc" and kind[2] == "at" or kind[0] == "call" and op.inplace:
            return call  # ufunc.at and np.copyto write into their first argument
        if kind[0] == "ufunc" or kind[0] == "call" and kind[1] in _OUT_CALLS:
            return f"{call[:-1]}, out={out})"
        return f"np_copyto({out}, {call}, casting='unsafe')"


def _written_after(slot: int, index: int, slots: list, last_write: dict) -> bool:
    """Whether the slot, or an array it is a view of, is written in place after operation ``index``."""
    return any(last_write.get(s, -1) > index for s in _with_bases(slot, slots))


def _rereads(op: _Op, index: int, slots: list, last_write: dict) -> bool:
    """Whether an input of the operation is written in place later (its value at this point is not final)."""
    return any(_written_after(r.slot, index, slots, last_write) for r in _refs(op.args) + _refs(op.kwargs))


def _cse_key(op: _Op) -> Any:
    """A hashable description of a pure operation and its arguments, or None when it has none."""
    def key(value: Any) -> Any:
        if isinstance(value, _Ref):
            return ("slot", value.slot)
        if isinstance(value, (list, tuple)):
            return (type(value).__name__,) + tuple(key(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((k, key(v)) for k, v in value.items()))
        if isinstance(value, (bool, int, float, str, type(None), slice, np.dtype)) or value is Ellipsis:
            return (type(value).__name__, repr(value))
        raise TypeError
    try:
        return (op.kind[0], op.kind[1:], key(op.args), key(op.kwargs))
    except TypeError:
        return None


def _copy_source(op: _Op) -> int | None:
    """The slot an operation merely copies (astype to the same dtype, copy, x ** 1), else None."""
    kind, args = op.kind, op.args
    if op.inplace or not args or not isinstance(args[0], _Ref):
        return None
    if kind[0] == "method" and kind[1] in ("copy", "astype"):
        return args[0].slot
    if kind[0] == "ufunc" and kind[2] == "__call__" and kind[1] is np.power and len(args) == 2 \
            and isinstance(args[1], (int, float)) and args[1] == 1:
        return args[0].slot
    return None


def _bind(template: Any, arrays: dict) -> Any:
    if isinstance(template, _Ref):
        return arrays[template.slot]
    if isinstance(template, (list, tuple)):
        return type(template)(_bind(v, arrays) for v in template)
    if isinstance(template, dict):
        return {k: _bind(v, arrays) for k, v in template.items()}
    return template


# ---- the user-facing wrapper ---------------------------------------------------------------------------------

def _signature(args: tuple) -> tuple:
    """What a replay is valid for: the shapes and dtypes of array arguments (and whether Tensor arguments
    require grad), the values of the others."""
    return tuple([(a.shape, a.dtype, a.requires_grad) if isinstance(a, Tensor) else
                  (a.shape, a.dtype) if isinstance(a, np.ndarray) else
                  a if isinstance(a, (int, float, bool, str, type(None))) else type(a) for a in args])


def _grad_slot(t: Tensor) -> int | None:
    """The slot of the gradient a traced step left in ``t.grad``, if any."""
    data = None if t.grad is None else t.grad.data
    return data._slot if isinstance(data, TracedArray) else None


class CompiledStep:
    """The callable ``tl.compile`` returns; see the module docstring for what it does."""

    def __init__(self, fn: Callable, verify: bool = True, native: bool = True):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.verify, self.native = verify, native
        self._calls: dict = {}  # signature -> number of eager calls made so far
        self._replays: dict = {}  # signature -> _Entry
        self._eager_only: set = set()  # signatures whose replay failed the check: they run eagerly
        # What runs the last traced step: "native", "numpy (<why not native>)"; "eager" before any trace.
        self.backend = "eager (not traced yet)"
        self._compiling: list = []  # threads compiling native code

    def wait(self) -> str:
        """Wait until native code being compiled is in use (or has failed); returns ``backend``."""
        while self._compiling:
            self._compiling.pop().join()
        return self.backend

    def __call__(self, *args: Any) -> Any:
        key = _signature(args)
        entry = self._replays.get(key)
        if entry is not None:
            for t, data in entry.tensors:
                if t.data is not data:  # a parameter's array was replaced: the replay's buffers are stale
                    break
            else:
                if entry.pending_check:
                    return self._check(key, entry, args)
                return entry.call(args)
        if key in self._eager_only:
            return self.fn(*args)
        calls = self._calls.get(key, 0)
        self._calls[key] = calls + 1
        if calls == 0:
            return self.fn(*args)  # warm-up: creates optimizer state the replay will update in place
        result, entry = self._trace(args)
        self._replays[key] = entry
        return result

    def run(self, n: int, *args: Any) -> np.ndarray:
        """``n`` steps on the same arguments; returns the first output (the loss) of each, as float64. Once the
        step is traced and checked, the native backend runs all remaining steps in one call."""
        losses = np.empty(n)
        key = _signature(args)
        for i in range(n):
            entry = self._replays.get(key)
            if entry is not None and entry.native is not None and not entry.pending_check and \
                    all(t.data is data for t, data in entry.tensors):
                if entry.outputs[0].size != 1:
                    raise ValueError(f"compile: run() needs a step whose first output is one number, "
                                     f"not shape {entry.outputs[0].shape}")
                entry.native.run(n - i, [a.data if isinstance(a, Tensor) else a for a in args
                                         if isinstance(a, (Tensor, np.ndarray))], losses[i:])
                entry.call_after_run(args)
                return losses
            out, _ = _flatten(self(*args))
            if not out or out[0].data.size != 1:
                raise ValueError("compile: run() needs a step whose first output is one number")
            losses[i] = out[0].data.reshape(-1)[0]
        return losses

    # -- tracing -------------------------------------------------------------------------------------------------
    def _trace(self, args: tuple) -> tuple:
        for a in args:
            if not isinstance(a, (Tensor, np.ndarray, int, float, bool, str, type(None))):
                raise CaptureError(
                    f"compile: step arguments must be Tensors, arrays or Python scalars, got {type(a).__name__}")
        tracer = _Tracer()
        traced_args, input_slots = [], []
        for a in args:
            if isinstance(a, (Tensor, np.ndarray)):
                view = tracer.input(np.asarray(a.data if isinstance(a, Tensor) else a))
                input_slots.append(view._slot)
                traced_args.append(_retensor(a, view))
            else:
                traced_args.append(a)
        _active.append(tracer)
        prev = state.tracing
        state.tracing = tracer
        try:
            out = self.fn(*traced_args)
            outputs, structure = _flatten(out)
            output_slots = [tracer._template(t.data).slot for t in outputs]
            grads = [(t, slot) for t, _ in tracer.swapped if (slot := _grad_slot(t)) is not None]
            arg_grads = [(k, slot) for k, t in enumerate(traced_args)
                         if isinstance(t, Tensor) and (slot := _grad_slot(t)) is not None]
        finally:
            state.tracing = prev
            _active.pop()
            for t, data in tracer.swapped:
                t.data = data
        arrays_in = [a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))]
        for array, slot in zip(arrays_in, input_slots):
            if tracer.slots[slot].written:  # the step wrote into its argument (the trace wrote into a copy)
                np.copyto(array, tracer.slots[slot].value)
        replay = _Replay(tracer, input_slots, output_slots, [s for _, s in grads + arg_grads])
        entry = _Entry(replay, structure, output_slots, grads, arg_grads, list(tracer.swapped))
        entry.pending_check = self.verify
        self.backend = "numpy (native=False)"
        if self.native:
            from tinygrad_lab import native  # imports this module

            def ready(step: Any, backend: str) -> None:  # from the thread that compiled the native code
                entry.native, self.backend = step, backend
                entry.pending_check = entry.pending_check or step is not None and self.verify  # check it too

            entry.native, self.backend, thread = native.attach(replay, output_slots,
                                                               [s for _, s in grads + arg_grads], ready)
            if thread is not None:
                self._compiling.append(thread)
        for t, slot in grads + [(args[k], slot) for k, slot in arg_grads]:
            t.grad = Tensor._wrap(np.array(tracer.slots[slot].value))
        return _unflatten(structure, [np.array(tracer.slots[s].value) for s in output_slots]), entry

    def _check(self, key: tuple, entry: "_Entry", args: tuple) -> Any:
        """Run the replay and an eager step from the same state; they must agree (written arrays, gradients,
        outputs). If they do not, the replay is dropped and calls with this signature run eagerly."""
        entry.pending_check = False
        slots = entry.replay.tracer.slots
        written = [s.value for s in slots if s.kind == "external" and s.written]
        arrays_in = [a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))]
        written += [a for a, i in zip(arrays_in, entry.replay.input_slots) if slots[i].written]
        with_grad = [t for t, _ in entry.grads] + [args[k] for k, _ in entry.arg_grads]
        before, grads_before = [w.copy() for w in written], [t.grad for t in with_grad]
        replayed = entry.call(args)
        after_replay = [w.copy() for w in written] + [t.grad.data.copy() for t in with_grad]
        for w, b in zip(written, before):
            w[...] = b
        for t, g in zip(with_grad, grads_before):
            t.grad = g
        eager = self.fn(*args)
        outs_r, _ = _flatten(replayed)
        outs_e, _ = _flatten(eager)
        no_grad = np.empty(0)  # eager left no gradient where the replay has one: a shape mismatch
        eager_arrays = written + [no_grad if t.grad is None else t.grad.data for t in with_grad]
        pairs = list(zip(after_replay, eager_arrays)) + [(r.data, e.data) for r, e in zip(outs_r, outs_e)]
        for k, (r, e) in enumerate(pairs):
            rtol, atol = 1e-9, 1e-12
            if r.dtype == np.float32 and self.native and e.size:  # native exp/log/tanh: float32's ulps
                rtol = 1e-5
                atol = rtol * float(np.max(np.abs(e)))
            if r.shape != e.shape or not np.allclose(r, e, rtol=rtol, atol=atol, equal_nan=True):
                del self._replays[key]
                self._eager_only.add(key)
                diff = np.max(np.abs(np.asarray(r, float) - np.asarray(e, float))) if r.shape == e.shape else "shape"
                raise CaptureError(
                    f"compile: the captured step disagrees with eager execution (array {k}, max difference {diff}). "
                    "The step probably depends on Python values that change between calls (a step counter or "
                    "learning rate kept as a Python number) or replaces arrays instead of updating them in "
                    "place. Calls with these argument shapes and values now run eagerly; --no-compile runs all eagerly."
                )
        return eager


class _Entry:
    """One replay and what a call needs around it: where outputs and the gradients of parameters and
    arguments are."""

    def __init__(self, replay: _Replay, structure: Any, output_slots: list, grads: list, arg_grads: list,
                 tensors: list):
        self.replay, self.structure, self.tensors = replay, structure, tensors
        self.pending_check = False
        self.native = None  # the native step running this replay, if any
        arrays = replay.arrays
        self.grads = [(t, arrays[slot]) for t, slot in grads]
        self.arg_grads = [(k, arrays[slot]) for k, slot in arg_grads]  # (argument index, buffer)
        self.outputs = [arrays[s] for s in output_slots]
        self.flat_tuple = structure not in (None, "tensor") and structure[0] is tuple and \
            all(part == (1, "tensor") for part in structure[1])  # (loss, pred): the common case, built directly

    def call(self, args: tuple) -> Any:
        self.replay.run(*[a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))])
        return self.call_after_run(args)

    def call_after_run(self, args: tuple) -> Any:
        """Gradients and outputs of the step that just ran."""
        wrap = Tensor._wrap
        for t, buffer in self.grads:
            if t.grad is None or t.grad.data is not buffer:
                t.grad = wrap(buffer)  # the buffer is reused by the next call, like PyTorch's .grad
        for k, buffer in self.arg_grads:
            args[k].grad = wrap(buffer.copy())  # a new argument each call: each gets its own array
        if self.structure == "tensor":
            return wrap(self.outputs[0].copy())
        if self.flat_tuple:
            return tuple([wrap(o.copy()) for o in self.outputs])
        return _unflatten(self.structure, [o.copy() for o in self.outputs])


def _retensor(a: Any, view: TracedArray) -> Any:
    """A step argument as the step will see it during tracing: the same kind of object, traced data."""
    if isinstance(a, Tensor):
        t = Tensor._wrap(view)
        t.requires_grad = a.requires_grad
        return t
    return view


def _flatten(out: Any) -> tuple:
    """Outputs as a flat list of Tensors plus a description to rebuild the structure."""
    if out is None:
        return [], None
    if isinstance(out, Tensor):
        return [out], "tensor"
    if isinstance(out, (tuple, list)):
        flat, parts = [], []
        for o in out:
            f, s = _flatten(o)
            flat += f
            parts.append((len(f), s))
        return flat, (type(out), parts)
    if isinstance(out, dict):
        flat, parts = _flatten(tuple(out.values()))
        return flat, ("dict", list(out.keys()), parts)
    raise CaptureError(f"compile: a step must return Tensors (or tuples/dicts of them), got {type(out).__name__}")


def _unflatten(structure: Any, arrays: list) -> Any:
    if structure is None:
        return None
    if structure == "tensor":
        return Tensor._wrap(arrays[0])
    if structure[0] == "dict":
        values = _unflatten(structure[2], arrays)
        return dict(zip(structure[1], values))
    kind, parts = structure
    result, k = [], 0
    for n, s in parts:
        result.append(_unflatten(s, arrays[k:k + n]))
        k += n
    return kind(result)


def compile(fn: Callable | None = None, *, verify: bool = True, native: bool = True) -> Any:  # noqa: A001
    """Capture a fixed-shape training step and replay it fast (as native code when a C compiler is there and
    ``native``); usable as ``tl.compile(step)`` or ``@tl.compile``."""
    if fn is None:
        return lambda f: CompiledStep(f, verify=verify, native=native)
    return CompiledStep(fn, verify=verify, native=native)
