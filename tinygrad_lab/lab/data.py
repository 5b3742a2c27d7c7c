"""The lab's two datasets, exactly as the lab builds them, plus three toy sets for going further.

Every generator returns ``(inputs, labels)``: inputs of shape (n, 2) and labels of shape (n, 1), both
float64, labels 0.0 or 1.0. Randomness comes from ``rng``: a ``numpy.random.Generator``, an int seed, or
None for the generator ``tl.manual_seed`` sets (the same default every tinygrad_lab factory uses).

    from tinygrad_lab.lab import data
    x, y = data.generate_linear(100, rng=0)    # the lab's Task 1
    x, y = data.generate_xor_easy()            # the lab's Task 2 (21 fixed points)
    x, y = data.load_task("moons", rng=0)      # by name, as the CLI does

Real images too: the ``digits`` task is scikit-learn's bundled handwritten digits (the ``data`` extra), images
of shape (n, 1, 8, 8) (float32, standardized with the training pixels' mean and std) with integer labels (n,),
split once into a fixed training set (``load_task``) and test set (``load_test``); ``load_mnist(folder)`` reads
MNIST's IDX files from a folder.
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_lab.engine.random import resolve_rng as _default_rng
from tinygrad_lab.files import PathError


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (itself), an int seed, or None (tinygrad_lab's default generator)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return _default_rng(None)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_n(n: int, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _labels(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def generate_linear(n: int = 100, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 1: n points uniform in [0, 1]^2, labelled 0 when x0 > x1, else 1."""
    n = _check_n(n)
    pts = as_rng(rng).uniform(0, 1, (n, 2))
    return pts, _labels(~(pts[:, 0] > pts[:, 1]))


def generate_xor_easy() -> tuple[np.ndarray, np.ndarray]:
    """The lab's Task 2: for i = 0..10, (0.1i, 0.1i) labelled 0 and, unless i == 5 (the centre, already
    there), (0.1i, 1 - 0.1i) labelled 1; 21 points, interleaved in that order as the lab appends them."""
    inputs, labels = [], []
    for i in range(11):
        inputs.append([0.1 * i, 0.1 * i])
        labels.append(0)
        if i == 5:
            continue
        inputs.append([0.1 * i, 1 - 0.1 * i])
        labels.append(1)
    return np.array(inputs, dtype=np.float64), _labels(labels)


def circle(
    n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform in [0, 1]^2, labelled 1 inside the disc around (0.5, 0.5) that holds half the
    square's area (radius 1/sqrt(2 pi)), 0 outside. ``noise`` adds Gaussian jitter (std) after labelling."""
    n = _check_n(n)
    gen = as_rng(rng)
    pts = gen.uniform(0, 1, (n, 2))
    inside = np.hypot(pts[:, 0] - 0.5, pts[:, 1] - 0.5) < 1.0 / np.sqrt(2 * np.pi)
    if noise:
        pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(inside)


def spiral(
    n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.02, turns: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms around (0.5, 0.5), ``turns`` turns each, n points alternating between
    the arms (even index: arm 0, odd: arm 1), radius growing to 0.45, plus Gaussian jitter ``noise``."""
    n = _check_n(n, 2)
    gen = as_rng(rng)
    arm = np.arange(n) % 2
    t = np.sqrt(gen.uniform(0.02, 1.0, n))  # sqrt: points spread evenly along the arm, not bunched at the centre
    angle = 2 * np.pi * turns * t + np.pi * arm
    radius = 0.45 * t
    pts = np.stack([0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)], axis=1)
    pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(arm)


def moons(
    n: int = 200, rng: np.random.Generator | int | None = None, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles, scaled into about [0, 1]^2: n points alternating
    between the upper moon (label 0) and the lower one (label 1), plus Gaussian jitter ``noise``."""
    n = _check_n(n, 2)
    gen = as_rng(rng)
    label = np.arange(n) % 2
    theta = gen.uniform(0, np.pi, n)
    x = np.where(label == 0, np.cos(theta), 1 - np.cos(theta))
    y = np.where(label == 0, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([(x + 1.0) / 3.0, (y + 0.5) / 1.5], axis=1)  # x in [-1, 2], y in [-0.5, 1] -> [0, 1]
    pts = pts + gen.normal(0.0, noise, pts.shape)
    return pts, _labels(label)


# ---- real images: scikit-learn's digits and MNIST --------------------------------------------------------------

DATA_INSTALL = "pip install 'tinygrad-lab[data]'"  # the extra that brings scikit-learn
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0  # the split is part of the task: the same for every run and every seed


class MissingExtraError(ImportError):
    """A dataset needs an optional package that is not installed; the message names the extra."""


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(pixels (1797, 64), labels) as sklearn.datasets.load_digits gives them. Importing scikit-learn takes
    seconds, so its bundled digits.csv.gz is read directly where it lies; elsewhere load_digits reads it."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        csv = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            table = np.loadtxt(csv, delimiter=",", dtype=np.float64)
            if table.shape == (1797, 65):
                return table[:, :-1], table[:, -1].astype(np.int64)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError(f"the digits task needs scikit-learn, which is not installed: {DATA_INSTALL}") from None
    bunch = load_digits()
    return bunch.data, bunch.target


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), both sorted: each class gives round(test_fraction x its count) of its
    samples, drawn by ``rng``, to the test set, so both sets keep the classes' proportions."""
    labels = np.asarray(labels).reshape(-1)
    gen = as_rng(rng)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test.append(gen.permutation(members)[: int(round(test_fraction * len(members)))])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pixels (1797, 64) float64 in 0..16, labels int64, train indices, test indices), read once per process."""
    pixels, target = _sklearn_digits()
    labels = np.asarray(target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    pixels = np.array(pixels, dtype=np.float64)
    for a in (pixels, labels, train_idx, test_idx):
        a.flags.writeable = False  # shared by every caller in the process
    return pixels, labels, train_idx, test_idx


def digits_standardization() -> tuple[float, float]:
    """(mean, std) of the digits' training pixels (scikit-learn's 0..16 values), over every training pixel:
    what both splits are standardized with, so nothing of the test set leaks into the inputs."""
    pixels, _, train_idx, _ = _digits_raw()
    return float(pixels[train_idx].mean()), float(pixels[train_idx].std())


@functools.lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits, made once per process: images (n, 1, 8, 8) float32 standardized with the training set's
    mean and std (digits_standardization), labels int64, split 80/20."""
    pixels, labels, train_idx, test_idx = _digits_raw()
    mean, std = digits_standardization()
    images = ((pixels - mean) / std).astype(np.float32).reshape(-1, 1, 8, 8)
    arrays = (images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])
    for a in arrays:
        a.flags.writeable = False  # shared by every caller in the process
    return arrays


def digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits (8x8, UCI's), as ``split`` "train" (1,438 images) or "test"
    (359): images of shape (n, 1, 8, 8), float32, standardized with the training pixels' mean and std (mean 0
    and std 1 over the training set; digits_standardization), which trains the CNN faster and further than
    pixels in [0, 1]; labels int64 in 0..9. The split is fixed and stratified (every digit 80/20). Raises
    MissingExtraError without scikit-learn. The arrays are read-only."""
    if split not in ("train", "test"):
        raise ValueError(f"digits: split must be 'train' or 'test', got {split!r}")
    x_train, y_train, x_test, y_test = _digits_split()
    return (x_train, y_train) if split == "train" else (x_test, y_test)


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_SOURCE = (
    "MNIST's four IDX files come from http://yann.lecun.com/exdb/mnist/ (or a mirror, such as "
    "torchvision's); put them, gzipped or not, in one folder"
)
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 1 << 30  # what one IDX file may claim to hold (MNIST's largest holds 47 MB)


class DatasetError(PathError):
    """A dataset file that is missing, truncated or not in its format; ``str(err)`` names the file."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in an IDX file (the format of MNIST; gzipped when the name ends in .gz): two zero bytes, a
    type code, the number of dimensions, each dimension as a big-endian int32, then the values."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in _IDX_DTYPES or header[3] == 0:
                raise DatasetError(
                    path,
                    f"not an IDX file (its first bytes are {header.hex() or 'missing'}, "
                    "expected 0000 then a type code and the number of dimensions)",
                )
            dims_raw = f.read(4 * header[3])
            if len(dims_raw) < 4 * header[3]:
                raise DatasetError(path, f"truncated IDX header (it declares {header[3]} dimensions)")
            shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            dtype = np.dtype(_IDX_DTYPES[header[2]])
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if size > MAX_IDX_BYTES:
                raise DatasetError(
                    path, f"its header claims shape {shape}, {size:,} bytes, over the limit of {MAX_IDX_BYTES:,}"
                )
            body = f.read(size + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise DatasetError(path, "no such file") from None
        raise DatasetError(path, f"cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if len(body) != size:
        raise DatasetError(
            path,
            f"its header says shape {shape} ({size:,} bytes of data) but the file holds "
            f"{'more' if len(body) > size else f'{len(body):,}'} bytes",
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(folder, f"has no {name} (or {name}.gz); {MNIST_SOURCE}")


def load_mnist(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST from the standard IDX files in ``folder`` (MNIST_FILES, each gzipped or not):
    ``(x_train, y_train, x_test, y_test)``, images of shape (n, 1, 28, 28) float32 in [0, 1], labels int64.
    Nothing is downloaded; a missing, truncated or mismatched file is a DatasetError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, f"is not a folder; {MNIST_SOURCE}")
    out = []
    for images_name, labels_name in (MNIST_FILES[:2], MNIST_FILES[2:]):
        images_path, labels_path = _find_idx(folder, images_name), _find_idx(folder, labels_name)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(
                images_path,
                f"holds {images.dtype} values of shape {images.shape}, expected "
                "unsigned bytes of shape (n, rows, cols)",
            )
        if labels.ndim != 1 or labels.dtype != np.uint8 or len(labels) != len(images):
            raise DatasetError(
                labels_path,
                f"holds {labels.dtype} values of shape {labels.shape}, expected "
                f"unsigned bytes of shape ({len(images)},), one per image",
            )
        if labels.size and labels.max() > 9:
            raise DatasetError(labels_path, f"holds label {int(labels.max())}; MNIST's labels are 0..9")
        out += [(images.astype(np.float32) / np.float32(255.0))[:, None], labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]


# ---- the registry the CLI and the report use ---------------------------------------------------------------------


def _linear(rng: np.random.Generator, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    return generate_linear(100 if n is None else n, rng=rng)


def _xor(rng: np.random.Generator, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    if n not in (None, 21):
        raise ValueError(f"the xor task has exactly 21 points, got n={n}")
    return generate_xor_easy()


def _digits(rng: np.random.Generator, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    if n is not None:
        raise ValueError(f"the digits task has a fixed training set of 1,438 images, got n={n}")
    return digits("train")


TASKS: dict[str, Callable[[np.random.Generator, int | None], tuple[np.ndarray, np.ndarray]]] = {
    "linear": _linear,
    "xor": _xor,
    "circle": lambda rng, n: circle(200 if n is None else n, rng=rng),
    "spiral": lambda rng, n: spiral(200 if n is None else n, rng=rng),
    "moons": lambda rng, n: moons(200 if n is None else n, rng=rng),
    "digits": _digits,
}

# Tasks with a held-out test set, fixed for the task: name -> () -> (x_test, y_test).
TEST_SETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {"digits": lambda: digits("test")}


def load_task(
    name: str, rng: np.random.Generator | int | None = None, n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The (training) dataset of a task by name (see TASKS): linear (100 points), xor (21 fixed points),
    circle, spiral, moons (200 points each; ``n`` overrides the size), digits (the fixed 1,438 training images)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name](as_rng(rng), n)


def load_test(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out test set of a task (see TEST_SETS), or None for a task that has none."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TEST_SETS[name]() if name in TEST_SETS else None
