"""The lab's datasets as the lab defines them, the toy sets, and the task registry."""

import numpy as np
import pytest

from tinygrad_lab.lab import data


def lab_generate_xor_easy():
    """The lab's own loop (with its float test for the centre point), independent of tinygrad_lab.lab.data."""
    inputs, labels = [], []
    for i in range(11):
        inputs.append([0.1 * i, 0.1 * i])
        labels.append(0)
        if 0.1 * i == 0.5:
            continue
        inputs.append([0.1 * i, 1 - 0.1 * i])
        labels.append(1)
    return np.array(inputs), np.array(labels).reshape(21, 1)


def test_linear_shapes_dtypes_and_range():
    x, y = data.generate_linear(100, rng=0)
    assert x.shape == (100, 2) and y.shape == (100, 1)
    assert x.dtype == np.float64 and y.dtype == np.float64
    assert x.min() >= 0.0 and x.max() < 1.0
    assert set(np.unique(y)) <= {0.0, 1.0}


def test_linear_label_rule_is_the_labs():
    x, y = data.generate_linear(500, rng=np.random.default_rng(3))
    expected = [0 if pt[0] > pt[1] else 1 for pt in x]  # the lab's loop
    assert y.ravel().tolist() == expected
    assert 0 < y.sum() < 500  # both classes occur


def test_linear_is_uniform_on_the_square():
    x, _ = data.generate_linear(20000, rng=1)
    assert np.allclose(x.mean(axis=0), 0.5, atol=0.01)
    assert np.allclose(x.var(axis=0), 1 / 12, atol=0.005)


def test_linear_seeding():
    a = data.generate_linear(50, rng=7)
    b = data.generate_linear(50, rng=np.random.default_rng(7))
    c = data.generate_linear(50, rng=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert data.generate_linear(3, rng=0)[0].shape == (3, 2)


def test_linear_default_rng_follows_manual_seed():
    import tinygrad_lab as tl

    tl.manual_seed(5)
    a = data.generate_linear(10)
    tl.manual_seed(5)
    b = data.generate_linear(10)
    assert np.array_equal(a[0], b[0])


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_linear_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n must be an integer"):
        data.generate_linear(n, rng=0)


def test_bad_rng_type():
    with pytest.raises(TypeError, match="rng must be"):
        data.generate_linear(5, rng="seed")


def test_xor_easy_is_the_labs():
    x, y = data.generate_xor_easy()
    lab_x, lab_y = lab_generate_xor_easy()
    assert x.shape == (21, 2) and y.shape == (21, 1)
    assert x.dtype == np.float64 and y.dtype == np.float64
    assert np.array_equal(x, lab_x)
    assert np.array_equal(y, lab_y)


def test_xor_easy_structure():
    x, y = data.generate_xor_easy()
    # interleaved: the diagonal point of step i, then its anti-diagonal partner
    assert x[:3].tolist() == [[0.0, 0.0], [0.0, 1.0], [0.1, 0.1]]
    assert y[:3].ravel().tolist() == [0, 1, 0]
    zeros, ones = x[y.ravel() == 0], x[y.ravel() == 1]
    assert len(zeros) == 11 and len(ones) == 10
    assert np.allclose(zeros[:, 0], zeros[:, 1])  # diagonal
    assert np.allclose(ones[:, 0] + ones[:, 1], 1.0)  # anti-diagonal
    assert not np.any(np.all(np.isclose(ones, 0.5), axis=1))  # the centre appears once, labelled 0


@pytest.mark.parametrize("name", ["circle", "spiral", "moons"])
def test_toy_sets(name):
    fn = getattr(data, name)
    x, y = fn(300, rng=0)
    assert x.shape == (300, 2) and y.shape == (300, 1)
    assert x.dtype == np.float64 and y.dtype == np.float64
    assert set(np.unique(y)) == {0.0, 1.0}
    assert 0.3 < y.mean() < 0.7  # roughly balanced
    x2, y2 = fn(300, rng=0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, fn(300, rng=1)[0])
    assert np.all(np.abs(x - 0.5) < 1.0)  # about the unit square, like the lab's tasks


def test_circle_labels_follow_the_radius():
    x, y = data.circle(1000, rng=2)
    r = np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5)
    assert np.all(r[y.ravel() == 1] < r[y.ravel() == 0].min())


def test_spiral_and_moons_alternate_labels():
    for fn in (data.spiral, data.moons):
        _, y = fn(10, rng=0)
        assert y.ravel().tolist() == [0, 1] * 5


def test_load_task_registry():
    assert set(data.TASKS) == {"linear", "xor", "circle", "spiral", "moons", "digits"}
    x, y = data.load_task("linear", rng=0)
    assert x.shape == (100, 2)
    assert np.array_equal(x, data.generate_linear(100, rng=0)[0])
    assert np.array_equal(data.load_task("xor")[0], data.generate_xor_easy()[0])
    assert data.load_task("moons", rng=0, n=50)[0].shape == (50, 2)
    with pytest.raises(ValueError, match="unknown task 'nope'.*linear, xor"):
        data.load_task("nope")
    with pytest.raises(ValueError, match="21 points"):
        data.load_task("xor", n=30)
