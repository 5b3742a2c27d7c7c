"""Minibatches and real data: nn.DataLoader, fit with batch_size and a validation set, the digits task and its
fixed split, the IDX reader behind load_mnist (on files written here), and cross_entropy's bad targets."""

import gzip
import io
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, optim
from tinygrad_lab.lab import data, train

# ---- DataLoader -----------------------------------------------------------------------------------------------------


def rows(n=10):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    return x, np.arange(n)


def test_batches_cover_every_row_once_per_pass_with_a_smaller_last_batch():
    x, y = rows(10)
    loader = nn.DataLoader(x, y, batch_size=4, rng=0)
    assert len(loader) == 3
    for _ in range(2):
        batches = list(loader)
        assert [len(b) for b, _ in batches] == [4, 4, 2]
        seen = np.concatenate([yb for _, yb in batches])
        assert sorted(seen.tolist()) == list(range(10))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb, x[yb])  # rows stay paired with their labels


def test_drop_last_leaves_out_the_short_batch():
    x, y = rows(10)
    loader = nn.DataLoader(x, y, batch_size=4, drop_last=True, rng=0)
    assert len(loader) == 2
    batches = list(loader)
    assert [len(yb) for _, yb in batches] == [4, 4]
    assert len(set(np.concatenate([yb for _, yb in batches]).tolist())) == 8
    short = nn.DataLoader(x, y, batch_size=11, drop_last=True)
    assert len(short) == 0 and list(short) == []


def order(loader):
    return [tuple(yb.tolist()) for _, yb in loader]


def test_the_seed_fixes_the_sequence_of_epochs_and_each_epoch_reshuffles():
    x, y = rows(20)
    a, b = nn.DataLoader(x, y, 5, rng=7), nn.DataLoader(x, y, 5, rng=np.random.default_rng(7))
    first_a, second_a = order(a), order(a)
    assert first_a == order(b) and second_a == order(b)
    assert first_a != second_a  # re-shuffled each pass
    assert order(nn.DataLoader(x, y, 5, rng=8)) != first_a
    tl.manual_seed(3)
    c = order(nn.DataLoader(x, y, 5))
    tl.manual_seed(3)
    assert order(nn.DataLoader(x, y, 5)) == c  # rng None: the generator tl.manual_seed sets


def test_without_shuffle_the_batches_come_in_order():
    x, y = rows(7)
    assert order(nn.DataLoader(x, y, 3, shuffle=False)) == [(0, 1, 2), (3, 4, 5), (6,)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(x=np.zeros((5, 2)), y=np.zeros(4), batch_size=2), r"same number of rows, got shapes \(5, 2\) and \(4,\)"),
        (dict(x=np.zeros((5, 2)), y=np.zeros(5), batch_size=0), "batch_size must be an integer >= 1, got 0"),
        (dict(x=np.zeros((5, 2)), y=np.zeros(5), batch_size=2.5), "batch_size must be an integer >= 1, got 2.5"),
    ],
)
def test_bad_loader_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.DataLoader(**kwargs)


# ---- fit with minibatches and a validation set ----------------------------------------------------------------------


def classifier(seed=0):
    return nn.MLP(2, (8,), 2, activation="tanh", out_activation="none", rng=np.random.default_rng(seed))


def labelled_moons(n=60):
    x, y = data.moons(n, rng=1)
    return x, y.reshape(-1).astype(np.int64)


def test_one_batch_of_everything_is_full_batch_training():
    x, y = data.moons(40, rng=0)
    hist = {}
    for batch in (None, 40):
        model = nn.MLP(2, (4,), 1, rng=np.random.default_rng(0))
        hist[batch] = train.fit(
            model,
            x,
            y,
            loss=F.mse_loss,
            optimizer=optim.SGD(model.parameters(), lr=0.5),
            epochs=30,
            batch_size=batch,
            rng=0,
            quiet=True,
            compile=False,
        )
    np.testing.assert_allclose(hist[40].loss, hist[None].loss, rtol=1e-12)  # a shuffled batch: same mean
    np.testing.assert_allclose(hist[40].accuracy, hist[None].accuracy)
    assert hist[None].batch_size is None and hist[40].batch_size == 40


def test_minibatches_make_one_update_per_batch_and_log_the_validation_accuracy():
    x, y = labelled_moons(60)
    xv, yv = labelled_moons(30)
    model = classifier()
    opt = optim.Adam(model.parameters(), lr=0.05)
    steps = []
    real_step = opt.step
    opt.step = lambda: steps.append(1) or real_step()
    out = io.StringIO()
    hist = train.fit(
        model,
        x,
        y,
        loss=F.cross_entropy,
        optimizer=opt,
        epochs=4,
        batch_size=16,
        validation=(xv, yv),
        val_name="test",
        rng=0,
        log_every=1,
        out=out,
        compile=False,  # counts the Python calls of opt.step; a replay makes none (its equality is tested below)
    )
    assert len(steps) == 4 * 4  # 60 rows in batches of 16: 4 batches per epoch
    assert len(hist.val_accuracy) == 4
    _, acc, _ = train.evaluate(model, xv, yv, F.cross_entropy)
    assert hist.final_val_accuracy == hist.val_accuracy[-1] == acc
    lines = out.getvalue().splitlines()
    assert lines[3] == train.format_log_line(4, hist.loss[3], hist.accuracy[3], hist.val_accuracy[3], "test")
    assert lines[3].endswith(f" test acc(%) : {train.format_accuracy(acc)}")
    assert lines[-1] == f"Test accuracy(%): {train.format_accuracy(acc)}"
    d = hist.to_dict()
    assert d["val_accuracy"] == hist.val_accuracy and train.History.from_dict(d).val_accuracy == hist.val_accuracy


def test_the_same_seed_gives_the_same_minibatch_run():
    x, y = labelled_moons(50)
    losses = []
    for seed in (0, 0, 1):
        model = classifier()
        opt = optim.SGD(model.parameters(), lr=0.1)
        losses.append(
            train.fit(
                model, x, y, loss=F.cross_entropy, optimizer=opt, epochs=3, batch_size=8, rng=seed, quiet=True
            ).loss
        )
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_bad_batch_sizes_and_row_counts():
    x, y = labelled_moons(20)
    model = classifier()
    with pytest.raises(ValueError, match="batch_size must be None .* got 0"):
        train.fit(
            model, x, y, loss=F.cross_entropy, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=0
        )
    with pytest.raises(ValueError, match=r"x has shape \(20, 2\) but y has shape \(19,\)"):
        train.fit(model, x, y[:19], loss=F.cross_entropy, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1)


def test_a_non_integer_target_to_cross_entropy_names_both_shapes():
    logits = tl.Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: logits have shape \(4, 3\) and targets of shape \(4,\) "
        r"have dtype float64: class indices must be integers",
    ):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0, 1.0]))
    x, y = labelled_moons(20)
    model = classifier()
    with pytest.raises(ValueError, match=r"logits have shape \(8, 2\) and targets of shape \(8,\) have dtype float64"):
        train.fit(
            model,
            x,
            y.astype(np.float64) + 0.5,
            loss=F.cross_entropy,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            batch_size=8,
            quiet=True,
        )


# ---- the digits -----------------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range():
    x, y = data.load_task("digits")
    xt, yt = data.load_test("digits")
    assert x.shape[1:] == xt.shape[1:] == (1, 8, 8) and len(x) + len(xt) == 1797
    assert x.dtype == xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))
    assert data.load_test("xor") is None
    with pytest.raises(ValueError, match="fixed training set"):
        data.load_task("digits", n=100)


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = data.load_task("digits")
    xt, yt = data.load_test("digits")
    train_idx, test_idx = data.stratified_split(bunch.target, data.DIGITS_TEST_FRACTION, data.DIGITS_SPLIT_SEED)
    mean, std = bunch.data[train_idx].mean(), bunch.data[train_idx].std()
    # float32 holds the standardized pixels (at most (16 - mean) / std, about 1.85) to within 2e-7
    np.testing.assert_allclose(x.reshape(len(x), -1), (bunch.data[train_idx] - mean) / std, rtol=0, atol=2e-7)
    np.testing.assert_allclose(xt.reshape(len(xt), -1), (bunch.data[test_idx] - mean) / std, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(y, bunch.target[train_idx])
    np.testing.assert_array_equal(yt, bunch.target[test_idx])


def test_the_digits_are_standardized_with_the_training_pixels_only():
    from sklearn.datasets import load_digits

    pixels = load_digits().data
    x, _ = data.load_task("digits")
    xt, _ = data.load_test("digits")
    mean, std = data.digits_standardization()
    train_idx, test_idx = data.stratified_split(load_digits().target, 0.2, data.DIGITS_SPLIT_SEED)
    assert (mean, std) == pytest.approx((pixels[train_idx].mean(), pixels[train_idx].std()), rel=1e-12)
    assert mean != pytest.approx(pixels.mean(), rel=1e-6)  # the test images' pixels are not in it
    assert abs(float(x.mean(dtype=np.float64))) < 1e-6 and float(x.std(dtype=np.float64)) == pytest.approx(1, rel=1e-6)
    assert abs(float(xt.mean(dtype=np.float64))) > 1e-3  # the test set is not standardized on its own


def test_the_split_is_stratified_disjoint_and_deterministic():
    labels = np.repeat(np.arange(4), [50, 31, 7, 12])
    train_idx, test_idx = data.stratified_split(labels, 0.2, 5)
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.union1d(train_idx, test_idx), np.arange(len(labels)))
    assert np.bincount(labels[test_idx]).tolist() == [10, 6, 1, 2]  # round(0.2 x each class)
    again = data.stratified_split(labels, 0.2, 5)
    assert np.array_equal(again[1], test_idx)
    assert not np.array_equal(data.stratified_split(labels, 0.2, 6)[1], test_idx)
    _, yt = data.load_test("digits")
    _, y = data.load_task("digits")
    fractions = np.bincount(yt) / (np.bincount(yt) + np.bincount(y))
    assert np.all(np.abs(fractions - 0.2) < 0.01)


def test_without_scikit_learn_the_digits_name_the_extra(tmp_path):
    stub = tmp_path / "stubs" / "sklearn"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError(\"No module named 'sklearn'\")\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "stubs"), os.environ.get("PYTHONPATH", "")]))
    code = "from tinygrad_lab.lab import data\ntry:\n data.load_task('digits')\nexcept ImportError as e:\n print(e)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout == (
        "the digits task needs scikit-learn, which is not installed: pip install 'tinygrad-lab[data]'\n"
    )


# ---- IDX files and MNIST --------------------------------------------------------------------------------------------


def idx_bytes(array, code=0x08):
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write(path, payload, gz=False):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def mnist_folder(folder, n_train=5, n_test=3, gz=False, rng=0):
    gen = np.random.default_rng(rng)
    arrays = {
        "train-images-idx3-ubyte": gen.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": gen.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": gen.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": gen.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(exist_ok=True)
    for name, array in arrays.items():
        write(folder / name, idx_bytes(array), gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_the_four_idx_files(tmp_path, gz):
    arrays = mnist_folder(tmp_path / "mnist", gz=gz)
    x, y, xt, yt = data.load_mnist(tmp_path / "mnist")
    assert x.shape == (5, 1, 28, 28) and xt.shape == (3, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(np.rint(x[:, 0] * 255), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(np.rint(xt[:, 0] * 255), arrays["t10k-images-idx3-ubyte"])
    assert y.dtype == np.int64 and y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert yt.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_read_idx_other_types(tmp_path):
    a = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    got = data.read_idx(write(tmp_path / "a.idx", idx_bytes(a, 0x0C)))
    assert got.dtype == np.int32 and got.tolist() == a.tolist()


def test_a_missing_file_names_it_and_where_mnist_comes_from(tmp_path):
    mnist_folder(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DatasetError) as err:
        data.load_mnist(tmp_path / "m")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'm'}: has no t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)")
    assert "yann.lecun.com/exdb/mnist" in message and "\n" not in message
    with pytest.raises(data.DatasetError, match="is not a folder"):
        data.load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x08\x03\x00\x00" + bytes(20), "not an IDX file (its first bytes are 08030000"),
        (b"", "not an IDX file (its first bytes are missing"),
        (
            b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 28, 28) + bytes(100),
            "its header says shape (2, 28, 28) (1,568 bytes of data) but the file holds 100 bytes",
        ),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes(4), "holds more bytes"),
        (b"\x00\x00\x08\x03" + struct.pack(">2I", 4, 4), "truncated IDX header"),
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**31, 1), "over the limit"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_files_are_one_line_errors_naming_the_file(tmp_path, payload, reason, gz):
    path = write(tmp_path / "train-images-idx3-ubyte", payload, gz)
    with pytest.raises(data.DatasetError) as err:
        data.read_idx(path)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value) and "\n" not in str(err.value)


def test_a_file_that_is_not_gzip_behind_a_gz_name(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(b"plain bytes")
    with pytest.raises(data.DatasetError, match=f"{path.name}: cannot be read"):
        data.read_idx(path)


def test_labels_that_do_not_fit_the_images(tmp_path):
    arrays = mnist_folder(tmp_path / "m")
    write(tmp_path / "m" / "train-labels-idx1-ubyte", idx_bytes(arrays["train-labels-idx1-ubyte"][:4]))
    with pytest.raises(
        data.DatasetError,
        match=r"train-labels-idx1-ubyte: holds uint8 values of shape \(4,\), "
        r"expected unsigned bytes of shape \(5,\)",
    ):
        data.load_mnist(tmp_path / "m")


def test_minibatch_training_uses_the_captured_step_and_ends_where_eager_training_does():
    x, y = labelled_moons(70)  # batches of 16: four full ones and a last of 6, a second traced shape
    hist, weights = {}, {}
    for compile in (True, False):
        model = classifier()
        hist[compile] = train.fit(
            model,
            x,
            y,
            loss=F.cross_entropy,
            optimizer=optim.Adam(model.parameters(), lr=0.05),
            epochs=6,
            batch_size=16,
            rng=0,
            quiet=True,
            compile=compile,
        )
        weights[compile] = [p.data.copy() for p in model.parameters()]
    assert hist[True].compiled and hist[True].backend.startswith("numpy (")
    assert not hist[False].compiled and hist[False].backend == "eager"
    assert hist[True].loss == hist[False].loss and hist[True].accuracy == hist[False].accuracy
    for a, b in zip(weights[True], weights[False]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [None, 8], ids=["full batch", "minibatches"])
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("p", [0.9, 0.0], ids=["dropout", "no dropout"])
def test_fit_trains_in_training_mode_and_reports_from_eval_mode(batch_size, compile, p):
    """As a torch loop: model.train() while training, whatever mode the model came in, one running-statistics
    update per step; the final loss comes from eval mode (dropout off), the same on both paths. A model that
    draws dropout masks trains eagerly even when compile is asked for (a replay would repeat one mask)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), np.arange(8) % 2
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2, rng=rng), nn.Dropout(p, rng=rng)).eval()
    history = train.fit(
        model, x, y, loss=F.cross_entropy, optimizer=optim.SGD(model.parameters(), lr=0.0), epochs=3,
        batch_size=batch_size, quiet=True, compile=compile,
    )  # fmt: skip
    assert model.training and int(model[0].num_batches_tracked.data) == 3
    mean = np.zeros(3)
    for _ in range(3):  # lr 0: the same batch statistics every epoch
        mean = 0.9 * mean + 0.1 * x.mean(axis=0)
    np.testing.assert_allclose(model[0].running_mean.data, mean, rtol=1e-12)
    model.eval()
    with tl.no_grad():
        expected = float(F.cross_entropy(model(tl.tensor(x)), tl.tensor(y, dtype=np.int64)).data)
    np.testing.assert_allclose(history.final_loss, expected, rtol=1e-12)
