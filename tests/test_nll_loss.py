"""F.nll_loss against torch's (weight, ignore_index, reductions; values and gradients in float64, gradcheck), and
torch's other layouts of class scores, (C,) and (N, C, d1, ...), for nll_loss and cross_entropy alike."""

import numpy as np
import pytest
import torch
from test_losses import assert_matches_torch, leaf
from torch_helpers import torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import optim
from tinygrad_lab.nn import functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(5)
REDUCTIONS = ["mean", "sum", "none"]
SETTINGS = [
    {},
    {"weight": np.array([1.0, 2.0, 0.5, 3.0])},
    {"ignore_index": 1},
    {"weight": [0.5, 1, 2, 1], "ignore_index": 3},
]


def torch_kwargs(kwargs):
    return {k: torch.tensor(np.asarray(v, dtype=np.float64)) if k == "weight" else v for k, v in kwargs.items()}


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_of_log_probabilities_matches_torch(kwargs, reduction):
    scores, target = RNG.standard_normal((6, 4)), np.array([0, 1, 3, 2, 1, 3])
    assert_matches_torch(
        lambda x: F.nll_loss(x.log_softmax(axis=1), target, reduction=reduction, **kwargs),
        lambda x: torch.nn.functional.nll_loss(
            x.log_softmax(1), torch.tensor(target), reduction=reduction, **torch_kwargs(kwargs)
        ),
        [scores],
    )
    f = lambda x: F.nll_loss(x, target, reduction=reduction, **kwargs)  # noqa: E731  (any numbers: linear in x)
    assert gradcheck(f, [leaf(scores)]) and gradgradcheck(f, [leaf(scores)])


def test_nll_loss_of_minus_infinity_at_an_unused_class_is_finite_as_torchs():
    with np.errstate(divide="ignore"):
        log_probs = np.log(np.array([[0.0, 0.5, 0.5], [0.2, 0.8, 0.0]]))  # -inf where a class has probability 0
        assert_matches_torch(
            lambda x: F.nll_loss(x, np.array([1, 0])),
            lambda x: torch.nn.functional.nll_loss(x, torch.tensor([1, 0])),
            [log_probs],
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_of_only_ignored_targets_is_torchs(reduction):
    assert_matches_torch(
        lambda x: F.nll_loss(x, np.array([2, 2]), ignore_index=2, reduction=reduction),
        lambda x: torch.nn.functional.nll_loss(x, torch.tensor([2, 2]), ignore_index=2, reduction=reduction),
        [RNG.standard_normal((2, 3))],
    )


LAYOUTS = [((4,), ()), ((3, 4, 5), (3, 5)), ((2, 4, 3, 2), (2, 3, 2))]


@pytest.mark.parametrize("shape,target_shape", LAYOUTS, ids=str)
@pytest.mark.parametrize("kwargs", SETTINGS[:2] + [{"ignore_index": 0}])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_and_cross_entropy_take_torchs_other_layouts(shape, target_shape, kwargs, reduction):
    scores, target = RNG.standard_normal(shape), RNG.integers(0, 4, target_shape)
    for ours, theirs, extra in [
        (F.nll_loss, torch.nn.functional.nll_loss, {}),
        (F.cross_entropy, torch.nn.functional.cross_entropy, {}),
        (F.cross_entropy, torch.nn.functional.cross_entropy, {"label_smoothing": 0.1}),
    ]:
        assert_matches_torch(
            lambda x: ours(x, target, reduction=reduction, **kwargs, **extra),  # noqa: B023  (called at once)
            lambda x: theirs(x, torch.tensor(target), reduction=reduction, **torch_kwargs(kwargs), **extra),  # noqa: B023
            [scores],
        )
    f = lambda x: F.cross_entropy(x, target, reduction=reduction, **kwargs)  # noqa: E731
    assert gradcheck(f, [leaf(scores)])


@pytest.mark.parametrize("shape", [(4,), (3, 4, 5)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_probabilities_takes_torchs_other_layouts(shape, reduction):
    scores = RNG.standard_normal(shape)
    probs = RNG.dirichlet(np.ones(4), shape[:1] + shape[2:] if len(shape) > 1 else None)
    probs = np.moveaxis(probs, -1, 1) if len(shape) > 1 else probs  # classes on axis 1, as the scores
    w = np.array([1.0, 2.0, 0.5, 3.0])
    assert_matches_torch(
        lambda x, p: F.cross_entropy(x, p, w, reduction=reduction, label_smoothing=0.2),
        lambda x, p: torch.nn.functional.cross_entropy(x, p, torch.tensor(w), reduction=reduction, label_smoothing=0.2),
        [scores, probs],
    )


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((np.zeros((2, 3)), np.array([0.0, 1.0])), {}, "nll_loss: targets must be integer class indices, got dtype"),
        (
            (np.zeros((2, 3)), np.array([0, 3])),
            {},
            r"nll_loss: class indices must lie in \[0, 3\), got values in",
        ),
        ((np.zeros((2, 3)), np.array([0, 1, 1])), {}, r"nll_loss: input has shape \(2, 3\), so integer class targets"),
        (
            (np.zeros((2, 3)), np.array([0, 1])),
            {"weight": [1.0, 2.0]},
            "nll_loss: weight must hold a number for",
        ),
        ((np.zeros((2, 3)), np.array([0, 1])), {"reduction": "avg"}, "nll_loss: unknown reduction 'avg'"),
        ((np.float64(0.0), np.array(0)), {}, r"nll_loss: input must have shape \(N, C\), \(C,\) or"),
    ],
)
def test_nll_loss_refuses_bad_arguments_in_one_line_naming_itself(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.nll_loss(tl.tensor(args[0]), args[1], **kwargs)


def test_a_captured_nll_loss_step_follows_eager_and_checks_each_calls_targets():
    rng = np.random.default_rng(3)
    w = tl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.nll_loss((x @ w).log_softmax(axis=1), y, [1.0, 2.0, 1.0, 0.5], ignore_index=0)
        loss.backward()
        opt.step()
        return loss

    compiled, x = tl.compile(step), rng.standard_normal((5, 3))
    for _ in range(3):
        compiled(x, rng.integers(0, 4, 5))
    y = np.array([1, 2, 0, 3, 3])
    expected_w = tl.tensor(w.data.copy(), requires_grad=True)
    expected = F.nll_loss((x @ expected_w).log_softmax(axis=1), y, [1.0, 2.0, 1.0, 0.5], ignore_index=0)
    expected.backward()
    assert compiled(x, y).item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(w.grad.data, expected_w.grad.data, rtol=1e-12)
    with pytest.raises(ValueError, match=r"nll_loss: class indices must lie in \[0, 4\)"):
        compiled(x, np.array([1, 2, 4, 3, 3]))
