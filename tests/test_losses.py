"""The losses against torch's: l1_loss, the weights of the binary cross-entropies and pos_weight, cross_entropy's
weight, ignore_index and label_smoothing (values and gradients, float64), their derivatives against finite
differences, a captured step, and the loss modules (outputs, state dicts, reprs)."""

import numpy as np
import pytest
import torch
from torch_helpers import tleaf, torch_in_float64  # noqa: F401  (an autouse fixture: importing it applies it here)

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F
from tinygrad_lab.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)
REDUCTIONS = ["mean", "sum", "none"]
CLASS_WEIGHTS = np.array([1.0, 2.0, 0.5])


def leaf(a):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def torch_arg(a):
    return None if a is None else torch.tensor(a)


def assert_matches_torch(ours_fn, torch_fn, inputs, constants=()):
    """ours_fn(*leaves, *constants) against torch_fn(*torch leaves, *torch constants): value and every gradient."""
    ours, theirs = [leaf(a) for a in inputs], [tleaf(a) for a in inputs]
    out = ours_fn(*ours, *constants)
    ref = torch_fn(*theirs, *[c if c is None or isinstance(c, (int, float, str)) else torch_arg(c) for c in constants])
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14, equal_nan=True)
    grad_out = RNG.standard_normal(out.shape) if out.ndim else np.array(1.0)
    out.backward(tl.tensor(grad_out))
    ref.backward(torch.tensor(grad_out))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=f"gradient {k}")


# ---- l1 and the binary cross-entropies ------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_loss_matches_torch_including_its_zero_gradient_at_equality(reduction):
    pred, target = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    target[0, :2] = pred[0, :2]  # |x| at 0: gradient 0, as torch's sign
    assert_matches_torch(
        lambda p, t: F.l1_loss(p, t, reduction=reduction),
        lambda p, t: torch.nn.functional.l1_loss(p, t, reduction=reduction),
        [pred, target],
    )
    assert gradcheck(lambda p: F.l1_loss(p, target, reduction=reduction), [leaf(pred + 0.1)])


@pytest.mark.parametrize("weight_shape", [(4, 3), (3,), (1, 3), (4, 1), ()])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_weight_broadcasts_as_torchs(weight_shape, reduction):
    p, y, w = RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3)), RNG.uniform(0.5, 2, weight_shape)
    assert_matches_torch(
        lambda p, y: F.binary_cross_entropy(p, y, w, reduction=reduction),
        lambda p, y: torch.nn.functional.binary_cross_entropy(p, y, torch.tensor(w), reduction=reduction),
        [p, y],
    )
    assert gradcheck(lambda p: F.binary_cross_entropy(p, y, w, reduction=reduction), [leaf(p)])


@pytest.mark.parametrize(("weight_shape", "pos_weight_shape"), [(None, (3,)), ((4, 3), None), ((3,), (4, 3)), ((), ())])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_weight_and_pos_weight_match_torch(weight_shape, pos_weight_shape, reduction):
    x, y = RNG.standard_normal((4, 3)) * 3, RNG.uniform(0, 1, (4, 3))
    w = None if weight_shape is None else RNG.uniform(0.5, 2, weight_shape)
    pw = None if pos_weight_shape is None else RNG.uniform(0.5, 3, pos_weight_shape)
    assert_matches_torch(  # gradients in the logits and the targets
        lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=pw),
        lambda x, y, w, pw: torch.nn.functional.binary_cross_entropy_with_logits(
            x, y, w, reduction=reduction, pos_weight=pw
        ),
        [x, y],
        [w, pw],
    )
    fn = lambda x, y: F.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=pw)  # noqa: E731
    assert gradcheck(fn, [leaf(x), leaf(y)]) and gradgradcheck(fn, [leaf(x), leaf(y)])


def test_bce_with_logits_pos_weight_is_stable_at_large_logits_as_torch():
    x, y, pw = np.array([1e3, -1e3, 1e3, -1e3, 0.0]), np.array([0.0, 1.0, 1.0, 0.0, 1.0]), np.array(3.0)
    assert_matches_torch(
        lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none"),
        lambda x: torch.nn.functional.binary_cross_entropy_with_logits(
            x, torch.tensor(y), pos_weight=torch.tensor(pw), reduction="none"
        ),
        [x],
    )


def test_the_binary_losses_differentiate_a_weight_that_requires_grad():
    """torch refuses a weight or pos_weight that requires grad there; here it is one more factor of the loss."""
    x, y, p = RNG.standard_normal((3, 2)), RNG.uniform(0, 1, (3, 2)), RNG.uniform(0.1, 0.9, (3, 2))
    assert gradcheck(
        lambda x, w: F.binary_cross_entropy_with_logits(x, y, w, pos_weight=w * w), [leaf(x), leaf([2, 3])]
    )
    assert gradcheck(lambda p, w: F.binary_cross_entropy(p, y, w), [leaf(p), leaf(RNG.uniform(0.5, 2, (3, 1)))])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: F.binary_cross_entropy(leaf(np.full((4, 3), 0.5)), np.ones((4, 3)), np.ones(4)),
            r"binary_cross_entropy: weight of shape \(4,\) does not broadcast to the prediction's shape \(4, 3\)",
        ),
        (
            lambda: F.binary_cross_entropy_with_logits(leaf(np.zeros(3)), np.ones(3), np.ones((2, 3))),
            r"binary_cross_entropy_with_logits: weight of shape \(2, 3\) does not broadcast to the prediction's",
        ),
        (
            lambda: F.binary_cross_entropy_with_logits(leaf(np.zeros((2, 3))), np.ones((2, 3)), pos_weight=[1, 2]),
            r"pos_weight of shape \(2,\) does not broadcast to the prediction's shape \(2, 3\)",
        ),
        (
            lambda: F.binary_cross_entropy(leaf(np.full(3, 0.5)), np.ones(3), "sum"),  # reduction is keyword-only
            "binary_cross_entropy: weight must be numbers, got 'sum'",
        ),
        (lambda: F.l1_loss(leaf(np.zeros(3)), np.zeros((3, 1))), r"l1_loss: prediction has shape \(3,\) but target"),
        (lambda: F.l1_loss(leaf(np.zeros(3)), np.zeros(3), reduction="avg"), "l1_loss: unknown reduction 'avg'"),
    ],
)
def test_bad_weights_shapes_and_reductions_name_the_loss_and_the_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- cross-entropy ------------------------------------------------------------------------------------------------


def torch_cross_entropy(z, t, weight=None, **kwargs):
    return torch.nn.functional.cross_entropy(
        z, torch.tensor(t), None if weight is None else torch.tensor(weight), **kwargs
    )


CROSS_ENTROPY_SETTINGS = [
    {},
    {"weight": True},
    {"ignore_index": 2},
    {"label_smoothing": 0.2},
    {"weight": True, "ignore_index": -100, "label_smoothing": 0.3},
    {"weight": True, "ignore_index": 0, "label_smoothing": 1.0},
]


@pytest.mark.parametrize("setting", CROSS_ENTROPY_SETTINGS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_class_indices_matches_torch(setting, reduction):
    z = RNG.standard_normal((7, 4)) * 2
    t = np.array([0, 3, 2, setting.get("ignore_index", -100), 1, 2, 0])
    weight = RNG.uniform(0.2, 3.0, 4) if setting.get("weight") else None
    kwargs = {k: v for k, v in setting.items() if k != "weight"} | {"reduction": reduction}
    assert_matches_torch(
        lambda z: F.cross_entropy(z, t, weight, **kwargs), lambda z: torch_cross_entropy(z, t, weight, **kwargs), [z]
    )
    fn = lambda z: F.cross_entropy(z, t, weight, **kwargs)  # noqa: E731
    assert gradcheck(fn, [leaf(z)]) and gradgradcheck(fn, [leaf(z)])


@pytest.mark.parametrize(
    "setting", [{}, {"weight": True}, {"label_smoothing": 0.25}, {"weight": True, "label_smoothing": 0.1}], ids=str
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_probabilities_matches_torch_in_logits_and_targets(setting, reduction):
    z, probs = RNG.standard_normal((5, 3)), RNG.dirichlet(np.ones(3), size=5)
    weight = RNG.uniform(0.2, 3.0, 3) if setting.get("weight") else None
    smoothing = setting.get("label_smoothing", 0.0)
    assert_matches_torch(
        lambda z, p: F.cross_entropy(z, p, weight, reduction=reduction, label_smoothing=smoothing),
        lambda z, p: torch.nn.functional.cross_entropy(
            z, p, torch_arg(weight), reduction=reduction, label_smoothing=smoothing
        ),
        [z, probs],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_of_only_ignored_targets_is_torchs_nan_mean_with_zero_gradients(reduction, smoothing):
    z, t = RNG.standard_normal((3, 4)), np.array([-100, -100, -100])
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    assert_matches_torch(lambda z: F.cross_entropy(z, t, **kwargs), lambda z: torch_cross_entropy(z, t, **kwargs), [z])
    weight = np.array([0.0, 1.0, 1.0, 1.0])  # targets whose weights sum to 0: the same
    assert_matches_torch(
        lambda z: F.cross_entropy(z, np.array([0, 0, -100]), weight, **kwargs),
        lambda z: torch_cross_entropy(z, np.array([0, 0, -100]), weight, **kwargs),
        [z],
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_with_minus_infinity_logits_where_torch_is_finite(smoothing):
    """A masked class (logit -inf) that is no sample's target, or a fully masked ignored row, adds nothing."""
    z = RNG.standard_normal((3, 4))
    z[2, :] = -np.inf
    t = np.array([1, 2, -100])
    if not smoothing:
        z[0, 0] = -np.inf
    kwargs = {"label_smoothing": smoothing}
    assert_matches_torch(lambda z: F.cross_entropy(z, t, **kwargs), lambda z: torch_cross_entropy(z, t, **kwargs), [z])


def test_cross_entropy_keeps_float32_logits_float32():
    z = tl.tensor(RNG.standard_normal((4, 3)), dtype=np.float32, requires_grad=True)
    loss = F.cross_entropy(z, np.array([0, 2, -100, 1]), np.array([1.0, 2.0, 0.5]), label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "targets", "match"),
    [
        (
            {"weight": np.ones(4)},
            [0, 1],
            r"cross_entropy: weight must hold a number for each of the 3 classes, got "
            r"shape \(4,\)",
        ),
        ({"label_smoothing": 1.5}, [0, 1], r"cross_entropy: label_smoothing must lie in \[0, 1\], got 1.5"),
        ({"ignore_index": 1}, np.full((2, 3), 1 / 3), "ignore_index 1 applies to class indices, not to probabilities"),
        ({"reduction": "avg"}, [0, 1], "cross_entropy: unknown reduction 'avg'"),
        ({"weight": tl.tensor(np.ones(3), requires_grad=True)}, [0, 1], r"weight is used as a constant .*detach\(\)"),
        ({"ignore_index": 5}, [0, -100], r"class indices must lie in \[0, 3\), got values in \[-100, 0\] \(ignore_"),
    ],
)
def test_cross_entropy_refuses_bad_arguments_in_one_line(kwargs, targets, match):
    targets = np.asarray(targets)
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(leaf(np.zeros((2, 3))), targets, **kwargs)


def test_a_captured_cross_entropy_step_with_weights_ignore_index_and_smoothing_follows_eager():
    """The mask of ignored targets is computed from each call's targets, and its index check runs on each."""
    losses = {}
    for mode in ("eager", "compiled"):
        model = nn.Linear(4, 3, rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y, model=model, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y, CLASS_WEIGHTS, ignore_index=1, label_smoothing=0.1)
            loss.backward()
            opt.step()
            return loss

        run = tl.compile(step) if mode == "compiled" else step
        x = np.random.default_rng(1).random((5, 4))
        targets = [[0, 1, 2, 1, 0], [1, 1, 1, 1, 1], [2, 0, 2, 0, 1], [0, 2, 1, 1, 2], [1, 0, 0, 2, 1], [2, 2, 1, 0, 0]]
        losses[mode] = [run(x, np.array(t)).item() for t in targets]
    assert run.backend.startswith("numpy (")
    np.testing.assert_array_equal(losses["compiled"], losses["eager"])
    assert np.isnan(losses["compiled"][1])  # every target ignored
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\), got values in \[0, 3\]"):
        run(x, np.array([0, 1, 3, 1, 0]))


# ---- the modules ----------------------------------------------------------------------------------------------


def module_pairs():
    w3, pw = RNG.uniform(0.5, 2, 3), RNG.uniform(0.5, 2, 3)
    return [
        (nn.MSELoss(), torch.nn.MSELoss(), "regression"),
        (nn.MSELoss(reduction="none"), torch.nn.MSELoss(reduction="none"), "regression"),
        (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), "regression"),
        (nn.BCELoss(weight=w3), torch.nn.BCELoss(weight=torch.tensor(w3)), "probabilities"),
        (
            nn.BCEWithLogitsLoss(weight=w3, pos_weight=pw, reduction="sum"),
            torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w3), pos_weight=torch.tensor(pw), reduction="sum"),
            "binary",
        ),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), "classes"),
        (
            nn.CrossEntropyLoss(weight=w3, ignore_index=0, reduction="none", label_smoothing=0.2),
            torch.nn.CrossEntropyLoss(weight=torch.tensor(w3), ignore_index=0, reduction="none", label_smoothing=0.2),
            "classes",
        ),
        (nn.NLLLoss(), torch.nn.NLLLoss(), "classes"),
        (
            nn.NLLLoss(weight=w3, ignore_index=2, reduction="sum"),
            torch.nn.NLLLoss(weight=torch.tensor(w3), ignore_index=2, reduction="sum"),
            "classes",
        ),
    ]


@pytest.mark.parametrize("index", range(len(module_pairs())))
def test_loss_modules_give_torchs_values_gradients_state_dicts_and_reprs(index):
    ours, theirs, kind = module_pairs()[index]
    pred = RNG.uniform(0.05, 0.95, (4, 3)) if kind == "probabilities" else RNG.standard_normal((4, 3))
    target = {
        "regression": RNG.standard_normal((4, 3)),
        "probabilities": RNG.uniform(0, 1, (4, 3)),
        "binary": (RNG.random((4, 3)) < 0.5).astype(float),
        "classes": np.array([0, 2, 1, 2]),
    }[kind]
    assert_matches_torch(lambda p: ours(p, target), lambda p: theirs(p, torch.tensor(target)), [pred])
    state, torch_state = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(torch_state)
    for key in state:
        np.testing.assert_array_equal(state[key], torch_state[key].numpy())
    assert repr(ours) == repr(theirs)


def test_a_loss_module_inside_a_model_is_in_its_state_dict_under_torchs_keys():
    ours = nn.ModuleDict({"fc": nn.Linear(3, 2), "loss": nn.CrossEntropyLoss(weight=[1, 2])})
    theirs = torch.nn.ModuleDict({"fc": torch.nn.Linear(3, 2), "loss": torch.nn.CrossEntropyLoss(torch.ones(2))})
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["fc.weight", "fc.bias", "loss.weight"]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.loss.weight.data, np.ones(2))
    assert ours.loss.weight.dtype == np.float64  # a list of ints becomes floats


@pytest.mark.parametrize(
    "make", [nn.MSELoss, nn.L1Loss, nn.BCELoss, nn.BCEWithLogitsLoss, nn.CrossEntropyLoss, nn.NLLLoss]
)
def test_a_loss_module_refuses_an_unknown_reduction_when_made(make):
    with pytest.raises(
        ValueError, match=f"{make.__name__}: unknown reduction 'avg'; valid reductions: mean, sum, none"
    ):
        make(reduction="avg")
