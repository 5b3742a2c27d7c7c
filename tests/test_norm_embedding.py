"""LayerNorm, Embedding, Softmax and LogSoftmax against torch's: values and gradients (float64), gradcheck, the
initialisation, state dict keys and reprs, the padding row's missing gradient, a captured step, and the errors."""

import numpy as np
import pytest
import torch
from test_losses import assert_matches_torch, leaf
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(11)


# ---- layer norm ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,normalized", [((4, 5), 5), ((2, 3, 4), (3, 4)), ((6,), [6]), ((2, 3, 4), (4,))])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm_matches_torch_with_gradients_in_input_weight_and_bias(shape, normalized, affine):
    trailing = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    inputs = [RNG.standard_normal(shape) * 3 + 1]
    if affine != "none":
        inputs.append(RNG.standard_normal(trailing))
    if affine == "both":
        inputs.append(RNG.standard_normal(trailing))
    assert_matches_torch(
        lambda *a: F.layer_norm(a[0], normalized, *a[1:], eps=1e-3),
        lambda *a: torch.nn.functional.layer_norm(a[0], trailing, *a[1:], eps=1e-3),
        inputs,
    )
    f = lambda *a: F.layer_norm(a[0], normalized, *a[1:])  # noqa: E731
    assert gradcheck(f, [leaf(a) for a in inputs]) and gradgradcheck(f, [leaf(a) for a in inputs])


@pytest.mark.parametrize(
    "kwargs", [{}, {"eps": 1e-3}, {"bias": False}, {"elementwise_affine": False}], ids=lambda k: str(k)
)
def test_layer_norm_module_has_torchs_parameters_state_dict_repr_and_outputs(kwargs):
    ours, theirs = nn.LayerNorm((3, 4), **kwargs), torch.nn.LayerNorm((3, 4), **kwargs)
    assert repr(ours) == repr(theirs)
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())  # ones and zeros, as torch
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(RNG.standard_normal(p.shape)))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = RNG.standard_normal((5, 3, 4))
    out, ref = ours(tl.tensor(x, requires_grad=True)), theirs(torch.tensor(x, requires_grad=True))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    (out * out).sum().backward(), (ref * ref).sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, grads[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: F.layer_norm(tl.tensor(np.ones((2, 3))), (4,)), r"layer_norm: normalized_shape \(4,\) needs input"),
        (lambda: F.layer_norm(tl.tensor(np.ones(3)), (2, 3)), r"needs input whose last axes are \(2, 3\), got shape"),
        (lambda: F.layer_norm(tl.tensor(np.ones((2, 3))), 3, np.ones(2)), r"weight has shape \(2,\) but normalized"),
        (lambda: nn.LayerNorm(0), "LayerNorm: normalized_shape must be an int >= 1 or a sequence of them, got 0"),
        (lambda: nn.LayerNorm(()), r"LayerNorm: normalized_shape must be an int >= 1 or a sequence of them, got \(\)"),
    ],
)
def test_layer_norm_refuses_shapes_that_do_not_fit_in_one_line(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- embedding ----------------------------------------------------------------------------------------------------


def test_embedding_draws_torchs_standard_normal_from_rng_with_the_padding_row_zeroed():
    layer = nn.Embedding(6, 3, padding_idx=-2, rng=np.random.default_rng(4))
    expected = np.random.default_rng(4).standard_normal((6, 3))
    expected[4] = 0.0
    np.testing.assert_array_equal(layer.weight.data, expected)
    assert layer.padding_idx == torch.nn.Embedding(6, 3, padding_idx=-2).padding_idx == 4
    assert repr(layer) == repr(torch.nn.Embedding(6, 3, padding_idx=-2)) == "Embedding(6, 3, padding_idx=4)"
    assert list(layer.state_dict()) == list(torch.nn.Embedding(6, 3).state_dict()) == ["weight"]
    tl.manual_seed(0)
    first = nn.Embedding(200, 50).weight.data  # without rng: tl.manual_seed's generator, N(0, 1) as torch's
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1.0) < 0.02


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("index_shape", [(7,), (2, 4), ()])
def test_embedding_matches_torch_with_repeated_indices_and_no_gradient_for_the_padding_row(padding_idx, index_shape):
    weight = RNG.standard_normal((5, 3))  # the padding row is not zero: it is still looked up, as torch
    idx = RNG.integers(0, 5, index_shape)
    if idx.ndim:
        idx.reshape(-1)[:3] = [2, 2, 4]  # repeated indices add their gradients; 2 and 4 are padding rows above
    assert_matches_torch(
        lambda w: F.embedding(idx, w, padding_idx),
        lambda w: torch.nn.functional.embedding(torch.tensor(idx), w, padding_idx),
        [weight],
    )
    if padding_idx is None:  # (with one, the gradient is 0 by design where the lookup's value still moves)
        assert gradcheck(lambda w: F.embedding(idx, w), [leaf(weight)])


def test_embedding_module_in_a_model_trains_as_torchs():
    ours, theirs = nn.Embedding(5, 3, padding_idx=0), torch.nn.Embedding(5, 3, padding_idx=0)
    ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
    ours_opt, theirs_opt = optim.SGD(ours.parameters(), lr=0.5), torch.optim.SGD(theirs.parameters(), lr=0.5)
    idx = np.array([[0, 1, 1], [3, 0, 4]])
    for _ in range(3):
        ours_opt.zero_grad(), theirs_opt.zero_grad()
        (ours(tl.tensor(idx, dtype=np.int64)).tanh() ** 2).sum().backward()
        (theirs(torch.tensor(idx)).tanh() ** 2).sum().backward()
        ours_opt.step(), theirs_opt.step()
    # (atol: tanh^2 drives some entries towards 0, where rounding differs relatively)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert np.all(ours.weight.data[0] == 0.0)  # the padding row never moved


def test_embedding_from_pretrained_is_frozen_unless_asked_as_torchs():
    table = RNG.standard_normal((4, 2))
    frozen, free = nn.Embedding.from_pretrained(table), nn.Embedding.from_pretrained(table, freeze=False)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table))
    assert frozen.weight.requires_grad is theirs.weight.requires_grad is False and free.weight.requires_grad
    np.testing.assert_array_equal(frozen(np.array([3, 1])).data, theirs(torch.tensor([3, 1])).numpy())
    assert frozen.weight.data is not table  # a copy


def test_a_captured_embedding_step_follows_eager_and_checks_each_calls_indices():
    layer = nn.Embedding(6, 2, padding_idx=1, rng=np.random.default_rng(0))
    opt = optim.SGD(layer.parameters(), lr=0.1)

    def step(idx):
        opt.zero_grad()
        loss = (layer(idx) ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    compiled = tl.compile(step)
    for idx in ([0, 1, 2], [3, 1, 1], [5, 4, 0]):
        before = layer.weight.data.copy()
        loss = compiled(np.array(idx))
        expected = before.copy()
        for i in idx:
            if i != 1:
                expected[i] -= 0.1 * 2 * before[i]
        assert loss.item() == pytest.approx((before[idx] ** 2).sum(), rel=1e-12)
        np.testing.assert_allclose(layer.weight.data, expected, rtol=1e-12)
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 6\), got values in \[0, 6\]"):
        compiled(np.array([0, 6, 2]))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, r"padding_idx must lie in \[-5, 5\), got 5"),
        (lambda: nn.Embedding(0, 3), ValueError, "Embedding: num_embeddings must be an integer >= 1, got 0"),
        (lambda: nn.Embedding(5, 3, max_norm=1.0), ValueError, "Embedding: max_norm and scale_grad_by_freq are not"),
        (lambda: nn.Embedding(5, 3)(np.array([-1])), IndexError, r"indices must lie in \[0, 5\), got values in \[-1"),
        (lambda: nn.Embedding(5, 3)(np.array([1.0])), ValueError, "embedding: indices must be integers, got dtype f"),
        (lambda: F.embedding(np.array([1]), np.ones(3)), ValueError, r"weight must have shape \(num_embeddings, embed"),
        (lambda: F.embedding(np.array([1]), np.ones((3, 2)), 3), ValueError, r"padding_idx must lie in \[-3, 3\)"),
    ],
)
def test_embedding_refuses_bad_settings_and_indices_in_one_line(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- softmax modules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_modules_match_torch(name, dim):
    ours, theirs = getattr(nn, name)(dim), getattr(torch.nn, name)(dim)
    assert repr(ours) == repr(theirs)
    assert_matches_torch(ours, theirs, [RNG.standard_normal((3, 4, 2)) * 5])


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 2)], ids=str)
def test_softmax_modules_without_dim_take_torchs_implicit_axis_and_warn(name, shape):
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    assert repr(ours) == repr(theirs) == f"{name}(dim=None)"
    x = RNG.standard_normal(shape)
    with pytest.warns(UserWarning, match=f"{name}: implicit dimension choice is deprecated"):
        out = ours(tl.tensor(x))
    with pytest.warns(UserWarning):
        ref = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.data, ref.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 2)], ids=str)
def test_functional_softmax_without_dim_takes_torchs_implicit_axis_and_warns(name, shape):
    """A ported ``F.softmax(x)`` on 3-D input normalised the last axis, torch the first: the same numbers now."""
    x = RNG.standard_normal(shape)
    with pytest.warns(UserWarning, match=f"{name}: implicit dimension choice is deprecated") as caught:
        out = getattr(F, name)(tl.tensor(x))
    assert caught[0].filename == __file__  # reported at the caller's line, as torch's
    with pytest.warns(UserWarning):
        ref = getattr(torch.nn.functional, name)(torch.tensor(x))
    np.testing.assert_allclose(out.data, ref.numpy(), rtol=1e-12, atol=1e-15)
