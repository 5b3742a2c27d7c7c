"""Layer functions with PyTorch's names, arguments and defaults: ``linear``, ``conv1d``, ``conv2d``, ``max_pool1d``,
``max_pool2d``, ``avg_pool1d``, ``avg_pool2d``, ``adaptive_avg_pool2d``, ``batch_norm``, ``layer_norm``, ``embedding``,
``dropout`` and ``flatten`` (re-exported by ``tinygrad_lab.nn.functional``).

Arguments are checked before any work: a wrong channel count, a kernel larger than the padded input or a bad
setting is a ValueError of one line naming the function and the shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.autograd import no_grad
from tinygrad_lab.engine.ops.convolution import Conv, ConvParams, Linear, padded_size
from tinygrad_lab.engine.ops.elementwise import where
from tinygrad_lab.engine.ops.pooling import AvgPool, MaxPool, PoolParams
from tinygrad_lab.engine.random import resolve_rng as _rng
from tinygrad_lab.engine.tensor import Tensor


def _tuple(name: str, what: str, value: Any, d: int, minimum: int) -> tuple:
    """An int or a sequence of d ints (each >= minimum) as a d-tuple."""
    values = (value,) * d if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != d or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        raise ValueError(f"{name}: {what} must be an int >= {minimum} or {d} of them, got {value!r}")
    return tuple(int(v) for v in values)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """x @ weight.T + bias with weight (out_features, in_features), as one graph node (torch's addmm)."""
    x, w = _tensor(x), _tensor(weight)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit a weight of shape {w.shape} "
            "(weight is (out_features, in_features); the input's last axis must be in_features)"
        )
    if bias is None:
        return Linear.apply(x, w)
    if _shape(bias) != (w.shape[0],):
        raise ValueError(f"linear: bias has shape {_shape(bias)} but the weight {w.shape} needs ({w.shape[0]},)")
    return Linear.apply(x, w, bias)


PADDING_STRINGS = ("valid", "same")


def conv_padding(name: str, padding: Any, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """``padding`` (an int, d ints, "valid" or "same") as one (before, after) pair per axis. "same" keeps each
    axis's size (stride 1 only, as torch) and puts the odd pixel of an odd total after, where torch pads it."""
    d = len(kernel)
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"{name}: padding must be 'valid', 'same', an int >= 0 or {d} of them, got {padding!r}")
        if padding == "valid":
            return ((0, 0),) * d
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' needs stride 1 (as torch), got stride {stride}")
        totals = tuple(dl * (k - 1) for k, dl in zip(kernel, dilation))
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _tuple(name, "padding", padding, d, 0))


def _unbatched(name: str, x: Tensor, d: int) -> bool:
    """Whether x is one unbatched sample, (C, *spatial); a ValueError unless it is that or (N, C, *spatial)."""
    if x.ndim not in (d + 1, d + 2):
        layout = ("L",) if d == 1 else ("H", "W")
        raise ValueError(
            f"{name}: input must be ({', '.join(('N', 'C') + layout)}) or unbatched "
            f"({', '.join(('C',) + layout)}), got shape {x.shape}"
        )
    return x.ndim == d + 1


def _conv(
    name: str, d: int, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int
) -> Tensor:
    x, w = _tensor(x), _tensor(weight)
    stride = _tuple(name, "stride", stride, d, 1)
    dilation = _tuple(name, "dilation", dilation, d, 1)
    unbatched = _unbatched(name, x, d)
    if w.ndim != d + 2:
        raise ValueError(
            f"{name}: weight must have {d + 2} axes (out_channels, in_channels/groups, kernel...), got shape {w.shape}"
        )
    pads = conv_padding(name, padding, w.shape[2:], stride, dilation)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{name}: groups must be an int >= 1 dividing out_channels {w.shape[0]}, got {groups!r}")
    channels = x.shape[-d - 1]
    if channels != w.shape[1] * groups:
        raise ValueError(
            f"{name}: input of shape {x.shape} has {channels} channels, but a weight of shape "
            f"{w.shape} with groups={groups} expects {w.shape[1] * groups}"
        )
    padded = padded_size(x.shape[-d:], pads)
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(w.shape[2:], dilation))
    if any(k > s for k, s in zip(span, padded)):
        raise ValueError(
            f"{name}: kernel of size {w.shape[2:]} (dilated to {span}) is larger than the padded input "
            f"{padded} (input shape {x.shape}, padding {tuple(lo for lo, _ in pads)})"  # "same" always fits
        )
    if bias is not None and _shape(bias) != (w.shape[0],):
        raise ValueError(f"{name}: bias has shape {_shape(bias)} but the weight {w.shape} needs ({w.shape[0]},)")
    params = ConvParams((stride, pads, dilation, int(groups)))
    if unbatched:
        x = x.reshape((1,) + x.shape)
    out = Conv.apply(x, w, params=params) if bias is None else Conv.apply(x, w, bias, params=params)
    return out.reshape(out.shape[1:]) if unbatched else out


def conv2d(
    x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Tensor:
    """2-D convolution (cross-correlation, as torch) of x (N, C, H, W) or (C, H, W) with weight
    (O, C/groups, kh, kw); padding is an int, 2 ints, "valid" (none) or "same" (the output keeps H, W)."""
    return _conv("conv2d", 2, x, weight, bias, stride, padding, dilation, groups)


def conv1d(
    x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Tensor:
    """1-D convolution of x (N, C, L) or (C, L) with weight (O, C/groups, k); padding as conv2d's."""
    return _conv("conv1d", 1, x, weight, bias, stride, padding, dilation, groups)


def _flag(name: str, what: str, value: Any) -> bool:
    """A bool argument (Python's or numpy's) as a bool; anything else is a ValueError naming it."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: {what} must be True or False, got {value!r}")
    return bool(value)


def _pool(
    pool: Any,
    name: str,
    d: int,
    x: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: Any,
    count: Any = None,
) -> Tensor:
    """``pool`` (MaxPool or AvgPool) of x (N, C, *spatial) or (C, *spatial) with torch's output size: floor
    mode, or ceil_mode's extra window at the end of an axis when it starts inside the input or left padding,
    padded after to fit."""
    x = _tensor(x)
    unbatched = _unbatched(name, x, d)
    kernel = _tuple(name, "kernel_size", kernel_size, d, 1)
    stride = kernel if stride is None or stride == () else _tuple(name, "stride", stride, d, 1)
    padding = _tuple(name, "padding", padding, d, 0)
    dilation = _tuple(name, "dilation", dilation, d, 1)
    ceil = _flag(name, "ceil_mode", ceil_mode)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half of kernel_size {kernel}")
    pads = []
    for s, k, st, p, dl in zip(x.shape[-d:], kernel, stride, padding, dilation):
        reach = s + 2 * p - dl * (k - 1) - 1  # where the last window may start, from the first's start
        out = -(-reach // st) + 1 if ceil else reach // st + 1
        if ceil and (out - 1) * st >= s + p:  # torch drops a last window that would start in the right padding
            out -= 1
        if out < 1:
            raise ValueError(
                f"{name}: kernel_size {kernel} (dilation {dilation}) is larger than the padded input "
                f"{tuple(s + 2 * p for s, p in zip(x.shape[-d:], padding))} (input shape {x.shape})"
            )
        pads.append((p, max(p, (out - 1) * st + dl * (k - 1) + 1 - s - p)))  # after: room for the last window
    params = PoolParams((kernel, stride, tuple(pads), dilation, count))
    if unbatched:
        x = x.reshape((1,) + x.shape)
    out = pool.apply(x, params=params)
    return out.reshape(out.shape[1:]) if unbatched else out


def _max_pool(
    name: str,
    d: int,
    x: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: Any,
    return_indices: Any,
) -> Tensor:
    """max_pool1d/2d: MaxPool through _pool; return_indices=True is refused."""
    if _flag(name, "return_indices", return_indices):
        raise ValueError(f"{name}: return_indices=True is not supported (a max pooling has one output here)")
    return _pool(MaxPool, name, d, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """Maximum over each kernel_size window of x (N, C, H, W) or (C, H, W); stride defaults to kernel_size,
    padding is -inf; ceil_mode keeps a last, partial window (as torch)."""
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """Maximum over each kernel_size window of x (N, C, L) or (C, L), as max_pool2d."""
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_count(name: str, count_include_pad: Any, divisor_override: Any) -> Any:
    """PoolParams' count for torch's count_include_pad and divisor_override."""
    if divisor_override is not None:
        if (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, (int, np.integer))
            or divisor_override < 1
        ):
            raise ValueError(f"{name}: divisor_override must be None or an int >= 1, got {divisor_override!r}")
        return int(divisor_override)
    return "padded" if _flag(name, "count_include_pad", count_include_pad) else "input"


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over each kernel_size window of x (N, C, H, W) or (C, H, W), as torch: zero padding counted unless
    count_include_pad=False, or each window's sum divided by divisor_override; ceil_mode as max_pool2d."""
    count = _avg_count("avg_pool2d", count_include_pad, divisor_override)
    return _pool(AvgPool, "avg_pool2d", 2, x, kernel_size, stride, padding, 1, ceil_mode, count)


def avg_pool1d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean over each kernel_size window of x (N, C, L) or (C, L), as avg_pool2d."""
    count = _avg_count("avg_pool1d", count_include_pad, None)
    return _pool(AvgPool, "avg_pool1d", 1, x, kernel_size, stride, padding, 1, ceil_mode, count)


def _bins(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages torch's adaptive bin i, [floor(i * size / out), ceil((i + 1) * size / out))."""
    i = np.arange(out)
    start, end = i * size // out, -(-(i + 1) * size // out)
    cells = np.arange(size)
    return ((cells >= start[:, None]) & (cells < end[:, None])) / (end - start)[:, None]


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Mean of x (N, C, H, W) or (C, H, W) over output_size bins per axis (an int, or two of them, None keeping
    that axis), bins as torch's; overlapping where the sizes do not divide. Each axis is one product with a
    constant (out, in) averaging matrix, so the gradients are the engine's matmul's."""
    x = _tensor(x)
    _unbatched("adaptive_avg_pool2d", x, 2)
    given = output_size
    if isinstance(given, (list, tuple)) and len(given) == 2:  # None keeps that axis's size
        given = tuple(s if t is None else t for s, t in zip(x.shape[-2:], given))
    oh, ow = _tuple("adaptive_avg_pool2d", "output_size", given, 2, 1)
    h, w = x.shape[-2:]
    out = x if ow == w else x @ Tensor(_bins(w, ow).T.astype(x.dtype))
    return out if oh == h else Tensor(_bins(h, oh).astype(x.dtype)) @ out


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _shape(value: Any) -> tuple:
    """The shape of a Tensor, array or nested list, read as an attribute where there is one: np.shape would be
    a numpy call on a parameter's array, which tl.compile records once a step has used the parameter."""
    return tuple(value.shape) if isinstance(value, (Tensor, np.ndarray)) else np.shape(value)


def state_array(value: Any) -> Any:
    """The array of state updated in place across calls (running statistics, a batch counter): while tl.compile
    records a step, the tracer's view of the Tensor's memory, so every replay repeats the update (rule 4 of
    engine/traceable.py); otherwise the Tensor's data, or ``value`` itself."""
    tracer = traceable.active_tracer()
    if tracer is not None and isinstance(value, Tensor):
        return tracer.tensor_data(value)
    return _array(value)


def batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) of (N, C) or (N, C, *spatial) input, then scale and shift per channel.

    Training uses the batch's statistics (biased variance) and updates the running ones in place:
    running = (1 - momentum) * running + momentum * batch, with the unbiased variance, as torch (``momentum`` a
    number or a 0-d array, computed in the statistics' dtype). Otherwise the running statistics normalise.
    """
    x = _tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    for label, value in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if value is not None and _shape(value) != (c,):
            raise ValueError(f"batch_norm: {label} has shape {_shape(value)} but the input {x.shape} has {c} channels")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // c
        if n <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}"
            )
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        with no_grad():
            for running, batch in ((running_mean, mean.data), (running_var, var.data * (n / (n - 1)))):
                if running is not None:
                    target = state_array(running)
                    keep: Any = 1.0 - momentum
                    take: Any = momentum
                    if isinstance(momentum, (np.ndarray, np.generic)):  # in the statistics' dtype, as a Python float
                        keep, take = keep.astype(target.dtype), take.astype(target.dtype)
                    target *= keep
                    target += take * batch.reshape(c)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when not training")
        centred = x - _array(running_mean).reshape(shape)
        var = _array(running_var).reshape(shape)
    out = centred / (var + eps) ** 0.5
    if weight is not None:
        out = out * (weight.reshape(shape) if isinstance(weight, Tensor) else np.reshape(weight, shape))
    if bias is not None:
        out = out + (bias.reshape(shape) if isinstance(bias, Tensor) else np.reshape(bias, shape))
    return out


def normalized_shape_of(name: str, normalized_shape: Any) -> tuple:
    """torch's ``normalized_shape``, an int or a sequence of ints >= 1, as a tuple (at least one axis)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = ()
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(
            f"{name}: normalized_shape must be an int >= 1 or a sequence of them, got {normalized_shape!r}"
        )
    return tuple(int(n) for n in shape)


def layer_norm(x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its last ``len(normalized_shape)`` axes (biased variance, as torch), then scale by
    ``weight`` and shift by ``bias``, each of shape ``normalized_shape``. The same in training and evaluation."""
    x, shape = _tensor(x), normalized_shape_of("layer_norm", normalized_shape)
    k = len(shape)
    if x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise ValueError(
            f"layer_norm: normalized_shape {shape} needs input whose last axes are {shape}, got shape {x.shape}"
        )
    for label, value in (("weight", weight), ("bias", bias)):
        if value is not None and _shape(value) != shape:
            raise ValueError(f"layer_norm: {label} has shape {_shape(value)} but normalized_shape is {shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    out = centred / ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** 0.5
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def embedding_indices(t: np.ndarray, rows: int) -> np.ndarray:
    """``t`` itself when every index lies in [0, rows); else embedding's one-line IndexError (torch's too)."""
    if t.size and (t.min() < 0 or t.max() >= rows):
        raise IndexError(f"embedding: indices must lie in [0, {rows}), got values in [{t.min()}, {t.max()}]")
    return t


def embedding(
    input: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """The rows of ``weight`` (num_embeddings, embedding_dim) at the integer indices ``input`` (any shape), of shape
    input.shape + (embedding_dim,). Repeated indices add their gradients into one row; the ``padding_idx`` row gets
    none (its value is still looked up, as torch). ``sparse`` changes nothing (the gradient is a dense array);
    ``max_norm`` and ``scale_grad_by_freq`` are not there yet."""
    w = _tensor(weight)
    if max_norm is not None or scale_grad_by_freq:
        raise ValueError("embedding: max_norm and scale_grad_by_freq are not supported (use their defaults)")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must have shape (num_embeddings, embedding_dim), got {w.shape}")
    idx = input.data if isinstance(input, Tensor) else np.asanyarray(input)  # (asanyarray: traced arrays stay)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"embedding: indices must be integers, got dtype {idx.dtype} (use .astype(np.int64))")
    rows = w.shape[0]
    if padding_idx is not None and not -rows <= padding_idx < rows:
        raise ValueError(f"embedding: padding_idx must lie in [-{rows}, {rows}), got {padding_idx}")
    idx = traceable.validated(embedding_indices, idx, rows=rows)
    out = w[idx]
    if padding_idx is None or not out.requires_grad:
        return out
    padding = padding_idx + rows if padding_idx < 0 else padding_idx
    return where((idx != padding)[..., None], out, out.data)  # the padding row's value, as a constant


def dropout_probability(p: Any, who: str) -> float:
    """``p`` as a float, when it is a real number (Python's or numpy's) in [0, 1]; else a one-line error."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{who}: probability p must be a number in [0, 1], got {p!r}")
    return float(p)


def not_in_place(name: str, inplace: bool) -> None:
    """torch's ``inplace=True`` is refused: the result is always a new tensor here."""
    if inplace:
        raise ValueError(f"{name}: inplace=True is not supported (the result is a new tensor; use inplace=False)")


def dropout(
    x: Any, p: float = 0.5, training: bool = True, inplace: bool = False, rng: np.random.Generator | None = None
) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) when training; identity otherwise.
    ``rng`` draws the mask (tl.manual_seed's generator when None); ``inplace`` is torch's, False only."""
    not_in_place("dropout", inplace)
    x = _tensor(x)
    p = dropout_probability(p, "dropout")
    if not training or p == 0.0:
        return x
    keep = _rng(rng).random(x.shape) >= p
    scale = np.zeros(x.shape, dtype=x.dtype) if p == 1.0 else keep.astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * scale


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """x with the axes start_dim..end_dim (inclusive) merged into one, as torch.flatten."""
    return _tensor(x).flatten(start_dim, end_dim)
