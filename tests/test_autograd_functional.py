"""tl.jacobian / hessian / vjp / jvp / hvp / vhp against torch.autograd.functional (values and return
structure) and against central finite differences; create_graph, strict, the errors; Tensor.std and norm;
the Hessian of the lab network's loss."""

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn
from tinygrad_lab.engine.derivatives import functional_call, loss_hessian
from tinygrad_lab.lab import data
from tinygrad_lab.testing import gradcheck

RNG = np.random.default_rng(0)
X23 = RNG.standard_normal((2, 3))
X3 = RNG.standard_normal(3)
Y3 = RNG.standard_normal(3)
EPS = 1e-6
# Hessians by second differences: step 1e-4 keeps truncation and rounding (2e-16 / 1e-8) near 1e-8.
EPS2 = 1e-4

# name -> (function written once for both libraries, input arrays; a tuple means several inputs)
FUNCS = {
    "one_in_one_out": (lambda x: (x * x).tanh(), X23),
    "tuple_in_one_out": (lambda x, y: (x @ y).exp(), (X23, Y3)),
    "one_in_tuple_out": (lambda x: (x.exp(), (x * x).sum()), X3),
    "tuple_in_tuple_out": (lambda x, y: (x * y.sum(), (x.tanh() * y).sum()), (X3, Y3)),
    "scalar_in": (lambda x: (x * 3).exp() + x, np.array(0.3)),
}
SCALARS = {
    "one_in": (lambda x: (x.exp() * x).sum(), X23),
    "tuple_in": (lambda x, y: (x @ y).tanh().sum() * x.sum(), (X23, Y3)),
    "scalar_in": (lambda x: (x * x * x).exp(), np.array(0.4)),
}


def as_lib(arrays, lib, requires_grad=False):
    if isinstance(arrays, tuple):
        return tuple(as_lib(a, lib, requires_grad) for a in arrays)
    return lib.tensor(arrays, requires_grad=requires_grad)


def assert_same(ours, theirs):
    """Same nesting (Tensor or tuple, lengths) and the same values."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
        return
    assert isinstance(ours, tl.Tensor), type(ours)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def flat(arrays):
    return arrays if isinstance(arrays, tuple) else (arrays,)


def call_np(fn, arrays):
    """fn on float64 arrays through tinygrad_lab, outputs as a tuple of arrays."""
    out = fn(*as_lib(flat(arrays), tl))
    return tuple(o.data for o in flat(out))


def fd_jacobian(fn, arrays):
    """fd[i][j]: d out_i / d in_j of shape out.shape + in.shape, by central differences."""
    ins = flat(arrays)
    outs = call_np(fn, arrays)
    result = [[np.zeros(o.shape + np.shape(x)) for x in ins] for o in outs]
    for j, x in enumerate(ins):
        for k in range(np.size(x)):
            plus, minus = [np.array(a, dtype=float) for a in ins], [np.array(a, dtype=float) for a in ins]
            plus[j].flat[k] += EPS
            minus[j].flat[k] -= EPS
            for i, (p, m) in enumerate(zip(call_np(fn, tuple(plus)), call_np(fn, tuple(minus)))):
                result[i][j].reshape(p.shape + (-1,))[..., k] = (p - m) / (2 * EPS)
    return result


def fd_hessian(fn, arrays):
    ins = flat(arrays)
    sizes = [np.size(x) for x in ins]
    offsets = np.cumsum([0] + sizes)
    base = np.concatenate([np.ravel(x) for x in ins])

    def f(vec):
        parts = tuple(vec[offsets[i] : offsets[i + 1]].reshape(np.shape(x)) for i, x in enumerate(ins))
        return call_np(fn, parts)[0].item()

    n = base.size
    h = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            e_a, e_b = np.eye(n)[a] * EPS2, np.eye(n)[b] * EPS2
            h[a, b] = (f(base + e_a + e_b) - f(base + e_a - e_b) - f(base - e_a + e_b) + f(base - e_a - e_b)) / (
                4 * EPS2**2
            )
    return [
        [
            h[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]].reshape(np.shape(ins[i]) + np.shape(ins[j]))
            for j in range(len(ins))
        ]
        for i in range(len(ins))
    ]


def nested(result, is_out_tuple, is_in_tuple):
    """Our result as fd's list of lists [out][in]."""
    rows = result if is_out_tuple else (result,)
    return [list(r) if is_in_tuple else [r] for r in rows]


def random_like(arrays, seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(np.shape(a)) for a in flat(arrays))


# ---- values: torch and finite differences ------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
def test_jacobian(name):
    fn, arrays = FUNCS[name]
    ours = tl.jacobian(fn, as_lib(arrays, tl))
    assert_same(ours, TF.jacobian(fn, as_lib(arrays, torch)))
    is_out_tuple = isinstance(fn(*as_lib(flat(arrays), tl)), tuple)
    fd = fd_jacobian(fn, arrays)
    for got_row, fd_row in zip(nested(ours, is_out_tuple, isinstance(arrays, tuple)), fd):
        for got, want in zip(got_row, fd_row):
            np.testing.assert_allclose(got.data, want, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", SCALARS)
def test_hessian(name):
    fn, arrays = SCALARS[name]
    ours = tl.hessian(fn, as_lib(arrays, tl))
    assert_same(ours, TF.hessian(fn, as_lib(arrays, torch)))
    is_tuple = isinstance(arrays, tuple)
    for got_row, fd_row in zip(nested(ours, is_tuple, is_tuple), fd_hessian(fn, arrays)):
        for got, want in zip(got_row, fd_row):
            np.testing.assert_allclose(got.data, want, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", FUNCS)
def test_vjp_and_jvp(name):
    fn, arrays = FUNCS[name]
    outs = call_np(fn, arrays)
    is_in_tuple, is_out_tuple = isinstance(arrays, tuple), isinstance(fn(*as_lib(flat(arrays), tl)), tuple)
    v_out = random_like(outs if is_out_tuple else outs[0], 1)
    v_in = random_like(arrays, 2)
    pack_out = (lambda vs: vs) if is_out_tuple else (lambda vs: vs[0])
    pack_in = (lambda vs: vs) if is_in_tuple else (lambda vs: vs[0])
    ours = tl.vjp(fn, as_lib(arrays, tl), pack_out(as_lib(v_out, tl)))
    assert_same(ours, TF.vjp(fn, as_lib(arrays, torch), pack_out(as_lib(v_out, torch))))
    ours_j = tl.jvp(fn, as_lib(arrays, tl), pack_in(as_lib(v_in, tl)))
    assert_same(ours_j, TF.jvp(fn, as_lib(arrays, torch), pack_in(as_lib(v_in, torch))))
    fd = fd_jacobian(fn, arrays)
    for j, got in enumerate(flat(ours[1])):  # v^T J
        want = sum(np.tensordot(v, fd[i][j], axes=v.ndim) for i, v in enumerate(v_out))
        np.testing.assert_allclose(got.data, want, atol=1e-5, rtol=1e-3)
    for i, got in enumerate(flat(ours_j[1])):  # J v
        want = sum(np.tensordot(fd[i][j], v, axes=v.ndim) for j, v in enumerate(v_in))
        np.testing.assert_allclose(got.data, want, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", SCALARS)
@pytest.mark.parametrize("which", ["hvp", "vhp"])
def test_hvp_and_vhp(name, which):
    fn, arrays = SCALARS[name]
    is_tuple = isinstance(arrays, tuple)
    v = random_like(arrays, 3)
    pack = (lambda vs: vs) if is_tuple else (lambda vs: vs[0])
    ours = getattr(tl, which)(fn, as_lib(arrays, tl), pack(as_lib(v, tl)))
    assert_same(ours, getattr(TF, which)(fn, as_lib(arrays, torch), pack(as_lib(v, torch))))
    h = fd_hessian(fn, arrays)
    for i, got in enumerate(flat(ours[1])):
        want = sum(np.tensordot(h[i][j], vj, axes=vj.ndim) for j, vj in enumerate(v))
        np.testing.assert_allclose(got.data, want, atol=1e-5, rtol=1e-3)


def test_v_may_be_omitted_only_for_one_element():
    fn, x = SCALARS["scalar_in"]
    for f in (tl.vjp, tl.jvp, tl.hvp, tl.vhp):
        assert_same(f(fn, tl.tensor(x)), getattr(TF, f.__name__)(fn, torch.tensor(x)))
    with pytest.raises(
        RuntimeError,
        match="The vector v can only be None if the user-provided function returns a "
        "single Tensor with a single element",
    ):
        tl.vjp(lambda x: x * 2, tl.tensor(X3))
    with pytest.raises(RuntimeError, match="The vector v can only be None if the input to the user-provided function"):
        tl.jvp(lambda x: x.sum(), tl.tensor(X3))


def test_bad_arguments_give_torch_errors():
    with pytest.raises(
        TypeError,
        match="The inputs given to jacobian must be either a Tensor or a tuple of Tensors "
        "but the value at index 1 has type ndarray",
    ):
        tl.jacobian(lambda x, y: x, (tl.tensor(X3), X3))
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be \(3,\) but got \(2,\)"):
        tl.vjp(lambda x: x * 2, tl.tensor(X3), tl.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="v is a tuple of invalid length: should be 2 but got 1"):
        tl.jvp(lambda x, y: x * y, (tl.tensor(X3), tl.tensor(Y3)), (tl.tensor(X3),))
    with pytest.raises(
        RuntimeError, match="The Tensor returned by the function given to hessian should contain a single"
    ):
        tl.hessian(lambda x: x * x, tl.tensor(X3))
    with pytest.raises(RuntimeError, match="The function given to hvp must return a single Tensor"):
        tl.hvp(lambda x: (x.sum(), x.sum()), tl.tensor(X3), tl.tensor(X3))


# ---- independence, strict -----------------------------------------------------------------------------------------

STRICT_CASES = {
    "jacobian": lambda m: m.jacobian(lambda x, y: x * 2, (m.tensor(X3), m.tensor(Y3)), strict=True),
    "vjp": lambda m: m.vjp(lambda x, y: x * 2, (m.tensor(X3), m.tensor(Y3)), m.tensor(Y3), strict=True),
    "jvp": lambda m: m.jvp(lambda x, y: x * 2, (m.tensor(X3), m.tensor(Y3)), (m.tensor(X3), m.tensor(Y3)), strict=True),
    "hessian_linear": lambda m: m.hessian(lambda x: (x * 2).sum(), m.tensor(X3), strict=True),
    "hvp": lambda m: m.hvp(
        lambda x, y: (x * x).sum(), (m.tensor(X3), m.tensor(Y3)), (m.tensor(X3), m.tensor(Y3)), strict=True
    ),
    "vhp": lambda m: m.vhp(
        lambda x, y: (x * x).sum(), (m.tensor(X3), m.tensor(Y3)), (m.tensor(X3), m.tensor(Y3)), strict=True
    ),
    "constant_output": lambda m: m.vjp(lambda x: m.tensor(Y3), m.tensor(X3), m.tensor(Y3), strict=True),
}


class TorchFunctional:
    """torch.autograd.functional with torch.tensor, so one lambda serves both libraries."""

    tensor = staticmethod(lambda a: torch.tensor(a))

    def __getattr__(self, name):
        return getattr(TF, name)


@pytest.mark.parametrize("name", STRICT_CASES)
def test_strict_raises_where_an_output_does_not_depend_on_an_input(name):
    with pytest.raises(RuntimeError, match="independent of|does not require gradients"):
        STRICT_CASES[name](tl)
    with pytest.raises(RuntimeError, match="independent of|does not require gradients"):
        STRICT_CASES[name](TorchFunctional())


class NonStrict:
    """A functional module whose functions ignore strict=True."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, attr):
        value = getattr(self.module, attr)
        return value if attr == "tensor" else (lambda *a, strict=False, **k: value(*a, **k))


@pytest.mark.parametrize("name", STRICT_CASES)
def test_non_strict_gives_zeros_as_torch(name):
    assert_same(STRICT_CASES[name](NonStrict(tl)), STRICT_CASES[name](NonStrict(TorchFunctional())))


# ---- create_graph -------------------------------------------------------------------------------------------------


def leaves(result):
    return tuple(t for r in result for t in leaves(r)) if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("which", ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"])
def test_create_graph_results_are_differentiable_as_torch(which):
    fn = SCALARS["tuple_in"][0]
    v = random_like((X23, Y3), 4)

    def run(lib, functional):
        x, y = lib.tensor(X23, requires_grad=True), lib.tensor(Y3, requires_grad=True)
        args = {"jacobian": (), "hessian": (), "vjp": (lib.tensor(np.array(1.0)),)}.get(
            which, (tuple(lib.tensor(a) for a in v),)
        )
        result = getattr(functional, which)(fn, (x, y), *args, create_graph=True)
        if which in ("vjp", "jvp", "hvp", "vhp"):
            result = result[1]
        total = sum(((t * t).sum() for t in leaves(result)), lib.tensor(np.array(0.0)))
        return lib.autograd.grad(total, (x, y)) if lib is torch else tl.grad(total, (x, y))

    for ours, theirs in zip(run(tl, tl), run(torch, TF)):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9)


def test_without_create_graph_results_carry_no_graph_and_inputs_are_left_alone():
    x = tl.tensor(X3, requires_grad=True)
    out, g = tl.vjp(lambda x: (x * x).sum(), x)
    assert not out.requires_grad and not g.requires_grad
    assert x.grad is None
    h = tl.hessian(lambda x: (x * x * x).sum(), tl.tensor(X3))  # inputs need not require grad
    np.testing.assert_allclose(h.data, np.diag(6 * X3))


# ---- std, norm ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"axis": (0, 1)}])
def test_norm_matches_torch_and_gradcheck(kwargs):
    x = tl.tensor(X23, requires_grad=True)
    dim = kwargs.get("axis")
    want = torch.linalg.vector_norm(torch.tensor(X23), dim=dim, keepdim=kwargs.get("keepdims", False))
    np.testing.assert_allclose(x.norm(**kwargs).data, want.numpy(), rtol=1e-12)
    assert gradcheck(lambda t: t.norm(**kwargs), [x])
    for p in (1, float("inf")):
        want = torch.linalg.vector_norm(torch.tensor(X23), ord=p, dim=dim, keepdim=kwargs.get("keepdims", False))
        np.testing.assert_allclose(x.norm(p, **kwargs).data, want.numpy(), rtol=1e-12)


def test_norm_gradient_at_zero_is_zero_as_torch_and_bad_p_is_an_error():
    x = tl.tensor(np.zeros(3), requires_grad=True)
    x.norm().backward()
    xt = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.linalg.vector_norm(xt).backward()
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())
    with pytest.raises(ValueError, match=r"norm: p must be 1, 2 or inf, got 3 \(shape \(3,\)\)"):
        x.norm(3)


@pytest.mark.parametrize("ddof", [0, 1])
def test_std_matches_torch_and_gradcheck(ddof):
    x = tl.tensor(X23, requires_grad=True)
    np.testing.assert_allclose(
        x.std(axis=1, ddof=ddof).data, torch.std(torch.tensor(X23), dim=1, correction=ddof).numpy(), rtol=1e-12
    )
    assert gradcheck(lambda t: t.std(axis=0, ddof=ddof), [x])


# ---- models --------------------------------------------------------------------------------------------------------


def lab_model(seed=0):
    return nn.MLP(2, (4, 4), 1, bias=False, init="randn", rng=np.random.default_rng(seed))


def test_functional_call_swaps_weights_for_the_call_only():
    model = lab_model()
    x = tl.tensor(RNG.random((5, 2)))
    zeros = {name: tl.Tensor.zeros(*p.shape) for name, p in model.named_parameters()}
    np.testing.assert_allclose(functional_call(model, zeros, (x,)).data, np.full((5, 1), 0.5))  # sigmoid(0)
    assert model(x).data.std() > 0  # the model's own weights are back
    with pytest.raises(KeyError, match=r"functional_call: \['fc9.weight'\] are not parameters of MLP"):
        functional_call(model, {"fc9.weight": x}, (x,))


def test_loss_hessian_of_the_lab_network_matches_torch():
    model = lab_model()
    x, y = data.generate_xor_easy()
    ours = loss_hessian(model, x, y, F.mse_loss)
    weights = [torch.tensor(p.data) for p in model.parameters()]
    shapes = [w.shape for w in weights]
    sizes = [w.numel() for w in weights]

    def loss(flat_w):
        w1, w2, w3 = (t.reshape(s) for t, s in zip(torch.split(flat_w, sizes), shapes))
        h = torch.sigmoid(torch.sigmoid(torch.tensor(x) @ w1.T) @ w2.T)  # nn.Linear's weights are (out, in)
        return ((torch.sigmoid(h @ w3.T) - torch.tensor(y)) ** 2).mean()

    theirs = TF.hessian(loss, torch.cat([w.reshape(-1) for w in weights]))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "call, where",
    [
        (lambda x: tl.jacobian(lambda a: a * 2.5, x), "jacobian: the input"),
        (lambda x: tl.hessian(lambda a: (a * a * 1.0).sum(), x), "hessian: the input"),
        (lambda x: tl.vjp(lambda a: (a * a).sum(), x), "vjp: the input"),
        (lambda x: tl.jvp(lambda a: a * 2.0, x, tl.tensor(np.ones(2))), "jvp: the input"),
        (lambda x: tl.hvp(lambda a: (a * a).sum(), x, tl.tensor(np.ones(2))), "hvp: the input"),
        (lambda x: tl.jacobian(lambda a, b: a * b, (tl.tensor(np.ones(2)), x)), "jacobian: input 1"),
    ],
)
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_derivatives_of_an_integer_input_are_refused_not_zero(call, where, dtype):
    """torch refuses them (only floating point tensors can require gradients); zeros would be a wrong answer."""
    x = tl.tensor(np.array([1, 2]).astype(dtype), dtype=dtype)
    with torch.no_grad(), pytest.raises(TypeError, match=where + f" has dtype {np.dtype(dtype)}; only floating-point"):
        call(x)
    with pytest.raises(RuntimeError, match="floating point"):  # what torch says of the same call
        TF.jacobian(lambda a: a * 2.5, torch.tensor(np.array([1, 2]).astype(dtype)))


PIECEWISE = {
    "relu": (lambda a: a.relu(), lambda a: a.relu()),
    "abs": (lambda a: a.abs(), lambda a: a.abs()),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), lambda a: torch.nn.functional.leaky_relu(a, 0.1)),
    "max_pool2d": (
        lambda a: F.max_pool2d(a.reshape(1, 1, 2, 3), 2, 1),
        lambda a: torch.nn.functional.max_pool2d(a.reshape(1, 1, 2, 3), 2, 1),
    ),
    "avg_pool2d": (
        lambda a: F.avg_pool2d(a.reshape(1, 1, 2, 3), 2, 1),
        lambda a: torch.nn.functional.avg_pool2d(a.reshape(1, 1, 2, 3), 2, 1),
    ),
}


@pytest.mark.parametrize("name", sorted(PIECEWISE))
def test_the_recorded_gradient_of_a_piecewise_linear_op_requires_grad_as_torch(name):
    """torch's backward of relu, abs, leaky_relu and pooling reads the input, so under create_graph the gradient
    requires grad and its own gradient is zeros; a strict hessian is a zero matrix, not an error."""
    ours, theirs = PIECEWISE[name]
    values = np.array([0.5, -1.0, 2.0, -0.25, 3.0, 1.5])
    x = tl.tensor(values, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    (g,) = tl.grad(ours(x).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(theirs(tx).sum(), tx, create_graph=True)
    assert g.requires_grad == tg.requires_grad is True
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-12)
    (gg,) = tl.grad((g * g).sum(), x)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_array_equal(gg.data, tgg.numpy(force=True))  # torch may give a ZeroTensor
    hessian = tl.hessian(lambda a: (ours(a) * 3.0).sum(), x, strict=True)
    expected = TF.hessian(lambda a: (theirs(a) * 3.0).sum(), tx.detach(), strict=True)
    np.testing.assert_array_equal(hessian.data, expected.numpy())
