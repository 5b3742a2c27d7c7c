"""Gradient checking for tinygrad_lab code, ours and yours: finite differences, gradcheck, gradgradcheck,
and hypothesis strategies that draw inputs away from kinks and domain edges.

    from tinygrad_lab.testing import gradcheck
    x = tl.Tensor.randn(3, 4, requires_grad=True)
    assert gradcheck(lambda t: (t * t).sigmoid().sum(axis=0), [x])

Defaults and meaning follow torch.autograd.gradcheck: central differences with eps=1e-6, and the check
|analytical - numerical| <= atol + rtol * |numerical| element by element, with atol=1e-5 and rtol=1e-3.
"""

from tinygrad_lab.testing.check_backprop import BackpropCheck, BackpropCheckError, assert_backprop, check_backprop
from tinygrad_lab.testing.gradcheck import (
    GradcheckError,
    analytical_jacobian,
    gradcheck,
    gradgradcheck,
    numerical_jacobian,
)
from tinygrad_lab.testing.strategies import (
    arrays,
    broadcastable_shapes,
    elements,
    positive_elements,
    shapes,
    tensors,
)

__all__ = [
    "BackpropCheck",
    "BackpropCheckError",
    "assert_backprop",
    "check_backprop",
    "GradcheckError",
    "analytical_jacobian",
    "gradcheck",
    "gradgradcheck",
    "numerical_jacobian",
    "arrays",
    "broadcastable_shapes",
    "elements",
    "positive_elements",
    "shapes",
    "tensors",
]
