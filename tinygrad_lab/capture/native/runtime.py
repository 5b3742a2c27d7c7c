"""The native step: a table of pointers to the replay's buffers (arguments filled in per call), the C
segments, and numpy's BLAS for the large matmuls between them."""

from __future__ import annotations

import ctypes
import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_lab.capture.native.lowering import Access, Lowering


class NativeStep:
    """Called like the replay function it replaces: with the step's array arguments, in order. Writes the
    same buffers (parameters, optimizer state, gradients, outputs) the numpy replay writes."""

    source: str  # the C file, set by native.attach once the step is built
    records_second: bool = False  # whether tl_run copies the step's second output after each step (attach)

    def __init__(
        self,
        lowering: Lowering,
        segments: list,
        lib: Any,
        loss: np.ndarray | None,
        second: np.ndarray | None,
        numpy_run: Callable,
        compile_seconds: float,
    ):
        self.numpy_run = numpy_run  # for arguments the C code cannot read in place
        self.compile_seconds = compile_seconds
        self.loss = loss
        self.second = second  # the buffer of the step's second output (the lab's predictions), when it has one
        table = lowering.table
        self.table = (ctypes.c_void_p * max(1, len(table)))()
        self.inputs = [(index, item[1]) for index, item in enumerate(table) if item[0] == "input"]
        self.writes_inputs = not lowering.replay.direct
        for index, item in enumerate(table):
            if item[0] == "array":
                self.table[index] = item[1].__array_interface__["data"][0]
        self.segments: list[Callable[[tuple], None]] = []
        for kind, what in segments:
            if kind == "c":
                fn = getattr(lib, f"tl_{what}")
                # No argtypes: ctypes passes the table (an array) as its address, the cheapest call it has.
                fn.argtypes, fn.restype = None, ctypes.c_int
                self.segments.append(_c_segment(fn, self.table))
            else:
                self.segments.append(self._blas(what, table))
        # One C segment (the common case): called directly; arguments bound last time are not bound again.
        self._single = fn if len(segments) == 1 and segments[0][0] == "c" else None
        self._bound: tuple = ()
        self._run = None
        if lib is not None and hasattr(lib, "tl_run"):
            self._run = lib.tl_run
            self._run.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
            self._run.restype = ctypes.c_int

    @staticmethod
    def _blas(node: Any, table: list) -> Callable[[tuple], None]:
        """``np.matmul(a, b, out=out)`` on the node's arrays (views of this call's arguments where needed)."""

        def array(access: Access, args: tuple) -> np.ndarray:
            kind, what = table[access.buf]
            base = what if kind == "array" else args[what].reshape(-1)[access.offset :]
            if base.dtype != access.dtype:
                raise ValueError(f"native matmul: a {access.dtype} view of a {base.dtype} buffer")
            return np.lib.stride_tricks.as_strided(base, access.shape, tuple(s * base.itemsize for s in access.strides))

        a, b, out = node.operands[0], node.operands[1], node.out
        fixed = [array(x, ()) if table[x.buf][0] == "array" else None for x in (a, b, out)]

        def run(args: tuple) -> None:
            np.matmul(
                fixed[0] if fixed[0] is not None else array(a, args),
                fixed[1] if fixed[1] is not None else array(b, args),
                out=fixed[2] if fixed[2] is not None else array(out, args),
            )

        return run

    def _bind(self, args: tuple) -> tuple | None:
        """Point the table at this call's arguments (C-contiguous copies where they are not), or None when
        the step writes into an argument that is not C-contiguous. The arrays of the last call stay
        referenced, so when the same objects come again their memory is where it was."""
        bound = self._bound
        if len(bound) == len(args) and all(map(operator.is_, args, bound)):
            return args
        if not all(a.flags.c_contiguous for a in args):
            if self.writes_inputs:
                return None
            args = tuple(np.ascontiguousarray(a) for a in args)
        table = self.table
        for index, k in self.inputs:
            table[index] = args[k].__array_interface__["data"][0]
        self._bound = args
        return args

    def __call__(self, *args: np.ndarray) -> None:
        if self._single is not None and len(args) == len(self._bound) and all(map(operator.is_, args, self._bound)):
            self._single(self.table)  # the arrays of the last call again: the table already points at them
            return
        bound = self._bind(args)
        if bound is None:
            self.numpy_run(*args)
            return
        if self._single is not None:
            self._single(self.table)
            return
        for segment in self.segments:
            segment(bound)

    def bound_to(self, args: tuple) -> Callable[[], Any] | None:
        """One step on exactly the arrays the table points at now, as a call with nothing left to check
        (None unless ``args`` are those arrays and the step is one C segment)."""
        if self._single is None or len(args) != len(self._bound) or not all(map(operator.is_, args, self._bound)):
            return None
        return functools.partial(self._single, self.table)

    def run(self, n: int, args: tuple, losses: np.ndarray, seconds: np.ndarray | None = None) -> None:
        """n steps on the same arguments, the loss of each into ``losses`` (float64, length n) and, when given,
        the second output after each into ``seconds`` (n of them): in one native call when the step is a
        single C segment, else one call per segment and step."""
        bound = self._bind(args)
        if bound is not None and self._run is not None and (seconds is None or self.records_second):
            self._run(self.table, n, losses.ctypes.data, None if seconds is None else seconds.ctypes.data)
            return
        loss = self.loss
        assert loss is not None  # the caller runs only a step whose first output is one number
        for i in range(n):
            self(*args)
            losses[i] = loss.reshape(-1)[0]
            if seconds is not None:
                seconds[i] = self.second


def _c_segment(fn: Any, table: Any) -> Callable[[tuple], None]:
    """A step segment that runs one compiled C function on the buffer table (the arguments are bound in it)."""
    return lambda args: fn(table)
