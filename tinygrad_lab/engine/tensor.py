"""``Tensor``: a numpy array that records the ops applied to it, so ``backward()`` can find gradients.

A scalar is a 0-d Tensor, so a micrograd-style expression of scalars and a batched MLP are the same kind of
graph. Every differentiable method below is one line that applies a ``Function`` from ops.py.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinygrad_lab.engine import torch_spellings as _torch
from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.array_methods import ArrayMethods
from tinygrad_lab.engine.autograd import RemovableHandle, no_grad, run_backward, seed_gradient
from tinygrad_lab.engine.autograd import state as _autograd_state
from tinygrad_lab.engine.factories import Factories, _shape_arg
from tinygrad_lab.engine.selection_methods import SelectionMethods
from tinygrad_lab.engine.torch_methods import TorchMethods

_FLOAT_KINDS = "f"
Axes = int | tuple | list | None  # the axes a reduction takes (None: all)
_NUMERIC_KINDS = "biuf"


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Numeric data as an owned ndarray: ints and bools become float64 unless a dtype is asked for."""
    if isinstance(data, Tensor):
        data = data._data
    if traceable.is_traced(data):
        return traceable.copy_array(
            data, dtype if dtype is not None else np.float64 if data.dtype.kind in "biu" else data.dtype
        )
    try:
        arr = np.array(data, dtype=dtype)
    except (ValueError, TypeError, RuntimeError) as err:  # RuntimeError: a Tensor that requires grad (__array__)
        reason = str(err)
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) and d.requires_grad for d in data):
            reason = "it holds Tensors that require grad, whose gradients it would drop (use tl.stack)"
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} {data!r:.80}: {reason}") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"Tensor: data must be numbers (scalars, nested lists, arrays), got {type(data).__name__} "
            f"{data!r:.80} (dtype {arr.dtype})"
        )
    if dtype is None and arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if traceable.active_tracer() is not None:  # tl.compile: each replay makes it again, from the array's values then
        return traceable.made_in_step(data if isinstance(data, np.ndarray) else arr, arr.dtype)
    return arr


class Tensor(ArrayMethods, Factories, TorchMethods, SelectionMethods):
    """An n-dimensional array with reverse-mode autodiff:
    ``Tensor(data, requires_grad=False, dtype=None, name=None)``."""

    __slots__ = ("_data", "grad", "requires_grad", "grad_fn", "name", "_hooks", "__weakref__")
    __array_priority__ = 1000

    # numpy functions on Tensors run Tensor ops (numpy_dispatch.py); Tensor's own operators never come here
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _dispatch.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return _dispatch.array_function(func, args, kwargs)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        arr = _to_array(data, dtype)
        if requires_grad and arr.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {arr.dtype}")
        self._data = arr
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn: Any = None
        self.name = name
        self._hooks: dict | None = None

    # Fast constructors for the op path: no conversion, no checks.
    @staticmethod
    def _make(data: np.ndarray, grad_fn: Any) -> Tensor:
        t = object.__new__(Tensor)
        t._data = data
        t.grad = None
        t.requires_grad = True
        t.grad_fn = grad_fn
        t.name = None
        t._hooks = None
        return t

    @staticmethod
    def _wrap(data: np.ndarray) -> Tensor:
        t = object.__new__(Tensor)
        t._data = data
        t.grad = None
        t.requires_grad = False
        t.grad_fn = None
        t.name = None
        t._hooks = None
        return t

    # ---- array attributes ------------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The values, an ndarray outside the graph; ``w.data = w.data - lr * w.grad`` stores new ones, as torch."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        if not isinstance(value, (Tensor, np.ndarray, np.generic)):
            raise TypeError(f"Tensor.data: assign a Tensor or an ndarray, got {type(value).__name__} {value!r:.80}")
        self._data = value._data if isinstance(value, Tensor) else np.asanyarray(value)  # a Tensor's is shared

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    # size, numpy's element count and torch's size(): torch_methods.py
    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        return _ops.Transpose.apply(self, axes=None)

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied)."""
        return self._data

    def item(self) -> float:
        if self._data.size != 1:
            raise ValueError(f"item(): only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self._data.item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.requires_grad and _autograd_state.grad_enabled:  # as torch: no silent exit from the graph
            raise _dispatch.dropped_gradient(self, "a numpy array")
        if copy:
            return self._data.astype(dtype or self.dtype, copy=True)
        return self._data if dtype is None else self._data.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        if self.requires_grad and _autograd_state.grad_enabled and _dispatch.storing_an_item():
            raise _dispatch.dropped_gradient(self, "a number stored in an array")  # numpy's arr[i] = t
        return float(self.item())

    def __int__(self) -> int:
        if self.requires_grad and _autograd_state.grad_enabled and _dispatch.storing_an_item():
            raise _dispatch.dropped_gradient(self, "a number stored in an array")  # int_arr[i] = t
        return int(self.item())

    def __format__(self, spec: str) -> str:  # as torch: a 0-d tensor formats as its number (f"{loss:.3f}")
        return format(self.item(), spec) if self.ndim == 0 else object.__format__(self, spec)

    def __contains__(self, element: Any) -> bool:  # as torch: ``value in t`` is (t == value).any()
        return bool((self._data == (element.data if isinstance(element, Tensor) else element)).any())

    __hash__ = object.__hash__  # identity: two equal-valued tensors are never merged

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Tensor(")
        extras = []
        if self.dtype != np.float64:
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"Tensor({body}{''.join(', ' + e for e in extras)})"

    # ---- autograd ----------------------------------------------------------------------------------------
    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``gradient`` unless self has one element)."""
        seed = seed_gradient(self, gradient, create_graph)
        run_backward([self], [seed], create_graph if retain_graph is None else retain_graph, create_graph)

    def detach(self) -> Tensor:
        """The same memory cut off from the graph. A view, not the same array object: ops that saved this
        array for backward must not mistake it for the tensor it was detached from."""
        return Tensor._wrap(self._data.view())

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach() instead")
        if requires_grad and self.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")

    def register_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces the gradient."""
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        owner = self if self.grad_fn is None else self.grad_fn
        if owner._hooks is None:
            owner._hooks = {}
        handle = RemovableHandle(owner._hooks)
        owner._hooks[handle.id] = hook
        return handle

    def zero_grad(self) -> None:
        self.grad = None

    # ---- arithmetic (Python scalars and arrays on either side) --------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _ops.Add.apply(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.Add.apply(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.Sub.apply(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.Sub.apply(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.Mul.apply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.Mul.apply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.Div.apply(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.Div.apply(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.Pow.apply(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.Pow.apply(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.MatMul.apply(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.MatMul.apply(other, self)

    def __neg__(self) -> Tensor:
        return _ops.Neg.apply(self)

    neg = __neg__  # t.neg(), as torch

    def __pos__(self) -> Tensor:
        return self

    # ---- comparisons: boolean tensors, never part of the graph ------------------------------------------------
    def __lt__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asanyarray(self._data < _ops._const(other)))

    def __le__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asanyarray(self._data <= _ops._const(other)))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asanyarray(self._data > _ops._const(other)))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asanyarray(self._data >= _ops._const(other)))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(np.asanyarray(self._data == _ops._const(other)))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(np.asanyarray(self._data != _ops._const(other)))

    # ---- elementwise ---------------------------------------------------------------------------------------------
    def exp(self) -> Tensor:
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        return _ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return _ops.Abs.apply(self)

    __abs__ = abs  # abs(t), as torch

    def sigmoid(self) -> Tensor:
        return _ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _ops.Tanh.apply(self)

    def relu(self) -> Tensor:
        return _ops.ReLU.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        return _ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def clip(self, lo: Any = None, hi: Any = None) -> Tensor:
        return _ops.Clip.apply(self, lo=lo, hi=hi)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (detach() shares the data and leaves it)."""
        return _ops.Clone.apply(self)

    def astype(self, dtype: Any) -> Tensor:
        """A cast in the graph; to an integer or boolean dtype it is outside the graph (as torch's .to)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind not in "fc":
            with no_grad():
                return _ops.Cast.apply(self, dtype=dtype)
        return _ops.Cast.apply(self, dtype=dtype)

    # ---- reductions ------------------------------------------------------------------------------------------------
    def sum(
        self, axis: Axes = None, keepdims: bool = False, *, dim: Axes = None, keepdim: bool | None = None
    ) -> Tensor:
        """Sum over ``axis`` (all by default); torch's names ``dim``/``keepdim`` go too (engine/torch_spellings.py)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch.axis_keepdims("sum", axis, keepdims, dim, keepdim)
        return _ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(
        self, axis: Axes = None, keepdims: bool = False, *, dim: Axes = None, keepdim: bool | None = None
    ) -> Tensor:
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch.axis_keepdims("mean", axis, keepdims, dim, keepdim)
        return _ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool = False) -> Any:
        """torch's max(dim, keepdim), positional too: (values, indices); numpy's axis=/keepdims=: the values."""
        if dim is not None or keepdim is not None:
            return self._extreme_torch("max", axis, keepdims, dim, keepdim)
        return _ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool = False) -> Any:
        """torch's min(dim, keepdim), positional too: (values, indices); numpy's axis=/keepdims=: the values."""
        if dim is not None or keepdim is not None:
            return self._extreme_torch("min", axis, keepdims, dim, keepdim)
        return _ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(
        self,
        axis: Axes = None,
        keepdims: bool = False,
        ddof: float | None = None,
        *,
        dim: Any = _torch.NOT_GIVEN,
        keepdim: Any = None,
        correction: float | None = None,
        unbiased: bool | None = None,
    ) -> Tensor:
        """Variance as numpy computes it (ddof=0 by default); any of torch's keywords (dim, keepdim, correction,
        unbiased) makes it torch's, whose default correction is 1."""
        axis, keepdims, ddof = _torch.var_args("var", axis, keepdims, ddof, dim, keepdim, correction, unbiased)
        return _ops.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(
        self,
        axis: Axes = None,
        keepdims: bool = False,
        ddof: float | None = None,
        *,
        dim: Any = _torch.NOT_GIVEN,
        keepdim: Any = None,
        correction: float | None = None,
        unbiased: bool | None = None,
    ) -> Tensor:
        """sqrt(var), its ddof or correction as var's; gradient 0 at 0, as torch's."""
        axis, keepdims, ddof = _torch.var_args("std", axis, keepdims, ddof, dim, keepdim, correction, unbiased)
        return _ops.std(self, axis, keepdims, ddof)

    def norm(
        self,
        p: float = 2,
        axis: Axes = None,
        keepdims: bool = False,
        *,
        dim: Any = None,
        keepdim: Any = None,
    ) -> Tensor:
        """The vector p-norm (p = 1, 2 or inf) over ``axis`` (all elements by default), as torch.linalg.vector_norm;
        the 2-norm's gradient at zero is 0, as torch's."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch.axis_keepdims("norm", axis, keepdims, dim, keepdim)
        return _ops.norm(self, p, axis, keepdims)

    def logsumexp(
        self, axis: Axes = None, keepdims: bool = False, *, dim: Axes = None, keepdim: bool | None = None
    ) -> Tensor:
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch.axis_keepdims("logsumexp", axis, keepdims, dim, keepdim)
        return _ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        """Stable log of softmax (ops/reductions.py); a +inf makes its slice NaN, as torch."""
        return _ops.log_softmax(
            self, axis if dim is None else _torch.either("log_softmax", "axis", axis, -1, "dim", dim)
        )

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        return self.log_softmax(axis if dim is None else _torch.either("softmax", "axis", axis, -1, "dim", dim)).exp()

    # ---- shape ---------------------------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        return _ops.Reshape.apply(self, shape=_shape_arg(shape))

    def transpose(self, *axes: Any) -> Tensor:
        """transpose(dim0, dim1) swaps two axes (torch); transpose() or transpose(axes) permutes (numpy)."""
        if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes):
            return self.swapaxes(*axes)
        axes = _shape_arg(axes)
        return _ops.Transpose.apply(self, axes=None if axes in ((), (None,)) else axes)

    def permute(self, *axes: Any) -> Tensor:
        return _ops.Transpose.apply(self, axes=_shape_arg(axes))

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axis1, axis2 = _ops._axis(axis1, self.ndim, "swapaxes"), _ops._axis(axis2, self.ndim, "swapaxes")
        axes = list(range(self.ndim))
        if axes:  # a 0-d tensor takes axis 0 or -1 and stays as it is
            axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return _ops.Transpose.apply(self, axes=tuple(axes))

    def expand(self, *shape: Any) -> Tensor:
        """broadcast_to, where -1 keeps the size of an existing axis (as torch's expand)."""
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        if -1 in shape:
            shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
        return _ops.Expand.apply(self, shape=shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _ops.Expand.apply(self, shape=tuple(shape))

    def squeeze(self, axis: int | tuple | None = None) -> Tensor:
        """Drop size-1 axes: all of them, or those among the given axes (a larger one stays, as in torch)."""
        axes = range(self.ndim) if axis is None else _ops._normalize_axes(axis, self.ndim, "squeeze")
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if s != 1 or i not in axes))

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert a size-1 axis at ``axis`` of the result (negative counts from the end, as in torch)."""
        ndim = self.ndim + 1
        if not -ndim <= axis < ndim:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for a {ndim}-d result (shape {self.shape})")
        axis %= ndim
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes start_dim..end_dim into one (a 0-d tensor becomes shape (1,), as in torch)."""
        start, end = _ops._axis(start_dim, self.ndim, "flatten"), _ops._axis(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        if self.ndim == 0:
            return self.reshape(1)
        if start == end:  # nothing to merge: torch returns the tensor itself
            return self
        merged = int(np.prod(self.shape[start : end + 1]))  # not -1: numpy cannot infer it beside a size-0 axis
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.GetItem.apply(self, index=_unwrap_index(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        _inplace.setitem(self, _unwrap_index(index), value)

    # ---- in-place ops (tinygrad_lab/inplace.py): write into this tensor's array, return it ------------------------
    @property
    def _version(self) -> int:
        """In-place writes so far to this tensor's memory (shared with its views), as torch's ``_version``."""
        return _inplace.version(self)

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return _inplace.add_(self, other, alpha)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return _inplace.sub_(self, other, alpha)

    def mul_(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "mul_", _ops.Mul, other)

    def div_(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "div_", _ops.Div, other)

    def pow_(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "pow_", _ops.Pow, other)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002  (torch's names)
        return _inplace.clamp_(self, min, max)

    def zero_(self) -> Tensor:
        return _inplace.fill_(self, 0)

    def fill_(self, value: Any) -> Tensor:
        return _inplace.fill_(self, value)

    def copy_(self, src: Any) -> Tensor:
        return _inplace.copy_(self, src)

    def neg_(self) -> Tensor:
        return _inplace.apply_(self, "neg_", _ops.Neg)

    def exp_(self) -> Tensor:
        return _inplace.apply_(self, "exp_", _ops.Exp)

    def log_(self) -> Tensor:
        return _inplace.apply_(self, "log_", _ops.Log)

    def sqrt_(self) -> Tensor:
        return _inplace.apply_(self, "sqrt_", _ops.Sqrt)

    def abs_(self) -> Tensor:
        return _inplace.apply_(self, "abs_", _ops.Abs)

    def sigmoid_(self) -> Tensor:
        return _inplace.apply_(self, "sigmoid_", _ops.Sigmoid)

    def tanh_(self) -> Tensor:
        return _inplace.apply_(self, "tanh_", _ops.Tanh)

    def relu_(self) -> Tensor:
        return _inplace.apply_(self, "relu_", _ops.ReLU)

    def __iadd__(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "+=", _ops.Add, other)

    def __isub__(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "-=", _ops.Sub, other)

    def __imul__(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "*=", _ops.Mul, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "/=", _ops.Div, other)

    def __ipow__(self, other: Any) -> Tensor:
        return _inplace.apply_(self, "**=", _ops.Pow, other)

    # ---- graph rendering (tinygrad_lab.viz) --------------------------------------------------------------------------
    def to_dot(self, **options: Any) -> str:
        from tinygrad_lab import viz

        return viz.to_dot(self, **options)

    def draw(self, **options: Any) -> Any:
        from tinygrad_lab import viz

        return viz.draw(self, **options)


def _unwrap_index(index: Any) -> Any:
    """Indices may hold Tensors (integer or boolean); numpy wants arrays. A Tensor's is copied: the node keeps the
    index for backward, and a write into the index tensor afterwards must not move the gradient."""
    if isinstance(index, Tensor):
        return index.data.copy()
    if isinstance(index, tuple):
        return tuple(i.data.copy() if isinstance(i, Tensor) else i for i in index)
    return index


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """``tl.tensor(...)`` is ``Tensor(...)``, as torch.tensor."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


from tinygrad_lab.engine import inplace as _inplace  # noqa: E402
from tinygrad_lab.engine import numpy_dispatch as _dispatch  # noqa: E402
from tinygrad_lab.engine import ops as _ops  # noqa: E402  (ops build on Tensor, Tensor's methods apply ops)
