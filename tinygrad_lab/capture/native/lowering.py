"""Lowering the recorded numpy operations to nodes over flat buffers: each operand an ``Access`` (buffer,
offset, shape, strides, dtype), each op a ``Node`` with its C expression, or ``Unsupported`` naming the op."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_lab.capture.tracer import Ref, op_name

CTYPES = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "float",
    np.dtype(np.bool_): "unsigned char",
    np.dtype(np.int64): "int64_t",
    np.dtype(np.int32): "int32_t",
}
BLAS_MACS = 1 << 16  # matmuls with this many multiply-adds or more, and no side under BLAS_SIDE, go to BLAS
BLAS_SIDE = 16
MAX_ROW = 4096  # a matmul loop keeps one output row on the stack

_UNARY = {
    "negative": "(-{0})",
    "positive": "({0})",
    "reciprocal": "(({T})1 / {0})",
    "square": "({0} * {0})",
    "exp": "tl_exp{f}({0})",
    "log": "log{f}({0})",
    "tanh": "tl_tanh{f}({0})",
    "sqrt": "sqrt{f}({0})",
    "expm1": "expm1{f}({0})",
    "log1p": "log1p{f}({0})",
    "absolute": "fabs{f}({0})",
    "logical_not": "(!{0})",
    "isfinite": "isfinite({0})",
    "isnan": "isnan({0})",
    "isinf": "isinf({0})",
    "sign": "({0} > 0 ? ({T})1 : {0} < 0 ? ({T})-1 : {0} == 0 ? ({T})0 : {0})",
}
_BINARY = {
    "add": "({0} + {1})",
    "subtract": "({0} - {1})",
    "multiply": "({0} * {1})",
    "divide": "({0} / {1})",
    "power": "pow{f}({0}, {1})",
    "maximum": "(({0} != {0} || {0} >= {1}) ? {0} : {1})",
    "minimum": "(({0} != {0} || {0} <= {1}) ? {0} : {1})",
    "greater": "({0} > {1})",
    "greater_equal": "({0} >= {1})",
    "less": "({0} < {1})",
    "less_equal": "({0} <= {1})",
    "equal": "({0} == {1})",
    "not_equal": "({0} != {1})",
    "logical_and": "({0} && {1})",
    "logical_or": "({0} || {1})",
    "bitwise_and": "({0} & {1})",
    "bitwise_or": "({0} | {1})",
}
_REDUCE: dict[np.ufunc, tuple[str, float]] = {
    np.add: ("add", 0.0),
    np.maximum: ("maximum", -np.inf),
    np.minimum: ("minimum", np.inf),
}
_REDUCE_CALLS = {np.sum: np.add, np.max: np.maximum, np.min: np.minimum}


class Unsupported(Exception):
    """The record holds something the native backend cannot run; the message names it."""


@dataclass(frozen=True)
class Access:
    """Elements of one array as the C code sees them: pointer-table entry, offset, shape and strides in
    elements."""

    buf: int
    offset: int
    shape: tuple
    strides: tuple
    dtype: np.dtype

    def over(self, domain: tuple) -> tuple:
        """Strides broadcast to a loop domain (0 along broadcast axes)."""
        lead = len(domain) - len(self.shape)
        return (0,) * lead + tuple(
            0 if n == 1 and d != 1 else s for n, s, d in zip(self.shape, self.strides, domain[lead:])
        )

    def key(self, domain: tuple) -> tuple:
        return (self.buf, self.offset, self.over(domain))

    def at(self, domain: tuple) -> str:
        """C lvalue of the element at the loop indices i0, i1, ..."""
        terms = [str(self.offset)] + [f"i{k}*{s}" for k, s in enumerate(self.over(domain)) if s]
        return f"(({CTYPES[self.dtype]}*)p{self.buf})[{' + '.join(terms)}]"


@dataclass
class Node:
    """One operation: ``kind`` elementwise | reduce | matmul | blas, its output, operands (Access or a C literal)
    and the expression template (elementwise) or the reducing ufunc's name (reduce)."""

    kind: str
    out: Access
    operands: list
    loop: np.dtype  # the type numpy computes in
    expr: str = ""
    init: str = ""
    result: np.dtype | None = None  # the type of the expression (bool for comparisons), else ``loop``
    types: list = field(default_factory=list)  # per operand, the type it is read as (default ``loop``)
    skip_store: bool = False
    domain: tuple = field(default=())

    def reads(self) -> list:
        return [a for a in self.operands if isinstance(a, Access)]


def literal(value: Any, dtype: np.dtype) -> str:
    """A Python or numpy scalar as a C literal of ``dtype``."""
    v = float(value)
    text = "INFINITY" if v == np.inf else "-INFINITY" if v == -np.inf else "NAN" if v != v else repr(v)
    if dtype == np.bool_:
        return "1" if v else "0"
    return f"(({CTYPES[dtype]}){text})"


def cast(expr: str, source: np.dtype, target: np.dtype) -> str:
    if source == target:
        return expr
    if target == np.bool_:
        return f"({expr} != 0)"
    return f"(({CTYPES[target]}){expr})"


class Lowering:
    """Turns a ``Replay`` (its ``program``, buffers and trace) into nodes over a table of pointers."""

    def __init__(self, replay: Any, keep_slots: list):
        self.replay, self.slots, self.ops = replay, replay.tracer.slots, replay.tracer.ops
        self.table: list = []  # ("array", ndarray) | ("input", k)
        self._entries: dict = {}
        self.memory: list = []  # per table entry: an array with its memory, for overlap tests
        self.per_call: dict = {}  # slot -> Access, for arguments and what is made from them on each call
        self.nodes: list[Node] = []
        for k, slot in enumerate(replay.input_slots):
            if replay.direct:
                self.per_call[slot] = self._input_access(k)
        for entry in replay.program:
            try:
                getattr(self, f"_{entry[0]}")(*entry[1:])
            except Unsupported as e:
                origin = self.ops[entry[1]].origin if entry[0] in ("op", "view") else None
                raise Unsupported(f"{e}, in {origin}" if origin else str(e)) from None
        self.keep = {self.access(s).buf for s in keep_slots}

    # -- the pointer table and accesses --------------------------------------------------------------
    def _entry(self, key: Any, item: tuple, memory: np.ndarray) -> int:
        if key not in self._entries:
            self._entries[key] = len(self.table)
            self.table.append(item)
            self.memory.append(memory)
        return self._entries[key]

    def _input_access(self, k: int) -> Access:
        value = self.slots[self.replay.input_slots[k]].value
        if value.dtype not in CTYPES:
            raise Unsupported(f"an argument of dtype {value.dtype}")
        buf = self._entry(("input", k), ("input", k), value)
        return Access(buf, 0, value.shape, _elements(value.strides, value), value.dtype)

    def access(self, slot: int) -> Access:
        if slot in self.per_call:
            return self.per_call[slot]
        array = self.replay.arrays[slot]
        if array.dtype not in CTYPES:
            raise Unsupported(f"dtype {array.dtype}")
        if array.size == 0:
            raise Unsupported("an empty array")
        buf = self._entry(array.__array_interface__["data"][0], ("array", array), _root(array))
        return Access(buf, 0, array.shape, _elements(array.strides, array), array.dtype)

    def may_overlap(self, a: Access, b: Access) -> bool:
        if a.buf == b.buf:
            return True
        ta, tb = self.table[a.buf][0], self.table[b.buf][0]
        return ta == tb == "array" and np.may_share_memory(self.memory[a.buf], self.memory[b.buf])

    # -- the program's entries -------------------------------------------------------------------------
    def _alias(self, slot: int, source: int) -> None:
        self.per_call[slot] = self.access(source)

    def _view(self, index: int) -> None:
        op = self.ops[index]
        base = next(r.slot for r in refs(op.args) if r.slot in self.per_call)
        acc, traced, view = self.per_call[base], self.slots[base].value, self.slots[op.out].value
        if acc.strides != _elements(traced.strides, traced) or view.dtype != traced.dtype:
            raise Unsupported(f"{op_name(op.kind)} of an argument")
        start = (view.__array_interface__["data"][0] - traced.__array_interface__["data"][0]) // view.itemsize
        self.per_call[op.out] = Access(
            acc.buf, acc.offset + start, view.shape, _elements(view.strides, view), view.dtype
        )

    def _in(self, k: int, slot: int) -> None:
        self._copy(self.access(slot), self._input_access(k))

    def _out(self, k: int, slot: int) -> None:
        self._copy(self._input_access(k), self.access(slot))

    def _op(self, index: int) -> None:
        op = self.ops[index]
        kind = op.kind
        if kind[0] != "setitem" and kind[1] is np.matmul and kind[-1] in ("__call__", np.matmul) and not op.kwargs:
            self._matmul(op)
        elif kind[0] == "ufunc" and kind[2] == "__call__":
            self._ufunc(op)
        elif kind[0] == "ufunc" and kind[2] == "reduce" and kind[1] in _REDUCE:
            self._reduce(op, kind[1], op.args[0], op.args[1:], op.kwargs)
        elif kind[0] == "call" and kind[1] in _REDUCE_CALLS:
            self._reduce(op, _REDUCE_CALLS[kind[1]], op.args[0], op.args[1:], op.kwargs)
        elif kind[0] == "call" and kind[1] is np.where and len(op.args) == 3 and not op.kwargs:
            self._where(op)
        elif kind[0] == "call" and kind[1] is np.clip and not set(op.kwargs) - {"casting"}:
            self._clip(op)
        elif kind[0] == "call" and kind[1] in (np.ones_like, np.zeros_like):
            out = self.access(op.out)
            self._add(Node("elementwise", out, [], out.dtype, literal(kind[1] is np.ones_like, out.dtype)))
        elif kind[0] == "call" and kind[1] is np.copyto and not set(op.kwargs) - {"casting"} and len(op.args) == 2:
            self._copy(self.access(op.out), self._operand(op.args[1]))
        elif kind[0] == "method" and kind[1] in ("astype", "copy"):
            self._copy(self.access(op.out), self._operand(op.args[0]))
        elif kind[0] == "setitem" and _whole(op.args[1]):
            self._copy(self.access(op.out), self._operand(op.args[2]))
        elif kind[0] == "call" and not getattr(kind[1], "__module__", "").startswith("numpy"):
            raise Unsupported(f"the value check {op_name(kind)} (traceable.validated), which runs in Python")
        else:
            raise Unsupported(op_name(kind) + (" with an index" if kind[0] == "setitem" else ""))

    # -- one emitter per kind of operation --------------------------------------------------------------
    def _operand(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.access(value.slot)
        if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            return value
        raise Unsupported(f"an argument of type {type(value).__name__}")

    def _elementwise(
        self,
        op: Any,
        out: Access,
        operands: list,
        expr: str,
        loop: np.dtype,
        result: np.dtype | None = None,
        types: list | None = None,
    ) -> None:
        types = types or [loop] * len(operands)
        ops = [literal(v, t) if not isinstance(v, Access) else v for v, t in zip(operands, types)]
        for a in ops:
            if isinstance(a, Access) and self.may_overlap(a, out) and a.key(out.shape) != out.key(out.shape):
                raise Unsupported(f"{op_name(op.kind)} writing over its own input through another view")
        self._add(Node("elementwise", out, ops, loop, expr, result=result, types=types))

    def _ufunc(self, op: Any) -> None:
        ufunc = op.kind[1]
        if set(op.kwargs) - {"casting", "dtype"} or ufunc.nout != 1:
            raise Unsupported(f"{op_name(op.kind)} with {', '.join(sorted(op.kwargs))}")
        table = _UNARY if ufunc.nin == 1 else _BINARY
        if ufunc.__name__ not in table:
            raise Unsupported(op_name(op.kind))
        operands = [self._operand(a) for a in op.args]
        loop, result = _loop_dtype(ufunc, operands, op.kwargs.get("dtype"))
        f = "f" if loop == np.float32 else ""
        expr = table[ufunc.__name__].format(*[f"v{k}" for k in range(ufunc.nin)], T=CTYPES[loop], f=f)
        self._elementwise(op, self.access(op.out), operands, expr, loop, result)

    def _where(self, op: Any) -> None:
        cond, a, b = (self._operand(v) for v in op.args)
        loop = np.result_type(*[v.dtype if isinstance(v, Access) else v for v in (a, b)])
        bool_ = np.dtype(np.bool_)
        self._elementwise(op, self.access(op.out), [cond, a, b], "(v0 ? v1 : v2)", loop, types=[bool_, loop, loop])

    def _clip(self, op: Any) -> None:
        a, lo, hi = (self._operand(v) if v is not None else None for v in (list(op.args) + [None, None])[:3])
        present = [v for v in (a, lo, hi) if v is not None]
        loop = np.result_type(*[v.dtype if isinstance(v, Access) else v for v in present])
        expr = "v0"
        if lo is not None:
            expr = _BINARY["maximum"].format(expr, "v1")
        if hi is not None:
            expr = f"({{t}} = {expr}, " + _BINARY["minimum"].format("{t}", f"v{len(present) - 1}") + ")"
        self._elementwise(op, self.access(op.out), present, expr, loop)

    def _copy(self, out: Access, source: Any) -> None:
        dtype = source.dtype if isinstance(source, Access) else out.dtype
        if isinstance(source, Access) and source.dtype not in CTYPES:
            raise Unsupported(f"dtype {source.dtype}")
        ops = [source if isinstance(source, Access) else literal(source, dtype)]
        if isinstance(source, Access) and self.may_overlap(source, out) and source.key(out.shape) != out.key(out.shape):
            raise Unsupported("a copy between overlapping views")
        self._add(Node("elementwise", out, ops, dtype, "v0"))

    def _reduce(self, op: Any, ufunc: np.ufunc, value: Any, rest: tuple, kwargs: dict) -> None:
        params = dict(zip(("axis", "dtype"), rest)) | kwargs
        if params.get("where", True) is True:
            params.pop("where", None)
        if "initial" in params and params["initial"] == _REDUCE[ufunc][1]:  # the loop's own start value
            params.pop("initial")
        if set(params) - {"axis", "keepdims", "dtype"} or not isinstance(value, Ref):
            raise Unsupported(f"{op_name(op.kind)} with {', '.join(sorted(params))}")
        source, out = self.access(value.slot), self.access(op.out)
        ndim = len(source.shape)
        axis = params.get("axis", 0 if op.kind[0] == "ufunc" else None)
        axes = set(range(ndim)) if axis is None else {a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))}
        kept = tuple(1 if k in axes else n for k, n in enumerate(source.shape))
        full = list(out.strides) if params.get("keepdims") else _insert_axes(out.strides, axes, ndim)
        acc = Access(out.buf, out.offset, kept, tuple(0 if k in axes else s for k, s in enumerate(full)), out.dtype)
        if self.may_overlap(acc, source):
            raise Unsupported(f"{op_name(op.kind)} into its own input")
        loop = np.dtype(params["dtype"]) if params.get("dtype") is not None else out.dtype
        name, init = _REDUCE[ufunc]
        f = "f" if loop == np.float32 else ""
        self._add(
            Node(
                "reduce",
                acc,
                [source],
                loop,
                _BINARY[name].format("v0", "v1", f=f),
                init=literal(init, loop),
                domain=source.shape,
            )
        )

    def _matmul(self, op: Any) -> None:
        a, b = (self._operand(v) for v in op.args)
        if not (isinstance(a, Access) and isinstance(b, Access) and len(a.shape) == len(b.shape) == 2):
            raise Unsupported("np.matmul of other than two matrices")
        out = self.access(op.out)
        if self.may_overlap(out, a) or self.may_overlap(out, b):
            raise Unsupported("np.matmul into one of its inputs")
        (m, k), n = a.shape, b.shape[1]
        big = m * n * k >= BLAS_MACS and min(m, n, k) >= BLAS_SIDE or n > MAX_ROW
        if big and any(self.table[x.buf][0] == "array" and self.table[x.buf][1].dtype != x.dtype for x in (a, b, out)):
            raise Unsupported("np.matmul on a view of another dtype")
        self._add(Node("blas" if big else "matmul", out, [a, b], np.result_type(a.dtype, b.dtype), domain=(m, n, k)))

    def _add(self, node: Node) -> None:
        if node.kind == "elementwise":
            node.domain = node.out.shape
        self.nodes.append(node)


def _root(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory: views of one root may overlap, arrays of different roots never do."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def refs(template: Any) -> list:
    if isinstance(template, Ref):
        return [template]
    if isinstance(template, (list, tuple)):
        return [r for v in template for r in refs(v)]
    return []


def _elements(strides: tuple, array: np.ndarray) -> tuple:
    if any(s % array.itemsize for s in strides):
        raise Unsupported("strides that are not a multiple of the item size")
    return tuple(s // array.itemsize for s in strides)


def _insert_axes(strides: tuple, axes: set, ndim: int) -> list:
    it = iter(strides)
    return [0 if k in axes else next(it) for k in range(ndim)]


def _whole(index: Any) -> bool:
    """Whether a setitem index selects the whole array (``a[...] = v``, ``a[:] = v``)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is Ellipsis or isinstance(p, slice) and p == slice(None) for p in parts)


def _loop_dtype(ufunc: np.ufunc, operands: list, dtype: Any) -> tuple:
    """The types numpy computes the ufunc in and gives its result (Python scalars are weak, as in numpy 2)."""
    types = tuple(
        a.dtype if isinstance(a, Access) else type(a) if type(a) in (bool, int, float) else np.asarray(a).dtype
        for a in operands
    )
    signature: dict[str, Any] = {} if dtype is None else {"signature": (None,) * ufunc.nin + (np.dtype(dtype),)}
    try:
        resolved = ufunc.resolve_dtypes(types + (None,), **signature)
    except TypeError as e:
        raise Unsupported(f"np.{ufunc.__name__} on {types}") from e
    if resolved[0] not in CTYPES or resolved[-1] not in CTYPES:
        raise Unsupported(f"np.{ufunc.__name__} in {resolved[0]}")
    return resolved[0], resolved[-1]


# ---- fusion and C text --------------------------------------------------------------------------------------
