"""``tl.compile``'s user-facing wrapper: the first call eager, the second traced, the third checked against eager,
then replays (native code where the backend supports the step, else the numpy replay), one per signature."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_lab.capture.replay import Replay
from tinygrad_lab.capture.tracer import CaptureError, TracedArray, Tracer
from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.autograd import state
from tinygrad_lab.engine.tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from tinygrad_lab.capture.native.runtime import NativeStep


def _signature(args: tuple) -> tuple:
    """What a replay is valid for: the shapes and dtypes of array arguments (and whether Tensor arguments
    require grad), the values of the others."""
    return tuple(
        [
            (a.shape, a.dtype, a.requires_grad)
            if isinstance(a, Tensor)
            else (a.shape, a.dtype)
            if isinstance(a, np.ndarray)
            else a
            if isinstance(a, (int, float, bool, str, type(None)))
            else type(a)
            for a in args
        ]
    )


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
        self._eager_only: dict[tuple, _EagerOnly] = {}  # signatures refused at the trace or by the check
        self._traced_modules: dict = {}  # the modules the last trace called
        # What runs the last traced step: "native", "numpy (<why not native>)"; "eager" before any trace.
        self.backend = "eager (not traced yet)"
        self._last: _Last | None = None  # the last replayed call, when its arguments were all Tensors

    def __call__(self, *args: Any) -> Any:
        if state.tracing is not None:  # inside another compiled step's trace: part of that step, as jax.jit nests
            return self.fn(*args)
        last = self._last
        if last is not None and last.holds(args):  # the same Tensors and arrays as the last replay
            last.run()
            return last.entry.call_after_run(args)
        self._last = None  # (this call may point the native step at other arrays)
        key = _signature(args)
        entry = self._replays.get(key)
        if entry is not None:
            if entry.current():  # else a parameter, a module's mode, the model or the optimizer changed
                if entry.pending_check:
                    return self._check(key, entry, args)
                result = entry.call(args)
                if all(isinstance(a, Tensor) for a in args):
                    self._last = _Last(entry, args)
                return result
            del self._replays[key]  # traced again after an eager warm-up (new state, e.g. an optimizer's, is made)
            self._calls[key] = 0
        eager_only = self._eager_only.get(key)
        if eager_only is not None:
            if eager_only.holds():
                return eager_only.run(self.fn, args)
            del self._eager_only[key]
            self._calls[key] = 0
        calls = self._calls.get(key, 0)
        self._calls[key] = calls + 1
        if calls == 0:
            return self.fn(*args)  # warm-up: creates optimizer state the replay will update in place
        modes_changed = traceable.changes.modes
        try:
            result, entry = self._trace(args)
        except CaptureError:  # refused once, with the reason; later calls with this signature run eagerly
            # modes the step switched before its refusal are not those a call starts with: the next call reads them
            mid_step = traceable.changes.modes != modes_changed
            self._eager_only[key] = _EagerOnly(self._traced_modules.values(), known=not mid_step)
            raise
        self._replays[key] = entry
        return result

    def run(self, n: int, *args: Any) -> np.ndarray:
        """``n`` steps on the same arguments; returns the first output (the loss) of each, as float64. Once the
        step is traced and checked, the native backend runs all remaining steps in one call."""
        return self._run(n, args, False)[0]

    def run_with_predictions(self, n: int, *args: Any) -> tuple[np.ndarray, np.ndarray]:
        """``run``, and also the step's second output (the predictions of a ``(loss, pred)`` step) after each
        step, stacked: shape ``(n, *pred.shape)``. The native backend copies them out in the same one call."""
        losses, seconds = self._run(n, args, True)
        assert seconds is not None
        return losses, seconds

    def _run(self, n: int, args: tuple, keep_second: bool) -> tuple[np.ndarray, np.ndarray | None]:
        losses = np.empty(n)
        seconds: np.ndarray | None = None
        self._last = None
        key = _signature(args)
        for i in range(n):
            entry = self._replays.get(key)
            if (
                entry is not None
                and entry.native is not None
                and not entry.pending_check
                and state.tracing is None
                and entry.current()
            ):
                if entry.outputs[0].size != 1:
                    raise ValueError(
                        f"compile: run() needs a step whose first output is one number, "
                        f"not shape {entry.outputs[0].shape}"
                    )
                if keep_second and seconds is None:
                    seconds = _stack_for(n, entry.outputs)
                entry.native.run(
                    n - i,
                    [a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))],
                    losses[i:],
                    None if seconds is None else seconds[i:],
                )
                entry.call_after_run(args)
                return losses, seconds
            out, _ = _flatten(self(*args))
            if not out or out[0].data.size != 1:
                raise ValueError("compile: run() needs a step whose first output is one number")
            losses[i] = out[0].data.reshape(-1)[0]
            if keep_second:
                if seconds is None:
                    seconds = _stack_for(n, [o.data for o in out])
                seconds[i] = out[1].data
        return losses, seconds

    # -- tracing -------------------------------------------------------------------------------------------------
    def _trace(self, args: tuple) -> tuple:
        for a in args:
            if not isinstance(a, (Tensor, np.ndarray, int, float, bool, str, type(None))):
                raise CaptureError(
                    f"compile: step arguments must be Tensors, arrays or Python scalars, got {type(a).__name__}"
                )
        tracer = Tracer()
        traced_args: list = []
        input_slots: list = []  # the slots of the array arguments
        for a in args:
            if isinstance(a, (Tensor, np.ndarray)):
                view = tracer.input(np.asarray(a.data if isinstance(a, Tensor) else a))
                input_slots.append(view._slot)
                traced_args.append(_retensor(a, view))
            else:
                traced_args.append(a)
        prev = state.tracing
        state.tracing = tracer
        try:
            out = self.fn(*traced_args)
            outputs, structure = _flatten(out)
            output_slots = [tracer._template(t.data).slot for t in outputs]
            grads = [(t, slot) for t, _ in tracer.swapped if (slot := _grad_slot(t)) is not None]
            arg_grads = [
                (k, slot)
                for k, t in enumerate(traced_args)
                if isinstance(t, Tensor) and (slot := _grad_slot(t)) is not None
            ]
        finally:
            state.tracing = prev
            self._traced_modules = tracer.modules
            rebound = tracer.rebound()
            for t, data in tracer.swapped:
                t.data = data
                if t.grad is not None and isinstance(t.grad.data, TracedArray):  # left by a trace that failed
                    t.grad = Tensor._wrap(np.array(t.grad.data))
        if rebound:
            raise CaptureError(
                f"compile: the step assigns a new array to the .data of a Tensor of shape {rebound[0].shape} "
                "instead of updating it in place (write w.data -= ..., or np.copyto(w.data, ...)); a replay "
                "updates the arrays it recorded and cannot follow a new one"
            )
        arrays_in = [a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))]
        for array, slot in zip(arrays_in, input_slots):
            if tracer.slots[slot].written:  # the step wrote into its argument (the trace wrote into a copy)
                np.copyto(array, tracer.slots[slot].value)
        replay = Replay(tracer, input_slots, output_slots, [s for _, s in grads + arg_grads])
        entry = _Entry(replay, structure, output_slots, grads, arg_grads, list(tracer.swapped), tracer.modules)
        entry.pending_check = self.verify
        self.backend = "numpy (native=False)"
        if self.native:
            from tinygrad_lab.capture import native  # native imports the tracer: import it when first needed

            entry.native, self.backend = native.attach(replay, output_slots, [s for _, s in grads + arg_grads])
        for t, slot in grads + [(args[k], slot) for k, slot in arg_grads]:
            t.grad = Tensor._wrap(np.array(tracer.slots[slot].value))
        return _unflatten(structure, [np.array(tracer.slots[s].value) for s in output_slots]), entry

    def _check(self, key: tuple, entry: _Entry, args: tuple) -> Any:
        """Run the replay and an eager step from the same state; they must agree (written arrays, gradients,
        outputs). If they do not, the replay is dropped and calls with this signature run eagerly. A call that
        raises (a bad label's ValueError, Ctrl-C) leaves the check to the next call."""
        self._last = None
        slots = entry.replay.tracer.slots
        written = [s.value for s in slots if s.kind == "external" and s.written]
        arrays_in = [a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))]
        written += [a for a, i in zip(arrays_in, entry.replay.input_slots) if slots[i].written]
        with_grad = [t for t, _ in entry.grads] + [args[k] for k, _ in entry.arg_grads]
        before, grads_before = [w.copy() for w in written], [t.grad for t in with_grad]
        try:
            replayed = _results(entry.call(args), written, with_grad)
        finally:  # the eager step starts from the same state; so does the next call if the replay raised
            _restore(written, before, with_grad, grads_before)
        eager = self.fn(*args)
        entry.pending_check = False
        no_grad = np.empty(0)  # eager left no gradient where the replay has one: a shape mismatch
        outs_e = [e.data for e in _flatten(eager)[0]]
        eager_arrays = written + [no_grad if t.grad is None else t.grad.data for t in with_grad] + outs_e
        kinds = [0] * len(written) + [1] * len(with_grad) + [2] * len(outs_e)  # state, gradients, outputs
        # float32 anywhere in the step (native exp/log/tanh and sums are a few of its ulps off) bounds the accuracy
        # of what is computed from it, float64 results included. Rounding a step amplifies can exceed the native
        # tolerance (Adagrad divides a gradient that cancels to noise by the noise's own root: in float64, steps of
        # 1e-7 where the check allows 1e-9 of the largest parameter), but a kernel that computes something else errs
        # by the size of the values themselves: 1e-6 (float32: 1e-3) of the largest array of the kind, a thousand
        # (a hundred) times the tolerance, is what is still called rounding.
        float32 = any(s.value.dtype == np.float32 for s in slots)
        native_rtol, rounding_rtol = (1e-5, 1e-3) if float32 else (1e-9, 1e-6)
        failure = _disagreement(replayed, eager_arrays, kinds, native_rtol if entry.native is not None else None)
        if failure is not None and entry.native is not None and failure[1] != "dtype":
            # the numpy replay, numpy's own operations, runs the signature if it agrees with eager
            beyond_rounding = _disagreement(replayed, eager_arrays, kinds, rounding_rtol)
            eager_arrays = [a.copy() for a in eager_arrays]
            eager_grads = [t.grad for t in with_grad]
            _restore(written, before, with_grad, grads_before)
            try:
                entry.native.numpy_run(*arrays_in)
                numpy_replayed = _results(entry.call_after_run(args), written, with_grad)
            finally:
                _restore(written, eager_arrays[: len(written)], with_grad, eager_grads)
            numpy_failure = _disagreement(numpy_replayed, eager_arrays, kinds, None)
            if numpy_failure is None:
                entry.replay.run, entry.native = entry.native.numpy_run, None
                if beyond_rounding is not None:
                    k, diff = beyond_rounding
                    self.backend = f"numpy (native code disagreed with eager: array {k}, max difference {diff})"
                    raise CaptureError(
                        f"compile: the native code disagrees with eager execution (array {k}, max difference {diff}) "
                        "by more than rounding explains, while the numpy replay agrees: likely a bug in the native "
                        "backend. Calls with these argument shapes and values now run the numpy replay; "
                        "tl.compile(step, native=False) or TINYGRAD_LAB_NATIVE=0 keeps the numpy replay throughout."
                    )
                self.backend = (
                    "numpy (native results differed from eager by rounding beyond the check's tolerance: "
                    f"array {failure[0]}, max difference {failure[1]})"
                )
                return eager
            failure = numpy_failure
        if failure is None:
            return eager
        del self._replays[key]
        self._eager_only[key] = _EagerOnly(m for m, _ in entry.modes)
        k, diff = failure
        if diff == "dtype":
            raise CaptureError(
                f"compile: the captured step disagrees with eager execution: array {k} has dtype "
                f"{replayed[k].dtype} in the replay but {eager_arrays[k].dtype} eagerly. This is a bug in the "
                "capture; calls with these argument shapes and values now run eagerly; --no-compile runs all eagerly."
            )
        raise CaptureError(
            f"compile: the captured step disagrees with eager execution (array {k}, max difference {diff}). "
            "The step probably depends on values that change between calls, which a replay does not follow: a "
            "Python number the step computes anew (a step counter, a learning rate it sets itself: opt.lr = ... "
            "inside the step runs only while it is traced, so set it between calls), random numbers drawn with "
            "numpy directly rather than through tinygrad_lab, gradients left to accumulate across calls (no "
            "zero_grad() in the step), or state replaced by new arrays instead of updated in place. "
            "Calls with these argument shapes and values now run eagerly; --no-compile runs all eagerly."
        )


def _results(outputs: Any, written: list, with_grad: list) -> list:
    """Copies of what a step run leaves: the arrays it writes, the gradients, then its outputs."""
    return (
        [w.copy() for w in written] + [t.grad.data.copy() for t in with_grad] + [o.data for o in _flatten(outputs)[0]]
    )


def _restore(written: list, values: list, with_grad: list, grads: list) -> None:
    """Put back the state a check's runs start from: the written arrays' values and the gradients."""
    for w, v in zip(written, values):
        w[...] = v
    for t, g in zip(with_grad, grads):
        t.grad = g


def _disagreement(replayed: list, eager: list, kinds: list, native_rtol: float | None) -> tuple | None:
    """The first array where a replay and eager differ, as (index, max difference, or "shape" or "dtype"), else
    None. The numpy replay runs eager's numpy operations: it must agree to 1e-9. Native code (``native_rtol``) sums
    in another order: its differences scale with the largest value of their kind (state, gradients, outputs), as a
    gradient that cancels to zero, a bias's before batch norm, keeps rounding noise of the terms that cancelled."""
    largest = [0.0, 0.0, 0.0]
    for kind, e in zip(kinds, eager):
        if e.dtype.kind == "f":
            largest[kind] = max(largest[kind], float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)))
    for k, (kind, r, e) in enumerate(zip(kinds, replayed, eager)):
        if r.dtype != e.dtype:
            return k, "dtype"
        rtol, atol = 1e-9, 1e-12
        if native_rtol is not None:
            rtol = native_rtol
            atol = max(atol, rtol * largest[kind])  # inf and NaN compare by position (equal_nan), not by size
        if r.shape != e.shape:
            return k, "shape"
        if not np.allclose(r, e, rtol=rtol, atol=atol, equal_nan=True):
            return k, float(np.max(np.abs(np.asarray(r, float) - np.asarray(e, float))))
    return None


class _EagerOnly:
    """A signature refused at the trace or by the check, which runs eagerly until what the step depended on
    changes (engine/traceable.py, rule 6): a module or optimizer assigned since, or a module it called in a mode
    that no call of it started or ended with. A step may switch modes itself (train, then evaluate): the modes the
    last eager call started and ended with both hold, so model.eval() between calls ends a refusal of dropout's
    draws while an eval-train round trip, or the step's own switching, does not."""

    def __init__(self, modules: Any, known: bool = True):
        self.modules = list(modules)
        self.assignments = traceable.changes.assignments
        # the mode tuples that hold; empty when the modes now are mid-step (the next call runs eagerly and tells)
        self.accepted = {self._modes()} if known else set()

    def _modes(self) -> tuple:
        return tuple(m.training for m in self.modules)

    def holds(self) -> bool:
        """Whether this call runs eagerly rather than tracing the step again."""
        if self.assignments != traceable.changes.assignments:
            return False
        return not self.accepted or self._modes() in self.accepted  # no modes known yet: the next call tells

    def run(self, fn: Callable, args: tuple) -> Any:
        """One eager call, after which the modes it started and ended with hold."""
        start = self._modes()
        result = fn(*args)
        self.accepted = {start, self._modes()} if self.accepted else {self._modes()}
        self.assignments = traceable.changes.assignments
        return result


def _stack_for(n: int, outputs: list) -> np.ndarray:
    """Room for the second of a step's outputs after each of n steps."""
    if len(outputs) < 2:
        raise ValueError("compile: run_with_predictions() needs a step that returns (loss, predictions)")
    return np.empty((n, *outputs[1].shape), outputs[1].dtype)


class _Last:
    """The Tensors of the last replayed call and what its signature depended on: a call with the same
    Tensors, holding the same arrays (same shape and dtype), the same requires_grad, and parameters that
    still hold the replay's arrays, replays again without computing its signature."""

    def __init__(self, entry: _Entry, args: tuple):
        self.entry, self.size = entry, len(args)
        arrays = tuple(a.data for a in args)
        run = entry.native.bound_to(arrays) if entry.native is not None else None
        self.run: Callable[[], Any] = run or (lambda: entry.replay.run(*arrays))  # one step on these arrays
        self.items = [(a, a.data, a.data.shape, a.data.dtype, a.requires_grad) for a in args]

    def holds(self, args: tuple) -> bool:
        """Whether ``args`` is the last call's again (a plain loop: the cheapest way Python has to check)."""
        if len(args) != self.size or self.entry.pending_check:
            return False
        for a, (t, data, shape, dtype, grad) in zip(args, self.items):
            if a is not t or a._data is not data or data.shape != shape or data.dtype is not dtype:
                return False
            if a.requires_grad is not grad:
                return False
        return self.entry.current()


class _Entry:
    """One replay and what a call needs around it: where outputs and the gradients of parameters and
    arguments are."""

    def __init__(
        self, replay: Replay, structure: Any, output_slots: list, grads: list, arg_grads: list, tensors: list,
        modules: dict,
    ):  # fmt: skip
        self.replay, self.structure = replay, structure
        self.tensors = [(t, data, t.requires_grad) for t, data in tensors]
        self.modes = [(m, m.training) for m in modules.values()]
        self.assignments, self.modes_seen = traceable.changes.assignments, traceable.changes.modes
        self.pending_check = False
        self.native: NativeStep | None = None  # the native step running this replay, if any
        arrays = replay.arrays
        self.grads = [(t, arrays[slot]) for t, slot in grads]
        self.arg_grads = [(k, arrays[slot]) for k, slot in arg_grads]  # (argument index, buffer)
        self.outputs = [arrays[s] for s in output_slots]
        self.flat_tuple = (
            structure not in (None, "tensor")
            and structure[0] is tuple
            and all(part == (1, "tensor") for part in structure[1])
        )  # (loss, pred): the common case, built directly

    def current(self) -> bool:
        """Whether what the trace read from Python objects still holds (engine/traceable.py, rule 6): each
        parameter holds its recorded array and requires_grad, each module called keeps its training mode, and no
        module had a parameter or submodule assigned, nor an optimizer made, since."""
        changes = traceable.changes
        if changes.assignments != self.assignments:
            return False
        for t, data, requires_grad in self.tensors:
            if t._data is not data or t.requires_grad != requires_grad:  # the slot: .data's property costs
                return False
        if changes.modes != self.modes_seen:  # some mode changed since the last look: are ours as traced?
            for module, training in self.modes:
                if module.training != training:
                    return False
            self.modes_seen = changes.modes
        return True

    def call(self, args: tuple) -> Any:
        self.replay.run(*[a.data if isinstance(a, Tensor) else a for a in args if isinstance(a, (Tensor, np.ndarray))])
        return self.call_after_run(args)

    def call_after_run(self, args: tuple) -> Any:
        """Gradients and outputs of the step that just ran."""
        wrap = Tensor._wrap
        for t, buffer in self.grads:
            if t.grad is None or t.grad._data is not buffer:
                t.grad = wrap(buffer)  # the buffer is reused by the next call, like PyTorch's .grad
        for k, buffer in self.arg_grads:
            args[k].grad = wrap(buffer.copy())  # a new argument each call: each gets its own array
        if self.structure == "tensor":
            return wrap(self.outputs[0].copy())
        if self.flat_tuple:
            if len(self.outputs) == 2:  # (loss, pred): without a comprehension's frame
                first, second = self.outputs
                return wrap(first.copy()), wrap(second.copy())
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
        result.append(_unflatten(s, arrays[k : k + n]))
        k += n
    return kind(result)


def compile(fn: Callable | None = None, *, verify: bool = True, native: bool = True) -> Any:  # noqa: A001
    """Capture a fixed-shape training step and replay it fast (as native code when a C compiler is there and
    ``native``); usable as ``tl.compile(step)`` or ``@tl.compile``."""
    if fn is None:
        return lambda f: CompiledStep(f, verify=verify, native=native)
    return CompiledStep(fn, verify=verify, native=native)
