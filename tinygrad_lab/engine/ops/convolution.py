"""Convolution over 1 or 2 spatial axes (N, C, *spatial), and ``Linear`` (x @ W.T + b as one node).

The forward is im2col: one slice of the padded input copied per kernel offset gathers the columns
(G, C/G * K, N * L) and one matmul per layer multiplies them with the weights. The input's gradient scatters the
columns back with one slice-add per kernel offset (K of them, not one per element). When the columns outnumber
the output channels, the batch axis is innermost (``batch_last``), so those copies and adds run along long rows.
Everything is made from plain slices and arrays made like the inputs, so ``tl.compile`` records it.

Three Functions close the triangle of derivatives, so every order is exact: ``Conv`` (x, w -> y),
``ConvInputGrad`` (g, w -> dx, a transposed convolution) and ``ConvWeightGrad`` (x, g -> dw). Each is linear in
each of its inputs, and the backward of each is made of the other two.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from tinygrad_lab.engine.function import Function
from tinygrad_lab.engine.ops.common import _any_tensor, _const
from tinygrad_lab.engine.traceable import empty, zeros


class ConvParams(tuple):
    """(stride, padding, dilation, groups) of a convolution: stride and dilation one int per spatial axis, padding
    one (before, after) pair per spatial axis (uneven for torch's padding="same" when the total is odd)."""

    @property
    def stride(self) -> tuple:
        return self[0]

    @property
    def padding(self) -> tuple:
        return self[1]

    @property
    def dilation(self) -> tuple:
        return self[2]

    @property
    def groups(self) -> int:
        return self[3]


def out_size(size: int, k: int, stride: int, padding: tuple, dilation: int) -> int:
    """Output length along one axis padded by (before, after), as torch: floor((size + pads - d(k - 1) - 1) / s) + 1."""
    return (size + padding[0] + padding[1] - dilation * (k - 1) - 1) // stride + 1


def padded_size(spatial: tuple, padding: tuple) -> tuple:
    """The spatial shape after padding each axis by its (before, after) pair."""
    return tuple(s + lo + hi for s, (lo, hi) in zip(spatial, padding))


def inside(spatial: tuple, padding: tuple) -> tuple:
    """The slices of the padded spatial axes that hold the input."""
    return tuple(slice(lo, lo + s) for s, (lo, _) in zip(spatial, padding))


def any_padding(padding: tuple) -> bool:
    """Whether any (before, after) pair pads."""
    return any(lo or hi for lo, hi in padding)


def pad(x: np.ndarray, padding: tuple, value: float = 0.0) -> np.ndarray:
    """x with ``padding`` (a (before, after) pair per spatial axis, the last axes) added, filled with value."""
    if not any_padding(padding):
        return x
    spatial = x.shape[-len(padding) :]
    out = np.full_like(x, value, shape=x.shape[: -len(padding)] + padded_size(spatial, padding))  # made like x,
    out[(...,) + inside(spatial, padding)] = x  # so tl.compile records it
    return out


def offsets(kernel: tuple, stride: tuple, dilation: tuple, out: tuple) -> Any:
    """(kernel index, slices into the padded input it reads) for each kernel offset: the scatter's loop."""
    for index in itertools.product(*(range(k) for k in kernel)):
        yield (
            index,
            tuple(slice(i * dl, i * dl + st * (o - 1) + 1, st) for i, dl, st, o in zip(index, dilation, stride, out)),
        )


SHORT_ROW = 12  # output rows shorter than this gain from the batch-innermost layout (measured: 4 to 10 gain,
# 14 breaks even, 28 loses: long rows already make long inner loops, and the batch transpositions then dominate)


def batch_last(w_shape: tuple, groups: int, out: tuple) -> bool:
    """The layout of the columns: batch axis innermost, (C/G * K, L * N), when the output rows are short and the
    columns have more rows than the output has channels per group, so the big copies (windows, scatter) run
    along (window row, batch); otherwise (C/G * K, N * L), whose output and output gradient need no
    transposition of the batch axis."""
    return out[-1] < SHORT_ROW and w_shape[1] * math.prod(w_shape[2:]) > w_shape[0] // groups


def _batch_to_last(a: np.ndarray) -> np.ndarray:
    """A view of a with its first axis moved last (what np.moveaxis gives, without its argument checks)."""
    return a.transpose(tuple(range(1, a.ndim)) + (0,))


def _batch_to_first(a: np.ndarray) -> np.ndarray:
    """A view of a with its last axis moved first."""
    return a.transpose((a.ndim - 1,) + tuple(range(a.ndim - 1)))


def _padded(x: np.ndarray, padding: tuple, last: bool) -> np.ndarray:
    """(N, C, *spatial) zero padded as (C, *padded, N) when ``last``, else (C, N, *padded): one copy, made like x
    (so tl.compile records it)."""
    spatial = x.shape[2:]
    padded = padded_size(spatial, padding)
    shape = (x.shape[1],) + padded + (x.shape[0],) if last else (x.shape[1], x.shape[0]) + padded
    out = zeros(x, shape) if any_padding(padding) else empty(x, shape)
    inner = inside(spatial, padding)
    if last:
        out[(slice(None),) + inner] = _batch_to_last(x)
    else:
        out[(slice(None),) * 2 + inner] = x.swapaxes(0, 1)
    return out


def _cols(x: np.ndarray, kernel: tuple, params: ConvParams, out: tuple, last: bool) -> np.ndarray:
    """im2col: (G, C/G * prod(kernel), N * prod(out)), or (..., prod(out) * N) when ``last`` (see batch_last):
    one slice of the padded input copied per kernel offset (plain slices, which tl.compile records)."""
    stride, padding, dilation, groups = params
    n, c = x.shape[0], x.shape[1]
    xp = _padded(x, padding, last)
    xp = xp.reshape((groups, c // groups) + xp.shape[1:])  # (G, Cg, *padded, N) or (G, Cg, N, *padded)
    every = (slice(None),)
    cols = empty(x, (groups, c // groups, math.prod(kernel)) + ((*out, n) if last else (n, *out)))
    for k, (_, where) in enumerate(offsets(kernel, stride, dilation, out)):
        cols[:, :, k] = xp[every * 2 + where + every] if last else xp[every * 3 + where]
    return cols.reshape(groups, c // groups * math.prod(kernel), n * math.prod(out))  # sizes, not -1: n may be 0


def conv_forward(x: np.ndarray, w: np.ndarray, params: ConvParams, cols: np.ndarray | None = None) -> np.ndarray:
    """y = conv(x, w), (N, O, *out), no bias."""
    kernel, groups, n = w.shape[2:], params.groups, x.shape[0]
    out = tuple(out_size(s, k, *a) for s, k, *a in zip(x.shape[2:], kernel, *params[:3]))
    last = batch_last(w.shape, groups, out)
    cols = _cols(x, kernel, params, out, last) if cols is None else cols
    y = np.matmul(w.reshape(groups, w.shape[0] // groups, -1), cols)  # (G, Og, L * N) or (G, Og, N * L)
    if last:
        return _batch_to_first(y.reshape((w.shape[0],) + out + (n,))).copy()  # a copy the trace records
    return y.reshape((w.shape[0], n) + out).swapaxes(0, 1).copy()


def _grad_rows(g: np.ndarray, groups: int, last: bool) -> np.ndarray:
    """The output gradient (N, O, *out) in the layout of the forward's product, (G, Og, L * N) or (G, Og, N * L)."""
    columns = g.shape[0] * math.prod(g.shape[2:])  # not -1: an empty batch has no columns
    return (_batch_to_last(g) if last else g.swapaxes(0, 1)).reshape(groups, g.shape[1] // groups, columns)


def conv_input_grad(
    g: np.ndarray, w: np.ndarray, x_shape: tuple, params: ConvParams, rows: np.ndarray | None = None
) -> np.ndarray:
    """dx of y = conv(x, w) for output gradient g (the transposed convolution of g with w); ``rows`` is g as
    _grad_rows lays it out, when the caller has it already."""
    stride, padding, dilation, groups = params
    kernel = w.shape[2:]
    n, c, out = x_shape[0], x_shape[1], g.shape[2:]
    last = batch_last(w.shape, groups, out)
    rows = _grad_rows(g, groups, last) if rows is None else rows
    w3 = w.reshape(groups, w.shape[0] // groups, -1)
    dcols = np.matmul(w3.transpose(0, 2, 1), rows)  # (G, Cg * K, L * N) or (G, Cg * K, N * L)
    padded = padded_size(x_shape[2:], padding)
    lead, every = (slice(None),) * 2, (slice(None),)
    crop = inside(x_shape[2:], padding)
    if last:  # one slice-add per kernel offset, each along (window row, batch)
        dcols = dcols.reshape((groups, c // groups) + tuple(kernel) + tuple(out) + (n,))
        dxp = zeros(dcols, (groups, c // groups) + padded + (n,))
        for index, where in offsets(kernel, stride, dilation, out):
            dxp[lead + where + every] += dcols[lead + index]
        return _batch_to_first(dxp.reshape((c,) + padded + (n,))[every + crop]).copy()
    dcols = dcols.reshape((groups, c // groups) + tuple(kernel) + (n,) + tuple(out))
    dxp = zeros(dcols, (groups, c // groups, n) + padded)
    for index, where in offsets(kernel, stride, dilation, out):
        dxp[lead + every + where] += dcols[lead + index]
    return dxp.reshape((c, n) + padded).swapaxes(0, 1)[lead + crop].copy()


def conv_weight_grad(
    x: np.ndarray,
    g: np.ndarray,
    w_shape: tuple,
    params: ConvParams,
    cols: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """dw of y = conv(x, w) for output gradient g: the output gradient times the input's columns."""
    groups, kernel = params.groups, w_shape[2:]
    last = batch_last(w_shape, groups, g.shape[2:])
    cols = _cols(x, kernel, params, g.shape[2:], last) if cols is None else cols
    rows = _grad_rows(g, groups, last) if rows is None else rows
    return np.matmul(rows, cols.transpose(0, 2, 1)).reshape(w_shape)


class Conv(Function):
    """y = conv(x, w) + b over the axes after (N, C); ``params`` is a ConvParams."""

    @staticmethod
    def forward(ctx, x, w, b=None, params=None):
        out = tuple(out_size(s, k, *a) for s, k, *a in zip(x.shape[2:], w.shape[2:], *params[:3]))
        cols = _cols(x, w.shape[2:], params, out, batch_last(w.shape, params.groups, out))
        y = conv_forward(x, w, params, cols)
        if b is not None:
            y += b.reshape((-1,) + (1,) * (x.ndim - 2))
        need_x, need_w = ctx.needs_input_grad[:2]  # each one's gradient reads only the other
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        ctx.shapes = (x.shape, w.shape)
        ctx.cols = cols if need_w else None  # the forward's columns, reused by a first-order weight gradient
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        x_shape, w_shape = ctx.shapes
        params = ctx.attrs["params"]
        need_x, need_w = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        grad_b = grad.sum(axis=(0,) + tuple(range(2, grad.ndim))) if need_b else None
        if _any_tensor(grad, x, w):
            gx = ConvInputGrad.apply(grad, w, x_shape=x_shape, params=params) if need_x else None
            gw = ConvWeightGrad.apply(x, grad, w_shape=w_shape, params=params) if need_w else None
        else:
            rows = _grad_rows(
                grad, params.groups, batch_last(w_shape, params.groups, grad.shape[2:])
            )  # shared by both products
            gx = conv_input_grad(grad, w, x_shape, params, rows) if need_x else None
            gw = conv_weight_grad(x, grad, w_shape, params, ctx.cols, rows) if need_w else None
        return (gx, gw) if len(ctx.needs_input_grad) == 2 else (gx, gw, grad_b)


class ConvInputGrad(Function):
    """dx = conv_transpose(g, w) for an input of shape x_shape: Conv's input gradient, differentiable again."""

    @staticmethod
    def forward(ctx, g, w, x_shape=(), params=None):
        ctx.save_for_backward(g, w)
        return conv_input_grad(g, w, x_shape, params)

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        params = ctx.attrs["params"]
        need_g, need_w = ctx.needs_input_grad
        if _any_tensor(grad, g, w):
            dg = Conv.apply(grad, w, params=params) if need_g else None
            dw = ConvWeightGrad.apply(grad, g, w_shape=_const(w).shape, params=params) if need_w else None
            return dg, dw
        return (
            conv_forward(grad, w, params) if need_g else None,
            conv_weight_grad(grad, g, w.shape, params) if need_w else None,
        )


class ConvWeightGrad(Function):
    """dw = Conv's weight gradient for input x and output gradient g, differentiable again."""

    @staticmethod
    def forward(ctx, x, g, w_shape=(), params=None):
        ctx.save_for_backward(x, g)
        return conv_weight_grad(x, g, w_shape, params)

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        params = ctx.attrs["params"]
        need_x, need_g = ctx.needs_input_grad
        if _any_tensor(grad, x, g):
            dx = ConvInputGrad.apply(g, grad, x_shape=_const(x).shape, params=params) if need_x else None
            dg = Conv.apply(x, grad, params=params) if need_g else None
            return dx, dg
        return (
            conv_input_grad(g, grad, x.shape, params) if need_x else None,
            conv_forward(x, grad, params) if need_g else None,
        )


class Linear(Function):
    """x @ weight.T + bias with weight (out, in), PyTorch's layout, as one node (torch's addmm).

    The weight's gradient comes out in the weight's own memory order: g.T @ x for a C-ordered weight, and
    (x.T @ g).T for the transpose of an (in, out) array, which is then the very product x.T @ g (same numbers)."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        need_x, need_w = ctx.needs_input_grad[:2]  # each one's gradient reads only the other
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        ctx.w_c_order = w.flags.c_contiguous
        out = np.matmul(x, w.T)
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx = grad @ w if needs[0] else None
        gw = gb = None
        if needs[1]:
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
            gw = g2.T @ x2 if ctx.w_c_order else (x2.T @ g2).T
        if len(needs) > 2 and needs[2]:
            gb = grad.sum(axis=tuple(range(grad.ndim - 1))) if grad.ndim > 1 else grad
        return (gx, gw) if len(needs) == 2 else (gx, gw, gb)
