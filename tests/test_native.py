"""tl.compile's native backend: each native step equals the numpy replay and eager execution (values, gradients,
optimizer state) for every operation the lab's settings record, in float32 and float64; it re-traces on new
shapes, falls back to the numpy replay without a compiler or for an unsupported operation, recompiles a
corrupt cache entry, and two processes compiling the same program leave one whole file.

Float64 tolerance: 1e-12 of each array's largest magnitude per step (sums and matmul loops add in another
order than numpy's pairwise sums and BLAS; exp, log, tanh, pow come from the C library and numpy's SIMD
versions may differ by an ulp). Float32: 1e-5, about a hundred float32 ulps, for the same reasons at float32's
precision (numpy's float32 exp/tanh/log are its own SIMD code, the C library's expf/tanhf/logf differ by ulps),
plus twice the numpy step's own error against the same step computed in float64: where a sum cancels (a small
gradient of large terms) both float32 results sit further than 1e-5 from the exact one, and from each other.
"""

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.capture import CaptureError, native
from tinygrad_lab.engine import traceable
from tinygrad_lab.lab import data, train
from tinygrad_lab.lab.config import (
    ACTIVATIONS,
    LOSSES,
    OPTIMIZERS,
    TrainConfig,
    build_model,
    build_optimizer,
    model_spec,
)

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def _without_compiler() -> str | None:
    """The backend a machine without a C compiler reports (None when there is one): `make test` passes on
    both, each test checking what this machine must give."""
    try:
        native.compiler()
    except native.build.BuildError as e:
        return f"numpy ({e})"
    return None


NO_COMPILER = _without_compiler()
NATIVE = NO_COMPILER or "native"  # the backend tl.compile must pick here


def max_difference(actual, expected) -> float:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return float(np.max(np.abs(actual - expected))) if expected.size else 0.0


def assert_close(actual, expected, dtype, what="", slack=0.0):
    """actual within TOLERANCE of expected's largest magnitude, plus ``slack`` (absolute)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape, what
    scale = max(np.max(np.abs(expected)), np.finfo(np.float64).tiny) if expected.size else 1.0
    error = max_difference(actual, expected)
    bound = TOLERANCE[dtype] * scale + slack
    assert error <= bound, f"{what}: max difference {error:.3g}, scale {scale:.3g}, slack {slack:.3g}"


def lab_setup(activation, loss, optimizer, dtype, hidden=(4, 4), seed=0):
    """The report's train_step on the lab's XOR data with one activation, loss and optimizer."""
    x, y = data.generate_xor_easy()
    cfg = TrainConfig(activation=activation, loss=loss, optimizer=optimizer, hidden=hidden)
    model = build_model(model_spec(cfg), rng=np.random.default_rng(seed))
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    opt = build_optimizer(optimizer, model.parameters(), 0.1)

    def step(xt, yt):
        return train.train_step(model, xt, yt, LOSSES[loss], opt)

    return model, opt, step, tl.Tensor(x.astype(dtype)), tl.Tensor(y.astype(dtype))


def float64_step(activation, loss, optimizer, run):
    """The outputs, gradients and state after one step computed in float64 from ``run``'s (float32) parameters and
    optimizer state: what a float32 step approximates, so the rounding error of a float32 step can be measured."""
    model, opt, _fn, x, y = run
    exact_model, exact_opt, step, x64, y64 = lab_setup(activation, loss, optimizer, np.float64)
    step(x64, y64)  # makes the optimizer's state, then overwritten
    for exact, ours in zip(state_arrays(exact_model, exact_opt), state_arrays(model, opt), strict=True):
        exact[...] = ours
    outputs = step(x64, y64)
    grads = [p.grad.data for p in exact_model.parameters()]
    return [o.data for o in outputs], grads, [a.copy() for a in state_arrays(exact_model, exact_opt)]


def state_arrays(model, opt):
    """Parameters and every optimizer state array (not its scratch buffer), in a fixed order."""
    arrays = [p.data for p in model.parameters()]
    for state in opt.state:
        arrays += [state[k] for k in sorted(state) if isinstance(state[k], np.ndarray) and k not in ("lr", "buf")]
    return arrays


def _lab_accepts(activation: str, loss: str, optimizer: str) -> bool:
    """Whether the lab's config takes this setting (bce needs the output's sigmoid, cross_entropy class labels)."""
    try:
        TrainConfig(activation=activation, loss=loss, optimizer=optimizer)
    except ValueError:
        return False
    return True


LAB_SETTINGS = [(a, s, o) for a in ACTIVATIONS for s in LOSSES for o in OPTIMIZERS if _lab_accepts(a, s, o)]


NATIVE_SETTINGS = [(a, s, o, dtype) for a, s, o in LAB_SETTINGS for dtype in (np.float64, np.float32)]


@pytest.mark.parametrize("activation,loss,optimizer,dtype", NATIVE_SETTINGS)
def test_each_native_step_equals_the_numpy_replay_and_eager(activation, loss, optimizer, dtype):
    runs = {}
    for name in ("native", "numpy", "eager"):
        model, opt, step, x, y = lab_setup(activation, loss, optimizer, dtype)
        fn = step if name == "eager" else tl.compile(step, native=name == "native")
        runs[name] = (model, opt, fn, x, y)
    for _ in range(4):  # warm-up, trace, (the native code compiles), check against eager
        for _model, _opt, fn, x, y in runs.values():
            fn(x, y)
        if _ == 1:
            assert runs["native"][2].backend == NATIVE  # compiled at the trace
    for epoch in range(5):
        reference = runs["native"]
        for name in ("numpy", "eager"):  # start every step from the native run's state
            for mine, theirs in zip(state_arrays(*runs[name][:2]), state_arrays(*reference[:2])):
                np.copyto(mine, theirs)
        exact = float64_step(activation, loss, optimizer, reference)
        results = {name: fn(x, y) for name, (model, opt, fn, x, y) in runs.items()}
        numpy_model, numpy_opt = runs["numpy"][:2]
        numpy_step = (
            [o.data for o in results["numpy"]],
            [p.grad.data for p in numpy_model.parameters()],
            state_arrays(numpy_model, numpy_opt),
        )
        # float32: the two may also part by twice the numpy step's own error against the exact (float64) step,
        # which a sum that cancels (a small gradient of large terms) makes larger than 1e-5 of the result
        outputs, grads, states = (
            [2 * max_difference(a, b) if dtype == np.float32 else 0.0 for a, b in zip(ours, exact_part, strict=True)]
            for ours, exact_part in zip(numpy_step, exact, strict=True)
        )
        for name in ("numpy", "eager"):
            what = f"{activation}/{loss}/{optimizer} epoch {epoch} native vs {name}"
            for k, (a, b) in enumerate(zip(results["native"], results[name])):
                assert_close(a.data, b.data, dtype, f"{what}: output {k}", outputs[k])
            for k, (a, b) in enumerate(zip(runs["native"][0].parameters(), runs[name][0].parameters())):
                assert_close(a.grad.data, b.grad.data, dtype, f"{what}: gradient {k}", grads[k])
            for k, (a, b) in enumerate(zip(state_arrays(*runs["native"][:2]), state_arrays(*runs[name][:2]))):
                assert a.dtype == b.dtype
                assert_close(a, b, dtype, f"{what}: parameter or optimizer state {k}", states[k])


OP_STEPS = {
    "reductions with axes": lambda x, w: (
        ((x @ w).sum(axis=0, keepdims=True) * (x @ w).max(axis=1, keepdims=True)).mean() + (x @ w).min(axis=0).sum()
    ),
    "clip, sqrt, log, abs": lambda x, w: ((x @ w).clip(-0.5, 0.7) ** 2 + 1.0).sqrt().log().sum() + (x @ w).abs().mean(),
    "exp, tanh, power, division": lambda x, w: ((x @ w).tanh() ** 3 / ((x @ w).exp() + 2.0)).mean(),
    "softmax and logsumexp": lambda x, w: (x @ w).softmax(axis=1).var() + (x @ w).logsumexp(axis=1).mean(),
    "relu, leaky_relu, transpose": lambda x, w: ((x @ w).relu() @ w.transpose(1, 0)).leaky_relu().mean(),
}


def _sgd_step(loss_of, w):
    """One plain gradient step on w for the loss loss_of(x, w), bound now so each backend compiles its own."""

    def step(x):
        w.grad = None
        out = loss_of(x, w)
        out.backward()
        w.data -= 0.01 * w.grad.data
        return out

    return step


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(OP_STEPS))
def test_tensor_ops_natively_equal_the_numpy_replay(name, dtype):
    rng = np.random.default_rng(3)
    x0, w0 = rng.standard_normal((7, 3)).astype(dtype), rng.standard_normal((3, 3)).astype(dtype)
    results = {}
    for backend in ("native", "numpy"):
        w = tl.Tensor(w0.copy(), requires_grad=True)
        step = _sgd_step(OP_STEPS[name], w)
        fn = tl.compile(step, native=backend == "native")
        for _ in range(2):  # warm-up, trace
            fn(tl.Tensor(x0))
        losses = [fn(tl.Tensor(x0)).data.copy() for _ in range(5)]  # the check against eager, then replays
        results[backend] = (losses, w.data.copy(), w.grad.data.copy(), fn.backend)
    assert results["native"][3] == NATIVE
    for a, b in zip(results["native"][:3], results["numpy"][:3]):
        assert_close(np.array(a), np.array(b), dtype, name)


def test_elementwise_loops_walk_memory_in_order_whatever_the_layout():
    """The step's arrays are each contiguous, some of them transposed (a weight's gradient arrives as the
    transpose of a matmul's result): every elementwise loop, the 8x8 weight's update included, runs along memory
    as one flat loop, not across it in steps of a row."""
    _, _, step, x, y = lab_setup("sigmoid", "mse", "sgd", np.float64, hidden=(8, 8))
    compiled = tl.compile(step)
    for _ in range(4):
        compiled(x, y)
    assert compiled.backend == NATIVE
    if NO_COMPILER:
        return  # no C source to read
    source = next(iter(compiled._replays.values())).native.source
    assert "for (long i0 = 0; i0 < 64; i0++)" in source  # the 8x8 weight's update, as one loop
    assert set(re.findall(r"for \(long i1 = 0; i1 < (\d+);", source)) <= {"1"}  # no second axis to cross


def test_a_new_shape_traces_and_compiles_again():
    model, opt, step, x, y = lab_setup("sigmoid", "mse", "sgd", np.float64)
    compiled = tl.compile(step)
    ref_model, _, ref_step, _, _ = lab_setup("sigmoid", "mse", "sgd", np.float64)
    ref = tl.compile(ref_step, native=False)
    for xs, ys in [(x, y), (tl.Tensor(x.data[:10]), tl.Tensor(y.data[:10]))]:
        for _ in range(6):
            a, b = compiled(xs, ys), ref(xs, ys)
            assert_close(a[0].data, b[0].data, np.float64, "loss")
            assert_close(a[1].data, b[1].data, np.float64, "pred")
        assert compiled.backend == NATIVE
    assert len(compiled._replays) == 2
    assert all((entry.native is not None) == (NO_COMPILER is None) for entry in compiled._replays.values())


def test_calls_on_other_arrays_between_repeated_calls_each_step_on_their_own_data():
    """A call with the same Tensors as the last replays without recomputing its signature: it must still
    notice other Tensors, arrays in place of Tensors, a Tensor given a new array or a new shape in between,
    and run.  Each step must equal the eager step's on the same calls."""
    compiled_in_cache("sigmoid", "mse", "sgd")
    _, _, step, x, y = lab_setup("sigmoid", "mse", "sgd", np.float64)
    _, _, ref_step, _, _ = lab_setup("sigmoid", "mse", "sgd", np.float64)
    compiled = tl.compile(step)

    def ref(*args):
        return ref_step(*[a if isinstance(a, tl.Tensor) else tl.Tensor(a) for a in args])

    x2, y2 = tl.Tensor(x.data[::-1].copy()), tl.Tensor(y.data[::-1].copy())
    half = (tl.Tensor(x.data[:10]), tl.Tensor(y.data[:10]))

    def same(args):
        a, b = compiled(*args), ref(*args)
        assert_close(a[0].data, b[0].data, np.float64, "loss")
        assert_close(a[1].data, b[1].data, np.float64, "pred")

    for args in [(x, y)] * 4 + [(x2, y2), (x, y), (x, y), (x.data, y.data), (x, y), half, (x, y)]:
        same(args)
    assert compiled.backend == NATIVE
    compiled.run(3, x2, y2), [ref(x2, y2) for _ in range(3)]
    same((x, y))
    x.data = x.data[::-1].copy()  # the same Tensor, another array
    same((x, y)), same((x, y))
    x.data = x.data[:10].copy()  # ... of another shape (as half's)
    y.data = y.data[:10].copy()
    same((x, y)), same((x, y))


def compiled_in_cache(activation, loss, optimizer, dtype=np.float64):
    """Trace a setting's step (which compiles its native code), so that the same program is in the cache."""
    _, _, step, x, y = lab_setup(activation, loss, optimizer, dtype)
    compiled = tl.compile(step)
    compiled(x, y), compiled(x, y)
    assert compiled.backend == NATIVE


def test_run_gives_the_losses_of_n_single_steps():
    compiled_in_cache("tanh", "bce", "adam")
    _, _, step, x, y = lab_setup("tanh", "bce", "adam", np.float64)
    model, _, ref_step, _, _ = lab_setup("tanh", "bce", "adam", np.float64)
    compiled = tl.compile(step)
    losses = compiled.run(50, x, y)
    assert compiled.backend == NATIVE  # from the cache: native from the trace (the second step) on
    assert all((entry.native is not None) == (NO_COMPILER is None) for entry in compiled._replays.values())
    ref = tl.compile(ref_step, native=False)
    expected = [ref(x, y)[0].item() for _ in range(50)]
    assert losses.shape == (50,) and losses.dtype == np.float64
    assert_close(losses, expected, np.float64, "losses")


def test_an_uncached_program_compiles_at_the_trace_so_the_numbers_do_not_depend_on_the_cache(monkeypatch, tmp_path):
    """Every step after the trace is native whether the program was cached or not: a chaotic run would
    otherwise end elsewhere when its first steps rounded as numpy does while the compiler ran."""
    monkeypatch.setenv("TINYGRAD_LAB_CACHE", str(tmp_path))  # empty: the step has to compile
    runs = []
    for _ in range(2):  # compiled into the empty cache, then loaded from it
        _, _, step, x, y = lab_setup("sigmoid", "bce", "momentum", np.float64)
        compiled = tl.compile(step)
        losses = compiled.run(2, x, y)
        assert compiled.backend == NATIVE
        runs.append(np.concatenate([losses, compiled.run(48, x, y)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    _, _, ref_step, _, _ = lab_setup("sigmoid", "bce", "momentum", np.float64)
    ref = tl.compile(ref_step, native=False)
    assert_close(runs[0], [ref(x, y)[0].item() for _ in range(50)], np.float64, "losses")


def test_run_on_the_numpy_backend_and_eagerly_after_a_failed_check():
    _, _, step, x, y = lab_setup("relu", "mse", "momentum", np.float64)
    _, _, ref_step, _, _ = lab_setup("relu", "mse", "momentum", np.float64)
    losses = tl.compile(step, native=False).run(20, x, y)
    np.testing.assert_array_equal(losses, [ref_step(x, y)[0].item() for _ in range(20)])


def test_the_third_call_still_checks_the_native_step_against_eager():
    w = tl.Tensor(np.ones((2, 2)), requires_grad=True)
    counter = [0]

    def step(x):
        counter[0] += 1
        return (x @ w * float(counter[0])).sum()  # a Python number that changes between calls

    compiled = tl.compile(step)
    compiled(tl.Tensor(np.ones((3, 2))))
    compiled(tl.Tensor(np.ones((3, 2))))
    assert compiled.backend == NATIVE
    with pytest.raises(CaptureError, match="disagrees with eager"):
        compiled(tl.Tensor(np.ones((3, 2))))


def test_the_lab_run_ends_as_the_numpy_replay_does():
    """20,000 epochs of the lab (XOR, sigmoid, MSE, SGD lr 0.1): the same accuracy, the loss within 1e-9."""
    compiled_in_cache("sigmoid", "mse", "sgd")
    finals = {}
    for backend in ("native", "numpy"):
        model, _, step, x, y = lab_setup("sigmoid", "mse", "sgd", np.float64)
        compiled = tl.compile(step, native=backend == "native")
        losses = compiled.run(20_000, x, y)
        pred = model(x).data
        finals[backend] = (losses[-1], train.accuracy(pred, y.data), compiled.backend)
    assert finals["native"][2] == NATIVE
    assert finals["native"][1] == finals["numpy"][1]
    assert abs(finals["native"][0] - finals["numpy"][0]) <= 1e-9 * abs(finals["numpy"][0])


def test_without_a_compiler_the_numpy_replay_runs_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    model, _, step, x, y = lab_setup("sigmoid", "mse", "sgd", np.float64)
    compiled = tl.compile(step)
    losses = compiled.run(5, x, y)
    assert compiled.backend.startswith("numpy (no C compiler: CC=")
    monkeypatch.delenv("CC")
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang there
    _, _, step2, x2, y2 = lab_setup("sigmoid", "mse", "sgd", np.float64)
    compiled2 = tl.compile(step2)
    np.testing.assert_array_equal(compiled2.run(5, x2, y2), losses)
    assert compiled2.backend == "numpy (no C compiler: none of cc, gcc, clang is on PATH and CC is not set)"


def test_an_unsupported_operation_is_named_and_the_numpy_replay_runs():
    w = tl.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)

    def step(x):
        w.grad = None
        out = (x @ w)[[0, 2, 2]].sum()  # fancy indexing: a gather (and a scatter in its backward)
        out.backward()
        return out

    compiled = tl.compile(step)
    for _ in range(4):
        compiled(tl.Tensor(np.ones((4, 3))))
    assert compiled.backend == "numpy (the native backend does not support ndarray.__getitem__, in GetItem.forward)"
    np.testing.assert_array_equal(w.grad.data, np.full((3, 2), 3.0))  # three rows of ones picked


def _positive(a: np.ndarray) -> np.ndarray:
    if (a <= 0).any():
        raise ValueError("the scales must be positive")
    return a


def test_a_value_check_keeps_the_step_in_numpy_where_every_call_runs_it():
    """traceable.validated hands back its array, which the trace records as a view; C code would drop the check,
    so the step stays with the numpy replay, which rejects a later call's bad values as eager does."""
    w = tl.Tensor(np.arange(3.0), requires_grad=True)

    def step(scales):
        w.grad = None
        out = (w * traceable.validated(_positive, scales)).sum()
        out.backward()
        return out

    compiled = tl.compile(step)
    for _ in range(4):
        compiled(np.ones(3))
    expected = NO_COMPILER or "numpy (the native backend does not support the value check _positive"
    assert compiled.backend.startswith(expected), compiled.backend
    with pytest.raises(ValueError, match="the scales must be positive"):
        compiled(np.array([1.0, -1.0, 2.0]))


def test_an_unsupported_call_inside_an_op_names_the_op_and_its_pass():
    """A CNN step stops at the convolution's window copy (a strided setitem): the message names Conv.forward,
    not only the numpy call."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    compiled = tl.compile(lambda x, y: train.train_step(model, x, y, F.mse_loss, opt))
    x, y = tl.Tensor(np.ones((2, 1, 4, 4))), tl.Tensor(np.zeros((2, 3)))
    for _ in range(4):
        compiled(x, y)
    assert compiled.backend.startswith("numpy (the native backend does not support ")
    assert compiled.backend.endswith(", in Conv.forward)")


def _fresh_program_source(tag: float) -> str:
    """A small program nobody compiled yet (the constant makes it new)."""
    return f"double tl_test(void) {{ return {tag!r}; }}\n"


def _loader_script(source: str, start_file: Path | None = None) -> str:
    """A Python program that loads ``source`` through the cache (after ``start_file`` appears) and prints the
    program's answer and whether it compiled."""
    return textwrap.dedent(f"""
        import ctypes, time
        from pathlib import Path
        from tinygrad_lab.capture.native import build
        while {str(start_file)!r} != "None" and not Path({str(start_file)!r}).exists():
            time.sleep(0.001)
        lib = build.load({source!r})
        lib.lib.tl_test.restype = ctypes.c_double
        print(lib.lib.tl_test(), lib.compile_seconds > 0)
    """)


def _load_elsewhere(source: str, cache: Path) -> list:
    """Load in a fresh process (this one keeps its libraries mapped, whatever happens to their files)."""
    done = subprocess.run(
        [sys.executable, "-c", _loader_script(source)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TINYGRAD_LAB_CACHE=str(cache)),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _replace(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def test_a_corrupt_cache_entry_is_compiled_again(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_LAB_CACHE", str(tmp_path))
    tag = time.time()
    source = _fresh_program_source(tag)
    if NO_COMPILER:  # nothing can be compiled: loading says why in a sentence
        with pytest.raises(native.build.BuildError, match="^no C compiler: "):
            native.build.load(source)
        return
    assert native.build.load(source).compile_seconds > 0
    assert native.build.load(source).compile_seconds == 0  # cached: nothing compiled
    (so_file,) = tmp_path.glob("*.so")
    _replace(so_file, b"not a shared object")  # a corrupt entry
    assert _load_elsewhere(source, tmp_path) == [repr(tag), "True"]
    assert _load_elsewhere(source, tmp_path) == [repr(tag), "False"]
    native.build.load(_fresh_program_source(tag + 1))  # a whole library, but of another program
    (other_so,) = [p for p in tmp_path.glob("*.so") if p != so_file]
    _replace(so_file, other_so.read_bytes())
    assert _load_elsewhere(source, tmp_path) == [repr(tag), "True"]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".c", ".c", ".so", ".so"]


def test_two_processes_compiling_the_same_program_leave_one_whole_file(tmp_path):
    tag = time.time()
    if NO_COMPILER:  # nothing can be compiled: loading says why in a sentence
        with pytest.raises(native.build.BuildError, match="^no C compiler: "):
            native.build.load(_fresh_program_source(tag))
        return
    source, start, cache = _fresh_program_source(tag), tmp_path / "go", tmp_path / "cache"
    env = dict(os.environ, TINYGRAD_LAB_CACHE=str(cache))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _loader_script(source, start)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    start.touch()  # both start compiling now
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [o[0] for o in outputs] == [repr(tag), repr(tag)] and "True" in [o[1] for o in outputs]
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and files[0].endswith(".c") and files[1].endswith(".so")  # no temporary files left
    assert _load_elsewhere(source, cache) == [repr(tag), "False"]  # the file loads; nothing is compiled again


def test_a_process_compiles_into_the_cache_and_the_next_process_loads_it(tmp_path):
    """The first process compiles at the trace and leaves the program and its source in the cache (no
    temporary file); the next finds it there."""
    script = textwrap.dedent("""
        import numpy as np
        import tinygrad_lab as tl
        w = tl.Tensor(np.ones((2, 2)), requires_grad=True)
        def step(x):
            w.grad = None
            loss = (x @ w).tanh().sum()
            loss.backward()
            return loss
        compiled = tl.compile(step)
        for _ in range(3):
            compiled(tl.Tensor(np.ones((3, 2))))
        print(compiled.backend)
    """)
    env = dict(os.environ, TINYGRAD_LAB_CACHE=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    if NO_COMPILER:
        assert first.stdout.strip() == NO_COMPILER and not list(tmp_path.iterdir())
        return
    assert first.stdout.strip() == "native"  # compiled at the trace
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".c", ".so"]
    second = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert second.stdout.strip() == "native"  # from the cache, at the trace


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_exp_stays_within_an_ulp_of_numpy_from_underflow_to_overflow(dtype):
    """The native exp is a branch-free polynomial with fused multiply-adds: checked element by element over the
    whole range, subnormal results, 0 and inf at the ends, and NaN included, against numpy's float64 exp rounded
    to the dtype (numpy's own float32 exp is up to 2 ulps from that; the native float32 exp is computed in
    float64)."""
    info = np.finfo(dtype)
    low, high = np.log(info.smallest_subnormal) - 1, np.log(info.max) + 1
    values = np.concatenate(
        [np.linspace(low, high, 40001), np.geomspace(1e-300, 1, 301), [0.0, np.nan, np.inf, -np.inf]]
    )
    values = values.astype(dtype)
    compiled = tl.compile(lambda x: x.exp())
    with np.errstate(over="ignore"):  # exp(89) overflows float32, as it should
        for _ in range(4):  # warm-up, trace, check (inf and NaN where eager has them), a native replay
            got = compiled(tl.Tensor(values)).data
        # without a compiler the numpy replay runs: numpy's own exp in the dtype
        want = np.exp(values) if NO_COMPILER else np.exp(values.astype(np.float64)).astype(dtype)
    assert compiled.backend == NATIVE
    finite = np.isfinite(want)
    assert np.all(np.abs(got[finite] - want[finite]) <= np.spacing(want[finite]))
    assert np.array_equal(got[~finite], want[~finite], equal_nan=True)
    assert np.any(want == 0) and np.any(np.isinf(want)) and np.any((want > 0) & (want < info.tiny))


@pytest.mark.parametrize("dtype,ulps", [(np.float64, 4), (np.float32, 2)])
def test_native_tanh_stays_within_a_few_ulps_of_numpy_from_tiny_to_saturated_inputs(dtype, ulps):
    """The native tanh is a branch-free polynomial (its loops vectorize, libm's tanh does not): checked element
    by element, not against the array's scale, down to the smallest inputs, where a naive (e - 1)/(e + 1) loses
    every digit, and keeping -0.0's sign."""
    tiny = np.finfo(dtype).tiny
    values = np.concatenate(
        [np.linspace(-30, 30, 6001), np.geomspace(tiny, 1, 500), -np.geomspace(tiny, 1, 500), [0.0, -0.0]]
    ).astype(dtype)
    compiled = tl.compile(lambda x: x.tanh())
    for _ in range(4):  # warm-up, trace, check, a native replay
        got = compiled(tl.Tensor(values)).data
    assert compiled.backend == NATIVE
    want = np.tanh(values)
    assert np.all(np.abs(got.astype(np.float64) - want) <= ulps * np.spacing(np.abs(want)))
    assert np.signbit(got[-1]) and not np.signbit(got[-2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_run_with_predictions_gives_each_single_steps_loss_and_predictions(dtype):
    """The native loop copies the predictions out after every step in the same one call: the same numbers
    as calling the compiled step n times."""
    runs = {}
    for name in ("run", "calls"):
        model, _, step, x, y = lab_setup("sigmoid", "mse", "momentum", dtype)
        compiled = tl.compile(step)
        if name == "run":
            losses, preds = compiled.run_with_predictions(40, x, y)
        else:
            outs = [compiled(x, y) for _ in range(40)]
            losses = np.array([loss.item() for loss, _ in outs])
            preds = np.stack([pred.data for _, pred in outs])
        runs[name] = (losses, preds, [p.data.copy() for p in model.parameters()])
        assert compiled.backend == NATIVE
    (la, pa, wa), (lb, pb, wb) = runs["run"], runs["calls"]
    assert pa.shape == (40, *pb.shape[1:]) and pa.dtype == dtype
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(pa, pb)
    for a, b in zip(wa, wb):
        np.testing.assert_array_equal(a, b)
