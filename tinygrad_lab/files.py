"""Every file the CLI and the report write goes through here, atomically: the bytes go to a temporary file
in the destination's folder and ``os.replace`` renames it over the destination, so an interrupted run
leaves either the old file or the complete new one, never half a file. ``staged_folder`` does the same for
a set of files: a run's outputs appear in their folder all together or not at all.

Also the model file: ``save_model`` writes the state_dict plus the metadata needed to rebuild the model
into one .npz; ``load_model`` rebuilds it and turns every way the file can be wrong into a
``ModelFileError`` naming the file and what is wrong (the missing key, or both shapes).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import zipfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

META_KEY = "__meta__"
MODEL_FORMAT = "tinygrad-lab-model"
# 2: Linear weights are (out_features, in_features), PyTorch's layout; version 1 files hold (in, out).
MODEL_VERSION = 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would have given; mkstemp's files are 0600


_TMP_NAME_ROOM = 200  # bytes of the destination's name kept in the temporary file's (which adds 14)


def _tmp_prefix(name: str) -> str:
    """The temporary file's prefix: the destination's name cut to _TMP_NAME_ROOM bytes (file systems count bytes:
    'é' takes two), never inside a character."""
    return "." + os.fsencode(name)[:_TMP_NAME_ROOM].decode("utf-8", "ignore") + "."


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """``with atomic_write(path, "wb") as f:`` write to f; on success f replaces path, on error path is untouched.
    An OSError of the file system names ``path``, never the temporary file."""
    shown = os.fspath(path)
    path = Path(path)
    if not shown:
        raise FileNotFoundError(errno.ENOENT, "no file name given", shown)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file that can be written", shown)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path.name), suffix=".tmp")
    except OSError as err:
        raise _naming(err, shown) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)
        except OSError as err:
            raise _naming(err, shown) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _naming(err: OSError, path: str) -> OSError:
    """The same error about ``path``: one line naming the destination instead of the temporary file."""
    return type(err)(err.errno, err.strerror, path) if err.errno is not None else err


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with sorted keys and a final newline (stable bytes for the same content)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def save_figure(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """A matplotlib figure saved atomically, in the format the suffix names (.png, .svg, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)
    return path


class PathError(Exception):
    """A file or folder that cannot be used as asked; ``str(err)`` is ``"<path>: <reason>"``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class OutputFolderError(PathError):
    """An output folder that cannot be created or replaced."""


# ---- a folder written as one ---------------------------------------------------------------------------------------


def check_output_folder(dest: str | os.PathLike, names: Collection[str]) -> None:
    """Raise OutputFolderError unless ``dest`` is absent, or a folder holding only regular files named in
    ``names`` (a previous run, which staged_folder replaces) and leftover temporary files of atomic_write."""
    dest = Path(dest)
    if not dest.exists():
        return
    if not dest.is_dir():
        raise OutputFolderError(dest, "exists and is not a folder")
    leftover = re.compile(r"^\.(" + "|".join(map(re.escape, names)) + r")\..+\.tmp$")
    for entry in sorted(dest.iterdir()):
        if entry.name in names and (entry.is_symlink() or not entry.is_file()):
            kind = "a folder" if entry.is_dir() and not entry.is_symlink() else "not a regular file"
            raise OutputFolderError(entry, f"is {kind}; an output folder may hold only a run's files")
        if entry.name not in names and not (leftover.match(entry.name) and entry.is_file()):
            raise OutputFolderError(
                dest,
                f"holds {entry.name!r}, which is not a run's output; choose a new or "
                "empty folder (a previous run's folder is replaced whole)",
            )


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (on POSIX, in the main thread)."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def staged_folder(dest: str | os.PathLike, names: Collection[str]) -> Iterator[Path]:
    """``with staged_folder(dest, names) as tmp:`` write the files (named in ``names``) into tmp, a new folder
    beside dest; when the block succeeds tmp becomes dest in one rename (a previous run at dest is moved
    aside first, then deleted). On any error, Ctrl-C included, tmp is deleted and dest is left as it was.
    Problems with dest (see check_output_folder) or its parent are OutputFolderError, raised before the block."""
    dest = Path(dest)
    check_output_folder(dest, names)
    target = Path(os.path.realpath(dest))  # a symlink to a folder: replace the folder it points to
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
        os.chmod(tmp, 0o777 & ~_umask())  # what mkdir would have given; mkdtemp's folders are 0700
    except OSError as err:
        raise OutputFolderError(dest, f"cannot create it ({err.strerror or err})") from None
    try:
        yield tmp
        check_output_folder(dest, names)  # it may have changed while the run was going
        with _signals_held():
            _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename tmp to target; an existing target (already checked to be a run) is renamed aside, then deleted."""
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.rename(target, aside / "run")
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside / "run", target)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


# ---- model files ---------------------------------------------------------------------------------------------------


class ModelFileError(PathError):
    """A model file that is missing, unreadable or does not fit the model it describes."""


def save_model(path: str | os.PathLike, model: Any, meta: dict) -> Path:
    """model.state_dict() and ``meta`` (JSON: whatever rebuilds the model) into one .npz, atomically."""
    arrays = dict(model.state_dict())
    if META_KEY in arrays:
        raise ValueError(f"save_model: a parameter is named {META_KEY!r}, which the metadata uses")
    header = {"format": MODEL_FORMAT, "version": MODEL_VERSION, **meta}
    arrays[META_KEY] = np.array(json.dumps(header, sort_keys=True))
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict]:
    """(metadata, arrays) from a model file; every failure is a ModelFileError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if path.is_dir():
        raise ModelFileError(path, "is a directory, not a model file")
    if not zipfile.is_zipfile(path):  # np.load would guess at other formats (and talk about pickles)
        raise ModelFileError(path, "not a .npz archive (tinygrad-lab train writes model.npz)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError) as err:
        raise ModelFileError(path, f"not a readable .npz archive ({err})") from None
    except (OSError, ValueError, KeyError, zipfile.LargeZipFile) as err:
        raise ModelFileError(path, f"not a readable .npz archive ({type(err).__name__}: {err})") from None
    except Exception as err:  # noqa: BLE001  (any decoding failure of a corrupt archive is the file's fault)
        raise ModelFileError(path, f"corrupt archive ({type(err).__name__}: {err})") from None
    if META_KEY not in arrays:
        raise ModelFileError(path, f"missing key {META_KEY!r} (the metadata that rebuilds the model)")
    raw = arrays.pop(META_KEY)
    try:
        meta = json.loads(str(raw.item()))
    except (ValueError, TypeError) as err:
        raise ModelFileError(path, f"key {META_KEY!r} does not hold JSON metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(path, f"not a tinygrad-lab model file (metadata format is not {MODEL_FORMAT!r})")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MODEL_VERSION:
        raise ModelFileError(
            path,
            f"model file version {version!r} is not one this tinygrad-lab reads "
            f"(1 to {MODEL_VERSION}); a newer tinygrad-lab may have written it",
        )
    return meta, arrays


def check_state(path: str | os.PathLike, model: Any, arrays: dict) -> None:
    """Raise ModelFileError naming the first missing key, unexpected key, non-numeric or non-finite array, or
    mismatched shape (both shapes)."""
    expected = model.state_dict()
    for name, value in expected.items():
        if name not in arrays:
            raise ModelFileError(path, f"missing key {name!r} (the model needs shape {tuple(value.shape)})")
        if arrays[name].dtype.kind not in "fiu":
            raise ModelFileError(path, f"key {name!r} holds {arrays[name].dtype} values, not real numbers")
        if arrays[name].dtype.kind == "f" and not np.isfinite(arrays[name]).all():
            bad = int(np.size(arrays[name]) - np.isfinite(arrays[name]).sum())
            raise ModelFileError(
                path, f"key {name!r} holds {bad} NaN or infinite value(s): the model diverged, its outputs mean nothing"
            )
        if arrays[name].shape != value.shape:
            raise ModelFileError(
                path,
                f"key {name!r} has shape {tuple(arrays[name].shape)} in the file but the model needs "
                f"{tuple(value.shape)}",
            )
    for name in arrays:
        if name not in expected:
            raise ModelFileError(path, f"unexpected key {name!r} (not a parameter of the model)")
