"""Shared by the tests that take torch as their oracle: a torch leaf from values, and our tensor against torch's."""

import numpy as np
import torch


def tleaf(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def assert_same(ours, theirs):
    """Our tensor against torch's: same shape, values equal to 1e-12 (NaN where torch has NaN)."""
    expected = theirs.detach().numpy()
    assert ours.shape == tuple(expected.shape)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12, atol=1e-15, equal_nan=True)
