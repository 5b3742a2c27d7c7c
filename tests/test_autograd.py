"""PyTorch's autograd semantics, one by one."""

import gc
import sys
import threading
import weakref

import numpy as np
import pytest
from engine_helpers import leaf

import tinygrad_lab as tl

Tensor = tl.Tensor


# ---- implicit gradient ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (1, 1, 1)])
def test_implicit_gradient_for_single_element_outputs(shape):
    x = leaf(np.full(shape, 3.0))
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, np.full(shape, 6.0))
    assert x.grad.shape == shape


@pytest.mark.parametrize("shape", [(2,), (2, 3), (0,)])
def test_implicit_gradient_refused_for_other_outputs(shape):
    x = leaf(np.ones(shape))
    y = x * 2.0
    with pytest.raises(RuntimeError, match="single-element") as info:
        y.backward()
    assert str(shape) in str(info.value)
    assert x.grad is None


def test_explicit_gradient_is_a_vector_jacobian_product():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    v = np.array([0.5, -1.0, 2.0])
    y.backward(v)
    np.testing.assert_array_equal(x.grad.data, v * 2 * x.data)
    x.grad = None
    (x * x).backward(Tensor(v))
    np.testing.assert_array_equal(x.grad.data, v * 2 * x.data)


def test_backward_on_a_leaf():
    x = leaf(2.0)
    x.backward()
    assert x.grad.item() == 1.0
    v = leaf([1.0, 2.0])
    v.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(v.grad.data, [3.0, 4.0])


def test_float32_seed_keeps_float32_gradients():
    """A float64 gradient= for a float32 output is cast, as the output's dtype rules (torch refuses mismatches)."""
    x = Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    x.backward(Tensor([1.0, 1.0]))
    assert x.grad.dtype == np.float32
    h = x * 2.0
    h.retain_grad()
    h.backward(np.array([1.0, 1.0]))
    assert h.grad.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_gradient_of_wrong_shape_is_refused():
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        (x * 2.0).backward(np.ones(2))


# ---- accumulation, fan-out, diamonds -----------------------------------------------------------------------------


def test_leaf_grad_accumulates_across_backward_calls():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    first = x.grad.data.copy()
    np.testing.assert_array_equal(first, 2 * x.data)
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data + 3.0)
    x.grad = None  # zeroing is the user's job, as in PyTorch
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_later_gradients_accumulate_into_the_same_grad_object_as_torch():
    x = leaf([1.0, 2.0])
    (x * 2.0).sum().backward()
    g = x.grad
    (x * 1.0).sum().backward()
    assert x.grad is g  # torch's AccumulateGrad adds in place outside create_graph
    np.testing.assert_array_equal(g.data, [3.0, 3.0])


def test_accumulating_into_one_grad_leaves_a_grad_that_shared_its_first_array_alone():
    x, z = leaf([1.0, 2.0]), leaf([5.0, 6.0])
    (x + z).sum().backward()  # Add hands x and z the same gradient array
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    np.testing.assert_array_equal(z.grad.data, [1.0, 1.0])


def test_fan_out_and_diamonds():
    a = leaf(2.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad.item() == 4.0

    x = leaf(1.5)
    (x * x * x).backward()
    assert x.grad.item() == pytest.approx(3 * 1.5**2, rel=1e-15)

    x = leaf([0.3, -0.7])
    y = x * 3.0
    z = y.exp() + y * y  # y feeds two branches that meet again
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.exp(3 * x.data) + 18 * x.data, rtol=1e-14)


def test_shared_subgraph_visited_once_per_backward():
    x = leaf(1.0)
    y = x * 2.0
    for _ in range(20):  # 2**20 paths from the top to x: a naive recursion would walk each of them
        y = y + y
    y.backward()
    assert x.grad.item() == 2.0 * 2**20


def test_deep_chain_has_no_recursion_error():
    x = leaf(1.0)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 1.0
    assert y.item() == 50_001.0
    assert sys.getrecursionlimit() < 100_000
    y.backward()
    assert x.grad.item() == 1.0
    ref = weakref.ref(y)
    del y  # freeing the chain must not recurse either
    gc.collect()
    assert ref() is None


def test_deep_chain_of_mixed_ops():
    x = leaf(0.5)
    y = x
    for _ in range(5_000):  # 20,000 ops, 5,000 deep on the identity path
        y = (y * 1.0).sigmoid() * 0.0 + y  # sigmoid branch contributes 0 gradient; the identity branch 1
    y.backward()
    assert x.grad.item() == 1.0


# ---- non-leaves and retain_grad ----------------------------------------------------------------------------------


def test_non_leaves_keep_no_grad_unless_retained():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y * y
    z.sum().backward()
    assert y.grad is None and z.grad is None
    assert not y.is_leaf and x.is_leaf

    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    z = y * y
    z.sum().backward()
    np.testing.assert_array_equal(y.grad.data, 2 * y.data)
    np.testing.assert_array_equal(x.grad.data, 2 * y.data * 3.0)
    assert y.grad.grad_fn is None and not y.grad.requires_grad


def test_retain_grad_on_leaf_is_harmless():
    x = leaf([1.0])
    x.retain_grad()
    (x * 2.0).sum().backward()
    assert x.grad.item() == 2.0


# ---- retain_graph ------------------------------------------------------------------------------------------------


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data)  # the failed call added nothing


def test_intermediate_reused_after_backward_raises():
    x = leaf([1.0, 2.0])
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (h * 2.0).sum().backward()


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (2 * x.data * np.exp(x.data**2)), rtol=1e-14)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


# ---- garbage -----------------------------------------------------------------------------------------------------


def _graph_refs():
    x = leaf(np.ones((3, 3)))
    w = leaf(np.ones((3, 2)))
    h = (x @ w).sigmoid()
    y = (h * h).mean()
    refs = [weakref.ref(t) for t in (h, y)] + [weakref.ref(t.grad_fn) for t in (h, y)]
    refs.append(weakref.ref(y.grad_fn.inputs[0].grad_fn))  # the Mul node
    refs.append(weakref.ref(h.grad_fn.inputs[0]))  # the MatMul output
    return x, w, h, y, refs


def test_no_tensor_or_node_alive_after_backward_and_del():
    x, w, h, y, refs = _graph_refs()
    y.backward()
    del h, y
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    assert x.grad is not None and w.grad is not None


def test_graph_freed_by_reference_counting_alone():
    """No reference cycles in the graph: freed even with the cycle collector off."""
    gc.collect()
    gc.disable()
    try:
        x, w, h, y, refs = _graph_refs()
        h.retain_grad()
        h.register_hook(lambda g: g * 1.0)
        y.backward()
        del h, y
        assert [r() for r in refs] == [None] * len(refs)
    finally:
        gc.enable()


def test_no_tensor_alive_after_create_graph_and_del():
    x = leaf([1.0, 2.0])
    y = (x * x).exp().sum()
    (g,) = tl.grad(y, x, create_graph=True)
    (g * g).sum().backward()
    refs = [weakref.ref(y), weakref.ref(g), weakref.ref(y.grad_fn), weakref.ref(g.grad_fn)]
    del y, g
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    assert x.grad is not None and x.grad.grad_fn is None  # a plain backward leaves no graph in .grad


def test_saved_arrays_released_after_backward():
    x = leaf(np.ones(1000))
    big = x * 2.0
    y = (big * big).sum()
    node = y.grad_fn.inputs[0].grad_fn  # the Mul node, which saved both operands
    assert len(node.saved_tensors) == 2
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        _ = node.saved_tensors


# ---- grad modes --------------------------------------------------------------------------------------------------


def test_no_grad_context_and_enable_grad_nested():
    x = leaf([1.0])
    assert tl.is_grad_enabled()
    with tl.no_grad():
        assert not tl.is_grad_enabled()
        y = x * 2.0
        assert not y.requires_grad and y.grad_fn is None
        with tl.enable_grad():
            assert tl.is_grad_enabled()
            z = x * 2.0
            assert z.requires_grad and z.grad_fn is not None
            with tl.no_grad():
                assert not (x * 2.0).requires_grad
            assert tl.is_grad_enabled()
        assert not tl.is_grad_enabled()
    assert tl.is_grad_enabled()
    assert (x * 2.0).requires_grad
    z.sum().backward()
    assert x.grad.item() == 2.0


def test_grad_modes_as_decorators():
    x = leaf([1.0])

    @tl.no_grad()
    def frozen(t):
        assert not tl.is_grad_enabled()
        return t * 2.0

    @tl.enable_grad()
    def live(t):
        assert tl.is_grad_enabled()
        return t * 2.0

    @tl.no_grad  # bare, as torch allows
    def bare(t):
        return t * 2.0

    @tl.enable_grad
    def bare_live(t):
        return t * 2.0

    assert frozen.__name__ == "frozen" and bare.__name__ == "bare"
    assert not frozen(x).requires_grad
    assert not bare(x).requires_grad and tl.is_grad_enabled()
    with tl.no_grad():
        assert bare_live(x).requires_grad
    assert tl.is_grad_enabled()
    with tl.no_grad():
        assert live(x).requires_grad
        assert not tl.is_grad_enabled()
    assert frozen(x).data[0] == 2.0


def test_grad_modes_restored_on_exceptions():
    with pytest.raises(ValueError):
        with tl.no_grad():
            raise ValueError("boom")
    assert tl.is_grad_enabled()

    @tl.no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert tl.is_grad_enabled()

    with tl.no_grad():
        with pytest.raises(ValueError):
            with tl.enable_grad():
                raise ValueError("boom")
        assert not tl.is_grad_enabled()
    assert tl.is_grad_enabled()


def test_grad_mode_is_thread_local():
    x = leaf([1.0, 2.0])
    inside = threading.Event()
    done = threading.Event()
    seen = {}

    def worker():
        with tl.no_grad():
            seen["worker_enabled"] = tl.is_grad_enabled()
            seen["worker_requires_grad"] = (x * 2.0).requires_grad
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(10)
    try:
        # the worker is inside no_grad right now; this thread still records
        assert tl.is_grad_enabled()
        y = (x * 3.0).sum()
        assert y.requires_grad
        y.backward()
    finally:
        done.set()
        thread.join(10)
    assert seen == {"worker_enabled": False, "worker_requires_grad": False}
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])

    # and a thread started while this one is under no_grad records by default
    result = {}
    with tl.no_grad():
        t = threading.Thread(target=lambda: result.update(enabled=tl.is_grad_enabled(), rg=(x * 2.0).requires_grad))
        t.start()
        t.join(10)
    assert result == {"enabled": True, "rg": True}


# ---- detach, requires_grad_ --------------------------------------------------------------------------------------


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    d.data[0] = 100.0
    assert y.data[0] == 100.0
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, d.data)  # d is a constant: no gradient flows through it


def test_requires_grad_():
    x = Tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])
    x.requires_grad_(False)
    assert not (x * 2.0).requires_grad
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)
    with pytest.raises(TypeError, match="floating"):
        Tensor([1, 2], dtype=np.int64).requires_grad_()


# ---- hooks -------------------------------------------------------------------------------------------------------


def test_leaf_hook_sees_and_replaces_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.data.copy()) or g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert len(seen) == 1


def test_hook_returning_none_keeps_gradient_and_hooks_chain():
    x = leaf([1.0])
    calls = []
    x.register_hook(lambda g: calls.append("first"))
    x.register_hook(lambda g: g + 1.0)
    x.register_hook(lambda g: calls.append(g.item()) or g * 2.0)
    (x * 5.0).sum().backward()
    assert calls == ["first", 6.0]
    assert x.grad.item() == 12.0


def test_non_leaf_hook_modifies_gradient_flowing_to_leaves():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    seen = []
    handle = y.register_hook(lambda g: seen.append(g.data.copy()) or g * 0.5)
    (y * y).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(seen[0], 2 * y.data)
    np.testing.assert_array_equal(x.grad.data, 0.5 * 2 * y.data * 2.0)
    handle.remove()
    x.grad = None
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])
    assert len(seen) == 1


def test_hook_with_wrong_shape_is_an_error():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: np.ones(3))
    with pytest.raises(RuntimeError, match="shape"):
        (x * 1.0).sum().backward()


def test_hook_on_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(lambda g: g)


def test_a_hook_that_edits_its_gradient_in_place_leaves_the_other_inputs_gradient_alone():
    """x + w hands both inputs one gradient: torch's w.grad stays [1, 3] when y's hook multiplies its own."""
    x, w = Tensor([1.0, 2.0], requires_grad=True), Tensor([1.0, 1.0], requires_grad=True)
    y = x * 1
    y.register_hook(lambda g: g.mul_(10))
    ((y + w) * np.array([1.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [10.0, 30.0] and w.grad.tolist() == [1.0, 3.0]
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([1.0, 1.0], requires_grad=True)
    a.register_hook(lambda g: g.mul_(10))  # a leaf's hook too (where torch changes b's: README's differences)
    (a + b).sum().backward()
    assert a.grad.tolist() == [10.0, 10.0] and b.grad.tolist() == [1.0, 1.0]


def test_backward_with_create_graph_records_the_grad_even_inside_no_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    with tl.no_grad():
        y.backward(create_graph=True)  # as torch: create_graph decides, not the surrounding mode
    assert x.grad.requires_grad and x.grad.tolist() == [3.0, 12.0]
    second = tl.grad(x.grad.sum(), x)[0]
    assert second.tolist() == [6.0, 12.0]


def test_a_grad_of_another_shape_set_by_hand_is_refused_by_the_next_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.grad = Tensor([[10.0], [20.0]])
    with pytest.raises(RuntimeError, match=r"\.grad has shape \(2, 1\), but the tensor's gradient has shape \(2,\)"):
        (x * 2).sum().backward()
    assert x.grad.shape == (2, 1)  # left as it was, not broadcast to (2, 2)


def test_a_leaf_that_stopped_requiring_grad_after_the_graph_was_made_gets_no_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.requires_grad_(False)
    y.backward()
    assert x.grad is None  # as torch
