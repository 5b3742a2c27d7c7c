"""The digits CNN's recipe, defined once in the lab's config: 5x5 kernels padded to keep the image's size, the
model file that records them (older files, without, are 3x3), and benchmarks/digits.py's PyTorch twin, which
reads the same recipe and is the same network as the lab's."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tinygrad_lab as tl
from tinygrad_lab.lab import config, data, runs
from tinygrad_lab.lab.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package of the repo, not of the installed project
    sys.path.insert(0, str(ROOT))

from benchmarks import digits as twin  # noqa: E402


def digits_spec(**changes):
    x, y = data.load_task("digits")
    return config.run_spec(TrainConfig.for_task("digits", "cnn", **changes), x, y)


def test_the_cnn_keeps_the_image_size_through_each_5x5_conv():
    spec = digits_spec()
    assert spec["kernel_size"] == config.CNN_KERNEL_SIZE == 5
    model = config.build_model(spec, np.random.default_rng(0))
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {
        "conv1.weight": (16, 1, 5, 5),
        "conv1.bias": (16,),
        "conv2.weight": (32, 16, 5, 5),
        "conv2.bias": (32,),
        "fc.weight": (10, 32 * 2 * 2),  # 8x8 -> pool -> 4x4 -> pool -> 2x2: padding 2 keeps each conv's size
        "fc.bias": (10,),
    }
    assert model(tl.Tensor(data.load_test("digits")[0][:3])).shape == (3, 10)


def test_a_spec_without_kernel_size_is_an_older_3x3_cnn():
    spec = {k: v for k, v in digits_spec().items() if k != "kernel_size"}
    model = config.build_model(spec, np.random.default_rng(0))
    assert model.state_dict()["conv2.weight"].shape == (32, 16, 3, 3)
    assert model.state_dict()["fc.weight"].shape == (10, 128)


@pytest.mark.parametrize("kernel", [4, 0, 17, "5", True, 2.5])
def test_a_kernel_size_that_cannot_keep_the_size_is_named(kernel):
    problems = config.MODELS["cnn"].problems({**digits_spec(), "kernel_size": kernel})
    assert problems == [f"the CNN's kernel size must be an odd integer from 1 to 15, got {kernel!r}"]


def test_predict_refuses_a_file_with_a_bad_kernel_size(tmp_path):
    run = runs.run(TrainConfig.for_task("digits", "cnn", epochs=1), quiet=True)
    good = tmp_path / "good.npz"
    runs.save_run(good, run)
    with np.load(good) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["__meta__"]))
    assert meta["model"]["kernel_size"] == 5
    assert runs.load_model(good)[0].state_dict()["conv1.weight"].shape == (16, 1, 5, 5)
    meta["model"]["kernel_size"] = 6
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(Exception, match="kernel size must be an odd integer from 1 to 15, got 6") as err:
        runs.load_model(tmp_path / "bad.npz")
    assert type(err.value).__name__ == "ModelFileError"


def test_the_twin_reads_its_recipe_from_the_labs_config():
    assert twin.recipe(3, None) == TrainConfig.for_task("digits", "cnn", seed=3)
    assert twin.recipe(3, 2).epochs == 2


def test_the_pytorch_twin_is_the_labs_cnn():
    """Same layers, keys and shapes; with the lab's weights loaded, the same logits on the test images."""
    spec = digits_spec()
    mine = config.build_model(spec, np.random.default_rng(0))
    theirs = twin.torch_cnn(spec)
    state = mine.state_dict()
    names = {"0": "conv1", "3": "conv2", "7": "fc"}  # the layers with parameters, by their place in Sequential
    torch_shapes = {
        f"{names[k.split('.')[0]]}.{k.split('.')[1]}": tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    assert torch_shapes == {k: tuple(v.shape) for k, v in state.items()}
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in zip(theirs.state_dict(), state.values())})
    x = data.load_test("digits")[0]
    with torch.no_grad():
        expected = theirs(torch.from_numpy(np.array(x))).numpy()
    # float32 logits of a few hundred products each: the two sum in different orders
    np.testing.assert_allclose(mine(tl.Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)
