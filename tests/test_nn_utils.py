"""nn.utils' gradient clipping against torch.nn.utils: the total norm returned and the gradients scaled or clipped
in place, for every norm order, with gradients of no parameter, and inside a tl.compile step."""

import math

import numpy as np
import pytest
import torch

import tinygrad_lab as tl
from tinygrad_lab import nn, optim

RNG = np.random.default_rng(5)
GRADS = [RNG.standard_normal((3, 4)) * 3, RNG.standard_normal(5), np.array(2.5)]


def with_grads(lib, grads):
    params = [lib.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = lib.tensor(g.copy())
    return params


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3, math.inf])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours, theirs = with_grads(tl, GRADS), with_grads(torch, GRADS)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch_and_skips_parameters_without_grad():
    ours, theirs = with_grads(tl, GRADS), with_grads(torch, GRADS)
    ours.append(tl.tensor(np.ones(2), requires_grad=True))  # no grad: left alone, as torch
    theirs.append(torch.ones(2, dtype=torch.float64, requires_grad=True))
    nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, q in zip(ours[:-1], theirs[:-1]):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())
    assert ours[-1].grad is None and theirs[-1].grad is None


def test_clip_grad_norm_of_no_gradients_is_zero_and_a_nonfinite_norm_is_refused_on_request():
    assert nn.utils.clip_grad_norm_([tl.tensor([1.0], requires_grad=True)], 1.0).item() == 0.0
    params = with_grads(tl, [np.array([np.inf, 1.0])])
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2.0 of the gradients is inf"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="clip_grad_norm_: parameter 0 is a ndarray, not a Tensor"):
        nn.utils.clip_grad_norm_([np.ones(2)], 1.0)


@pytest.mark.parametrize("native", [False, None])
def test_clip_grad_norm_inside_a_compiled_step_follows_each_calls_gradients(native):
    def make():
        model = nn.Linear(3, 2, rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            return loss, norm

        return model, step

    (model, step), (eager_model, eager_step) = make(), make()
    compiled = tl.compile(step, native=native)
    for k in range(6):
        x, y = tl.tensor(RNG.standard_normal((4, 3)) * (k + 1)), tl.tensor(RNG.standard_normal((4, 2)))
        (loss, norm), (eager_loss, eager_norm) = compiled(x, y), eager_step(x, y)
        np.testing.assert_allclose([loss.item(), norm.item()], [eager_loss.item(), eager_norm.item()], rtol=1e-12)
    np.testing.assert_allclose(model.weight.data, eager_model.weight.data, rtol=1e-12)
    assert compiled._replays  # replayed, not run eagerly
