"""The rest of torch's conv and pooling arguments, as modules and functions against PyTorch: ceil_mode,
count_include_pad, divisor_override, padding "same"/"valid", unbatched input, the 1-d pools and adaptive average
pooling (whose first and second derivatives are checked against finite differences too); float32 stays float32;
what is not there (return_indices, padding modes other than zeros) is one line naming it."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn
from tinygrad_lab.testing import gradcheck, gradgradcheck
from tinygrad_lab.testing.strategies import arrays


def _same_as_torch(ours, theirs, x):
    """ours(x) and theirs(x) (modules or functions, theirs on torch tensors): values and input gradients."""
    xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours(xs), theirs(xt)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (out * g).sum().backward()
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda lib: lib.nn.MaxPool2d(3, 2, ceil_mode=True), (2, 3, 8, 8)),  # a last window of 2 of 3
        (lambda lib: lib.nn.MaxPool2d(2, 3, padding=1, dilation=1, ceil_mode=True), (1, 2, 6, 7)),
        (lambda lib: lib.nn.MaxPool2d(4, 2, ceil_mode=True), (1, 1, 3, 3)),  # the kernel overhangs the input
        (lambda lib: lib.nn.MaxPool2d(3, 3, padding=1, ceil_mode=True), (1, 2, 5, 5)),  # no window starting in
        (lambda lib: lib.nn.AvgPool2d(3, 3, padding=1, ceil_mode=True), (1, 2, 5, 5)),  # the padding after
        (lambda lib: lib.nn.MaxPool2d(2, 2, dilation=2, ceil_mode=True), (1, 2, 7, 5)),
        (lambda lib: lib.nn.MaxPool1d(3, 2, padding=1, ceil_mode=True), (2, 3, 8)),
        (lambda lib: lib.nn.MaxPool1d(2), (3, 7)),  # unbatched
        (lambda lib: lib.nn.MaxPool2d(2), (3, 7, 6)),
        (lambda lib: lib.nn.AvgPool2d(3, 2, ceil_mode=True), (2, 3, 8, 8)),
        (lambda lib: lib.nn.AvgPool2d(2, 2, padding=1, ceil_mode=True), (1, 1, 3, 3)),  # counts 1, 2 and 4
        (lambda lib: lib.nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), (2, 2, 7, 6)),
        (lambda lib: lib.nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 6, 6)),
        (lambda lib: lib.nn.AvgPool2d((2, 3), padding=(1, 0), divisor_override=5), (2, 2, 5, 6)),
        (lambda lib: lib.nn.AvgPool2d(2, ceil_mode=True, divisor_override=3), (2, 5, 5)),
        (lambda lib: lib.nn.AvgPool1d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 8)),
        (lambda lib: lib.nn.AvgPool1d(2), (3, 5)),
        (lambda lib: lib.nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),  # overlapping bins
        (lambda lib: lib.nn.AdaptiveAvgPool2d(1), (4, 6, 6)),  # global average, unbatched
        (lambda lib: lib.nn.AdaptiveAvgPool2d((None, 4)), (1, 2, 3, 2)),  # more bins than cells
    ],
)
def test_pooling_modules_equal_pytorch(make, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    _same_as_torch(make(tl), make(torch), x)


@pytest.mark.parametrize("kernel, shape", [(2, (2, 2, 7, 5)), ((3, 2), (2, 2, 8, 7)), (3, (2, 3, 10)), (2, (3, 6, 6))])
def test_ceil_mode_tiling_windows_give_torchs_nan_and_minus_inf_results(kernel, shape):
    """stride == kernel with ceil_mode: the last, partial windows are padded with -inf to tile (the strided-view
    path); a window of NaN gives NaN with the gradient at its last NaN, and one of -inf its first element's."""
    rng = np.random.default_rng(4)
    name = "max_pool1d" if len(shape) == 3 else "max_pool2d"
    pool, torch_pool = getattr(F, name), getattr(torch.nn.functional, name)
    for _ in range(10):
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.1] = 1.0
        x[rng.random(shape) < 0.4] = -np.inf
        x[rng.random(shape) < 0.1] = np.nan
        xs, xt = tl.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = pool(xs, kernel, ceil_mode=True), torch_pool(xt, kernel, ceil_mode=True)
        np.testing.assert_array_equal(out.data, ref.detach().numpy())
        g = rng.standard_normal(out.shape)
        out.backward(tl.Tensor(g))
        ref.backward(torch.tensor(g))
        np.testing.assert_array_equal(xs.grad.data, xt.grad.numpy())


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note that it copies the input to pad
@pytest.mark.parametrize(
    "cls, args, shape",
    [
        ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="same"), (2, 2, 5, 4)),
        ("Conv2d", dict(in_channels=2, out_channels=4, kernel_size=4, padding="same", dilation=(1, 3)), (1, 2, 6, 7)),
        ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid", stride=2), (2, 2, 7, 6)),
        ("Conv2d", dict(in_channels=4, out_channels=2, kernel_size=3, padding=1, groups=2), (4, 5, 5)),
        ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=4, padding="same"), (2, 2, 6)),
        ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=2, stride=2), (2, 7)),
    ],
)
def test_conv_modules_equal_pytorch(cls, args, shape):
    """Weights copied from torch's module; the input's, the weight's and the bias's gradients compared."""
    theirs = getattr(torch.nn, cls)(**args)
    ours = getattr(nn, cls)(**args)
    ours.weight.data, ours.bias.data = theirs.weight.detach().numpy().copy(), theirs.bias.detach().numpy().copy()
    _same_as_torch(ours, theirs, np.random.default_rng(2).standard_normal(shape))
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_same_padding_puts_the_odd_pixel_after_as_torch():
    """A kernel of 2 pads nothing before and one pixel after: out[i] = x[i] + x[i + 1], the last one x[-1]."""
    out = F.conv1d(np.arange(4.0).reshape(1, 1, 4), np.ones((1, 1, 2)), padding="same")
    np.testing.assert_array_equal(out.data, [[[1.0, 3.0, 5.0, 3.0]]])


@st.composite
def adaptive_cases(draw):
    """(x shape, output_size): batched or not, sizes that divide the input's, that do not, and larger ones."""
    spatial = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    batch = () if draw(st.booleans()) else (draw(st.integers(1, 2)),)
    size = (draw(st.none() | st.integers(1, 7)), draw(st.none() | st.integers(1, 7)))
    return batch + (draw(st.integers(1, 2)),) + spatial, draw(st.sampled_from([size, size[0] or 1]))


@settings(max_examples=12)
@given(case=adaptive_cases(), data=st.data())
def test_adaptive_avg_pool_first_and_second_derivatives(case, data):
    shape, size = case
    x = tl.Tensor(data.draw(arrays(shape)), requires_grad=True)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, size), [x])
    assert gradgradcheck(lambda x: F.adaptive_avg_pool2d(x, size), [x])


@settings(max_examples=25)
@given(case=adaptive_cases(), data=st.data())
def test_adaptive_avg_pool_values_and_gradients_equal_pytorch(case, data):
    shape, size = case
    _same_as_torch(
        lambda x: F.adaptive_avg_pool2d(x, size),
        lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size),
        data.draw(arrays(shape)),
    )


def test_float32_stays_float32_through_the_new_arguments():
    rng = np.random.default_rng(3)
    x = tl.Tensor(rng.standard_normal((2, 3, 7, 7)).astype(np.float32), requires_grad=True)
    w = tl.Tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True)
    h = F.conv2d(x, w, padding="same")
    h = F.avg_pool2d(h, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)  # counts differ by window
    h = F.max_pool2d(h, 2, ceil_mode=True)
    h = F.adaptive_avg_pool2d(h, (3, 1))
    assert h.dtype == np.float32
    h.sum().backward()
    assert x.grad.dtype == w.grad.dtype == np.float32
    assert F.avg_pool1d(tl.Tensor(np.ones((2, 5), np.float32)), 2, ceil_mode=True).dtype == np.float32


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: F.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), stride=2, padding="same"),
            "conv2d: padding='same' needs stride 1 (as torch), got stride (2, 2)",
        ),
        (
            lambda: F.conv1d(np.ones((1, 1, 8)), np.ones((1, 1, 3)), padding="full"),
            "conv1d: padding must be 'valid', 'same', an int >= 0 or 1 of them, got 'full'",
        ),
        (
            lambda: F.conv1d(np.ones((1, 1, 2, 8)), np.ones((1, 1, 3))),
            "conv1d: input must be (N, C, L) or unbatched (C, L), got shape (1, 1, 2, 8)",
        ),
        (
            lambda: F.conv2d(np.ones((1, 2, 2)), np.ones((1, 1, 3, 3)), padding="valid"),
            "conv2d: kernel of size (3, 3) (dilated to (3, 3)) is larger than the padded input (2, 2) "
            "(input shape (1, 2, 2), padding (0, 0))",
        ),
        (
            lambda: nn.Conv2d(1, 2, 3, padding_mode="reflect"),
            "Conv2d: padding_mode 'reflect' is not supported, only 'zeros' (torch also has 'reflect', 'replicate' "
            "and 'circular')",
        ),
        (
            lambda: nn.Conv1d(1, 2, 3, stride=2, padding="same"),
            "Conv1d: padding='same' needs stride 1 (as torch), got stride (2,)",
        ),
        (
            lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 2, return_indices=True),
            "max_pool2d: return_indices=True is not supported (a max pooling has one output here)",
        ),
        (
            lambda: F.max_pool1d(np.ones((4,)), 2),
            "max_pool1d: input must be (N, C, L) or unbatched (C, L), got shape (4,)",
        ),
        (
            lambda: F.max_pool2d(np.ones((1, 3, 3)), 4, stride=1, ceil_mode=True),
            "max_pool2d: kernel_size (4, 4) (dilation (1, 1)) is larger than the padded input (3, 3) "
            "(input shape (1, 3, 3))",
        ),
        (
            lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, ceil_mode="yes"),
            "avg_pool2d: ceil_mode must be True or False, got 'yes'",
        ),
        (
            lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, divisor_override=0),
            "avg_pool2d: divisor_override must be None or an int >= 1, got 0",
        ),
        (
            lambda: F.adaptive_avg_pool2d(np.ones((1, 1, 4, 4)), (2, 0)),
            "adaptive_avg_pool2d: output_size must be an int >= 1 or 2 of them, got (2, 0)",
        ),
        (
            lambda: F.adaptive_avg_pool2d(np.ones((4, 4)), 2),
            "adaptive_avg_pool2d: input must be (N, C, H, W) or unbatched (C, H, W), got shape (4, 4)",
        ),
    ],
)
def test_bad_input_is_one_line_naming_it(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message
