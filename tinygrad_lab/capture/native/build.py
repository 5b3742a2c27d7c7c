"""Compile C with the system compiler and load it with ctypes, through an on-disk cache keyed by a hash of
the source, the compiler and its flags: a second process (or run) compiles nothing.

Cache directory: ``$TINYGRAD_LAB_CACHE``, else ``$XDG_CACHE_HOME/tinygrad_lab``, else ``~/.cache/tinygrad_lab``.
Compiler: ``$CC`` when set, else ``cc``, ``gcc`` or ``clang`` from PATH. Every file is written under a
temporary name and renamed into place, so processes compiling the same program at once never see a torn
file; an entry that does not load, or loads but is not the program it is named after, is compiled again.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# No FMA contraction and no fast-math: every operation rounds as numpy's does, whatever the vector width
# -march=native gives. -fno-trapping-math only lets comparisons become branch-free selects (floating-point
# exception flags are not observed). -O1 with the vectorizer and small-function inlining (tl_exp) runs the
# lab's step as fast as -O2 and compiles in about four fifths of its time (the compiler is most of a first
# run's wait). The cache key includes the CPU's features: a cache shared between machines never hands one
# a program built for another.
FLAGS = [
    "-O1",
    "-ftree-vectorize",
    "-finline-small-functions",
    "-fvect-cost-model=dynamic",
    "-march=native",
    "-fPIC",
    "-shared",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-w",
]
_KEY_SYMBOL = "tl_program_key"


class BuildError(RuntimeError):
    """No compiler, or it failed; the message is one sentence for ``step.backend``."""


def compiler() -> list[str]:
    """The compiler command: ``$CC`` (which must exist), else the first of cc, gcc, clang on PATH."""
    cc = os.environ.get("CC")
    if cc:
        command = shlex.split(cc)
        if not command or shutil.which(command[0]) is None:
            raise BuildError(f"no C compiler: CC={cc!r} is not found")
        return command
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise BuildError("no C compiler: none of cc, gcc, clang is on PATH and CC is not set")


def cache_dir() -> Path:
    if os.environ.get("TINYGRAD_LAB_CACHE"):
        return Path(os.environ["TINYGRAD_LAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_lab"


class Library:
    """A loaded program: the ctypes library, its cache path and the seconds spent compiling (0 when cached)."""

    def __init__(self, lib: ctypes.CDLL, path: Path, compile_seconds: float):
        self.lib, self.path, self.compile_seconds = lib, path, compile_seconds


def cached(source: str) -> Library | None:
    """The program for a C source if the cache holds it whole, else None (nothing is compiled)."""
    command = compiler()
    key = _key(source, command)
    path = cache_dir() / f"{key}.so"
    lib = _open(path, key) if path.exists() else None
    return None if lib is None else Library(lib, path, 0.0)


def _key(source: str, command: list[str]) -> str:
    return hashlib.sha256("\0".join([source, *command, *FLAGS, _cpu()]).encode()).hexdigest()[:32]


def load(source: str) -> Library:
    """The compiled program for a C source, from the cache or freshly compiled into it."""
    found = cached(source)
    return found if found is not None else _compile(source)


def _compile(source: str) -> Library:
    """Compile a C source under a temporary name, load it under that unique name (a stale mapping of the
    cache path cannot answer), then rename the program and its source into the cache; a failure leaves no
    file behind, and two processes compiling the same program at once each rename a whole file."""
    command = compiler()
    key = _key(source, command)
    source += f'const char {_KEY_SYMBOL}[] = "{key}";\n'
    directory = cache_dir()
    path = directory / f"{key}.so"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the cache directory {directory}: {e.strerror}") from e
    began = time.perf_counter()
    fd, tmp = tempfile.mkstemp(prefix=f"{key}.", suffix=".tmp.so", dir=directory)
    os.close(fd)
    c_file = tmp[:-3] + ".c"
    try:
        Path(c_file).write_text(source)
        try:
            done = subprocess.run(
                [*command, *FLAGS, "-o", tmp, c_file, "-lm"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BuildError(f"C compiler {command[0]} did not run: {e}") from e
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise BuildError(f"C compiler {command[0]} failed: {first}")
        lib = _open(Path(tmp), key)
        if lib is None:
            raise BuildError(f"the compiled program {tmp} does not load")
        os.replace(tmp, path)
        os.replace(c_file, directory / f"{key}.c")
    finally:
        for leftover in (tmp, c_file):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return Library(lib, path, time.perf_counter() - began)


@functools.cache
def _cpu() -> str:
    """The machine and its CPU's feature flags (Linux), else what platform knows of the processor (which
    on Linux runs ``uname -p``: a process start that the flags make unnecessary)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {flags.strip() or platform.processor()}"


def _open(path: Path, key: str) -> ctypes.CDLL | None:
    """The library at ``path`` if it loads and carries ``key``; None for a corrupt or foreign entry."""
    try:
        lib = ctypes.CDLL(str(path))
        stored = (ctypes.c_char * (len(key) + 1)).in_dll(lib, _KEY_SYMBOL).value
    except (OSError, ValueError):
        return None
    return lib if stored == key.encode() else None
