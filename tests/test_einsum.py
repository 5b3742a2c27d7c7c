"""tl.einsum against torch.einsum: values and every operand's gradient over drawn equations (contractions, sums
over a subscript only one operand has, broadcast size-1 axes, implicit outputs, ``...``), gradcheck and
gradgradcheck in float64, the refusals, np.einsum on Tensors, and tl.compile."""

import numpy as np
import pytest
import torch
from engine_helpers import GG, check, leaf
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab import optim

LETTERS = "abcd"


@st.composite
def einsum_case(draw):
    """An equation over 1-3 operands, subscripts without repeats, and arrays whose sizes fit it (some of an operand's
    axes size 1 where another's is larger: einsum broadcasts them, as torch does)."""
    sizes = {c: draw(st.integers(1, 3)) for c in LETTERS}
    n = draw(st.integers(1, 3))
    subs = ["".join(draw(st.lists(st.sampled_from(LETTERS), unique=True, min_size=0, max_size=3))) for _ in range(n)]
    used = sorted(set("".join(subs)))
    if draw(st.booleans()):
        out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
        equation = f"{','.join(subs)}->{out}"
    else:
        equation = ",".join(subs)  # the implicit output
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arrays = []
    for s in subs:
        shape = tuple(1 if sizes[c] > 1 and draw(st.integers(0, 4)) == 0 else sizes[c] for c in s)
        arrays.append(rng.uniform(-2, 2, shape))
    return equation, arrays


def _compare(equation, arrays):
    ours, theirs = [leaf(a) for a in arrays], [tleaf(a) for a in arrays]
    out, expected = tl.einsum(equation, *ours), torch.einsum(equation, *theirs)
    assert_same(out, expected)
    weights = np.random.default_rng(0).normal(size=out.shape)
    (out * weights).sum().backward()
    grads = torch.autograd.grad(expected, theirs, torch.tensor(weights))
    for t, g in zip(ours, grads):
        np.testing.assert_allclose(t.grad.data, g.numpy(), rtol=1e-12, atol=1e-15)
    check(lambda *xs: tl.einsum(equation, *xs), *[leaf(a) for a in arrays])


@GG
@given(case=einsum_case())
def test_einsum_matches_torch_over_drawn_equations(case):
    _compare(*case)


@pytest.mark.parametrize(
    "equation, shapes",
    [
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
        ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
        ("...ij,...jk", [(1, 2, 3), (2, 3, 2)]),
        ("i...->...", [(3, 2, 2)]),
        ("ij,ij->", [(2, 3), (1, 3)]),
        ("i,j,k->ijk", [(2,), (3,), (2,)]),
        ("ij->ji", [(2, 3)]),
        (",ij->ij", [(), (2, 2)]),
        ("ij , jk -> ik", [(2, 3), (3, 2)]),
        ("ijk", [(2, 3, 1)]),
        ("Ab,bA", [(2, 3), (3, 2)]),
    ],
)
def test_einsum_matches_torch_on_torchs_spellings(equation, shapes):
    rng = np.random.default_rng(1)
    _compare(equation, [rng.uniform(-2, 2, s) for s in shapes])


def test_operands_may_come_as_one_list_and_constants():
    a, w = np.arange(6.0).reshape(2, 3), leaf(np.ones((3, 2)))
    assert_same(
        tl.einsum("ij,jk", [a, w]), torch.einsum("ij,jk", [torch.from_numpy(a), torch.ones(3, 2, dtype=torch.float64)])
    )


def test_a_repeated_subscript_is_read_but_refused_for_an_operand_that_requires_grad():
    x = np.arange(9.0).reshape(3, 3)
    v = leaf(np.arange(3.0))
    assert_same(tl.einsum("ii->i", tl.tensor(x)), torch.einsum("ii->i", torch.from_numpy(x)))
    out = tl.einsum("ii,i->i", x, v)  # the diagonal of a constant, times v: v's gradient is the diagonal
    out.sum().backward()
    np.testing.assert_array_equal(v.grad.data, np.diag(x))
    with pytest.raises(ValueError, match=r"einsum: operand subscripts 'ii' repeat a letter \(a diagonal\)"):
        tl.einsum("ii->i", leaf(x))


@pytest.mark.parametrize(
    "equation, shapes, message",
    [
        ("ij,jk", [(2, 3)], "einsum: 'ij,jk' has subscripts for 2 operands, got 1 operands"),
        ("ijk", [(2, 3)], "einsum: subscripts 'ijk' in 'ijk' do not fit an operand of 2 dims"),
        ("i1", [(2, 3)], "subscripts are letters and at most one '...' per operand"),
        ("ij->k", [(2, 3)], "einsum: output subscripts 'k' of 'ij->k' must be distinct input subscripts"),
        ("ij->ii", [(2, 3)], "must be distinct input subscripts"),
        ("ij,jk", [(2, 3), (4, 2)], "Einsum: "),
    ],
)
def test_bad_equations_are_one_line_errors(equation, shapes, message):
    with pytest.raises(ValueError) as err:
        tl.einsum(equation, *[leaf(np.ones(s)) for s in shapes])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_np_einsum_on_tensors_is_the_differentiable_op():
    a, b = leaf(np.arange(6.0).reshape(2, 3)), leaf(np.ones((3, 2)))
    out = np.einsum("ij,jk->ik", a, b)
    assert isinstance(out, tl.Tensor) and out.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, np.full((2, 3), 2.0))
    with pytest.raises(TypeError, match="np.einsum: out="):
        np.einsum("ij,jk->ik", a, b, out=np.empty((2, 2)))


@pytest.mark.parametrize("native", [False, True])
def test_a_compiled_step_with_einsum_follows_its_arguments(native):
    def build():
        w = tl.tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
        opt = optim.SGD([w], lr=0.05)

        def step(x):
            opt.zero_grad()
            loss = (tl.einsum("bi,ij->bj", x, w) ** 2).sum() + tl.einsum("ij->", w)
            loss.backward()
            opt.step()
            return loss

        return w, step

    (w, step), (eager_w, eager_step) = build(), build()
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.normal(size=(5, 3))
        np.testing.assert_allclose(compiled(x).data, eager_step(x).data, rtol=1e-12)
        np.testing.assert_allclose(w.data, eager_w.data, rtol=1e-12)
    assert compiled._replays
