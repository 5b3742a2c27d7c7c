"""The activations of torch ported models use: erf against math.erf to float64 accuracy, gelu (exact and tanh),
silu, elu, softplus (beta, threshold, no overflow), hardtanh and relu6 against torch's values and gradients in
float64, gradcheck and gradgradcheck, their modules' reprs, and the errors; the registry the CLI reads."""

import math

import numpy as np
import pytest
import torch
from test_losses import assert_matches_torch, leaf
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import nn
from tinygrad_lab.engine.ops import erf
from tinygrad_lab.nn import functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(2)
TF = torch.nn.functional


def erf_points():
    grid = np.linspace(-7, 7, 140001)
    tiny = np.geomspace(1e-300, 10, 3001)
    return np.concatenate([grid, tiny, -tiny, [0.0, 2.0, -2.0, np.nextafter(2.0, 3), 6.0, 30.0, 1e300]])


def test_erf_agrees_with_math_erf_to_a_few_units_in_the_last_place_over_every_range():
    x = erf_points()
    ours = erf(x)
    expected = np.array([math.erf(v) for v in x])
    relative = np.abs(ours - expected) / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    assert relative.max() < 1.5e-15, x[relative.argmax()]
    np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf, -0.0])), [1.0, -1.0, -0.0])
    assert np.signbit(erf(np.array([-0.0]))[0]) and np.isnan(erf(np.array([np.nan]))[0])


def test_erf_of_float32_is_math_erf_rounded_to_float32():
    x = np.linspace(-5, 5, 20001).astype(np.float32)
    ours = erf(x)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, np.array([math.erf(float(v)) for v in x], dtype=np.float32))


def test_erf_as_an_op_has_the_gaussian_slope_at_every_order():
    x = leaf(RNG.uniform(-3, 3, 7))
    assert gradcheck(erf, [x]) and gradgradcheck(erf, [x])
    assert_matches_torch(erf, torch.erf, [np.linspace(-6, 6, 25)])


WIDE = np.concatenate([np.linspace(-12, 12, 97), [-800.0, -40.0, 0.0, 40.0, 800.0]])
CASES = {
    "gelu": (F.gelu, TF.gelu, {}),
    "gelu tanh": (F.gelu, TF.gelu, {"approximate": "tanh"}),
    "silu": (F.silu, TF.silu, {}),
    "elu": (F.elu, TF.elu, {}),
    "elu alpha 0.3": (F.elu, TF.elu, {"alpha": 0.3}),
    "softplus": (F.softplus, TF.softplus, {}),
    "softplus beta 2 threshold 5": (F.softplus, TF.softplus, {"beta": 2.0, "threshold": 5.0}),
    "softplus beta 0.5": (F.softplus, TF.softplus, {"beta": 0.5}),
    "hardtanh": (F.hardtanh, TF.hardtanh, {}),
    "hardtanh -2, 3": (F.hardtanh, TF.hardtanh, {"min_val": -2.0, "max_val": 3.0}),
    "relu6": (F.relu6, TF.relu6, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_matches_torchs_values_and_gradients_far_out_and_at_its_kinks(name):
    ours, theirs, kwargs = CASES[name]
    points = np.concatenate([WIDE, [-2.0, -1.0, 1.0, 3.0, 6.0, 10.0, 2.5, 20.0]])  # hardtanh's bounds, the thresholds
    assert_matches_torch(lambda x: ours(x, **kwargs), lambda x: theirs(x, **kwargs), [points])


@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_gradients_hold_at_first_and_second_order(name):
    ours, _, kwargs = CASES[name]
    x = RNG.uniform(-4, 4, (3, 4))
    x[np.abs(x - np.round(x)) < 0.01] += 0.05  # away from hardtanh's and relu6's kinks at whole numbers
    assert gradcheck(lambda t: ours(t, **kwargs), [leaf(x)])
    assert gradgradcheck(lambda t: ours(t, **kwargs), [leaf(x)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_keeps_float32_float32_and_close_to_torchs(name):
    ours, theirs, kwargs = CASES[name]
    x = np.linspace(-30, 30, 241).astype(np.float32)
    out = ours(tl.tensor(x), **kwargs)
    assert out.dtype == np.float32
    # atol: 1 + erf(x / sqrt(2)) cancels in float32 for both (off by about |x| eps32, torch's the more)
    np.testing.assert_allclose(out.data, theirs(torch.tensor(x), **kwargs).numpy(), rtol=2e-6, atol=1e-6)


def test_softplus_never_overflows_and_is_exact_where_log1p_exp_is():
    x = np.array([-1000.0, -50.0, -1e-8, 0.0, 1e-8, 19.0, 21.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = F.softplus(leaf(x))
    expected = [math.log1p(math.exp(v)) if v <= 20 else v for v in x]
    np.testing.assert_allclose(out.data, expected, rtol=1e-15, atol=0)


MODULES = [
    (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.ELU(alpha=0.5), torch.nn.ELU(alpha=0.5)),
    (nn.Softplus(beta=2, threshold=10), torch.nn.Softplus(beta=2, threshold=10)),
    (nn.Hardtanh(-2, 3), torch.nn.Hardtanh(-2, 3)),
    (nn.ReLU6(), torch.nn.ReLU6()),
]


@pytest.mark.parametrize("index", range(len(MODULES)))
def test_activation_modules_have_torchs_reprs_and_outputs(index):
    ours, theirs = MODULES[index]
    assert repr(ours) == repr(theirs)
    assert_matches_torch(ours, theirs, [RNG.standard_normal((4, 5)) * 4])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: F.gelu(leaf(np.ones(2)), approximate="erf"), "gelu: approximate must be 'none' or 'tanh', got 'erf'"),
        (lambda: nn.GELU("fast"), "GELU: approximate must be 'none' or 'tanh', got 'fast'"),
        (lambda: nn.SiLU(inplace=True), "SiLU: inplace=True is not supported"),
        (lambda: F.elu(leaf(np.ones(2)), inplace=True), "elu: inplace=True is not supported"),
        (lambda: nn.Hardtanh(2.0, 1.0), "Hardtanh: min_val 2.0 must not exceed max_val 1.0"),
    ],
)
def test_activations_refuse_what_they_cannot_do_in_one_line(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "softplus"])
def test_the_hidden_layer_activations_are_registered_for_the_cli_and_build_an_mlp(name):
    assert name in nn.ACTIVATIONS
    model = nn.MLP(2, (4,), 1, activation=name, rng=np.random.default_rng(0))
    x = RNG.standard_normal((5, 2))
    hidden = model.fc1(tl.tensor(x))
    expected = {"gelu": TF.gelu, "silu": TF.silu, "elu": TF.elu, "softplus": TF.softplus}[name](
        torch.tensor(hidden.data)
    )
    np.testing.assert_allclose(model.act1(hidden).data, expected.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.nn.ReLU(inplace=False),
        lambda lib: lib.nn.ReLU(False),
        lambda lib: lib.nn.LeakyReLU(0.2, inplace=False),
        lambda lib: lib.nn.Dropout(0.5, inplace=False),
    ],
)
def test_relu_leaky_relu_and_dropout_take_torchs_inplace_argument(make):
    """``nn.ReLU(inplace=False)``, torchvision's spelling, was a TypeError naming Module.__init__."""
    ours, theirs = make(tl), make(torch)
    assert repr(ours) == repr(theirs)
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(ours.eval()(tl.tensor(x)).data, theirs.eval()(torch.tensor(x)).numpy(), rtol=1e-15)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "dropout"])
def test_functional_relu_leaky_relu_and_dropout_take_inplace_false_and_refuse_true(name):
    x = tl.tensor(np.linspace(-2, 2, 9))
    call = getattr(F, name)
    kwargs = {"training": False} if name == "dropout" else {}
    np.testing.assert_array_equal(call(x, inplace=False, **kwargs).data, call(x, **kwargs).data)
    with pytest.raises(ValueError, match=f"{name}: inplace=True is not supported"):
        call(x, inplace=True, **kwargs)
    with pytest.raises(ValueError, match="ReLU: inplace=True is not supported"):
        nn.ReLU(inplace=True)
