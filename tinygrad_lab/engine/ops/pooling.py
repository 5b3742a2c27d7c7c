"""Max and average pooling over the axes after (N, C), through the same per-kernel-offset slices as convolution
(tiling windows, stride == kernel, take strided views of the input and skip the window copy). torch's ceil_mode
is more padding after: the windows it adds fit, and their cells past the input are -inf or zeros not counted.

Both are linear in the incoming gradient once the max positions are fixed, so each backward is a Function
too: max pooling's is a scatter to the recorded positions (``MaxPoolScatter``), whose own backward gathers from
them (``MaxPoolGather``, max pooling with frozen positions); average pooling's backward (``AvgPoolScatter``)
spreads each window's gradient, divided by the window's count, evenly over it, and its backward is average
pooling again. Every order is exact.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _any_tensor
from tinygrad_lab.engine.ops.convolution import any_padding, inside, offsets, pad, padded_size
from tinygrad_lab.engine.traceable import empty, zeros


class PoolParams(tuple):
    """(kernel, stride, padding, dilation, count): one int per spatial axis each, but padding one (before, after)
    pair per axis (after grows for torch's ceil_mode); ``count`` says what average pooling divides each window's
    sum by: "padded" (the window's cells within the input padded by ``before`` on both sides, torch's
    count_include_pad), "input" (its cells within the input) or an int (torch's divisor_override)."""


def _flat_windows(x: np.ndarray, params: PoolParams, fill: float) -> np.ndarray:
    """(N, C, *out, prod(kernel)): every window of x padded with ``fill``, one slice copied per kernel offset
    (plain slices, which tl.compile records)."""
    kernel, stride, padding, dilation, _ = params
    out = pool_out(x.shape[2:], params)
    xp = pad(x, padding, fill)
    flat = empty(x, x.shape[:2] + out + (math.prod(kernel),))
    for k, (_, where) in enumerate(offsets(kernel, stride, dilation, out)):
        flat[..., k] = xp[(slice(None),) * 2 + where]
    return flat


def pool_out(spatial: tuple, params: PoolParams) -> tuple:
    """The pooled spatial shape: the windows that fit in the padded input (ceil_mode's are padded to fit)."""
    kernel, stride, padding, dilation, _ = params
    return tuple(
        (s + lo + hi - dl * (k - 1) - 1) // st + 1
        for s, k, st, (lo, hi), dl in zip(spatial, kernel, stride, padding, dilation)
    )


def _scatter(parts, x_shape: tuple, params: PoolParams, like: np.ndarray) -> np.ndarray:
    """sum over kernel offsets of parts(offset) added into the windows' places, cropped to x_shape."""
    kernel, stride, padding, dilation, _ = params
    out = pool_out(x_shape[2:], params)
    dxp = zeros(like, x_shape[:2] + padded_size(x_shape[2:], padding))
    for flat, (index, where) in enumerate(offsets(kernel, stride, dilation, out)):
        dxp[(slice(None),) * 2 + where] += parts(flat, index)
    return dxp[(slice(None),) * 2 + inside(x_shape[2:], padding)]


class MaxPool(Function):
    """Maximum over each window; ties send the gradient to the first maximum (row-major), and a window holding
    NaN gives NaN with its gradient at the last NaN, as torch's kernels do."""

    backward_reads_input = True

    @staticmethod
    def forward(ctx, x, params=None):
        ctx.x_shape = x.shape
        tiled = _tiled_max(x, params)
        if tiled is not None:
            ctx.index = tiled[1]
            return tiled[0]
        flat = _flat_windows(x, params, -np.inf)
        first = np.argmax(flat, axis=-1)  # the function, which tl.compile records (the method it cannot)
        best = np.take_along_axis(flat, first[..., None], axis=-1)[..., 0]
        # argmax stops at a window's first NaN; counted from the end, it finds the last one
        last = flat.shape[-1] - 1 - np.argmax(flat[..., ::-1], axis=-1)
        index = np.where(best != best, last, first)
        if any_padding(params[2]):  # a window of -inf (padding included) keeps its first element inside the input
            index = np.where(best == -np.inf, _first_inside(x.shape[2:], params), index)
        ctx.index = index
        return best

    @staticmethod
    def backward(ctx, grad):
        params = ctx.attrs["params"]
        if _any_tensor(grad):
            return MaxPoolScatter.apply(grad, index=ctx.index, x_shape=ctx.x_shape, params=params)
        return _max_scatter(grad, ctx.index, ctx.x_shape, params)


@functools.lru_cache(maxsize=8)
def _first_inside(spatial: tuple, params: PoolParams) -> np.ndarray:
    """Per window (the pooled spatial shape), the kernel offset (row-major) of its first element inside the
    input, where torch's kernels start each window's search: a window with nothing above -inf sends its
    gradient there, not into the padding."""
    kernel, stride, padding, dilation, _ = params
    first = np.zeros((), dtype=np.int64)
    for axis, (o, k, st, (p, _), dl) in enumerate(zip(pool_out(spatial, params), kernel, stride, padding, dilation)):
        start = np.arange(o) * st - p
        skip = np.where(start < 0, -(start // dl), 0)  # kernel taps before the input's first element
        shape = tuple(-1 if a == axis else 1 for a in range(len(spatial)))
        first = first * k + skip.reshape(shape)
    first.flags.writeable = False
    return first


def _tiles(params: PoolParams) -> bool:
    """Whether the windows tile the input: stride == kernel, no dilation, no padding before (ceil_mode's padding
    after only fills the last windows), so each element is in one window."""
    kernel, stride, padding, dilation, _ = params
    return tuple(stride) == tuple(kernel) and not any(lo for lo, _ in padding) and all(dl == 1 for dl in dilation)


def _tile_views(x: np.ndarray, params: PoolParams) -> list:
    """One strided view (N, C, *out) of x (padded, if at all) per kernel offset (row-major) when the windows tile
    x (see _tiles)."""
    kernel = params[0]
    out = tuple(s // k for s, k in zip(x.shape[2:], kernel))
    tiled = x[(Ellipsis,) + tuple(slice(0, o * k) for o, k in zip(out, kernel))].reshape(
        x.shape[:2] + tuple(v for o, k in zip(out, kernel) for v in (o, k))
    )  # (N, C, out0, k0, out1, k1, ...), a view
    return [
        tiled[(slice(None),) * 2 + tuple(v for i in index for v in (slice(None), i))]
        for index in itertools.product(*(range(k) for k in kernel))
    ]


def _tiled_max(x: np.ndarray, params: PoolParams) -> tuple[np.ndarray, np.ndarray] | None:
    """(max, index of the first maximum) over tiling windows from elementwise passes over the kernel offsets,
    without copying the windows (ceil_mode's partial ones are padded with -inf, a copy of x); None when the
    windows overlap or pad before."""
    if not _tiles(params) or math.prod(params[0]) > 127:  # the index is int8
        return None
    views = _tile_views(pad(x, params[2], -np.inf), params)
    best = views[0].copy()
    for view in views[1:]:
        np.maximum(best, view, out=best)
    # missed: no maximum seen yet; the index counts the offsets before the first one. A window holding NaN
    # never finds its maximum (NaN equals nothing) and takes the offset of its last NaN instead. Computed for
    # every window alike, no branch on values (tl.compile's rule).
    missed = views[0] != best
    index = missed.astype(np.int8)
    for view in views[1:-1]:
        missed &= view != best
        index += missed
    for k, view in enumerate(views):
        np.copyto(index, k, where=view != view)
    return best, index


def _max_scatter(grad: np.ndarray, index: np.ndarray, x_shape: tuple, params: PoolParams) -> np.ndarray:
    if _tiles(params):  # each input element in one window: each gradient written once, at its maximum
        padded = tuple(x_shape[:2]) + padded_size(x_shape[2:], params[2])  # x_shape's, but for ceil_mode's
        base, step = _tile_positions(padded, tuple(params[0]))
        dx = zeros(grad, padded, order="C")  # row-major whatever grad's layout: reshape(-1) below is a view
        # take_along_axis dispatches on its indices, so tl.compile records it (np.take and step[index] do not)
        dx.reshape(-1)[base + np.take_along_axis(step, index.reshape(-1), axis=0).reshape(index.shape)] = grad
        return dx if padded == tuple(x_shape) else dx[(slice(None),) * 2 + inside(x_shape[2:], params[2])]
    return _scatter(lambda flat, _: np.where(index == flat, grad, 0), x_shape, params, grad)


@functools.lru_cache(maxsize=8)
def _tile_positions(x_shape: tuple, kernel: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(base, step) for tiling windows: the flat position in x of each window's first element, and of each
    kernel offset (row-major) from there, so a window's maximum at offset k lies at base + step[k]. One fancy
    assignment at these positions is several times faster than a masked copy per offset into strided views."""
    spatial = x_shape[2:]
    strides = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    base = np.arange(x_shape[0] * x_shape[1]).reshape(x_shape[:2] + (1,) * len(spatial)) * math.prod(spatial)
    for axis, (size, k, stride) in enumerate(zip(spatial, kernel, strides)):
        along = np.arange(size // k) * (k * stride)
        base = base + along.reshape((1, 1) + tuple(-1 if a == axis else 1 for a in range(len(spatial))))
    step = np.array([sum(j * st for j, st in zip(js, strides)) for js in itertools.product(*map(range, kernel))])
    base.flags.writeable = step.flags.writeable = False
    return base, step


class MaxPoolScatter(Function):
    """MaxPool's input gradient: each output gradient added at its window's recorded maximum."""

    @staticmethod
    def forward(ctx, grad, index=None, x_shape=(), params=None):
        return _max_scatter(grad, index, x_shape, params)

    @staticmethod
    def backward(ctx, gg):
        a = ctx.attrs
        return (
            MaxPoolGather.apply(gg, index=a["index"], params=a["params"])
            if _any_tensor(gg)
            else _max_gather(gg, a["index"], a["params"])
        )


def _max_gather(x: np.ndarray, index: np.ndarray, params: PoolParams) -> np.ndarray:
    flat = _flat_windows(x, params, 0.0)
    return np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]


class MaxPoolGather(Function):
    """The value of x at each window's recorded maximum: MaxPoolScatter's gradient (max pooling, positions fixed)."""

    @staticmethod
    def forward(ctx, x, index=None, params=None):
        ctx.x_shape = x.shape
        return _max_gather(x, index, params)

    @staticmethod
    def backward(ctx, grad):
        a = ctx.attrs
        return (
            MaxPoolScatter.apply(grad, index=a["index"], x_shape=ctx.x_shape, params=a["params"])
            if _any_tensor(grad)
            else _max_scatter(grad, a["index"], ctx.x_shape, a["params"])
        )


@functools.lru_cache(maxsize=8)
def _reciprocal_counts(spatial: tuple, params: PoolParams) -> float | np.ndarray:
    """1 / what each window's sum is divided by (see PoolParams' count), as torch's kernels count: one number
    when every window has the same, else an array of the pooled spatial shape."""
    kernel, stride, padding, _, count = params
    if not isinstance(count, str):
        return 1.0 / count
    counts = np.ones((), dtype=np.int64)
    for s, o, k, st, (p, _) in zip(spatial, pool_out(spatial, params), kernel, stride, padding):
        start = np.arange(o) * st - p
        end = np.minimum(start + k, s + p)  # ceil_mode's windows stop at the padded input's end
        if count == "input":
            start, end = np.maximum(start, 0), np.minimum(end, s)
        counts = np.multiply.outer(counts, end - start)
    if (counts == counts.flat[0]).all():
        return 1.0 / int(counts.flat[0])
    reciprocal = 1.0 / counts
    reciprocal.flags.writeable = False
    return reciprocal


def _scale(a: np.ndarray, spatial: tuple, params: PoolParams) -> np.ndarray:
    """a (N, C, *pooled) times the reciprocal counts of its windows, in a's dtype, in place."""
    factor = _reciprocal_counts(spatial, params)
    a *= a.dtype.type(factor) if isinstance(factor, float) else factor.astype(a.dtype)
    return a


def _avg(x: np.ndarray, params: PoolParams) -> np.ndarray:
    kernel, stride, padding, dilation, _ = params
    xp = pad(x, padding)
    parts = (
        xp[(slice(None),) * 2 + where] for _, where in offsets(kernel, stride, dilation, pool_out(x.shape[2:], params))
    )
    out = next(parts).copy()
    for part in parts:
        np.add(out, part, out=out)
    return _scale(out, x.shape[2:], params)


def _avg_scatter(grad: np.ndarray, x_shape: tuple, params: PoolParams) -> np.ndarray:
    share = _scale(grad.copy(), x_shape[2:], params)
    return _scatter(lambda flat, index: share, x_shape, params, grad)


class AvgPool(Function):
    """Each window's sum divided by its count (see PoolParams): the mean over it, by default with the padding's
    zeros included (torch's count_include_pad=True)."""

    backward_reads_input = True

    @staticmethod
    def forward(ctx, x, params=None):
        ctx.x_shape = x.shape
        return _avg(x, params)

    @staticmethod
    def backward(ctx, grad):
        params = ctx.attrs["params"]
        return (
            AvgPoolScatter.apply(grad, x_shape=ctx.x_shape, params=params)
            if _any_tensor(grad)
            else _avg_scatter(grad, ctx.x_shape, params)
        )


class AvgPoolScatter(Function):
    """AvgPool's input gradient: each output gradient, divided by its window's count, added over the window; its
    own gradient is AvgPool."""

    @staticmethod
    def forward(ctx, grad, x_shape=(), params=None):
        return _avg_scatter(grad, x_shape, params)

    @staticmethod
    def backward(ctx, gg):
        params = ctx.attrs["params"]
        return AvgPool.apply(gg, params=params) if _any_tensor(gg) else _avg(gg, params)
