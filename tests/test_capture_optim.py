"""tl.compile and torch.optim's interface: a captured step follows each group's learning rate, traces again when
another hyperparameter, a group or the loaded state's arrays change, and continues from a loaded checkpoint as
the eager step does."""

import numpy as np
import pytest
from capture_helpers import lab_data

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.nn import functional as F

CHANGES = {  # a hyperparameter of the second group changed between calls, after the replay is checked
    "sgd": (lambda g: optim.SGD(g, lr=0.1, momentum=0.9), "momentum", 0.5),
    "nesterov": (lambda g: optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True), "weight_decay", 0.05),
    "adam": (lambda g: optim.Adam(g, lr=0.01), "betas", (0.5, 0.9)),
    "adamw": (lambda g: optim.AdamW(g, lr=0.01), "weight_decay", 0.5),
    "rmsprop": (lambda g: optim.RMSprop(g, lr=0.01), "alpha", 0.5),
    "adagrad": (lambda g: optim.Adagrad(g, lr=0.1), "eps", 0.1),
}


def setup(make_opt):
    model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    groups = [{"params": layers[0].parameters()}, {"params": [p for m in layers[1:] for p in m.parameters()]}]
    opt = make_opt(groups)

    def step(x, y):
        model.zero_grad()  # the model's: parameters the optimizer is not given yet do not accumulate gradients
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def run_both(make_opt, schedule, calls=12, native=True):
    """The eager and the captured step from the same start; ``schedule(opt, call)`` runs before each call.
    Returns both runs' parameters and the compiled step."""
    x, y = (tl.tensor(a) for a in lab_data(20))
    results, compiled = [], None
    for compile_it in (False, True):
        model, opt, step = setup(make_opt)
        run = tl.compile(step, native=native) if compile_it else step
        for call in range(calls):
            schedule(opt, call)
            run(x, y)
        results.append([p.data.copy() for p in model.parameters()])
        compiled = run
    return results, compiled


def assert_same_runs(results):
    for p, q in zip(*results, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("native", [False, True])
def test_each_groups_learning_rate_changed_between_calls_is_used_by_the_replay_without_tracing_again(native):
    def schedule(opt, call):
        if call in (5, 8):
            opt.param_groups[0]["lr"] = 0.02 if call == 5 else 0.3
            opt.param_groups[1]["lr"] *= 0.5

    results, compiled = run_both(CHANGES["sgd"][0], schedule, native=native)
    assert_same_runs(results)
    entry = next(iter(compiled._replays.values()))
    assert not entry.pending_check and entry.current()  # still the first trace's replay


@pytest.mark.parametrize("name", CHANGES)
def test_another_hyperparameter_changed_in_a_group_between_calls_makes_the_step_trace_again(name):
    make_opt, key, value = CHANGES[name]

    def schedule(opt, call):
        if call == 6:
            opt.param_groups[1][key] = value

    assert_same_runs(run_both(make_opt, schedule)[0])


def test_a_group_added_between_calls_is_trained_by_the_captured_step():
    held_back = {}  # optimizer -> the parameters it is given at call 5

    def make_opt(groups):
        opt = optim.Adam(groups[:1], lr=0.05)
        held_back[id(opt)] = groups[1]["params"]
        return opt

    def schedule(opt, call):
        if call == 5:
            opt.add_param_group({"params": held_back[id(opt)], "lr": 0.01})

    results, _ = run_both(make_opt, schedule)
    assert_same_runs(results)


@pytest.mark.parametrize("name", CHANGES)
@pytest.mark.parametrize("native", [False, True])
def test_a_checkpoint_loaded_between_calls_continues_as_the_eager_step_does(name, native):
    """Save the optimizer and weights after 4 calls, train on to 9, then go back to the checkpoint: the captured
    step, which holds the state arrays, continues from the loaded values as eager does, and 5 calls later both
    are where they were before the load."""
    make_opt = CHANGES[name][0]
    saved, before_load = {}, []

    def schedule(opt, call):
        params = opt.params
        if call == 4:
            saved[id(opt)] = opt.state_dict(), [p.data.copy() for p in params]
        if call == 9:
            before_load.append([p.data.copy() for p in params])
            state, weights = saved[id(opt)]
            opt.load_state_dict(state)
            for p, w in zip(params, weights):
                np.copyto(p.data, w)

    results, compiled = run_both(make_opt, schedule, calls=14, native=native)
    assert_same_runs(results)
    for run, before in zip(results, before_load, strict=True):
        assert_same_runs([run, before])
    assert not compiled.backend.startswith("eager")


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_loading_a_fresh_optimizers_state_resets_the_captured_steps_state_too(name):
    """A state dict without state (an optimizer not stepped yet) drops the state arrays the replay holds: the
    step traces again, and starts afresh as eager does (momentum and moment estimates from zero)."""
    make_opt = CHANGES[name][0]
    fresh = {}

    def schedule(opt, call):
        if call == 0:
            fresh[id(opt)] = opt.state_dict()
        if call == 6:
            opt.load_state_dict(fresh[id(opt)])
            assert all(set(s) <= {"buf", "decayed"} for s in opt.state)

    assert_same_runs(run_both(make_opt, schedule)[0])


def test_step_with_a_closure_is_captured():
    x, y = (tl.tensor(a) for a in lab_data(20))
    runs, losses = [], []
    for compile_it in (False, True):
        model = nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(0))
        opt = optim.Adam(model.parameters(), lr=0.05)

        def step(x, y, model=model, opt=opt):
            def closure():
                opt.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                return loss

            return opt.step(closure)

        run = tl.compile(step) if compile_it else step
        losses.append([run(x, y).item() for _ in range(10)])
        runs.append([p.data.copy() for p in model.parameters()])
    assert_same_runs(runs)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)
