"""Helpers shared by the engine's op and autograd tests: float64 leaves, and the gradient checks at the toolkit's
defaults over small drawn shapes."""

import numpy as np
from hypothesis import settings

import tinygrad_lab as tl
from tinygrad_lab import testing as tt
from tinygrad_lab.testing import gradcheck, gradgradcheck

# Sizes stay small: a full Jacobian costs two evaluations per input element (and gradgradcheck doubles
# the inputs and differentiates a recorded backward).
SMALL = tt.shapes(max_dims=3, max_side=3)
PAIRS = tt.broadcastable_shapes(2, max_dims=3, max_side=3)
GG = settings(max_examples=12)  # tests that also run gradgradcheck


def leaf(a) -> tl.Tensor:
    """A float64 leaf that requires grad."""
    return tl.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, *inputs, second=True):
    """gradcheck (and gradgradcheck) with the toolkit's defaults: eps 1e-6, atol 1e-5, rtol 1e-3."""
    assert gradcheck(fn, inputs)
    if second:
        assert gradgradcheck(fn, inputs)
