"""torch's indexing, splitting, sorting and scan ops (gather, index_select, masked_fill, repeat, repeat_interleave,
flip, roll, tril/triu, split/chunk/unbind, sort/argsort/topk, cumsum, cumprod): values and gradients against torch over
drawn shapes and dims, gradcheck and gradgradcheck (float64, torch's defaults), torch's errors, and tl.compile."""

import numpy as np
import pytest
import torch
from engine_helpers import GG, check, leaf
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import assert_same, tleaf

import tinygrad_lab as tl
from tinygrad_lab import optim
from tinygrad_lab import testing as tt

SHAPES = tt.shapes(min_dims=1, max_dims=3, max_side=4)


def _pieces(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _flat(out):
    """Every output in one vector, so gradcheck sees them all."""
    return tl.cat([o.reshape(-1) for o in _pieces(out)])


def compare(ours, theirs, x):
    """``ours(t)`` against ``theirs(torch_leaf)``: each output's values, and x's gradient of a weighted sum of them
    (the weights tell every element apart); then gradcheck and gradgradcheck of ours."""
    t, u = leaf(x), tleaf(x)
    outs, expected = _pieces(ours(t)), _pieces(theirs(u))
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        assert_same(o, e)
    if not outs:
        return
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=o.shape) for o in outs]
    sum(((o * w).sum() for o, w in zip(outs, weights)), tl.tensor(0.0)).backward()
    (grad,) = torch.autograd.grad(expected, [u], [torch.tensor(w) for w in weights], allow_unused=True)
    np.testing.assert_allclose(t.grad.data, 0.0 if grad is None else grad.numpy(), rtol=1e-12, atol=1e-15)
    check(lambda v: _flat(ours(v)), leaf(x))


@st.composite
def shape_and_dim(draw, shapes=SHAPES):
    shape = draw(shapes)
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def _int64(values):
    return np.asarray(values, dtype=np.int64)


# ---- gather, index_select, masked_fill ----------------------------------------------------------------------


@st.composite
def gather_case(draw):
    shape, dim = draw(shape_and_dim())
    d = dim % len(shape)
    index_shape = tuple(draw(st.integers(0, 5)) if i == d else draw(st.integers(0, s)) for i, s in enumerate(shape))
    index = draw(
        st.lists(st.integers(0, shape[d] - 1), min_size=int(np.prod(index_shape)), max_size=int(np.prod(index_shape)))
    )
    return draw(tt.arrays(shape)), dim, _int64(index).reshape(index_shape)


@GG
@given(case=gather_case())
def test_gather_matches_torch(case):
    x, dim, index = case
    compare(
        lambda t: t.gather(dim, tl.tensor(index, dtype=np.int64)), lambda u: u.gather(dim, torch.from_numpy(index)), x
    )
    compare(lambda t: tl.gather(t, dim, index), lambda u: torch.gather(u, dim, torch.from_numpy(index)), x)


@GG
@given(case=shape_and_dim(), data=st.data())
def test_index_select_matches_torch(case, data):
    shape, dim = case
    index = _int64(data.draw(st.lists(st.integers(0, shape[dim] - 1), max_size=5)))
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.index_select(dim, index), lambda u: u.index_select(dim, torch.from_numpy(index)), x)


@GG
@given(shapes=tt.broadcastable_shapes(2, max_dims=3, max_side=3), data=st.data())
def test_masked_fill_matches_torch_with_a_number_or_a_0d_tensor_that_gets_a_gradient(shapes, data):
    mask_shape, x_shape = shapes
    mask = np.asarray(data.draw(tt.arrays(mask_shape)) > 0)
    x, value = data.draw(tt.arrays(x_shape)), data.draw(tt.elements())
    compare(
        lambda t: t.masked_fill(tl.tensor(mask, dtype=bool), value),
        lambda u: u.masked_fill(torch.from_numpy(mask), value),
        x,
    )
    t, v = leaf(x), leaf(value)
    u, w = tleaf(x), tleaf(value)
    out, expected = t.masked_fill(mask, v), u.masked_fill(torch.from_numpy(mask), w)
    assert_same(out, expected)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(v.grad.data, w.grad.numpy(), rtol=1e-12)
    check(lambda a, b: a.masked_fill(mask, b), leaf(x), leaf(value))


# ---- repeat, repeat_interleave, flip, roll, tril, triu ---------------------------------------------------------


@GG
@given(shape=tt.shapes(max_dims=3, max_side=3), data=st.data())
def test_repeat_is_torchs_tile(shape, data):
    sizes = tuple(data.draw(st.lists(st.integers(0, 3), min_size=max(len(shape), 1), max_size=len(shape) + 2)))
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.repeat(*sizes), lambda u: u.repeat(*sizes), x)
    compare(lambda t: t.repeat(sizes), lambda u: u.repeat(sizes), x)


def test_np_repeat_stays_numpys_repeat():
    x = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(np.repeat(tl.tensor(x), 2, axis=0).data, np.repeat(x, 2, axis=0))


@GG
@given(case=shape_and_dim(), data=st.data())
def test_repeat_interleave_matches_torch(case, data):
    shape, dim = case
    n = shape[dim]
    repeats = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    if data.draw(st.booleans()):
        dim = None
        repeats = (
            repeats
            if isinstance(repeats, int)
            else data.draw(st.lists(st.integers(0, 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        )
    x = data.draw(tt.arrays(shape))
    as_torch = repeats if isinstance(repeats, int) else torch.tensor(repeats)
    compare(lambda t: t.repeat_interleave(repeats, dim), lambda u: u.repeat_interleave(as_torch, dim), x)
    compare(
        lambda t: t.repeat_interleave(tl.tensor(repeats, dtype=np.int64), dim),
        lambda u: u.repeat_interleave(as_torch, dim),
        x,
    )


@GG
@given(shape=tt.shapes(max_dims=3, max_side=3), data=st.data())
def test_flip_matches_torch(shape, data):
    dims = data.draw(st.lists(st.integers(0, max(len(shape), 1) - 1), unique=True, max_size=len(shape)))
    dims = [d - len(shape) if data.draw(st.booleans()) else d for d in dims]  # negative dims too
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.flip(dims), lambda u: u.flip(dims), x)
    if dims:  # torch's flip() takes at least one
        compare(lambda t: t.flip(*dims), lambda u: u.flip(*dims), x)


@GG
@given(case=shape_and_dim(), shift=st.integers(-6, 6), shift2=st.integers(-6, 6), data=st.data())
def test_roll_matches_torch(case, shift, shift2, data):
    shape, dim = case
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.roll(shift), lambda u: u.roll(shift), x)
    compare(lambda t: t.roll(shift, dim), lambda u: u.roll(shift, dim), x)
    compare(lambda t: t.roll((shift, shift2), (dim, 0)), lambda u: u.roll((shift, shift2), (dim, 0)), x)


@GG
@given(shape=tt.shapes(min_dims=2, max_dims=4, max_side=4), diagonal=st.integers(-4, 4), data=st.data())
def test_tril_and_triu_match_torch(shape, diagonal, data):
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.tril(diagonal), lambda u: u.tril(diagonal), x)
    compare(lambda t: t.triu(diagonal), lambda u: u.triu(diagonal), x)


def test_tril_and_triu_zero_infinities_outside_the_triangle_and_keep_float32():
    x = np.array([[1.0, np.inf], [np.nan, 2.0]], dtype=np.float32)
    assert_same(tl.tensor(x).tril(), torch.from_numpy(x).tril())
    assert_same(tl.tensor(x).triu(), torch.from_numpy(x).triu())
    assert tl.tensor(x).tril().dtype == np.float32


# ---- split, chunk, unbind --------------------------------------------------------------------------------------


@GG
@given(
    case=shape_and_dim(tt.shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)),
    size=st.integers(1, 6),
    data=st.data(),
)
def test_split_chunk_and_unbind_match_torch(case, size, data):
    shape, dim = case
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.split(size, dim), lambda u: u.split(size, dim), x)
    compare(lambda t: t.chunk(size, dim), lambda u: u.chunk(size, dim), x)
    compare(lambda t: t.unbind(dim), lambda u: u.unbind(dim), x)
    sections = []
    while sum(sections) < shape[dim]:
        sections.append(data.draw(st.integers(0, shape[dim] - sum(sections))))
    compare(lambda t: t.split(sections, dim), lambda u: u.split(sections, dim), x)


def test_a_roll_by_nothing_is_a_new_tensor():
    x = leaf(np.arange(3.0))
    y = x.roll(0, 0)
    y.retain_grad()
    (x * 2).sum().backward()
    assert y is not x and y.grad is None


def test_split_gives_views_whose_gradients_meet_in_the_input():
    x = leaf(np.arange(5.0))
    a, b = x.split([2, 3])
    (a * 2).sum().backward()
    (b * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 2, 3, 3, 3])


# ---- sort, argsort, topk ---------------------------------------------------------------------------------------


@GG
@given(case=shape_and_dim(), descending=st.booleans(), data=st.data())
def test_sort_and_argsort_match_torch(case, descending, data):
    shape, dim = case
    x = data.draw(tt.arrays(shape, distinct=True))  # distinct and spaced: finite differences do not reorder them
    compare(lambda t: t.sort(dim, descending).values, lambda u: u.sort(dim, descending).values, x)
    ours, theirs = leaf(x).sort(dim=dim, descending=descending), tleaf(x).sort(dim=dim, descending=descending)
    np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    assert ours.indices.dtype == np.int64
    np.testing.assert_array_equal(leaf(x).argsort(dim, descending).data, tleaf(x).argsort(dim, descending).numpy())


@GG
@given(case=shape_and_dim(), largest=st.booleans(), data=st.data())
def test_topk_matches_torch(case, largest, data):
    shape, dim = case
    k = data.draw(st.integers(0, shape[dim]))
    x = data.draw(tt.arrays(shape, distinct=True))
    compare(lambda t: t.topk(k, dim, largest).values, lambda u: u.topk(k, dim, largest).values, x)
    ours, theirs = leaf(x).topk(k, dim=dim, largest=largest), tleaf(x).topk(k, dim=dim, largest=largest)
    np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    unsorted = leaf(x).topk(k, dim, largest, sorted=False)  # torch leaves the order open: compare as sets
    expected = tleaf(x).topk(k, dim, largest, sorted=False)
    np.testing.assert_array_equal(np.sort(unsorted.values.data, dim), np.sort(expected.values.detach().numpy(), dim))


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_and_puts_nan_where_torch_does(descending):
    x = np.array([[3.0, np.nan, 1.0, 3.0, 1.0, np.nan, -0.0, 0.0], [2.0, 2.0, 2.0, 1.0, 1.0, 2.0, 5.0, 5.0]])
    ours, theirs = (
        tl.tensor(x).sort(descending=descending),
        torch.from_numpy(x).sort(descending=descending, stable=True),
    )
    assert_same(ours.values, theirs.values)
    np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    np.testing.assert_array_equal(tl.tensor(x).argsort(1, descending).data, theirs.indices.numpy())


def test_tied_values_send_the_gradient_to_the_element_the_index_names():
    x = np.array([1.0, 2.0, 2.0, 0.5])
    t = leaf(x)
    values, indices = t.topk(2)
    (values * tl.tensor([10.0, 1.0])).sum().backward()
    expected = np.zeros(4)
    expected[indices.data] = [10.0, 1.0]
    np.testing.assert_array_equal(t.grad.data, expected)
    assert indices.data.tolist() == [1, 2]  # ties first come first


def test_sort_and_topk_of_a_0d_tensor_are_torchs():
    for ours, theirs in [
        (tl.tensor(5.0).sort(), torch.tensor(5.0).sort()),
        (tl.tensor(5.0).topk(1), torch.tensor(5.0).topk(1)),
    ]:
        assert_same(ours.values, theirs.values)
        assert ours.indices.shape == () and int(ours.indices.data) == 0


# ---- cumsum ----------------------------------------------------------------------------------------------------


@GG
@given(case=st.one_of(shape_and_dim(), st.tuples(st.just(()), st.sampled_from([0, -1]))), data=st.data())
def test_cumsum_matches_torch(case, data):
    shape, dim = case
    x = data.draw(tt.arrays(shape))
    compare(lambda t: t.cumsum(dim), lambda u: u.cumsum(dim), x)


@GG
@given(case=st.one_of(shape_and_dim(), st.tuples(st.just(()), st.sampled_from([0, -1]))), data=st.data())
def test_cumprod_matches_torch_to_the_second_derivative_also_at_zeros(case, data):
    shape, dim = case
    x = data.draw(tt.arrays(shape, tt.elements(away_from=0.0, margin=0.1)))  # zeros only where put, exactly
    x[data.draw(tt.arrays(shape)) > 1.0] = 0.0  # some entries exactly zero, several in a slice too
    compare(lambda t: t.cumprod(dim), lambda u: u.cumprod(dim), x)
    t, u = leaf(x), tleaf(x)
    w = np.random.default_rng(2).normal(size=(2,) + x.shape)
    (g,) = tl.grad((t.cumprod(dim) * w[0]).sum(), [t], create_graph=True)
    (gt,) = torch.autograd.grad((u.cumprod(dim) * torch.tensor(w[0])).sum(), [u], create_graph=True)
    assert g.requires_grad == gt.requires_grad
    if gt.requires_grad:  # else the gradient is a constant, as over an axis of size 1
        (h,) = tl.grad((g * w[1]).sum(), [t])
        (ht,) = torch.autograd.grad((gt * torch.tensor(w[1])).sum(), [u])
        np.testing.assert_allclose(h.data, ht.numpy(), rtol=1e-12, atol=1e-15)


def test_cumsum_keeps_float32():
    x = np.array([1.5, 2.0, 3.0], dtype=np.float32)
    assert tl.tensor(x).cumsum(0).dtype == np.float32


# ---- bad input -------------------------------------------------------------------------------------------------

X = np.arange(12.0).reshape(3, 4)
BAD = {
    "gather index out of range": (
        lambda t: t.gather(1, _int64([[4]])),
        IndexError,
        "gather: index 4 is out of bounds for dim 1 with size 4",
    ),
    "gather negative index": (lambda t: t.gather(0, _int64([[-1]])), IndexError, "gather: index -1"),
    "gather float index": (lambda t: t.gather(0, tl.tensor([[0.0]])), TypeError, "gather: index must hold integers"),
    "gather index dims": (
        lambda t: t.gather(0, _int64([0])),
        ValueError,
        "gather: index of shape (1,) must have as many dims",
    ),
    "gather index too wide": (
        lambda t: t.gather(0, _int64([[0] * 5])),
        ValueError,
        "larger than the input (3, 4) outside dim 0",
    ),
    "gather dim": (lambda t: t.gather(2, _int64([[0]])), ValueError, "gather: axis 2 is out of bounds"),
    "index_select matrix": (
        lambda t: t.index_select(0, _int64([[0]])),
        ValueError,
        "index_select: index must be a vector",
    ),
    "index_select 0-d": (
        lambda t: t[0, 0].index_select(0, _int64([0, 0])),
        ValueError,
        "index_select: a 0-d tensor takes one index, got 2",
    ),
    "index_select range": (
        lambda t: t.index_select(0, _int64([3])),
        IndexError,
        "index_select: index 3 is out of bounds",
    ),
    "masked_fill shapes": (
        lambda t: t.masked_fill(np.ones(3, bool), 0.0),
        ValueError,
        "masked_fill: mask of shape (3,) does not broadcast",
    ),
    "masked_fill float mask": (
        lambda t: t.masked_fill(np.ones(4), 0.0),
        TypeError,
        "masked_fill: mask must be boolean",
    ),
    "masked_fill value shape": (
        lambda t: t.masked_fill(np.ones(4, bool), tl.tensor([1.0])),
        ValueError,
        "masked_fill: value must be",
    ),
    "repeat too few": (lambda t: t.repeat(2), ValueError, "repeat: got 1 sizes"),
    "repeat negative": (lambda t: t.repeat(2, -1), ValueError, "repeat: sizes must be non-negative"),
    "repeat_interleave count": (
        lambda t: t.repeat_interleave([1, 2], 0),
        ValueError,
        "repeat_interleave: repeats must be",
    ),
    "flip twice": (lambda t: t.flip(0, -2), ValueError, "flip: dims (0, -2) name an axis twice"),
    "roll counts": (lambda t: t.roll((1, 2), 0), ValueError, "roll: 2 shifts"),
    "roll 0-d": (lambda t: t[0, 0].roll(1, 0), ValueError, "roll: dims 0 of a 0-d tensor"),
    "tril 1-d": (lambda t: t[0].tril(), ValueError, "tril: the tensor must have at least 2 dims"),
    "split sizes": (lambda t: t.split([1, 1]), ValueError, "split: sizes [1, 1] add up to 2, not to the size 3"),
    "split zero": (lambda t: t.split(0), ValueError, "split: split_size 0 cannot split dim 0 of size 3"),
    "chunk zero": (lambda t: t.chunk(0), ValueError, "chunk: chunks must be a positive int"),
    "unbind 0-d": (lambda t: t[0, 0].unbind(), ValueError, "unbind: the tensor must have at least 1 dim"),
    "topk k": (lambda t: t.topk(5), ValueError, "topk: k=5 is out of range for dim 1 of size 4"),
    "sort dim": (lambda t: t.sort(2), ValueError, "sort: axis 2 is out of bounds"),
    "cumsum dim": (lambda t: t.cumsum(-3), ValueError, "cumsum: axis -3 is out of bounds"),
    "cumprod dim": (lambda t: t.cumprod(2), ValueError, "cumprod: axis 2 is out of bounds"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_line_naming_the_op(name):
    fn, kind, message = BAD[name]
    with pytest.raises(kind) as err:
        fn(tl.tensor(X, requires_grad=True))
    assert message in str(err.value) and "\n" not in str(err.value)


# ---- tl.compile ------------------------------------------------------------------------------------------------


def _program(w, x, index, mask):
    """Every op of this file in one loss."""
    y = w * x
    parts = [
        y.gather(1, index),
        y.index_select(0, index[:, 0]),
        y.masked_fill(mask, 0.5),
        y.repeat(2, 1),
        y.repeat_interleave(2, 1),
        y.flip(0),
        y.roll(1, 1),
        y.tril(),
        y.triu(1),
        *y.chunk(2, 1),
        *y.split([1, 2], 0),
        *y.unbind(0),
        y.sort(1, descending=True).values,
        y.topk(2, 0).values,
        y.cumsum(1),
        y.cumprod(0),
    ]
    return sum((p * p).sum() for p in parts)


def _capture_setup(seed):
    w = tl.tensor(np.random.default_rng(seed).normal(size=(3, 4)), requires_grad=True)
    opt = optim.SGD([w], lr=0.01)

    def step(x, index, mask):
        opt.zero_grad()
        loss = _program(w, x, index, mask)
        loss.backward()
        opt.step()
        return loss

    return w, step


@pytest.mark.parametrize("native", [False, True])
def test_a_compiled_step_with_these_ops_follows_its_arguments(native):
    (w, step), (eager_w, eager_step) = _capture_setup(0), _capture_setup(0)
    compiled = tl.compile(step, native=native)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.normal(size=(3, 4))
        index = tl.tensor(rng.integers(0, 3, size=(3, 2)), dtype=np.int64)
        mask = tl.tensor(rng.normal(size=(3, 4)) > 0, dtype=bool)
        np.testing.assert_allclose(compiled(x, index, mask).data, eager_step(x, index, mask).data, rtol=1e-12)
        np.testing.assert_allclose(w.data, eager_w.data, rtol=1e-12)
    assert compiled._replays


def test_a_compiled_step_checks_its_indices_on_every_replay():
    _, step = _capture_setup(0)
    compiled = tl.compile(step)
    x, mask = np.ones((3, 4)), tl.tensor(np.ones((3, 4)) > 0, dtype=bool)
    for _ in range(2):
        compiled(x, tl.tensor(np.zeros((3, 2)), dtype=np.int64), mask)
    with pytest.raises(IndexError, match="gather: index 7 is out of bounds"):
        compiled(x, tl.tensor(np.full((3, 2), 7), dtype=np.int64), mask)


def test_a_compiled_step_refuses_a_tensor_of_repeats():
    w = tl.tensor(np.ones(3), requires_grad=True)

    def step(repeats):
        loss = w.repeat_interleave(repeats).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step)
    compiled(tl.tensor([1, 2, 3], dtype=np.int64))  # the warm-up call runs eagerly
    with pytest.raises(tl.CaptureError, match="repeat_interleave with a Tensor of repeats"):
        compiled(tl.tensor([1, 2, 3], dtype=np.int64))


def test_a_compiled_step_checks_an_index_it_computes_on_every_replay():
    """An index the step computes (a column of its argument) is checked on each call: a negative one is refused,
    not read from the end as numpy would."""
    w = tl.tensor(np.ones((3, 4)), requires_grad=True)

    def step(index):
        w.grad = None
        loss = w.index_select(0, index[:, 0]).sum()
        loss.backward()
        return loss

    compiled = tl.compile(step)
    for _ in range(3):
        compiled(tl.tensor([[0, 1], [2, 0]], dtype=np.int64))
    assert compiled._replays
    with pytest.raises(IndexError, match="index_select: index -1 is out of bounds for dim 0 with size 3"):
        compiled(tl.tensor([[-1, 1], [2, 0]], dtype=np.int64))
