"""Shared by the tests that take torch as their oracle: a torch leaf from values, and our tensor against torch's."""

import numpy as np
import pytest
import torch


def tleaf(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def assert_same(ours, theirs):
    """Our tensor against torch's: same shape, values equal to 1e-12 (NaN where torch has NaN)."""
    expected = theirs.detach().numpy()
    assert ours.shape == tuple(expected.shape)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12, atol=1e-15, equal_nan=True)


@pytest.fixture(autouse=True)
def torch_in_float64():
    """torch's layers and tensors in float64 for a module's comparisons, restored after each test (set at import,
    it would change torch's default for every test module of the session). Importing it applies it."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
