"""From the record to a replay: one straight-line function with preallocated buffers, ``out=`` kernels, views made
once, constants folded, common subexpressions shared and dead work dropped."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.capture.tracer import CaptureError, Op, Ref, Tracer, execute, op_name, refs, with_bases

_OUT_CALLS = {np.clip, np.concatenate, np.sum, np.max, np.min, np.mean, np.matmul}
# Results that depend only on their argument's shape and dtype: constants, or a refill of their buffer.
_FILLS: dict[Callable, int | None] = {np.empty_like: None, np.zeros_like: 0, np.ones_like: 1}


class Replay:
    """The compiled form of one trace: straight-line numpy with preallocated outputs.

    Slots fall in four groups: constants (they depend on no input, parameter or state: their traced value
    is their value on every call, so nothing is emitted), arguments (read straight from the call's
    arrays), views (made once from stable buffers, or per call when they view an argument) and buffers
    (allocated once, written with ``out=`` on every call)."""

    def __init__(self, tracer: Tracer, input_slots: list, output_slots: Any, grad_slots: list):
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
        last_write = {s: index for index, op in enumerate(ops) if op.inplace for s in with_bases(op.out, slots)}
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
                if any(r.slot in per_call for r in refs(op.args) + refs(op.kwargs)):
                    lines.append(f"s{op.out} = " + self._call(index, op, names, arrays))
                    program.append(("view", index))
                    per_call.add(op.out)
                else:  # a view of stable buffers: made once, valid on every call
                    arrays[op.out] = execute(op.kind, _bind(op.args, arrays), _bind(op.kwargs, arrays))
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
        text = f"def replay({params}{', ' if params else ''}*, {defaults}):\n    {body}\n"
        exec(builtins.compile(text, "<tinygrad_lab.compile replay>", "exec"), names)
        self.run = names["replay"]
        self.source = text
        self.arrays = arrays
        self.live_ops = len(lines)
        self.program, self.direct, self.per_call = program, direct, per_call
        return True

    @staticmethod
    def _same_value(index: int, op: Op, slots: list, last_write: dict, seen: dict, lent: set) -> int | None:
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
        shared, result = slots[source].value, slots[op.out].value
        if shared.dtype != result.dtype or shared.strides != result.strides:
            return None  # a copy of a view lays it out anew: sharing the view would change later sums' order
        lent.add(source)
        return source

    @staticmethod
    def _live_ops(slots: list, ops: list, output_slots: list, grad_slots: list) -> list:
        """Indices of the operations whose effects are observable: outputs, gradients, writes to inputs and
        externals (directly or through views)."""
        needed: set = set()  # slots read later, with the arrays they are views of

        def need(slot: int) -> None:
            needed.update(with_bases(slot, slots))

        for slot in output_slots + grad_slots:
            need(slot)
        live = []
        for index in range(len(ops) - 1, -1, -1):
            op = ops[index]
            # An in-place write is live when it changes an input, an external or a needed slot, maybe through views.
            if (
                op.out in needed
                or op.inplace
                and any(s in needed or slots[s].kind != "result" for s in with_bases(op.out, slots))
            ):
                live.append(index)
                for r in refs(op.args) + refs(op.kwargs):
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
                reads = [r.slot for r in refs(op.args) + refs(op.kwargs)]
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
        if isinstance(value, Ref):
            return f"s{value.slot}"
        if isinstance(value, (list, tuple)) and refs(value):
            parts = [Replay._arg(v, f"{key}_{k}", names, arrays) for k, v in enumerate(value)]
            return f"[{', '.join(parts)}]" if isinstance(value, list) else f"({', '.join(parts)},)"
        if (
            isinstance(value, (bool, int, str, type(None)))
            and not isinstance(value, np.generic)
            or type(value) is float
            and np.isfinite(value)
        ):
            return repr(value)
        names[key] = value
        return key

    @staticmethod
    def _call(index: int, op: Op, names: dict, arrays: dict) -> str:
        """``f(args, **kwargs)`` for an operation, with the function bound as f{index}."""
        kind = op.kind
        if kind[0] == "ufunc":
            names[f"f{index}"] = kind[1] if kind[2] == "__call__" else getattr(kind[1], kind[2])
        elif kind[0] == "call":
            names[f"f{index}"] = kind[1]
        else:
            names[f"f{index}"] = getattr(np.ndarray, kind[1])
        args = ", ".join(Replay._arg(a, f"c{index}_{k}", names, arrays) for k, a in enumerate(op.args))
        kw = "".join(f", {k}={Replay._arg(v, f'k{index}_{k}', names, arrays)}" for k, v in op.kwargs.items())
        return f"f{index}({args}{kw})"

    @staticmethod
    def _emit(index: int, op: Op, names: dict, arrays: dict) -> str:
        kind = op.kind
        out = f"s{op.out}"
        if kind[0] == "setitem":
            target, idx, value = op.args
            return (
                f"s{target.slot}[{Replay._arg(idx, f'c{index}_i', names, arrays)}] = "
                f"{Replay._arg(value, f'c{index}_v', names, arrays)}"
            )
        if kind[0] == "call" and kind[1] in _FILLS:
            fill = _FILLS[kind[1]]  # a shape-only creation whose buffer is written later: refill it
            return "" if fill is None else f"{out}.fill({fill})"
        if kind[0] == "method" and kind[1] in ("astype", "copy"):
            return f"np_copyto({out}, {Replay._arg(op.args[0], f'c{index}_0', names, arrays)}, casting='unsafe')"
        if kind[0] == "method" and op.inplace:
            raise CaptureError(f"compile: in-place {op_name(kind)} is not supported")
        call = Replay._call(index, op, names, arrays)
        if kind[0] == "ufunc" and kind[2] == "at" or kind[0] == "call" and kind[1] is np.copyto:
            return call  # ufunc.at and np.copyto write into their first argument
        if kind[0] == "ufunc" or kind[0] == "call" and (op.inplace or kind[1] in _OUT_CALLS):
            return f"{call[:-1]}, out={out})"  # the step's own out= (np.clip(g, -1, 1, out=g)), or the buffer
        return f"np_copyto({out}, {call}, casting='unsafe')"


def _written_after(slot: int, index: int, slots: list, last_write: dict) -> bool:
    """Whether the slot, or an array it is a view of, is written in place after operation ``index``."""
    return any(last_write.get(s, -1) > index for s in with_bases(slot, slots))


def _rereads(op: Op, index: int, slots: list, last_write: dict) -> bool:
    """Whether an input of the operation is written in place later (its value at this point is not final)."""
    return any(_written_after(r.slot, index, slots, last_write) for r in refs(op.args) + refs(op.kwargs))


def _cse_key(op: Op) -> Any:
    """A hashable description of a pure operation and its arguments, or None when it has none."""

    def key(value: Any) -> Any:
        if isinstance(value, Ref):
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


def _copy_source(op: Op) -> int | None:
    """The slot an operation merely copies (astype to the same dtype, copy, x ** 1), else None."""
    kind, args = op.kind, op.args
    if op.inplace or not args or not isinstance(args[0], Ref):
        return None
    if kind[0] == "method" and kind[1] in ("copy", "astype"):
        return args[0].slot
    if (
        kind[0] == "ufunc"
        and kind[2] == "__call__"
        and kind[1] is np.power
        and len(args) == 2
        and isinstance(args[1], (int, float))
        and args[1] == 1
    ):
        return args[0].slot
    return None


def _bind(template: Any, arrays: dict) -> Any:
    if isinstance(template, Ref):
        return arrays[template.slot]
    if isinstance(template, (list, tuple)):
        return type(template)(_bind(v, arrays) for v in template)
    if isinstance(template, dict):
        return {k: _bind(v, arrays) for k, v in template.items()}
    return template
