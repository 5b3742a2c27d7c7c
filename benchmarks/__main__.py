"""``python -m benchmarks``: run every benchmark, print the tables, write RESULTS.md.

python -m benchmarks                     # the full run (a few minutes), writes benchmarks/RESULTS.md
python -m benchmarks --sizes S1 S3 --rounds 5
python -m benchmarks --smoke             # every part with tiny epoch counts, into a temporary directory
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cnn, conv, hotspots, labrun, machine, memory, overhead, report, timing
from benchmarks.implementations import BY_KEY
from benchmarks.problems import SIZES, sizes_for

DEFAULT_OUT = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Settings:
    """How long each part runs: the full run and the smoke run."""

    rounds: int
    warmup: float  # seconds of warm-up per implementation and size
    block: float  # seconds per timed block
    op_calls: int
    op_repeats: int
    memory_runs: tuple[tuple[str, int], ...]  # (size, epochs)
    lab_epochs: int
    lab_repeats: int
    profile_epochs: int
    gc_epochs: dict[str, int]  # implementation -> epochs of the GC measurement
    cnn_epochs: int  # per run of the digits CNN, each side
    cnn_runs: int  # alternated runs per side


FULL = Settings(
    rounds=7,
    warmup=0.3,
    block=0.2,
    op_calls=2000,
    op_repeats=7,
    memory_runs=(("S1", 20_000), ("S3", 200)),
    lab_epochs=20_000,
    lab_repeats=2,
    profile_epochs=2000,
    gc_epochs={"eager_nn": 5000, "captured_nn": 5000, "micrograd": 3},
    cnn_epochs=4,
    cnn_runs=3,
)
SMOKE = Settings(
    rounds=2,
    warmup=0.002,
    block=0.002,
    op_calls=20,
    op_repeats=2,
    memory_runs=(("S1", 200), ("S3", 20)),
    lab_epochs=200,
    lab_repeats=1,
    profile_epochs=20,
    gc_epochs={"eager_nn": 20, "captured_nn": 20, "micrograd": 1},
    cnn_epochs=1,
    cnn_runs=1,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run the benchmarks, print the tables, write RESULTS.md."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every part with tiny epoch counts (seconds); writes to --out or a temporary "
        "directory, never to benchmarks/RESULTS.md",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        choices=list(SIZES),
        default=list(SIZES),
        metavar="S",
        help="sizes of the per-epoch table (default: S1 S2 S3 S4)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per size (default 7; smoke 2)")
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {DEFAULT_OUT})")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        metavar="N",
        help="limit numpy's BLAS to N threads for the whole run (threadpoolctl); default: "
        "leave it as it is. On a machine shared with other work, a multithreaded BLAS call "
        "can wait a scheduler time slice for its second thread, which dominates S3 and S4",
    )
    args = parser.parse_args(argv)
    args.sizes = list(dict.fromkeys(args.sizes))
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.blas_threads is not None and args.blas_threads < 1:
        parser.error("--blas-threads must be >= 1")
    if args.smoke:
        if args.out is not None and args.out.resolve() == DEFAULT_OUT:
            parser.error("--smoke never writes benchmarks/RESULTS.md; give another --out")
        if args.out is None:
            args.out = Path(tempfile.mkdtemp(prefix="tinygrad-lab-bench-")) / "RESULTS.md"
    elif args.out is None:
        args.out = DEFAULT_OUT
    return args


def log(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def phase(title: str) -> Iterator[None]:
    """Log a part's title, then its duration."""
    log(title)
    start = time.perf_counter()
    yield
    log(f"  ({time.perf_counter() - start:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.blas_threads is not None:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=args.blas_threads, user_api="blas"))
        return run(args, argv)


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Every part, in order; then RESULTS.md."""
    settings = SMOKE if args.smoke else FULL
    rounds = args.rounds or settings.rounds
    started = time.perf_counter()
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    results = report.Results(
        command=command,
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=machine.describe(),
        rounds=rounds,
        block_seconds=settings.block,
        smoke=args.smoke,
    )

    for size in sizes_for(args.sizes, args.smoke):
        with phase(f"{size.title}: check against the reference, then {rounds} rounds"):
            results.sizes.append(timing.run_size(size, rounds, settings.warmup, settings.block, log=log))

    with phase("per-op overhead (4x4)"):
        results.overhead = overhead.run_overhead(settings.op_calls, settings.op_repeats)

    with phase("conv2d forward + backward against PyTorch (float32)"):
        results.conv = conv.run_conv(settings.op_repeats, settings.block, smoke=args.smoke, log=log)

    with phase(f"the digits CNN's epoch against PyTorch ({settings.cnn_runs} x {settings.cnn_epochs} epochs each)"):
        results.cnn = cnn.run_cnn(settings.cnn_epochs, settings.cnn_runs, log=log)

    with phase("memory (one subprocess per run)"):
        for size_name, epochs in settings.memory_runs:
            for mode in ("eager", "captured"):
                results.memory.append(memory.measure(size_name, epochs, mode, smoke=args.smoke))
                m = results.memory[-1]
                log(
                    f"  memory {size_name} {epochs} epochs {mode}: "
                    + (m.error or f"start {m.start >> 20} MiB, peak {m.peak >> 20} MiB, end {m.end >> 20} MiB")
                )

    with phase(f"the lab's run: S1, {settings.lab_epochs} epochs"):
        results.lab = labrun.run_lab(settings.lab_epochs, settings.lab_repeats, smoke=args.smoke, log=log)
        results.lab_epochs = settings.lab_epochs

    with phase("profile and garbage collection of the S1 loop"):
        results.profiles = [
            hotspots.profile("eager_nn", settings.profile_epochs, smoke=args.smoke),
            hotspots.profile("captured_nn", settings.profile_epochs, top=8, smoke=args.smoke),
            hotspots.profile("native_nn", settings.profile_epochs, top=8, smoke=args.smoke),
        ]
        results.gc = [
            hotspots.gc_stats(key, epochs, smoke=args.smoke)
            for key, epochs in settings.gc_epochs.items()
            if not BY_KEY[key].unavailable()
        ]

    machine.finish(results.machine)
    results.seconds = time.perf_counter() - started
    body = report.write(results, args.out)
    print()
    print(body)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
