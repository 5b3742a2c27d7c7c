"""A native backend for ``tl.compile``: the captured step's numpy operations become C (fused loops, small
matmuls as loops, large ones left to numpy's BLAS), compiled by the system C compiler, cached on disk and
called through ctypes on the replay's own buffers.

``attach(replay, ...)`` swaps the replay's function for the native one when it can and says which backend
runs: "native", or "numpy (<why not>)" naming the unsupported operation or the missing compiler. A program
not in the cache compiles in another process while the numpy replay runs the first steps.
``TINYGRAD_LAB_NATIVE=0`` keeps the numpy replay. ``TINYGRAD_LAB_NATIVE_WAIT=1`` waits for the compiler
instead: every step after the trace is native, so a run's result does not depend on how long the compiler
took (a chaotic run, e.g. RMSprop near zero gradients, ends elsewhere when its first steps round as numpy
does and the rest as the C code does).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

from tinygrad_lab.capture.native.build import BuildError, Compiling, cache_dir, cached, compiler, start
from tinygrad_lab.capture.native.codegen import c_source, fuse
from tinygrad_lab.capture.native.lowering import Lowering, Unsupported
from tinygrad_lab.capture.native.runtime import NativeStep

__all__ = ["attach", "NativeStep", "cache_dir", "compiler"]


def attach(
    replay: Any, output_slots: list, keep_slots: list, ready: Callable[[NativeStep | None, str], None]
) -> tuple[NativeStep | None, str, Pending | None]:
    """Lower the replay's program and load its native code: at once from the cache, or compiled while the
    numpy replay runs. When the native step is there, ``replay.run`` becomes it and ``ready(step, "native")``
    is called (``ready(None, "numpy (<why>)")`` when compiling fails). ``keep_slots``: the gradients, whose
    buffers, like the outputs', must hold their values after each call. Returns the step (None while
    compiling or when there is none), the backend's description and the Pending compile (to poll or wait)."""
    if os.environ.get("TINYGRAD_LAB_NATIVE", "1") == "0":
        return None, "numpy (native backend off: TINYGRAD_LAB_NATIVE=0)", None
    try:
        lowering = Lowering(replay, output_slots + keep_slots)
        groups = fuse(lowering)
        loss = None
        if output_slots and replay.arrays[output_slots[0]].size == 1:
            loss = lowering.access(output_slots[0])
        source, segments = c_source(lowering, groups, loss)
        needs_c = any(kind == "c" for kind, _ in segments)
        library = cached(source) if needs_c else None
    except Unsupported as e:
        return None, f"numpy (the native backend does not support {e})", None
    except BuildError as e:
        return None, f"numpy ({e})", None

    def finish(library: Any) -> NativeStep:
        step = NativeStep(
            lowering,
            segments,
            library and library.lib,
            replay.arrays[output_slots[0]] if loss is not None else None,
            replay.run,
            library.compile_seconds if library else 0.0,
        )
        step.source = source
        replay.run = step
        return step

    if library is not None or not needs_c:
        return finish(library), "native", None

    try:
        compiling = start(source)
        if os.environ.get("TINYGRAD_LAB_NATIVE_WAIT", "0") == "1":
            return finish(compiling.finish()), "native", None
    except BuildError as e:
        return None, f"numpy ({e})", None

    def install() -> None:
        try:
            step = finish(compiling.finish())
        except BuildError as e:
            ready(None, f"numpy ({e})")
            return
        ready(step, "native")

    return None, "numpy (while the native code compiles)", Pending(compiling, install)


class Pending:
    """A native step whose compiler is running. The caller asks ``poll()`` between its steps (no thread
    competes with them for the interpreter) or ``wait()``s; either installs the step, once. A process that
    exits first still waits for the compiler, so the cache gets the program and no temporary file stays."""

    def __init__(self, compiling: Compiling, install: Callable[[], None]):
        self.compiling, self._install = compiling, install
        self.done = False
        _unfinished.add(self)

    def poll(self) -> bool:
        """Install the step if the compiler has finished; whether it has (and the step is installed)."""
        if not self.done and self.compiling.process.poll() is None:
            return False
        self.wait()
        return True

    def wait(self) -> None:
        if not self.done:
            self.done = True
            _unfinished.discard(self)
            self._install()


_unfinished: set[Pending] = set()


@atexit.register
def _finish_at_exit() -> None:
    for pending in list(_unfinished):
        try:
            pending.compiling.finish()
        except BuildError:
            pass  # nothing to cache; finish() removed its files
