"""conv1d, conv2d, max_pool2d, avg_pool2d and linear: first and second derivatives against finite differences
(float64, torch's gradcheck defaults), values and gradients against PyTorch, over drawn shapes, strides,
paddings, dilations and groups; float32 stays float32; bad input is one line naming the shapes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck
from tinygrad_lab.testing.strategies import arrays

CHECKS = settings(max_examples=12)  # each example runs gradcheck and gradgradcheck on every input


@st.composite
def conv_cases(draw, dims=None):
    """(dims, x shape, weight shape, stride, padding, dilation, groups, bias) with a kernel that fits; padding
    ints, "valid" or "same" (stride 1, as torch needs), the input batched or one unbatched sample."""
    d = draw(st.sampled_from([1, 2])) if dims is None else dims
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    form = draw(st.sampled_from(["ints", "ints", "valid", "same"]))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(d)) if form == "ints" else (0,) * d
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    spatial = tuple(max(1, s - 2 * p + draw(st.integers(0, 2))) for s, p in zip(span, padding))
    if form == "same":  # any size fits: the padding makes room for the kernel
        stride, spatial = (1,) * d, tuple(draw(st.integers(1, 4)) for _ in range(d))
    batch = () if draw(st.booleans()) else (draw(st.integers(1, 2)),)
    x_shape = batch + (cin,) + spatial
    w_shape = (cout, cin // groups) + kernel
    return d, x_shape, w_shape, stride, padding if form == "ints" else form, dilation, groups, draw(st.booleans())


def _conv(d):
    return F.conv1d if d == 1 else F.conv2d


def _torch_conv(d):
    return torch.nn.functional.conv1d if d == 1 else torch.nn.functional.conv2d


@CHECKS
@given(case=conv_cases(), data=st.data())
def test_conv_first_and_second_derivatives(case, data):
    d, x_shape, w_shape, stride, padding, dilation, groups, bias = case
    x = tl.Tensor(data.draw(arrays(x_shape)), requires_grad=True)
    w = tl.Tensor(data.draw(arrays(w_shape)), requires_grad=True)
    b = tl.Tensor(data.draw(arrays((w_shape[0],))), requires_grad=True)

    def fn(x, w, *b):
        return _conv(d)(x, w, b[0] if b else None, stride, padding, dilation, groups)

    inputs = [x, w, b] if bias else [x, w]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note that it copies the input to pad
@settings(max_examples=25)
@given(case=conv_cases(), data=st.data())
def test_conv_values_and_gradients_equal_pytorch(case, data):
    d, x_shape, w_shape, stride, padding, dilation, groups, bias = case
    x, w = data.draw(arrays(x_shape)), data.draw(arrays(w_shape))
    b = data.draw(arrays((w_shape[0],))) if bias else None
    xs, ws = tl.Tensor(x, requires_grad=True), tl.Tensor(w, requires_grad=True)
    bs = tl.Tensor(b, requires_grad=True) if bias else None
    out = _conv(d)(xs, ws, bs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    ref = _torch_conv(d)(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (out * g).sum().backward()
    ref.backward(torch.tensor(g))
    for mine, theirs in [(xs, xt), (ws, wt)] + ([(bs, bt)] if bias else []):
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@st.composite
def pool_cases(draw, kind):
    """(x shape, keyword arguments) of a "max" or "avg" pooling over 1 or 2 spatial axes, batched or not: kernel,
    stride, padding, ceil_mode, and dilation (max) or count_include_pad and divisor_override (avg, 2-d)."""
    d = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = draw(st.none() | st.tuples(*[st.integers(1, 3)] * d))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    # dilated windows only without padding: a window of padding alone would be -inf, beyond finite differences
    dilation = tuple(draw(st.integers(1, 2)) if kind == "max" and not p else 1 for p in padding)
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    spatial = tuple(max(1, s - 2 * p + draw(st.integers(0, 3))) for s, p in zip(span, padding))
    args = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": draw(st.booleans())}
    if kind == "max":
        args["dilation"] = dilation
    else:
        args["count_include_pad"] = draw(st.booleans())
        if d == 2:
            args["divisor_override"] = draw(st.none() | st.integers(1, 5))
    batch = () if draw(st.booleans()) else (draw(st.integers(1, 2)),)
    return batch + (draw(st.integers(1, 3)),) + spatial, args


def _pools(kind, d):
    """Ours and torch's pooling function of that kind over d spatial axes."""
    name = f"{kind}_pool{d}d"
    return getattr(F, name), getattr(torch.nn.functional, name)


@CHECKS
@given(data=st.data())
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_first_and_second_derivatives(kind, data):
    shape, args = data.draw(pool_cases(kind))
    pool, _ = _pools(kind, len(args["kernel_size"]))
    x = tl.Tensor(data.draw(arrays(shape, distinct=True)), requires_grad=True)  # no ties within reach of eps
    fn = lambda x: pool(x, **args)  # noqa: E731
    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


@settings(max_examples=25)
@given(data=st.data())
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_values_and_gradients_equal_pytorch(kind, data):
    shape, args = data.draw(pool_cases(kind))
    pool, torch_pool = _pools(kind, len(args["kernel_size"]))
    x = data.draw(arrays(shape))
    xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = pool(xs, **args), torch_pool(xt, **args)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(1).standard_normal(out.shape)
    (out * g).sum().backward()
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_as_torch():
    x = np.zeros((1, 1, 4, 4))
    xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.max_pool2d(xs, 2).sum().backward()
    torch.nn.functional.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(xs.grad.data, xt.grad.numpy())
    assert xs.grad.data.sum() == 4 and xs.grad.data[0, 0, 0, 0] == 1


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 1, 1), (2, 1, 0), (3, 2, 1)])
def test_max_pool_with_nan_gives_nan_and_sends_the_gradient_to_the_last_nan_as_torch(kernel, stride, padding):
    """Tiling windows (2, 2, 0) and overlapping or padded ones, with NaNs and ties drawn into them."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = rng.standard_normal((2, 2, 6, 6))
        x[rng.random(x.shape) < 0.1] = 1.0
        x[rng.random(x.shape) < 0.15] = np.nan
        xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = (
            F.max_pool2d(xs, kernel, stride, padding),
            torch.nn.functional.max_pool2d(xt, kernel, stride, padding),
        )
        np.testing.assert_array_equal(out.data, ref.detach().numpy())  # NaN where torch has NaN
        g = rng.standard_normal(out.shape)
        out.backward(tl.Tensor(g))
        ref.backward(torch.tensor(g))
        # overlapping windows add their gradients in another order than torch's
        np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [(2, 1, 1, 1), (3, 2, 1, 1), (3, 1, 1, 2), (4, 3, 2, 1)])
def test_max_pool_windows_of_minus_inf_send_the_gradient_inside_the_input_as_torch(kernel, stride, padding, dilation):
    """Padding counts as -inf: a window whose elements are all -inf sends its gradient to its first element
    inside the input (where torch's kernels start the search), not into the padding, where it would be lost."""
    rng = np.random.default_rng(6)
    for _ in range(10):
        x = rng.standard_normal((2, 2, 7, 6))
        x[rng.random(x.shape) < 0.6] = -np.inf
        xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out = F.max_pool2d(xs, kernel, stride, padding, dilation)
        ref = torch.nn.functional.max_pool2d(xt, kernel, stride, padding, dilation)
        np.testing.assert_array_equal(out.data, ref.detach().numpy())
        g = rng.standard_normal(out.shape)
        out.backward(tl.Tensor(g))
        ref.backward(torch.tensor(g))
        assert np.isclose(xs.grad.data.sum(), g.sum())  # no gradient lost in the padding
        np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3)])
def test_linear_is_one_node_with_torch_values_and_gradients(x_shape):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(4)
    xs, ws, bs = (tl.Tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.linear(xs, ws, bs)
    assert type(out.grad_fn).__name__ == "Linear" and out.grad_fn.inputs == (xs, ws, bs)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ref = torch.nn.functional.linear(xt, wt, bt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-13)
    g = rng.standard_normal(out.shape)
    (out * g).sum().backward()
    ref.backward(torch.tensor(g))
    for mine, theirs in ((xs, xt), (ws, wt), (bs, bt)):
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-12)
    small = [tl.Tensor(a, requires_grad=True) for a in (x[..., :2, :], w, b)]
    assert gradcheck(F.linear, small) and gradgradcheck(F.linear, small)
    assert gradcheck(F.linear, small[:2]) and gradgradcheck(F.linear, small[:2])


def test_linear_weight_gradient_is_the_product_the_weights_layout_reads():
    """An (in, out) array's transpose (the lab's inits) gets x.T @ g transposed, the reference's very product."""
    x, g = np.random.default_rng(3).standard_normal((6, 3)), np.random.default_rng(4).standard_normal((6, 2))
    for w, want in ((np.ones((2, 3)), g.T @ x), (np.ones((3, 2)).T, (x.T @ g).T)):
        ws = tl.Tensor(w, requires_grad=True)
        assert ws.data.flags.f_contiguous == w.flags.f_contiguous
        F.linear(tl.Tensor(x), ws).backward(g)
        np.testing.assert_array_equal(ws.grad.data, want)


def test_float32_stays_float32_through_every_layer():
    rng = np.random.default_rng(5)
    x = tl.Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = tl.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = tl.Tensor(np.zeros(4, np.float32), requires_grad=True)
    h = F.max_pool2d(F.conv2d(x, w, b, padding=1).relu(), 2)
    h = F.avg_pool2d(h, 2, padding=1)
    h = F.batch_norm(h, np.zeros(4, np.float32), np.ones(4, np.float32), training=True)
    h = F.dropout(F.flatten(h, 1), 0.5, rng=np.random.default_rng(0))
    lw = tl.Tensor(rng.standard_normal((5, h.shape[1])).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(F.linear(h, lw), np.array([0, 4]))
    assert {t.dtype for t in (h, loss)} == {np.dtype(np.float32)}
    loss.backward()
    assert {t.grad.dtype for t in (x, w, b, lw)} == {np.dtype(np.float32)}
    one = F.conv1d(tl.Tensor(np.ones((1, 2, 5), np.float32)), np.ones((3, 2, 2), np.float32))
    assert one.dtype == np.float32


# ---- bad input: one line naming the function and the shapes ----------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: F.conv2d(np.ones((2, 3, 8, 8)), np.ones((4, 1, 3, 3))),
            "conv2d: input of shape (2, 3, 8, 8) has 3 channels, "
            "but a weight of shape (4, 1, 3, 3) with groups=1 expects 1",
        ),
        (
            lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 7, 3)), padding=1),
            "conv2d: kernel of size (7, 3) (dilated to (7, 3)) is larger than the padded input (6, 6) "
            "(input shape (1, 1, 4, 4), padding (1, 1))",
        ),
        (
            lambda: F.conv1d(np.ones((1, 2, 4)), np.ones((3, 2, 3)), dilation=2),
            "conv1d: kernel of size (3,) (dilated to (5,)) is larger than the padded input (4,) "
            "(input shape (1, 2, 4), padding (0,))",
        ),
        (
            lambda: F.conv2d(np.ones((1, 1, 3, 8, 8)), np.ones((4, 3, 3, 3))),
            "conv2d: input must be (N, C, H, W) or unbatched (C, H, W), got shape (1, 1, 3, 8, 8)",
        ),
        (
            lambda: F.conv2d(np.ones((1, 4, 8, 8)), np.ones((3, 2, 3, 3)), groups=2),
            "conv2d: groups must be an int >= 1 dividing out_channels 3, got 2",
        ),
        (
            lambda: F.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), stride=(1, 0)),
            "conv2d: stride must be an int >= 1 or 2 of them, got (1, 0)",
        ),
        (
            lambda: F.conv2d(np.ones((1, 1, 8, 8)), np.ones((2, 1, 3, 3)), np.ones(3)),
            "conv2d: bias has shape (3,) but the weight (2, 1, 3, 3) needs (2,)",
        ),
        (
            lambda: F.max_pool2d(np.ones((1, 1, 3, 3)), 4),
            "max_pool2d: kernel_size (4, 4) (dilation (1, 1)) is larger than the padded input (3, 3) "
            "(input shape (1, 1, 3, 3))",
        ),
        (
            lambda: F.avg_pool2d(np.ones((1, 1, 8, 8)), 2, padding=2),
            "avg_pool2d: padding (2, 2) must be at most half of kernel_size (2, 2)",
        ),
        (
            lambda: F.linear(np.ones((5, 3)), np.ones((3, 4))),
            "linear: input of shape (5, 3) does not fit a weight of shape (3, 4) "
            "(weight is (out_features, in_features); the input's last axis must be in_features)",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_shapes(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


def test_cross_entropy_takes_integer_classes_and_names_shapes_for_float_ones():
    logits = np.random.default_rng(6).standard_normal((4, 3))
    target = np.array([0, 2, 1, 2])
    ls, lt = tl.Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss, ref = F.cross_entropy(ls, target), torch.nn.functional.cross_entropy(lt, torch.tensor(target))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-13)
    loss.backward()
    ref.backward()
    np.testing.assert_allclose(ls.grad.data, lt.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError) as err:
        F.cross_entropy(ls, target.astype(np.float64))
    assert str(err.value) == (
        "cross_entropy: logits have shape (4, 3) and targets of shape (4,) have dtype float64: "
        "class indices must be integers (y.astype(np.int64); tl.tensor(y) makes floats of an integer array unless "
        "given dtype=np.int64); float targets are probabilities of shape (4, 3)"
    )


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda lib: lib.nn.Conv2d(3, 4, 3), (0, 3, 5, 5)),
        (lambda lib: lib.nn.Conv1d(3, 4, 3, stride=2), (0, 3, 7)),
        (lambda lib: lib.nn.Conv2d(4, 6, 3, groups=2, padding=1, dilation=2), (0, 4, 6, 6)),
    ],
)
def test_an_empty_batch_convolves_to_an_empty_batch_as_torch(make, shape):
    """No rows: the output has torch's shape, and every gradient is zero (not a reshape error)."""
    ours, theirs = make(tl), make(torch)
    x, tx = tl.tensor(np.zeros(shape), requires_grad=True), torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    out, tout = ours(x), theirs.double()(tx)
    assert out.shape == tuple(tout.shape)
    out.sum().backward()
    tout.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(ours.weight.grad.data, theirs.weight.grad.numpy())
    np.testing.assert_array_equal(ours.bias.grad.data, theirs.bias.grad.numpy())
