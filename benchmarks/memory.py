"""Peak memory (RSS) of long runs, each in a fresh subprocess so one run's allocations never hide another's.

The worker (``python -m benchmarks.memory SIZE EPOCHS MODE``) builds the problem and the step (the lab's
nn+optim step, eager or captured), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), then
records RSS before the first epoch, after 10% (at least 5) and 50% of the epochs and at the end, and the peak during the
run (VmHWM). No growth per epoch means RSS after 100% of the epochs equals RSS after 10% (the first epochs
may allocate once: optimizer state, tl.compile's buffers).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FLAT_SLACK_BYTES = 1 << 20  # allocator noise allowed between 10% and 100% of the epochs


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Current resident set size."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil  # not Linux: psutil, when installed

    return int(psutil.Process().memory_info().rss)


def peak_bytes() -> int:
    """Peak resident set size (since the last reset, where the kernel allows one)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def first_mark(epochs: int) -> int:
    """The epoch of the "after 10%" reading: 10% of the epochs, but past tl.compile's first 3 calls."""
    return min(epochs, max(5, epochs // 10))


def worker(size_name: str, epochs: int, mode: str, smoke: bool) -> dict:
    """Run ``epochs`` epochs of the lab step and report RSS at the checkpoints (bytes)."""
    from benchmarks.implementations import BY_KEY
    from benchmarks.problems import make_problem, sizes_for

    size = sizes_for([size_name], smoke)[0]
    runner = BY_KEY["captured_nn" if mode == "captured" else "eager_nn"].build(make_problem(size))
    gc.collect()
    peak_reset = reset_peak()
    result = {
        "size": size_name,
        "n": size.n,
        "epochs": epochs,
        "mode": mode,
        "start": rss_bytes(),
        "peak_reset": peak_reset,
    }
    marks = [(first_mark(epochs), "at_10"), (max(first_mark(epochs), epochs // 2), "at_50")]
    step = runner.step
    for epoch in range(1, epochs + 1):
        step()
        for mark, name in marks:
            if epoch == mark:
                result[name] = rss_bytes()
    result["end"] = rss_bytes()
    result["peak"] = peak_bytes()
    return result


@dataclass
class MemoryResult:
    size: str
    n: int
    mode: str
    epochs: int
    start: int
    at_10: int
    at_50: int
    end: int
    peak: int
    peak_reset: bool
    error: str = ""

    @property
    def growth_per_epoch(self) -> float:
        """Bytes per epoch between 10% and 100% of the epochs."""
        span = self.epochs - first_mark(self.epochs)
        return (self.end - self.at_10) / span if span > 0 else 0.0

    @property
    def flat(self) -> bool:
        return self.end - self.at_10 <= FLAT_SLACK_BYTES


def measure(size: str, epochs: int, mode: str, smoke: bool = False, timeout: float = 300) -> MemoryResult:
    """Run the worker in a subprocess and parse its report."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "benchmarks.memory", size, str(epochs), mode] + (["--smoke"] if smoke else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return MemoryResult(size, 0, mode, epochs, 0, 0, 0, 0, 0, False, error=tail[:200])
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return MemoryResult(
        data["size"],
        data["n"],
        data["mode"],
        data["epochs"],
        data["start"],
        data["at_10"],
        data["at_50"],
        data["end"],
        data["peak"],
        data["peak_reset"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One RSS measurement (run by python -m benchmarks).")
    parser.add_argument("size")
    parser.add_argument("epochs", type=int)
    parser.add_argument("mode", choices=["eager", "captured"])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(worker(args.size, args.epochs, args.mode, args.smoke)))


if __name__ == "__main__":
    main()
