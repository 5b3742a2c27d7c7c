"""tinygrad_lab.optim: every update rule against two steps worked out by hand in numpy from PyTorch's documented
algorithms, plus in-place updates, skipped None grads, step bookkeeping and argument errors."""

import copy
import tracemalloc

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn as nn
import tinygrad_lab.nn.functional as F
import tinygrad_lab.optim as optim

P0 = np.array([1.0, -2.0, 0.5, 3.0])
G1 = np.array([0.3, -0.1, 2.0, -4.0])
G2 = np.array([-0.5, 0.2, 1.0, -3.0])
LR = 0.1


def run_two_steps(make_opt, grads=(G1, G2)):
    """p starts at P0; before step t its gradient is set to grads[t]; returns p after both steps."""
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = make_opt([p])
    for g in grads:
        p.grad = tl.tensor(g)
        opt.step()
    return p.data


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


# ---- SGD --------------------------------------------------------------------------------------------------------


def test_sgd_plain():
    close(run_two_steps(lambda ps: optim.SGD(ps, lr=LR)), P0 - LR * G1 - LR * G2)


def test_sgd_constant_gradient_closed_forms():
    g, mu, d = (G1, G1), 0.9, 0.25
    close(run_two_steps(lambda ps: optim.SGD(ps, lr=LR), g), P0 - 2 * LR * G1)
    # momentum: b1 = g, b2 = mu g + g
    close(run_two_steps(lambda ps: optim.SGD(ps, lr=LR, momentum=mu), g), P0 - LR * (2 + mu) * G1)
    # dampening applies from the second step on: b2 = mu g + (1 - d) g
    close(run_two_steps(lambda ps: optim.SGD(ps, lr=LR, momentum=mu, dampening=d), g), P0 - LR * (2 + mu - d) * G1)
    # nesterov: steps g + mu b1 = (1 + mu) g, then g + mu b2 = (1 + mu + mu^2) g
    close(
        run_two_steps(lambda ps: optim.SGD(ps, lr=LR, momentum=mu, nesterov=True), g),
        P0 - LR * (2 + 2 * mu + mu**2) * G1,
    )


def test_sgd_momentum_nesterov_weight_decay_varying_gradients():
    mu, wd = 0.8, 0.05
    p1_g = G1 + wd * P0
    b1 = p1_g
    p1 = P0 - LR * (p1_g + mu * b1)
    p2_g = G2 + wd * p1
    b2 = mu * b1 + p2_g
    p2 = p1 - LR * (p2_g + mu * b2)
    close(run_two_steps(lambda ps: optim.SGD(ps, lr=LR, momentum=mu, nesterov=True, weight_decay=wd)), p2)


def test_sgd_weight_decay_constant_gradient():
    wd = 0.3  # p_{t+1} = (1 - lr wd) p_t - lr g
    shrink = 1 - LR * wd
    close(
        run_two_steps(lambda ps: optim.SGD(ps, lr=LR, weight_decay=wd), (G1, G1)),
        shrink**2 * P0 - LR * G1 * (1 + shrink),
    )


# ---- Adam, AdamW ----------------------------------------------------------------------------------------------------


def test_adam_constant_gradient_moves_lr_per_step():
    eps = 1e-8  # bias correction makes m_hat = g and v_hat = g^2 at every step
    close(run_two_steps(lambda ps: optim.Adam(ps, lr=LR), (G1, G1)), P0 - 2 * LR * G1 / (np.abs(G1) + eps))


def _adam_by_hand(b1, b2, eps, wd=0.0, decoupled=False):
    p, m, v = P0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate((G1, G2), start=1):
        if decoupled:
            p = p - LR * wd * p
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - LR * m_hat / (np.sqrt(v_hat) + eps)
    return p


def test_adam_two_steps_by_hand():
    close(run_two_steps(lambda ps: optim.Adam(ps, lr=LR, betas=(0.8, 0.9), eps=1e-3)), _adam_by_hand(0.8, 0.9, 1e-3))
    # step 2 written out: m2 = b1 (1 - b1) g1 + (1 - b1) g2, v2 likewise, corrected by 1 - b^2
    b1, b2, eps = 0.9, 0.999, 1e-8
    p1 = P0 - LR * G1 / (np.abs(G1) + eps)
    m2 = (b1 * (1 - b1) * G1 + (1 - b1) * G2) / (1 - b1**2)
    v2 = (b2 * (1 - b2) * G1**2 + (1 - b2) * G2**2) / (1 - b2**2)
    close(run_two_steps(lambda ps: optim.Adam(ps, lr=LR)), p1 - LR * m2 / (np.sqrt(v2) + eps))


def test_adam_weight_decay_is_an_l2_term():
    close(run_two_steps(lambda ps: optim.Adam(ps, lr=LR, weight_decay=0.1)), _adam_by_hand(0.9, 0.999, 1e-8, wd=0.1))


def test_adamw_decouples_weight_decay():
    close(
        run_two_steps(lambda ps: optim.AdamW(ps, lr=LR, weight_decay=0.1)),
        _adam_by_hand(0.9, 0.999, 1e-8, wd=0.1, decoupled=True),
    )
    assert optim.AdamW([tl.tensor(P0, requires_grad=True)]).param_groups[0]["weight_decay"] == 1e-2
    close(run_two_steps(lambda ps: optim.AdamW(ps, lr=LR, weight_decay=0)), _adam_by_hand(0.9, 0.999, 1e-8))


def test_adam_with_engine_gradients():
    c = np.array([0.5, 0.5, -1.0, 2.0])
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=LR)
    expected, m, v = P0.copy(), 0.0, 0.0
    for t in (1, 2, 3):
        opt.zero_grad()
        ((p - c) ** 2).sum().backward()
        opt.step()
        g = 2 * (expected - c)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        expected = expected - LR * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    close(p.data, expected)


# ---- RMSprop, Adagrad ------------------------------------------------------------------------------------------------


def test_rmsprop_two_steps_by_hand():
    alpha, eps = 0.9, 1e-8
    v1 = (1 - alpha) * G1**2
    p1 = P0 - LR * G1 / (np.sqrt(v1) + eps)
    v2 = alpha * v1 + (1 - alpha) * G2**2
    p2 = p1 - LR * G2 / (np.sqrt(v2) + eps)
    close(run_two_steps(lambda ps: optim.RMSprop(ps, lr=LR, alpha=alpha)), p2)


def test_rmsprop_momentum_and_weight_decay():
    alpha, eps, mu, wd = 0.99, 1e-8, 0.5, 0.2
    g1 = G1 + wd * P0
    v1 = (1 - alpha) * g1**2
    b1 = g1 / (np.sqrt(v1) + eps)
    p1 = P0 - LR * b1
    g2 = G2 + wd * p1
    v2 = alpha * v1 + (1 - alpha) * g2**2
    b2 = mu * b1 + g2 / (np.sqrt(v2) + eps)
    close(run_two_steps(lambda ps: optim.RMSprop(ps, lr=LR, momentum=mu, weight_decay=wd)), p1 - LR * b2)


def test_adagrad_two_steps_by_hand():
    eps = 1e-10
    p1 = P0 - LR * G1 / (np.abs(G1) + eps)
    p2 = p1 - LR * G2 / (np.sqrt(G1**2 + G2**2) + eps)
    close(run_two_steps(lambda ps: optim.Adagrad(ps, lr=LR)), p2)
    wd = 0.5
    g1 = G1 + wd * P0
    q1 = P0 - LR * g1 / (np.abs(g1) + eps)
    g2 = G2 + wd * q1
    close(
        run_two_steps(lambda ps: optim.Adagrad(ps, lr=LR, weight_decay=wd)),
        q1 - LR * g2 / (np.sqrt(g1**2 + g2**2) + eps),
    )


# ---- behaviour shared by every optimizer -----------------------------------------------------------------------------

ALL = [
    lambda ps: optim.SGD(ps, lr=LR, momentum=0.9, weight_decay=0.1),
    lambda ps: optim.SGD(ps, lr=LR, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=LR, weight_decay=0.1),
    lambda ps: optim.AdamW(ps, lr=LR),
    lambda ps: optim.RMSprop(ps, lr=LR, momentum=0.5, weight_decay=0.1),
    lambda ps: optim.Adagrad(ps, lr=LR, weight_decay=0.1),
]
IDS = ["sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]


@pytest.mark.parametrize("make_opt", ALL, ids=IDS)
def test_step_updates_in_place_and_leaves_grads_alone(make_opt):
    p = tl.tensor(P0.copy(), requires_grad=True)
    array = p.data
    opt = make_opt([p])
    p.grad = tl.tensor(G1)
    opt.step()
    assert p.data is array and not np.allclose(array, P0)
    np.testing.assert_array_equal(p.grad.data, G1)


@pytest.mark.parametrize("make_opt", ALL, ids=IDS)
def test_parameters_without_grad_are_skipped_and_keep_their_step_count(make_opt):
    a, b = tl.tensor(P0.copy(), requires_grad=True), tl.tensor(P0.copy(), requires_grad=True)
    opt = make_opt([a, b])
    a.grad = tl.tensor(G1)
    opt.step()
    opt.step()
    close(a.data, run_two_steps(make_opt, grads=(G1, G1)))
    np.testing.assert_array_equal(b.data, P0)
    assert opt.state[1] == {}
    # b's first update, two optimizer steps later, is a first step: the same as a fresh optimizer's
    b.grad = tl.tensor(G2)
    a.grad = None
    before_a = a.data.copy()
    opt.step()
    np.testing.assert_array_equal(a.data, before_a)
    close(b.data, run_two_steps(make_opt, grads=(G2,)))


@pytest.mark.parametrize("make_opt", ALL, ids=IDS)
def test_steady_state_step_allocates_no_parameter_sized_arrays(make_opt):
    p = tl.tensor(np.ones(200_000), requires_grad=True)  # 1.6 MB
    p.grad = tl.tensor(np.full(200_000, 0.5))
    opt = make_opt([p])
    opt.step()  # creates the state
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000


def test_step_runs_under_no_grad():
    seen = []

    class Probe(optim.SGD):
        def _update(self, p, g, state, lr, hyper):
            seen.append(tl.is_grad_enabled())

    p = tl.tensor(P0, requires_grad=True)
    p.grad = tl.tensor(G1)
    Probe([p], lr=LR).step()
    assert seen == [False] and tl.is_grad_enabled()


def test_zero_grad_sets_grads_to_none():
    a, b = tl.tensor(P0, requires_grad=True), tl.tensor(P0, requires_grad=True)
    a.grad = tl.tensor(G1)
    opt = optim.Adam([a, b])
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_generator_of_parameters_is_materialized_once():
    model = nn.MLP(2, (3,), 1, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=LR)
    before = [p.data.copy() for p in model.parameters()]
    F.mse_loss(model(tl.Tensor.randn(4, 2)), np.ones((4, 1))).backward()
    opt.step()
    opt.step()
    assert len(opt.params) == 4
    assert all(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))


def test_float32_parameters_stay_float32():
    p = tl.tensor(P0, dtype="float32", requires_grad=True)
    opt = optim.Adam([p], lr=LR)
    p.grad = tl.tensor(G1, dtype="float32")
    opt.step()
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.data, P0 - LR * np.sign(G1), rtol=1e-6)


def test_adam_trains_the_lab_mlp_on_xor():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss = F.mse_loss(model(tl.tensor(x)), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.02


# ---- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: optim.SGD([], lr=0.1), "SGD got an empty parameter list"),
        (lambda p: optim.Adam(iter([])), "Adam got an empty parameter list"),
        (lambda p: optim.SGD([p], lr=-0.5), "SGD: invalid learning rate -0.5; it must be >= 0"),
        (lambda p: optim.RMSprop([p], lr=-1e-3), "RMSprop: invalid learning rate -0.001"),
        (lambda p: optim.Adagrad([p], lr=float("nan")), "Adagrad: invalid learning rate nan"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.999)), r"Adam: invalid beta1 1.0; it must be in \[0, 1\)"),
        (lambda p: optim.AdamW([p], betas=(0.9, -0.1)), "AdamW: invalid beta2 -0.1"),
        (lambda p: optim.Adam([p], betas=(0.9,)), "expected two values"),
        (lambda p: optim.Adam([p], eps=-1e-8), "Adam: invalid eps -1e-08; it must be >= 0"),
        (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "invalid momentum -0.5"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov momentum requires momentum > 0 and dampening = 0"),
        (lambda p: optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "Nesterov"),
        (lambda p: optim.SGD([p], lr=0.1, weight_decay=-1), "invalid weight_decay -1"),
        (lambda p: optim.RMSprop([p], alpha=1.5), r"invalid alpha 1.5; it must be in \[0, 1\]"),
        (lambda p: optim.SGD([p, p], lr=0.1), "parameter 1 appears twice"),
        (
            lambda p: optim.SGD([p * 2], lr=0.1),
            r"parameter 0 \(shape \(4,\)\) must be a leaf Tensor, not the result of an op \(Mul\)",
        ),
    ],
)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make(tl.tensor(P0, requires_grad=True))


def test_a_learning_rate_of_zero_and_an_rmsprop_alpha_of_one_are_accepted_as_in_torch():
    """A schedule may end at lr 0 (the update then leaves the parameter as it is); alpha 1 keeps RMSprop's
    average of squares at its start, 0, so each step is lr * g / eps (torch.optim's formula). Both as torch."""
    p = tl.tensor([1.0, 2.0], requires_grad=True)
    p.grad = tl.tensor([3.0, -1.0])
    optim.SGD([p], lr=0.0).step()
    np.testing.assert_array_equal(p.data, [1.0, 2.0])
    opt = optim.RMSprop([p], lr=0.01, alpha=1.0, eps=1e-8)
    for _ in range(3):
        opt.step()
    np.testing.assert_allclose(p.data, np.array([1.0, 2.0]) - 3 * 0.01 * np.array([3.0, -1.0]) / 1e-8, rtol=1e-12)


def test_a_gradient_of_another_shape_is_refused_by_step_not_broadcast_into_the_update():
    p = tl.tensor(np.zeros(3), requires_grad=True)
    p.grad = tl.tensor(np.array([1.0]))  # set by hand: numpy would broadcast it to all three entries
    for opt in (optim.SGD([p], lr=1.0), optim.Adam([p])):
        with pytest.raises(ValueError, match=r"step: a gradient of shape \(1,\) for a parameter of shape \(3,\)"):
            opt.step()
    np.testing.assert_array_equal(p.data, np.zeros(3))


def test_non_tensor_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="parameter 0 is a ndarray, not a Tensor"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_lr_can_change_between_steps_and_is_validated():
    p = tl.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    p.grad = tl.tensor([1.0, 1.0])
    opt.step()
    opt.lr = 0.25  # a schedule
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.5 - 0.25, 2.0 - 0.5 - 0.25])
    assert opt.lr == 0.25
    with pytest.raises(ValueError, match="learning rate"):
        opt.lr = -1.0


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_a_frozen_parameter_is_accepted_and_left_alone_as_in_torch(name):
    """Fine-tuning freezes some parameters (requires_grad False): the optimizer takes them and, as torch's,
    skips them while they have no gradient; the others train as usual."""
    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    model.bias.requires_grad_(False)
    bias = model.bias.data.copy()
    opt = optim.OPTIMIZERS[name](model.parameters(), lr=0.1)
    weight = model.weight.data.copy()
    for _ in range(2):
        opt.zero_grad()
        model(tl.tensor(np.ones((4, 3)))).sum().backward()
        opt.step()
    assert model.bias.grad is None
    np.testing.assert_array_equal(model.bias.data, bias)
    assert not np.array_equal(model.weight.data, weight)


@pytest.mark.parametrize("owner", ["module", "optimizer"])
def test_zero_grad_sets_to_none_or_zeroes_in_place_as_torch(owner):
    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1)
    zero = model.zero_grad if owner == "module" else opt.zero_grad
    model(tl.tensor(np.ones((4, 3)))).sum().backward()
    grad = model.weight.grad
    zero(set_to_none=False)
    assert model.weight.grad is grad and not grad.data.any()  # the same array, zeroed
    model(tl.tensor(np.ones((4, 3)))).sum().backward()
    np.testing.assert_array_equal(grad.data, np.full((2, 3), 4.0))  # the next backward adds into it
    zero()
    assert model.weight.grad is None and model.bias.grad is None


def test_zero_grad_in_place_detaches_a_recorded_gradient_as_torch():
    w = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w**3).sum().backward(create_graph=True)
    penalty = (w.grad**2).sum()  # reads the recorded gradient
    optim.SGD([w], lr=0.1).zero_grad(set_to_none=False)
    assert not w.grad.requires_grad and w.grad.grad_fn is None and not w.grad.data.any()
    w.grad = None
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # torch's error, not zeros
        penalty.backward()


# ---- torch.optim's interface: param_groups, add_param_group, state_dict, step(closure) ---------------------------


def _leaves(*shapes):
    return [tl.tensor(np.full(s, 1.0), requires_grad=True) for s in shapes]


def test_groups_take_missing_hyperparameters_from_the_defaults_and_each_steps_with_its_own():
    a, b = _leaves((2,), (3,))
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": iter([b]), "momentum": 0.9}], lr=0.1)
    assert opt.defaults["lr"] == 0.1 and opt.defaults["momentum"] == 0
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0, 0.9]
    assert opt.params == [a, b] and len(opt.state) == 2
    for _ in range(2):
        a.grad, b.grad = tl.tensor(np.ones(2)), tl.tensor(np.ones(3))
        opt.step()
    close(a.data, np.full(2, 1.0 - 2 * 0.5))
    close(b.data, np.full(3, 1.0 - 0.1 * (1 + 1.9)))  # momentum: steps of g, then 0.9 g + g


def test_a_write_into_a_group_takes_effect_on_the_next_step():
    (a,) = _leaves((2,))
    opt = optim.SGD([a], lr=0.1)
    opt.param_groups[0]["lr"] = 0.25
    opt.param_groups[0].update(weight_decay=1.0)
    a.grad = tl.tensor(np.zeros(2))
    opt.step()
    close(a.data, np.full(2, 1.0 - 0.25 * 1.0))  # only the decay's term: lr * weight_decay * p
    assert opt.lr == 0.25 and opt.weight_decay == 1.0


def test_opt_lr_reads_the_first_group_and_cannot_be_set_for_several():
    a, b = _leaves((2,), (2,))
    opt = optim.Adam([{"params": [a], "lr": 0.5}, {"params": [b]}])
    assert opt.lr == 0.5 and opt.betas == (0.9, 0.999)
    with pytest.raises(ValueError, match=r"Adam: cannot set lr for 2 parameter groups at once; set param_groups\[i\]"):
        opt.lr = 0.1
    assert [g["lr"] for g in opt.param_groups] == [0.5, 1e-3]
    with pytest.raises(AttributeError, match="no attribute 'momentum'"):
        _ = opt.momentum


@pytest.mark.parametrize(
    "write, error, match",
    [
        (lambda g: g.__setitem__("lr", -1.0), ValueError, "SGD: invalid learning rate -1.0"),
        (lambda g: g.__setitem__("momentum", "0.9"), TypeError, "SGD: momentum must be a number, got str"),
        (lambda g: g.update(nesterov=True), ValueError, "Nesterov momentum requires momentum > 0"),
        (lambda g: g.__setitem__("maximize", True), ValueError, r"SGD: maximize=True is not supported \(only False\)"),
        (lambda g: g.__delitem__("momentum"), TypeError, "'momentum' cannot be removed from a parameter group"),
        (lambda g: g.pop("lr"), TypeError, "'lr' cannot be removed"),
        (lambda g: g.clear(), TypeError, "cannot be emptied"),
    ],
)
def test_a_bad_write_into_a_group_is_refused_and_changes_nothing(write, error, match):
    (a,) = _leaves((2,))
    opt = optim.SGD([a], lr=0.1)
    before = dict(opt.param_groups[0])
    with pytest.raises(error, match=match):
        write(opt.param_groups[0])
    assert dict(opt.param_groups[0]) == before
    a.grad = tl.tensor(np.ones(2))
    opt.step()
    close(a.data, np.full(2, 0.9))


def test_unknown_keys_in_a_group_are_kept_as_torch_keeps_them():
    (a,) = _leaves((2,))
    opt = optim.SGD([{"params": [a], "name": "encoder"}], lr=0.1)
    opt.param_groups[0]["initial_lr"] = 0.1  # what torch's schedulers add
    del opt.param_groups[0]["name"]
    assert opt.param_groups[0]["initial_lr"] == 0.1 and "name" not in opt.param_groups[0]
    assert opt.state_dict()["param_groups"][0]["initial_lr"] == 0.1


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda a, b: optim.SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1), ValueError,
         r"SGD: parameter 1 \(shape \(2,\)\) is already in parameter group 0"),
        (lambda a, b: optim.SGD([{"params": [a]}, b], lr=0.1), TypeError,
         "SGD: parameter group 1 is a Tensor; give either Tensors or dicts"),
        (lambda a, b: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError, "SGD: parameter group 0 has no 'params'"),
        (lambda a, b: optim.SGD([{"params": [a], "lr": -2}], lr=0.1), ValueError, "invalid learning rate -2"),
        (lambda a, b: optim.SGD({a, b}, lr=0.1), TypeError, "ordered iterable"),
        (lambda a, b: optim.SGD([{"params": {a, b}}], lr=0.1), TypeError, "ordered"),
        (lambda a, b: optim.SGD(a, lr=0.1), TypeError, "got a Tensor"),
        (lambda a, b: optim.Adam([{"params": [a], "amsgrad": True}]), ValueError, "amsgrad=True is not supported"),
        (lambda a, b: optim.RMSprop([{"params": [a], "centered": True}]), ValueError, "centered=True"),
        (lambda a, b: optim.Adagrad([{"params": [a], "lr_decay": 0.1}]), ValueError, "lr_decay=0.1"),
        (lambda a, b: optim.AdamW([{"params": [a], "decoupled_weight_decay": False}]), ValueError, "decoupled"),
    ],
)  # fmt: skip
def test_bad_groups_are_refused_naming_the_optimizer(make, error, match):
    with pytest.raises(error, match=match):
        make(*_leaves((2,), (2,)))


def test_add_param_group_refuses_a_parameter_already_there_and_adds_nothing():
    a, b = _leaves((2,), (3,))
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match=r"parameter 2 \(shape \(2,\)\) is already in parameter group 0"):
        opt.add_param_group({"params": [b, a]})
    assert len(opt.param_groups) == 1 and opt.params == [a]
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert opt.params == [a, b] and opt.param_groups[1]["momentum"] == 0


def test_a_groups_params_replaced_keep_the_state_of_those_that_stay():
    a, b, c = _leaves((2,), (2,), (2,))
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad = b.grad = c.grad = tl.tensor(np.ones(2))
    opt.step()
    buffer = opt.state[1]["momentum_buffer"]
    opt.param_groups[0]["params"] = [b, c]
    assert opt.params == [b, c] and opt.state[0]["momentum_buffer"] is buffer and opt.state[1] == {}
    opt.param_groups[0]["params"].append(a)  # in place: the optimizer cannot tell which state goes where
    with pytest.raises(ValueError, match="SGD.step: a group's 'params' list changed in place"):
        opt.step()


def test_a_group_replaced_by_a_plain_dict_is_refused_by_step():
    (a,) = _leaves((2,))
    opt = optim.SGD([a], lr=0.1)
    opt.param_groups[0] = {"params": [a], "lr": 0.1}
    a.grad = tl.tensor(np.ones(2))
    with pytest.raises(TypeError, match="SGD.step: param_groups holds a dict the optimizer did not make"):
        opt.step()


def test_step_calls_the_closure_with_grad_mode_on_and_returns_its_loss():
    (a,) = _leaves((2,))
    opt = optim.SGD([a], lr=0.1)
    seen = []

    def closure():
        seen.append(tl.is_grad_enabled())
        opt.zero_grad()
        loss = (a**2).sum()
        loss.backward()
        return loss

    with tl.no_grad():
        loss = opt.step(closure)
        assert not tl.is_grad_enabled()  # the closure's grad mode ends with it
    assert seen == [True] and loss.item() == 2.0
    close(a.data, np.full(2, 1.0 - 0.1 * 2.0))
    assert opt.step() is None


@pytest.mark.parametrize("make_opt", ALL, ids=IDS)
def test_a_state_dict_round_trip_continues_training_exactly(make_opt):
    """Save after two steps, train on, load into a fresh optimizer over the saved weights: the same steps again."""
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = make_opt([p])
    for g in (G1, G2):
        p.grad = tl.tensor(g)
        opt.step()
    saved, weights = opt.state_dict(), p.data.copy()
    for g in (G2, G1):
        p.grad = tl.tensor(g)
        opt.step()
    expected = p.data.copy()
    q = tl.tensor(weights, requires_grad=True)
    fresh = make_opt([q])
    fresh.load_state_dict(saved)
    for g in (G2, G1):
        q.grad = tl.tensor(g)
        fresh.step()
    close(q.data, expected)


def test_state_dict_arrays_are_copies():
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([p])
    p.grad = tl.tensor(G1)
    opt.step()
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] += 1.0
    assert not np.array_equal(saved["state"][0]["exp_avg"], opt.state[0]["exp_avg"])
    assert saved["param_groups"] == [{**{k: v for k, v in opt.param_groups[0].items() if k != "params"}, "params": [0]}]


def test_load_state_dict_copies_into_the_existing_state_arrays():
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([p])
    p.grad = tl.tensor(G1)
    opt.step()
    arrays = {k: v for k, v in opt.state[0].items()}
    saved = opt.state_dict()
    opt.step()
    opt.load_state_dict(saved)
    assert all(opt.state[0][k] is v for k, v in arrays.items())
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], saved["state"][0]["exp_avg"])
    assert opt.state[0]["step"] == 1


def _adam_state(shape=(4,)):
    return {"step": np.array(3.0), "exp_avg": np.zeros(shape), "exp_avg_sq": np.zeros(shape)}


def _saved(state, groups=None):
    return {"state": state, "param_groups": groups or [{"lr": 0.1, "params": [0]}]}


@pytest.mark.parametrize(
    "state_dict, error, match",
    [
        ({"state": {}}, ValueError, "Adam.load_state_dict: expected a dict with 'state' and 'param_groups'"),
        (_saved({}, [{"params": [0]}, {"params": []}]), ValueError,
         "the state dict has 2 parameter groups, the optimizer 1"),
        (_saved({}, [{"params": [0, 1]}]), ValueError,
         "parameter group 0 has 2 parameters in the state dict, 1 in the optimizer"),
        (_saved({5: _adam_state()}), ValueError, "state for parameter 5, which no group lists"),
        (_saved({0: _adam_state((3,))}), ValueError,
         r"state 'exp_avg' of parameter 0 has shape \(3,\), the parameter \(4,\)"),
        (_saved({0: {**_adam_state(), "momentum_buffer": np.zeros(4)}}), ValueError,
         r"parameter 0 has state \['momentum_buffer'\], which Adam does not keep"),
        (_saved({0: {"exp_avg": np.zeros(4)}}), ValueError, r"the state of parameter 0 lacks \['step', 'exp_avg_sq'\]"),
        (_saved({0: {**_adam_state(), "step": np.array("3")}}), TypeError, "state 'step' of parameter 0 has dtype <U1"),
        (_saved({0: _adam_state()}, [{"lr": -0.1, "params": [0]}]), ValueError, "Adam: invalid learning rate -0.1"),
        (_saved({0: _adam_state()}, [{"amsgrad": True, "params": [0]}]), ValueError, "amsgrad=True is not supported"),
    ],
)  # fmt: skip
def test_load_state_dict_refuses_what_does_not_fit_and_changes_nothing(state_dict, error, match):
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    p.grad = tl.tensor(G1)
    opt.step()
    before = {k: np.copy(v) for k, v in opt.state[0].items() if k != "buf"}
    with pytest.raises(error, match=match):
        opt.load_state_dict(state_dict)
    assert opt.lr == 0.01
    for k, v in before.items():
        np.testing.assert_array_equal(opt.state[0][k], v)


def test_a_deep_copy_of_an_optimizer_steps_its_own_copies_of_the_parameters():
    p = tl.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([{"params": [p], "lr": LR}])
    p.grad = tl.tensor(G1)
    opt.step()
    twin = copy.deepcopy(opt)
    (q,) = twin.params
    assert q is not p and twin.param_groups[0]["params"] == [q]
    q.grad = tl.tensor(G2)
    twin.param_groups[0]["lr"] = 0.0  # the copy's learning rate only
    twin.step()
    np.testing.assert_array_equal(q.data, p.data)
    p.grad = tl.tensor(G2)
    opt.step()
    close(p.data, run_two_steps(lambda ps: optim.Adam(ps, lr=LR)))
