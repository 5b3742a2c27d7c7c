"""In-place ops: values, torch's leaf and version-counter errors, graph recording on non-leaves (checked with
gradcheck and against torch), views sharing memory, .data bypassing the counter, and replay under tl.compile."""

import numpy as np
import pytest
import torch

import tinygrad_lab as tl
from tinygrad_lab import nn, optim
from tinygrad_lab.testing import gradcheck, gradgradcheck

A = np.array([[0.5, 1.5, 2.0], [0.25, 0.75, 1.25]])
B = np.array([0.3, -0.7, 1.1])

# method -> (tinygrad_lab call, torch call); values kept positive where log/sqrt/pow need it
METHODS = {
    "add_": (lambda t, o: t.add_(o), lambda t, o: t.add_(o)),
    "add_alpha": (lambda t, o: t.add_(o, alpha=2.5), lambda t, o: t.add_(o, alpha=2.5)),
    "sub_": (lambda t, o: t.sub_(o), lambda t, o: t.sub_(o)),
    "sub_alpha": (lambda t, o: t.sub_(o, alpha=-0.5), lambda t, o: t.sub_(o, alpha=-0.5)),
    "mul_": (lambda t, o: t.mul_(o), lambda t, o: t.mul_(o)),
    "div_": (lambda t, o: t.div_(o), lambda t, o: t.div_(o)),
    "pow_": (lambda t, o: t.pow_(o), lambda t, o: t.pow_(o)),
    "copy_": (lambda t, o: t.copy_(o), lambda t, o: t.copy_(o.expand(2, 3))),
    "iadd": (lambda t, o: t.__iadd__(o), lambda t, o: t.__iadd__(o)),
    "isub": (lambda t, o: t.__isub__(o), lambda t, o: t.__isub__(o)),
    "imul": (lambda t, o: t.__imul__(o), lambda t, o: t.__imul__(o)),
    "itruediv": (lambda t, o: t.__itruediv__(o), lambda t, o: t.__itruediv__(o)),
    "ipow": (lambda t, o: t.__ipow__(o), lambda t, o: t.__ipow__(o)),
}
UNARY = {
    "zero_": (lambda t: t.zero_(), lambda t: t.zero_()),
    "fill_": (lambda t: t.fill_(0.25), lambda t: t.fill_(0.25)),
    "clamp_": (lambda t: t.clamp_(0.6, 1.3), lambda t: t.clamp_(0.6, 1.3)),
    "clamp_min": (lambda t: t.clamp_(min=0.6), lambda t: t.clamp_(min=0.6)),
    "neg_": (lambda t: t.neg_(), lambda t: t.neg_()),
    "exp_": (lambda t: t.exp_(), lambda t: t.exp_()),
    "log_": (lambda t: t.log_(), lambda t: t.log_()),
    "sqrt_": (lambda t: t.sqrt_(), lambda t: t.sqrt_()),
    "abs_": (lambda t: t.abs_(), lambda t: t.abs_()),
    "sigmoid_": (lambda t: t.sigmoid_(), lambda t: t.sigmoid_()),
    "tanh_": (lambda t: t.tanh_(), lambda t: t.tanh_()),
    "relu_": (lambda t: t.relu_(), lambda t: t.relu_()),
}
OTHER = np.abs(B) + 0.5  # positive: a valid divisor and exponent


# ---- values, under no_grad and on tensors that need no grad ----------------------------------------------------------


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("grad_mode", [False, True])
def test_binary_in_place_on_plain_tensor_matches_torch_and_keeps_memory(name, grad_mode):
    ours, theirs = METHODS[name]
    t, arr = tl.tensor(A), None
    arr = t.data
    with tl.enable_grad() if grad_mode else tl.no_grad():
        result = ours(t, tl.tensor(OTHER))
    expected = theirs(torch.tensor(A), torch.tensor(OTHER))
    assert result is t and t.data is arr  # same Tensor, same memory
    np.testing.assert_allclose(t.data, expected.numpy(), rtol=1e-12)
    assert t._version == 1 and t.is_leaf and not t.requires_grad


@pytest.mark.parametrize("name", UNARY)
def test_unary_in_place_matches_torch(name):
    ours, theirs = UNARY[name]
    t = tl.tensor(A)
    assert ours(t) is t
    np.testing.assert_allclose(t.data, theirs(torch.tensor(A)).numpy(), rtol=1e-12)
    assert t._version == 1


def test_python_scalars_and_arrays_as_the_other_operand():
    t = tl.tensor(A)
    t += 1
    t *= np.array([2.0, 3.0, 4.0])
    t -= np.float64(0.5)
    np.testing.assert_allclose(t.data, (A + 1) * np.array([2.0, 3.0, 4.0]) - 0.5)
    assert t._version == 3


def test_manual_sgd_update_under_no_grad_changes_the_parameters():
    w = tl.tensor(A, requires_grad=True)
    ((w * w).sum()).backward()
    params = [w]
    with tl.no_grad():
        for p in params:
            p -= 0.1 * p.grad
    np.testing.assert_allclose(w.data, A - 0.1 * 2 * A)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    w.grad.zero_()
    np.testing.assert_array_equal(w.grad.data, np.zeros_like(A))


def test_float32_tensor_keeps_its_dtype_and_int_tensor_refuses_floats():
    t = tl.tensor(A, dtype=np.float32)
    t += tl.tensor(B)  # float64 other: same kind, cast back as torch does
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.data, (A + B).astype(np.float32))
    i = tl.tensor([1, 2], dtype=np.int64)
    with pytest.raises(RuntimeError, match=r"^\+=: result type float64 can't be cast to the desired output type int64"):
        i += 0.5
    assert i.tolist() == [1, 2] and i._version == 0  # nothing half-written, nothing counted


def test_broadcast_that_would_grow_the_tensor_is_torch_error():
    t = tl.tensor(B)
    with pytest.raises(
        RuntimeError, match=r"add_: output with shape \(3,\) doesn't match the broadcast shape \(2, 3\)"
    ):
        t.add_(tl.tensor(A))
    np.testing.assert_array_equal(t.data, B)


# ---- grad mode: leaves, non-leaves -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda w, lib: w.add_(1),
        lambda w, lib: w.__imul__(2),
        lambda w, lib: w.zero_(),
        lambda w, lib: w.copy_(lib.tensor(B)),
    ],
)
def test_leaf_that_requires_grad_raises_torch_sentence_in_grad_mode(call):
    w = tl.tensor(B, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        call(w, tl)
    np.testing.assert_array_equal(w.data, B)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        call(torch.tensor(B, requires_grad=True), torch)  # the same situation in torch


def test_issue_example_non_leaf_in_place_gives_torch_grad():
    x = tl.tensor(B, requires_grad=True)
    y = x * 3
    y += 1
    y.mul_(x)
    y.sum().backward()
    xt = torch.tensor(B, requires_grad=True)
    yt = xt * 3
    yt += 1
    yt.mul_(xt)
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12)
    assert not y.is_leaf and type(y.grad_fn).__name__ == "Mul"


@pytest.mark.parametrize("name", METHODS)
def test_recorded_binary_in_place_gradcheck(name):
    ours, _ = METHODS[name]

    def fn(a, o):
        y = a * 1.5 + 0.25  # a non-leaf, so the in-place op is recorded
        return ours(y, o).tanh()

    a = tl.tensor(A, requires_grad=True)
    o = tl.tensor(OTHER, requires_grad=True)
    assert gradcheck(fn, [a, o])
    assert gradgradcheck(fn, [a, o])


@pytest.mark.parametrize("name", UNARY)
def test_recorded_unary_in_place_gradcheck_and_torch(name):
    ours, theirs = UNARY[name]
    a = tl.tensor(A, requires_grad=True)
    assert gradcheck(lambda a: ours(a * 1.5 + 0.25) * a, [a])
    out = ours(a * 1.5 + 0.25) * a
    out.sum().backward()
    at = torch.tensor(A, requires_grad=True)
    (theirs(at * 1.5 + 0.25) * at).sum().backward()
    np.testing.assert_allclose(a.grad.data, at.grad.numpy(), rtol=1e-12)


def test_in_place_with_a_grad_requiring_operand_turns_a_plain_tensor_into_a_non_leaf():
    x = tl.tensor(B, requires_grad=True)
    acc = tl.Tensor.zeros(3)
    acc += x * x
    acc.mul_(x)
    assert not acc.is_leaf and acc.requires_grad
    acc.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * B * B)


def test_self_operand_uses_the_value_before_the_write():
    x = tl.tensor(B, requires_grad=True)
    y = x * 1.0
    y.mul_(y)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * B)


def test_nodes_made_before_the_write_keep_the_old_history_as_in_torch():
    def run(lib, x):
        y = x * 2
        z = y + 1  # saves nothing: it stays valid after y is written
        y.mul_(x)
        return (z * 3).sum() + y.sum()

    x = tl.tensor(B, requires_grad=True)
    run(tl, x).backward()
    xt = torch.tensor(B, requires_grad=True)
    run(torch, xt).backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12)


def test_tl_grad_follows_the_old_history_too():
    x = tl.tensor(B, requires_grad=True)
    y = x * 2
    z = y.sum()
    y.add_(x)
    (gz,) = tl.grad(z, x, retain_graph=True)
    (gy,) = tl.grad(y.sum(), x)
    np.testing.assert_allclose(gz.data, 2 * np.ones(3))
    np.testing.assert_allclose(gy.data, 3 * np.ones(3))


# ---- version counter -------------------------------------------------------------------------------------------------


def test_version_counts_writes_like_torch():
    t, tt = tl.tensor(B), torch.tensor(B)
    for step in (lambda a: a.add_(1), lambda a: a.mul_(2), lambda a: a.zero_()):
        step(t)
        step(tt)
        assert t._version == tt._version


def test_saved_tensor_written_later_raises_torch_sentence_naming_op_and_shape():
    x = tl.tensor(A, requires_grad=True)
    y = x * 1.0
    z = y.exp() * y  # Mul saves y
    y.add_(1)
    with pytest.raises(
        RuntimeError,
        match=r"^one of the variables needed for gradient computation has been modified "
        r"by an inplace operation: the tensor of shape \(2, 3\) saved by Mul",
    ):
        z.sum().backward()
    xt = torch.tensor(A, requires_grad=True)
    yt = xt * 1.0
    zt = yt.exp() * yt
    yt.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        zt.sum().backward()


def test_parameter_updated_between_forward_and_backward_raises():
    model = nn.Linear(3, 1, rng=np.random.default_rng(0))
    loss = model(tl.tensor(A, requires_grad=True)).sum()  # the input's gradient reads the weight: Linear saves it
    with tl.no_grad():
        model.weight -= 0.1
    with pytest.raises(
        RuntimeError, match=r"modified by an inplace operation: the tensor of shape \(1, 3\) saved by Linear"
    ):
        loss.backward()


def test_writes_through_data_bypass_the_counter_as_in_torch():
    x = tl.tensor(A, requires_grad=True)
    y = x * 1.0
    z = y * y
    y.data[...] += 1  # torch: y.data.add_(1) is not counted either
    z.sum().backward()
    assert y._version == 0
    np.testing.assert_allclose(x.grad.data, 2 * (A + 1))  # the modified saved values are used, unchecked


def test_write_after_backward_is_fine_and_a_saved_output_is_checked_too():
    x = tl.tensor(A, requires_grad=True)
    y = x * 1.0
    e = y.exp()
    e.sum().backward(retain_graph=True)
    with tl.no_grad():
        e.mul_(0)  # Exp saved its output
    with pytest.raises(RuntimeError, match="saved by Exp"):
        e.sum().backward()


# ---- views -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_view", [lambda t: t.reshape(6), lambda t: t.T, lambda t: t[1], lambda t: t[:, 1:], lambda t: t.detach()]
)
def test_write_through_a_view_changes_the_base_and_bumps_its_version(make_view):
    base = tl.tensor(A)
    view = make_view(base)
    with tl.no_grad():
        view.mul_(10)
    expected = A.copy()
    make_view(tl.Tensor._wrap(expected)).data[...] *= 10
    np.testing.assert_allclose(base.data, expected)
    assert base._version == 1 and view._version == 1


def test_write_through_a_view_catches_a_node_that_saved_the_base():
    x = tl.tensor(A, requires_grad=True)
    z = (x * x).sum()
    with tl.no_grad():
        x.detach()[0].fill_(0)
    with pytest.raises(RuntimeError, match=r"saved by Mul"):
        z.backward()


def test_view_of_a_tensor_that_requires_grad_cannot_be_written_in_grad_mode():
    x = tl.tensor(A, requires_grad=True)
    y = x * 1.0
    v = y[0]
    with pytest.raises(
        RuntimeError,
        match=r"add_: in grad mode, an in-place op whose result requires grad cannot write "
        r"into a view \(shape \(3,\)\)",
    ):
        v.add_(1)
    np.testing.assert_array_equal(y.data, A)


def test_a_view_taken_before_a_recorded_write_and_used_after_raises():
    x = tl.tensor(B, requires_grad=True)
    y = x * 1.0
    v = y.reshape(3, 1)
    y.mul_(x)  # v now reads the new values, but its history is y's old one
    with pytest.raises(RuntimeError, match=r"view \(shape \(3, 1\), made by Reshape\)"):
        (v * 2).sum().backward()


# ---- tl.compile ------------------------------------------------------------------------------------------------------


def _manual_sgd(seed):
    model = nn.MLP(2, (4, 4), 1, bias=True, init="randn", rng=np.random.default_rng(seed))
    params = list(model.parameters())

    def step(x, y):
        for p in params:
            p.grad = None
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        with tl.no_grad():
            for p in params:
                p -= 0.5 * p.grad
        return loss

    return model, step


def test_compiled_manual_sgd_with_in_place_updates_equals_eager():
    rng = np.random.default_rng(3)
    x, y = tl.tensor(rng.random((20, 2))), tl.tensor(rng.random((20, 1)))
    eager_model, eager_step = _manual_sgd(1)
    compiled_model, step = _manual_sgd(1)
    compiled = tl.compile(step)
    for _ in range(6):
        loss_e = eager_step(x, y)
        loss_c = compiled(x, y)
        np.testing.assert_allclose(loss_c.data, loss_e.data, rtol=1e-12)
    assert compiled._replays  # the later calls replayed
    for pe, pc in zip(eager_model.parameters(), compiled_model.parameters()):
        np.testing.assert_allclose(pc.data, pe.data, rtol=1e-12)


def test_compiled_step_with_recorded_in_place_op_equals_eager():
    def make():
        model = nn.Linear(2, 3, rng=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            h = model(x)
            h.mul_(h)  # recorded in the graph
            h.clamp_(max=2.0)
            loss = h.sum()
            loss.backward()
            opt.step()
            return loss

        return model, step

    x = tl.tensor(np.random.default_rng(1).random((5, 2)))
    (m1, s1), (m2, s2) = make(), make()
    compiled = tl.compile(s2)
    for _ in range(5):
        np.testing.assert_allclose(compiled(x).data, s1(x).data, rtol=1e-12)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


@pytest.mark.parametrize(
    "program",
    [
        "z = y * 2; y.add_(1)",
        "z = y * c; y.add_(1)",
        "z = 2 * y; y.add_(1)",
        "z = y / 2.0; y.add_(1)",
        "z = y / c; y.add_(1)",
        "z = 2.0 / y; z.mul_(3)",
        "z = y @ w; y.add_(1)",
        "z = y.reshape(-1) * 1; y.add_(1)",
        "z = y.T * 1; y.mul_(2)",
        "z = y ** 2; z.mul_(3)",
        "z = y * 2; y.add_(y * 2, alpha=0.5)",
        "z = linear(y, v); y.add_(1)",
    ],
)
def test_an_input_no_gradient_reads_may_be_written_in_place_as_in_torch(program):
    """An op saves an input only when another input's gradient reads it (torch's rule), so writing it in place
    between forward and backward is no error; torch's gradients are the expected ones."""
    values = np.array([[1.5, -2.0], [0.5, 3.0]])
    results = []
    for lib in (tl, torch):
        x = lib.tensor(values, requires_grad=True)
        names = {
            "y": x * 1,
            "c": lib.tensor(np.full((2, 2), 3.0)),
            "w": lib.tensor(np.array([[1.0], [2.0]])),
            "v": lib.tensor(np.array([[1.0, -1.0]])),
            "linear": tl.nn.functional.linear if lib is tl else torch.nn.functional.linear,
        }
        exec(program, {}, names)  # the same statements on both libraries
        names["z"].sum().backward()
        results.append(np.asarray(x.grad.data if lib is tl else x.grad.numpy()))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_a_saved_input_another_gradient_reads_is_still_checked():
    x = tl.tensor(A, requires_grad=True)
    w = tl.tensor(np.ones((A.shape[1], 1)), requires_grad=True)
    y = x * 1.0
    z = y @ w  # w's gradient reads y
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: .* saved by MatMul"):
        z.sum().backward()


@pytest.mark.parametrize("program", ["y.zero_()", "y.fill_(3.0)", "y.fill_(c)", "y.copy_(c * 2)", "y.copy_(w)"])
def test_zero_fill_and_copy_send_zeros_to_the_previous_value_as_torch(program):
    """The overwritten value's history gets zeros (torch's fill_ and copy_ backward), not nothing: x.grad is a
    zero array and tl.grad does not call x unused; the new value's tensors get their gradient."""
    values = np.array([1.5, -2.0, 0.5])
    results = []
    for lib in (tl, torch):
        x = lib.tensor(values, requires_grad=True)
        c = lib.tensor(np.array(4.0), requires_grad=True)
        w = lib.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
        y = x * 1
        exec(program, {}, {"y": y, "c": c, "w": w})
        (y * y).sum().backward()
        grads = [t.grad for t in (x, c, w)]
        results.append([None if g is None else np.asarray(g.data if lib is tl else g) for g in grads])
    for ours, theirs in zip(*results):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    x = tl.tensor(values, requires_grad=True)
    y = x * 1
    y.zero_()
    (grad,) = tl.grad((y + 1).sum(), x)
    np.testing.assert_array_equal(grad.data, np.zeros(3))


def test_fill_with_a_tensor_of_more_than_one_element_is_refused_naming_its_shape():
    y = tl.tensor(np.ones(3), requires_grad=True) * 1
    with pytest.raises(ValueError, match=r"fill_ takes a number or a 0-d tensor as its value, got shape \(2,\)"):
        y.fill_(tl.tensor(np.ones(2)))


def test_a_retained_grad_follows_in_place_writes_to_the_newest_value_as_torch():
    values = np.array([1.5, 2.5])
    grads = []
    for lib in (tl, torch):
        x = lib.tensor(values, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.add_(1)
        y.mul_(x)
        (y * y).sum().backward()
        grads.append(np.asarray(y.grad.data if lib is tl else y.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


@pytest.mark.parametrize(
    "reduce", ["max(axis=1)", "min()", "logsumexp(1)", "max(axis=1, keepdims=True)", "sum(0)", "var(1)"]
)
def test_the_result_of_a_reduction_is_its_own_memory_and_takes_in_place_writes(reduce):
    """A reduction's result is not a view of anything: writing into it is allowed (torch's amax, amin and
    logsumexp results too), with torch's values."""
    values = np.array([[1.0, 2.0], [3.0, 0.0]])
    results = []
    for lib in (tl, torch):
        x = lib.tensor(values, requires_grad=True)
        torch_form = reduce.replace("max(axis=", "amax(").replace("min()", "amin()").replace("keepdims", "keepdim")
        m = eval(f"x.{reduce if lib is tl else torch_form}")  # a fixed expression per case
        if lib is torch and reduce.startswith("var"):
            m = x.var(1, correction=0)
        m.sub_(1)
        results.append(np.asarray(m.data if lib is tl else m.detach()))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
