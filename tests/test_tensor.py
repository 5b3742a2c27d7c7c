"""The Tensor class: construction, attributes, identity, factories, and the error messages of bad input."""

import numpy as np
import pytest

import tinygrad_lab as tl
from tinygrad_lab.engine.function import Function

Tensor = tl.Tensor


# ---- construction ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, shape",
    [
        (1.5, ()),
        (3, ()),
        (True, ()),
        ([1, 2, 3], (3,)),
        ([[1.0, 2.0], [3.0, 4.0]], (2, 2)),
        ([[True, False]], (1, 2)),
        (np.arange(6).reshape(2, 3), (2, 3)),
        (np.float32(2.0), ()),
        (np.array([1, 2], dtype=np.int8), (2,)),
        (np.array([1.0, 2.0], dtype=np.float32), (2,)),
    ],
)
def test_construction_from_scalars_lists_and_arrays(data, shape):
    t = Tensor(data)
    assert t.dtype == (np.float32 if np.asarray(data).dtype == np.float32 else np.float64)
    assert t.shape == shape
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))
    assert type(t.data) is np.ndarray


def test_ints_and_bools_become_float64():
    for data in (
        7,
        [1, 2],
        np.array([1, 2], dtype=np.int64),
        np.array([1, 2], dtype=np.uint8),
        True,
        np.array([True, False]),
    ):
        t = Tensor(data)
        assert t.dtype == np.float64, data
    assert Tensor(True).item() == 1.0 and isinstance(Tensor(True).item(), float)


def test_float32_kept_and_on_request():
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor([1, 2], dtype=tl.float32).dtype == np.float32
    assert tl.float32 is np.float32 and np.zeros(2, dtype=tl.float64).dtype == np.float64  # numpy's dtypes
    assert Tensor([1.0], dtype="float32", requires_grad=True).dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float32), dtype=tl.float64).dtype == np.float64


def test_non_float_dtype_with_requires_grad_is_type_error():
    for dtype in (np.int64, np.int32, bool):
        with pytest.raises(TypeError, match="floating"):
            Tensor([1, 2], dtype=dtype, requires_grad=True)
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64  # fine without requires_grad


@pytest.mark.parametrize(
    "data, named",
    [
        ("hello", "str"),
        (None, "NoneType"),
        ({"a": 1}, "dict"),
        (object(), "object"),
        ([1, "a"], "list"),
        ([[1, 2], [3]], "list"),
        (np.array(["a", "b"]), "ndarray"),
    ],
)
def test_non_numeric_data_is_type_error_saying_what_was_given(data, named):
    with pytest.raises(TypeError) as info:
        Tensor(data)
    message = str(info.value)
    assert named in message
    assert "Tensor" in message


def test_tensor_from_tensor_copies_data():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor(a)
    assert not b.requires_grad and b.grad_fn is None
    np.testing.assert_array_equal(b.data, a.data)
    b.data[0] = 5.0
    assert a.data[0] == 1.0


def test_from_ndarray_owns_its_data():
    arr = np.array([1.0, 2.0])
    t = Tensor(arr)
    arr[0] = 10.0
    assert t.data[0] == 1.0


def test_tl_tensor_is_tensor():
    t = tl.tensor([1, 2], requires_grad=True, name="w")
    assert isinstance(t, Tensor) and t.requires_grad and t.name == "w" and t.dtype == np.float64


# ---- attributes --------------------------------------------------------------------------------------------------


def test_attributes():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a, requires_grad=True, name="t")
    assert isinstance(t.data, np.ndarray)
    assert t.grad is None and t.requires_grad and t.is_leaf and t.grad_fn is None
    assert t.name == "t"
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.float64
    assert len(t) == 2
    np.testing.assert_array_equal(t.T.data, a.T)
    assert t.numpy() is t.data
    assert np.asarray(t.detach()) is not t.data and np.shares_memory(np.asarray(t.detach()), t.data)
    plain = Tensor(a)
    assert np.asarray(plain) is plain.data
    np.testing.assert_array_equal(np.asarray(plain, dtype=np.float32), a.astype(np.float32))
    assert Tensor([[4.5]]).item() == 4.5 and isinstance(Tensor([[4.5]]).item(), float)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        t.item()
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    y = t * 2.0
    assert not y.is_leaf and y.grad_fn is not None and y.name is None


def test_grad_is_tensor_of_same_shape():
    t = Tensor(np.ones((2, 3)), requires_grad=True)
    (t * 2.0).sum().backward()
    assert isinstance(t.grad, Tensor) and t.grad.shape == (2, 3)


def test_ndarray_operators_return_tensor():
    a = np.array([1.0, 2.0])
    t = Tensor([3.0, 4.0], requires_grad=True)
    for result in (a * t, a + t, a - t, a / t, a**t, a @ t, a < t):
        assert isinstance(result, Tensor)
    np.testing.assert_array_equal((a * t).data, [3.0, 8.0])
    assert (a @ t).item() == 11.0


def test_numpy_functions_see_the_data():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert np.sum(np.asarray(t)) == 10.0
    np.testing.assert_array_equal(np.array(t), t.data)


def test_repr():
    a = Tensor([[1.0, 2.0]], requires_grad=True)
    b = Tensor([[3.0], [4.0]])
    y = a @ b
    assert repr(y) == "Tensor([[11.]], grad_fn=<MatMul>, requires_grad=True)"
    assert repr(b) == "Tensor([[3.],\n        [4.]])"
    assert repr(a) == "Tensor([[1., 2.]], requires_grad=True)"
    assert repr(Tensor([1.0], dtype=np.float32)) == "Tensor([1.], dtype=float32)"
    assert "name='w'" in repr(Tensor(1.0, name="w"))


def test_hash_is_identity_and_equal_tensors_never_merge():
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    assert hash(a) == object.__hash__(a)  # by identity, not by value
    assert hash(a) != hash(b)
    assert len({a, b}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    c, e = Tensor(3.0), Tensor(3.0)
    assert len({c, e, c}) == 2
    assert isinstance(a == b, Tensor)  # == compares elementwise, like numpy and torch
    np.testing.assert_array_equal((a == b).data, [True, True])


def test_bool_and_float_conversions():
    assert bool(Tensor(1.0)) and not bool(Tensor(0.0))
    assert float(Tensor([2.5])) == 2.5 and int(Tensor(3.0)) == 3
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))


def test_astype():
    t = Tensor([1.5, 2.5], requires_grad=True)
    f = t.astype(np.float32)
    assert f.dtype == np.float32 and f.requires_grad
    (f * 2.0).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad.data, [2.0, 2.0])
    assert t.astype(np.float64) is t


# ---- factories ---------------------------------------------------------------------------------------------------


def test_constant_factories():
    assert Tensor.zeros(2, 3).shape == (2, 3) and not Tensor.zeros(2, 3).data.any()
    assert Tensor.zeros((2, 3)).shape == (2, 3)
    np.testing.assert_array_equal(Tensor.ones(2).data, [1.0, 1.0])
    np.testing.assert_array_equal(Tensor.ones((1, 2)).data, [[1.0, 1.0]])
    np.testing.assert_array_equal(Tensor.full((2, 2), 7.0).data, np.full((2, 2), 7.0))
    np.testing.assert_array_equal(Tensor.full(3, 1.5).data, [1.5, 1.5, 1.5])
    np.testing.assert_array_equal(Tensor.eye(3).data, np.eye(3))
    np.testing.assert_array_equal(Tensor.eye(2, 3).data, np.eye(2, 3))
    np.testing.assert_array_equal(Tensor.arange(5).data, np.arange(5))
    np.testing.assert_array_equal(Tensor.arange(1, 2, 0.25).data, [1.0, 1.25, 1.5, 1.75])
    for t in (Tensor.zeros(2), Tensor.ones(2), Tensor.full(2, 1.0), Tensor.eye(2), Tensor.arange(3.0)):
        assert t.dtype == np.float64 and not t.requires_grad and t.is_leaf
    assert Tensor.zeros(2, requires_grad=True).requires_grad
    assert Tensor.ones(2, dtype=np.float32).dtype == np.float32


def test_factories_keep_the_dtype_asked_for_and_arange_of_integers_is_int64_as_torch():
    for make in (tl.zeros, tl.ones, lambda n, dtype: tl.full(n, 1, dtype=dtype), tl.eye):
        assert make(2, dtype=np.int64).dtype == np.int64 and make(2, dtype=bool).dtype == np.bool_
    assert tl.arange(3).dtype == np.int64 and tl.arange(0, 3, 1).dtype == np.int64
    assert tl.arange(3.0).dtype == tl.arange(0, 1, 0.5).dtype == np.float64
    assert tl.arange(3, dtype=np.float32).dtype == np.float32
    x = tl.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    picked = x[tl.arange(3), np.array([1, 0, 3])]  # torch's idiom for the logits of the labels
    assert picked.tolist() == [1.0, 4.0, 11.0]


def test_factories_are_also_module_functions_as_torchs():
    assert tl.zeros(2, 3).shape == (2, 3) and not tl.zeros(2, 3).data.any()
    np.testing.assert_array_equal(tl.ones((1, 2), dtype=np.float32).data, np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(tl.full((2,), 7.0).data, [7.0, 7.0])
    np.testing.assert_array_equal(tl.eye(2).data, np.eye(2))
    np.testing.assert_array_equal(tl.arange(3).data, [0.0, 1.0, 2.0])
    tl.manual_seed(4)
    drawn = (tl.randn(3).data, tl.rand(3).data, tl.uniform(3, low=-1.0).data)
    tl.manual_seed(4)
    np.testing.assert_array_equal(drawn[0], Tensor.randn(3).data)
    np.testing.assert_array_equal(drawn[1], Tensor.rand(3).data)
    np.testing.assert_array_equal(drawn[2], Tensor.uniform(3, low=-1.0).data)
    assert tl.zeros(2, requires_grad=True).requires_grad


def test_an_ndarray_made_from_a_tensor_that_requires_grad_is_refused_in_grad_mode_as_torch():
    """numpy would drop the gradient without a word: X.dot(W) (an ndarray method), buf[i] = t, np.array([t1, t2])."""
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    x = np.ones((4, 3))
    buffer = np.zeros((2, 3, 2))
    conversions = [lambda: x.dot(w), lambda: buffer.__setitem__(0, w), lambda: np.array([w, w]), lambda: np.asarray(w)]
    for convert in conversions:
        with pytest.raises(RuntimeError, match=r"shape \(3, 2\) that requires grad was converted to a numpy array"):
            convert()
    counts = np.zeros(2, dtype=np.int64)
    for array in (buffer, counts):  # float(t) and int(t)
        with pytest.raises((RuntimeError, ValueError)) as info:  # numpy may report the error as the cause of its own
            array[(0,) * array.ndim] = w[0, 0]
        message = f"{info.value} {info.value.__cause__}"
        assert "shape () that requires grad was converted to a number stored in an array" in message
    assert int(w[0, 0]) == 1 and not counts.any()
    assert not buffer.any()  # nothing written
    loss = (w * 2).sum()
    assert float(loss) == 12.0 and f"{loss:.1f}" == "12.0" and "%.1f" % loss == "12.0"  # noqa: UP031 (a student's print)
    with tl.no_grad():  # reading values on purpose
        np.testing.assert_array_equal(x.dot(w), np.full((4, 2), 3.0))
    np.testing.assert_array_equal(np.array([w.detach(), w.numpy()]), np.ones((2, 3, 2)))
    assert np.asarray(w * 2 > 1).all()  # a comparison requires no grad


def test_the_ndarray_methods_numpy_code_calls_are_there():
    p = Tensor(np.array([[0.2, 0.9], [0.7, 0.1]]), requires_grad=True)
    scores = p.dot(np.array([1.0, 2.0]))  # x.dot(w): in the graph
    np.testing.assert_allclose(scores.data, [2.0, 0.9])
    scores.sum().backward()
    assert p.grad.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    assert p.ravel().shape == (4,) and p.ravel().requires_grad
    copy = p.copy()
    assert copy.requires_grad and not np.shares_memory(copy.data, p.data)
    assert p.argmax(axis=1).tolist() == [1, 0] and p.argmin() == 3
    assert (p > 0.5).any() and not (p > 0.5).all() and (p > 0.5).any(axis=0).tolist() == [True, True]
    rounded = p.round()
    assert rounded.tolist() == [[0.0, 1.0], [1.0, 0.0]] and not rounded.requires_grad


def test_a_list_of_tensors_that_require_grad_is_refused_pointing_to_stack():
    a, b = Tensor(1.0, requires_grad=True), Tensor(2.0, requires_grad=True)
    with pytest.raises(TypeError, match=r"^Tensor: cannot make a tensor from list .*would drop \(use tl.stack\)$"):
        tl.tensor([a, b])
    assert tl.tensor([a.detach(), b.detach()]).tolist() == [1.0, 2.0]
    assert tl.stack([a, b]).requires_grad


def test_like_factories():
    t = Tensor([[1.0, 2.0]], dtype=np.float32)
    z, o = tl.zeros_like(t), tl.ones_like(t, requires_grad=True)
    assert z.shape == o.shape == (1, 2)
    assert not z.data.any() and (o.data == 1).all()
    assert o.requires_grad and not z.requires_grad
    assert z.dtype == np.float32  # like torch: the dtype of the model tensor
    assert tl.zeros_like(Tensor([1.0, 2.0])).dtype == np.float64


@pytest.mark.parametrize("name", ["randn", "rand", "uniform"])
def test_random_factories_use_the_given_generator(name):
    factory = getattr(Tensor, name)
    a = factory(3, 4, rng=np.random.default_rng(42))
    b = factory(3, 4, rng=np.random.default_rng(42))
    c = factory((3, 4), rng=np.random.default_rng(43))
    assert a.shape == (3, 4) and a.dtype == np.float64
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    expected = {
        "randn": lambda r: r.standard_normal((3, 4)),
        "rand": lambda r: r.random((3, 4)),
        "uniform": lambda r: r.uniform(0.0, 1.0, (3, 4)),
    }[name](np.random.default_rng(42))
    np.testing.assert_array_equal(a.data, expected)
    assert factory(2, rng=np.random.default_rng(0), dtype=np.float32).dtype == np.float32
    assert factory(2, rng=np.random.default_rng(0), requires_grad=True).requires_grad


def test_value_ranges_of_random_factories():
    rng = np.random.default_rng(0)
    r = Tensor.rand(1000, rng=rng).data
    assert (r >= 0).all() and (r < 1).all()
    u = Tensor.uniform(1000, low=-2.0, high=-1.0, rng=rng).data
    assert (u >= -2).all() and (u < -1).all()
    n = Tensor.randn(10_000, rng=rng).data
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


def test_manual_seed_reproducibility():
    gen = tl.manual_seed(123)
    assert isinstance(gen, np.random.Generator)
    a = [Tensor.randn(2, 2).data, Tensor.rand(3).data, Tensor.uniform(2, low=5, high=6).data]
    tl.manual_seed(123)
    b = [Tensor.randn(2, 2).data, Tensor.rand(3).data, Tensor.uniform(2, low=5, high=6).data]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    ref = np.random.default_rng(123)
    np.testing.assert_array_equal(a[0], ref.standard_normal((2, 2)))
    tl.manual_seed(124)
    assert not np.array_equal(Tensor.randn(2, 2).data, a[0])
    # an explicit rng does not consume the global generator
    tl.manual_seed(7)
    Tensor.randn(5, rng=np.random.default_rng(0))
    first = Tensor.randn(2).data
    tl.manual_seed(7)
    np.testing.assert_array_equal(Tensor.randn(2).data, first)


# ---- error messages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
        (lambda a, b: tl.maximum(a, b), "Maximum"),
        (lambda a, b: tl.where(np.ones((2, 3), dtype=bool), a, b), "Where"),
    ],
)
def test_broadcast_mismatch_names_op_and_shapes(op, name):
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((4,)), requires_grad=True)
    with pytest.raises(ValueError) as info:
        op(a, b)
    message = str(info.value)
    assert name in message
    assert "(2, 3)" in message and "(4,)" in message


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 2, 3), (2, 4, 1)), ((5,), (2, 3))])
def test_matmul_mismatch_names_op_and_shapes(shape_a, shape_b):
    a, b = Tensor(np.ones(shape_a), requires_grad=True), Tensor(np.ones(shape_b))
    with pytest.raises(ValueError) as info:
        a @ b
    message = str(info.value)
    assert "MatMul" in message
    assert str(shape_a) in message and str(shape_b) in message


def test_backward_on_tensor_not_requiring_grad_says_so():
    t = Tensor([1.0, 2.0]).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        t.backward()
    with tl.no_grad():
        u = (Tensor([1.0], requires_grad=True) * 2.0).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        u.backward()


class WrongShape(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2.0

    @staticmethod
    def backward(ctx, grad):
        # one element too many along the last axis: no broadcasting reduces it to the input's shape
        return np.ones(grad.shape[:-1] + (grad.shape[-1] + 1,))


class FewerDims(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2.0

    @staticmethod
    def backward(ctx, grad):
        return grad.sum(axis=0)  # drops an axis the input has


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad):
        return grad


class TooMany(Function):
    @staticmethod
    def forward(ctx, a):
        return a + 1.0

    @staticmethod
    def backward(ctx, grad):
        return grad, grad, grad


class NoBackward(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 3.0


def test_wrong_shape_gradient_is_caught_with_op_name():
    for op, data in [
        (WrongShape, [1.0, 2.0, 3.0]),
        (WrongShape, [[1.0, 2.0], [3.0, 4.0]]),
        (FewerDims, [[1.0, 2.0], [3.0, 4.0]]),
    ]:
        x = Tensor(data, requires_grad=True)
        y = op.apply(x)
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
        message = str(info.value)
        assert op.__name__ in message and "shape" in message
        assert str(x.shape) in message
        assert x.grad is None


def test_wrong_count_gradient_is_caught_with_op_name():
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"WrongCount.*1 gradient.*2 input"):
        WrongCount.apply(a, b).sum().backward()
    with pytest.raises(RuntimeError, match=r"TooMany.*3 gradient.*1 input"):
        TooMany.apply(a).sum().backward()


def test_missing_backward_is_not_implemented_error_naming_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = NoBackward.apply(x)
    np.testing.assert_array_equal(y.data, [3.0, 6.0])  # forward works
    with pytest.raises(NotImplementedError, match="NoBackward"):
        y.sum().backward()


def test_function_returning_non_float_is_refused():
    class ToInt(Function):
        @staticmethod
        def forward(ctx, a):
            return a.astype(np.int64)

    with pytest.raises(TypeError, match="ToInt.*int64"):
        ToInt.apply(Tensor([1.0], requires_grad=True))
    assert ToInt.apply(Tensor([1.5])).dtype == np.int64  # fine when nothing needs a gradient


def test_bad_axis_and_index_errors_name_the_op():
    t = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="Sum"):
        t.sum(axis=2)
    with pytest.raises(IndexError, match="GetItem"):
        t[5]
    with pytest.raises(ValueError, match="Reshape"):
        t.reshape(4, 2)


def test_np_array_of_a_tensor_is_a_copy_and_asarray_is_not():
    t = tl.tensor([1.0, 2.0, 3.0])
    a = np.array(t)
    a[0] = 99.0
    assert t.data[0] == 1.0
    assert np.shares_memory(np.asarray(t), t.data)


def test_numpy_errors_inside_an_op_become_one_sentence_naming_the_op():
    with pytest.raises(TypeError, match=r"^Add: .*input shapes: \(1,\), \(\)"):
        tl.tensor([1.0]) + "a"


def test_shape_helpers_and_joins_explain_bad_arguments():
    x = tl.Tensor.ones(2, 1, 3)
    assert x.squeeze().shape == (2, 3) and x.unsqueeze(-1).shape == (2, 1, 3, 1)
    assert x.squeeze(0).shape == (2, 1, 3)  # an axis larger than 1 stays, as torch
    with pytest.raises(ValueError, match=r"unsqueeze: axis 5 is out of range for a 4-d result"):
        x.unsqueeze(5)
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence"):
        tl.cat([])
    with pytest.raises(ValueError, match="stack: expected a non-empty sequence"):
        tl.stack([])


def test_a_backward_returning_a_python_number_is_named():
    class Half(tl.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 0.5

        @staticmethod
        def backward(ctx, grad):
            return 0.5

    x = tl.tensor(3.0, requires_grad=True)
    with pytest.raises(TypeError, match=r"Half.backward returned a float as a gradient"):
        Half.apply(x).backward()


def test_python_abs_format_and_in_work_on_tensors_as_on_torch_tensors():
    t = tl.tensor([-1.5, 2.0], requires_grad=True)
    magnitude = abs(t)
    magnitude.sum().backward()
    np.testing.assert_array_equal(magnitude.data, [1.5, 2.0])
    np.testing.assert_array_equal(t.grad.data, [-1.0, 1.0])
    assert f"{tl.tensor(2.0):.3f}" == "2.000" and f"{tl.tensor(np.float32(0.25)):>6}" == "  0.25"
    assert f"{t}" == str(t)
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{t:.2f}"  # only a 0-d tensor is a number, as in torch
    assert 2.0 in t and -1.5 in t and 3.0 not in t and tl.tensor(2.0) in t


def test_assigning_data_stores_the_new_values_as_torch_does():
    """``w.data = w.data - lr * w.grad`` (torch's idiom) gives a Tensor on the right, since w.grad is one: .data
    keeps an ndarray of its values, so the next forward and backward work and the update is the plain one."""
    x = np.array([[1.0, 2.0, 3.0]])
    w = tl.tensor(np.ones((3, 1)), requires_grad=True)
    expected = np.ones((3, 1))
    for _ in range(3):
        w.grad = None
        ((tl.tensor(x) @ w).sum() ** 2).backward()
        expected = expected - 0.01 * 2 * (x @ expected).sum() * x.T
        w.data = w.data - 0.01 * w.grad
        assert type(w.data) is np.ndarray
    np.testing.assert_allclose(w.data, expected, rtol=1e-15)


def test_assigning_data_shares_a_tensors_array_and_refuses_other_values():
    a, b = tl.tensor([1.0, 2.0], requires_grad=True), tl.tensor([3.0, 4.0, 5.0])
    a.data = b
    assert a.data is b.data and a.shape == (3,)  # shared and reshaped, as torch's a.data = b
    a.data = np.float64(2.0) * np.ones(())[()]  # 0-d arithmetic gives a numpy scalar: stored as a 0-d array
    assert type(a.data) is np.ndarray and a.data.shape == ()
    with pytest.raises(TypeError, match=r"Tensor.data: assign a Tensor or an ndarray, got list \[1.0, 2.0\]"):
        a.data = [1.0, 2.0]
    assert a.data.shape == ()  # the refused value left it unchanged
