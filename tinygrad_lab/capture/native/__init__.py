"""A native backend for ``tl.compile``: the captured step's numpy operations become C (fused loops, small
matmuls as loops, large ones left to numpy's BLAS), compiled by the system C compiler, cached on disk and
called through ctypes on the replay's own buffers.

``attach(replay, ...)`` swaps the replay's function for the native one when it can and says which backend
runs: "native", or "numpy (<why not>)" naming the unsupported operation or the missing compiler. A program
not in the cache is compiled at the trace, before any step runs on it: every step after the trace is
native, cached program or not, so a run's numbers never depend on the cache (numpy's exp and the C
library's may differ by an ulp, which a chaotic run, e.g. RMSprop near zero gradients, grows into another
result). ``TINYGRAD_LAB_NATIVE=0`` keeps the numpy replay.
"""

from __future__ import annotations

import os
from typing import Any

from tinygrad_lab.capture.native.build import BuildError, cache_dir, compiler, load
from tinygrad_lab.capture.native.codegen import c_source, contiguous, fuse
from tinygrad_lab.capture.native.lowering import Lowering, Unsupported
from tinygrad_lab.capture.native.runtime import NativeStep

__all__ = ["attach", "NativeStep", "cache_dir", "compiler"]


def attach(replay: Any, output_slots: list, keep_slots: list) -> tuple[NativeStep | None, str]:
    """Lower the replay's program and load its native code, from the cache or compiled now; ``replay.run``
    becomes the native step. ``keep_slots``: the gradients, whose buffers, like the outputs', must hold their
    values after each call. Returns the step (None when there is none) and the backend's description:
    "native", or "numpy (<why not>)"."""
    if os.environ.get("TINYGRAD_LAB_NATIVE", "1") == "0":
        return None, "numpy (native backend off: TINYGRAD_LAB_NATIVE=0)"
    try:
        lowering = Lowering(replay, output_slots + keep_slots)
        groups = fuse(lowering)
        loss = second = None
        if output_slots and replay.arrays[output_slots[0]].size == 1:
            loss = lowering.access(output_slots[0])
            if len(output_slots) > 1:
                second = lowering.access(output_slots[1])
        source, segments = c_source(lowering, groups, loss, second)
        library = load(source) if any(kind == "c" for kind, _ in segments) else None  # cached, or compiled now
    except Unsupported as e:
        return None, f"numpy (the native backend does not support {e})"
    except BuildError as e:
        return None, f"numpy ({e})"
    step = NativeStep(
        lowering,
        segments,
        library and library.lib,
        replay.arrays[output_slots[0]] if loss is not None else None,
        replay.arrays[output_slots[1]] if second is not None else None,
        replay.run,
        library.compile_seconds if library else 0.0,
    )
    step.source = source
    step.records_second = second is not None and contiguous(second)
    replay.run = step
    return step, "native"
