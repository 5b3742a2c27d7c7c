"""torch's Tensor methods that ported training and evaluation loops call, beside the keyword spellings of
torch_spellings.py: ``numel``, ``view``, ``clamp``, ``amax``/``amin``, ``max(dim)``/``min(dim)``'s (values,
indices), conversions (``float()``, ``long()``, ``to(dtype)``, ``type_as``), queries (``dim()``,
``size()``, ``t()``, ``is_contiguous()``), the operators' method names (``add(other, alpha=)``, ``eq``, ...),
``view_as``/``reshape_as``/``expand_as`` and ``new_zeros``/``new_ones``/``new_full``/``new_tensor``.

Each is a call of an existing op or method, so gradients, dtypes and ``tl.compile`` follow from those: a cast
between float dtypes is ``astype``'s in-graph Cast, one to an integer or bool dtype is outside the graph, as
torch's. The class defines methods named ``int``, ``float``, ``bool`` and ``type``, so its annotations name the
builtins as ``builtins.int``.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from tinygrad_lab.engine.factories import _shape_arg
from tinygrad_lab.engine.torch_spellings import ValuesIndices, either

_NUMERIC_KINDS = "biuf"

# torch's names of its tensor types, which ``type()`` gives and ``type(name)`` takes
_TYPE_NAMES = {
    np.dtype(dtype): name
    for dtype, name in (
        (np.float64, "torch.DoubleTensor"),
        (np.float32, "torch.FloatTensor"),
        (np.float16, "torch.HalfTensor"),
        (np.int64, "torch.LongTensor"),
        (np.int32, "torch.IntTensor"),
        (np.int16, "torch.ShortTensor"),
        (np.int8, "torch.CharTensor"),
        (np.uint8, "torch.ByteTensor"),
        (np.uint16, "torch.UInt16Tensor"),
        (np.uint32, "torch.UInt32Tensor"),
        (np.uint64, "torch.UInt64Tensor"),
        (np.bool_, "torch.BoolTensor"),
    )
}
_TYPE_DTYPES = {name: dtype for dtype, name in _TYPE_NAMES.items()}


class Size(builtins.int):
    """``t.size``: numpy's number of elements, an int as ``ndarray.size`` is (``t.size * 2``, ``np.size(t)``, json
    and f-strings see the number); called, torch's ``size()``: the shape, or ``size(dim)`` that dim's length."""

    shape: tuple  # set by Tensor.size (int's own constructor and an attribute: a __new__ of ours costs twice)

    def __call__(self, dim: Any = None) -> Any:
        if dim is None:
            return self.shape
        n = len(self.shape)
        if isinstance(dim, builtins.bool) or not isinstance(dim, (builtins.int, np.integer)) or not -n <= dim < n:
            expected = f"a dim from {-n} to {n - 1}" if n else "no dim: it is 0-d"
            raise IndexError(f"size: dim {dim!r} is out of range for a tensor of shape {self.shape} ({expected})")
        return self.shape[dim]

    def __reduce__(self) -> tuple:
        return (builtins.int, (builtins.int(self),))  # pickled and copied as the plain number


def _logical(symbol: str, ufunc: np.ufunc, *operands: Any) -> Any:
    """``~mask``, ``a & b``, ``a | b``, ``a ^ b`` as torch's: logical on bool tensors, bitwise on integer ones, a
    Tensor outside the graph; a float operand is refused, as torch refuses it."""
    tensor = _tensor_class()
    arrays = [o.data if isinstance(o, tensor) else o for o in operands]
    if any(np.asarray(a).dtype.kind not in "biu" for a in arrays):
        shapes = " and ".join(f"{np.asarray(a).dtype} {np.shape(a)}" for a in arrays)
        raise TypeError(f"{symbol}: only for bool or integer tensors (masks), got {shapes}")
    return tensor._wrap(np.asarray(ufunc(*arrays)))


def _tensor_class() -> Any:
    """Tensor, looked up here because tensor.py imports this module to define it."""
    from tinygrad_lab.engine.tensor import Tensor

    return Tensor


def _dtype(op: str, dtype: Any) -> np.dtype:
    """A numeric numpy dtype from numpy's spellings (``np.float32``, ``tl.float32``, "float32") or torch's type names
    ("torch.FloatTensor"); anything else is a TypeError naming ``op``."""
    if isinstance(dtype, str) and dtype in _TYPE_DTYPES:
        return _TYPE_DTYPES[dtype]
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype (give one as np.float32, tl.float32 or 'float32')") from None
    if resolved.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{op}: dtype {resolved} is not a number type (tensors hold bools, integers and floats)")
    return resolved


def _is_dtype(name: str) -> builtins.bool:
    """Whether the string ``name`` spells a dtype ("float32", "torch.FloatTensor") rather than a device."""
    if name in _TYPE_DTYPES:
        return True
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def _check_device(op: str, device: Any) -> None:
    """torch's device argument: None or "cpu" (numpy's arrays live there); any other device is refused."""
    if device is not None and str(device) not in ("cpu", "cpu:0"):
        raise ValueError(f"{op}: device {str(device)!r} is not available: tinygrad_lab computes on the CPU ('cpu')")


def _new_dtype(t: Any, op: str, dtype: Any) -> np.dtype:
    """The dtype of ``new_zeros``...: the given one, else the tensor's own (torch's default)."""
    return t.dtype if dtype is None else _dtype(op, dtype)


def _shape_of(op: str, other: Any) -> tuple:
    """The shape of the tensor (or array) ``other`` of ``view_as``/``reshape_as``/``expand_as``."""
    if not isinstance(other, (np.ndarray, _tensor_class())):
        raise TypeError(f"{op}: expected a Tensor, got {type(other).__name__}")
    return tuple(other.shape)


class TorchMethods:
    """Mixed into Tensor; no state of its own."""

    __slots__ = ()

    def numel(self: Any) -> builtins.int:
        """The number of elements (torch's name for ``size``)."""
        return int(self.data.size)

    def view(self: Any, *shape: Any) -> Any:
        """``reshape`` that shares this tensor's memory, as torch's view; a shape that needs a copy (a transposed
        tensor flattened) is an error there and here: use ``reshape``, which copies when it must."""
        shape = _shape_arg(shape)
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
            raise TypeError(f"view: takes a shape of ints, got {shape!r} (view(dtype) is not supported: use astype)")
        out = self.reshape(shape)
        plain = self.data.view(np.ndarray)  # numpy's own view, which tl.compile's tracer does not record
        if plain.size and not np.may_share_memory(plain.reshape(shape), plain):
            raise RuntimeError(
                f"view: shape {shape} of a tensor of shape {self.shape} with strides {self.data.strides} needs a copy "
                "(its elements are not in that order in memory), which torch's view refuses too: use reshape(...)"
            )
        return out

    def clamp(self: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002  (torch's names)
        """torch's clamp, out of place (``clamp_`` is in place): ``clip``'s op, gradient 1 inside [min, max] with
        the bounds included and 0 outside, as torch's."""
        if min is None and max is None:
            raise TypeError(f"clamp: at least one of min and max must be given (tensor of shape {self.shape})")
        return self.clip(min, max)

    def amax(self: Any, dim: Any = (), keepdim: builtins.bool = False) -> Any:
        """torch's amax: the max over ``dim`` (every axis when empty); tied maxima share the gradient evenly."""
        return self.max(axis=_every_axis_if_empty(dim, self.ndim), keepdims=keepdim)

    def amin(self: Any, dim: Any = (), keepdim: builtins.bool = False) -> Any:
        """torch's amin: the min over ``dim`` (every axis when empty); tied minima share the gradient evenly."""
        return self.min(axis=_every_axis_if_empty(dim, self.ndim), keepdims=keepdim)

    def _extreme_torch(self: Any, op: str, axis: Any, keepdims: Any, dim: Any, keepdim: Any) -> ValuesIndices:
        """torch's ``max(dim, keepdim)`` / ``min(dim, keepdim)`` (a positional axis is the dim): the values, whose
        gradient goes to the one element ``indices`` (int64) names, the first of tied ones, as torch's."""
        dim = either(op, "axis", axis, None, "dim", dim)
        keepdim = bool(either(op, "keepdims", keepdims, False, "keepdim", keepdim))
        if dim is None:
            raise TypeError(
                f"{op}: keepdim= goes with a dim (torch's {op}(dim, keepdim) gives values and indices); for the {op} "
                "of every element, keeping dims, write keepdims=True"
            )
        ndim = max(self.ndim, 1)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -ndim <= dim < ndim:
            raise ValueError(
                f"{op}: dim must be one axis of the tensor of shape {self.shape}, got {dim!r} (for several axes: "
                f"a{op}(dim=...))"
            )
        x = self.reshape(1) if self.ndim == 0 else self
        dim = int(dim) % ndim
        if x.shape[dim] == 0:
            raise ValueError(f"{op}: dim {dim} of the tensor of shape {self.shape} has size 0: no {op} to take")
        at = (np.argmax if op == "max" else np.argmin)(x.data, axis=dim, keepdims=True).astype(np.int64)
        grid = [np.arange(s).reshape([s if j == i else 1 for j in range(x.ndim)]) for i, s in enumerate(x.shape)]
        values = x[tuple(at if i == dim else g for i, g in enumerate(grid))]
        shape = at.shape if keepdim and self.ndim else self.shape[:dim] + self.shape[dim + 1 :]
        return ValuesIndices(values.reshape(shape), type(self)._wrap(at.reshape(shape)))

    # ---- queries ---------------------------------------------------------------------------------------------
    @property
    def size(self: Any) -> Size:
        """The number of elements (numpy's ``size``), callable as torch's ``size()`` / ``size(dim)``."""
        data = self._data
        size = Size(data.size)
        size.shape = data.shape
        return size

    def dim(self: Any) -> builtins.int:
        """The number of dimensions (torch's name for ``ndim``)."""
        return builtins.int(self.data.ndim)

    def element_size(self: Any) -> builtins.int:
        """Bytes per element."""
        return builtins.int(self.data.itemsize)

    @property
    def nbytes(self: Any) -> builtins.int:
        """Bytes of all the elements."""
        return builtins.int(self.data.nbytes)

    def t(self: Any) -> Any:
        """torch's ``t()``: a 2-d tensor transposed; a 0-d or 1-d one as it is (a view, in the graph)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {self.shape} (use transpose(d0, d1))")
        return self.T

    def is_contiguous(self: Any) -> builtins.bool:
        """Whether the elements lie in memory in row-major order without gaps (transposed or strided views do not)."""
        return builtins.bool(self.data.flags.c_contiguous)

    def contiguous(self: Any) -> Any:
        """This tensor when it is contiguous, else a row-major copy in the graph (``clone``), as torch's."""
        return self if self.data.flags.c_contiguous else self.clone()

    def cpu(self: Any) -> Any:
        """This tensor: it is on the CPU already."""
        return self

    def __index__(self: Any) -> builtins.int:
        """A one-element integer tensor used as an index (``names[t.argmax()]``, ``range(t)``), as torch's."""
        if self.dtype.kind not in "biu" or self.data.size != 1:
            raise TypeError(
                f"only an integer tensor of one element converts to an index, got dtype {self.dtype} shape {self.shape}"
            )
        return builtins.int(self.data.reshape(()))

    # ---- operators by name -----------------------------------------------------------------------------------
    def add(self: Any, other: Any, *, alpha: Any = 1) -> Any:
        """``self + alpha * other``, as torch's."""
        return self + other if alpha == 1 else self + other * alpha

    def sub(self: Any, other: Any, *, alpha: Any = 1) -> Any:
        """``self - alpha * other``, as torch's."""
        return self - other if alpha == 1 else self - other * alpha

    def mul(self: Any, other: Any) -> Any:
        return self * other

    def div(self: Any, other: Any) -> Any:
        return self / other

    def pow(self: Any, exponent: Any) -> Any:
        return self**exponent

    def eq(self: Any, other: Any) -> Any:
        """``self == other``: a boolean tensor outside the graph, as the comparison operators give."""
        return self == other

    def ne(self: Any, other: Any) -> Any:
        return self != other

    def lt(self: Any, other: Any) -> Any:
        return self < other

    def le(self: Any, other: Any) -> Any:
        return self <= other

    def gt(self: Any, other: Any) -> Any:
        return self > other

    def ge(self: Any, other: Any) -> Any:
        return self >= other

    # ---- logical and bitwise operators (masks), outside the graph as the comparisons ------------------------------
    def __invert__(self: Any) -> Any:
        return _logical("~", np.invert, self)

    def __and__(self: Any, other: Any) -> Any:
        return _logical("&", np.bitwise_and, self, other)

    def __or__(self: Any, other: Any) -> Any:
        return _logical("|", np.bitwise_or, self, other)

    def __xor__(self: Any, other: Any) -> Any:
        return _logical("^", np.bitwise_xor, self, other)

    def __rand__(self: Any, other: Any) -> Any:
        return _logical("&", np.bitwise_and, other, self)

    def __ror__(self: Any, other: Any) -> Any:
        return _logical("|", np.bitwise_or, other, self)

    def __rxor__(self: Any, other: Any) -> Any:
        return _logical("^", np.bitwise_xor, other, self)

    # ---- shaped like another tensor ----------------------------------------------------------------------------
    def view_as(self: Any, other: Any) -> Any:
        """``view(other.shape)``: refuses a shape that needs a copy, as ``view`` does."""
        return self.view(_shape_of("view_as", other))

    def reshape_as(self: Any, other: Any) -> Any:
        return self.reshape(_shape_of("reshape_as", other))

    def expand_as(self: Any, other: Any) -> Any:
        return self.expand(_shape_of("expand_as", other))

    # ---- new tensors of this tensor's dtype (torch's default), outside any graph ---------------------------------
    def new_zeros(self: Any, *size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Any:
        _check_device("new_zeros", device)
        return self.zeros(*size, dtype=_new_dtype(self, "new_zeros", dtype), requires_grad=requires_grad)

    def new_ones(self: Any, *size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Any:
        _check_device("new_ones", device)
        return self.ones(*size, dtype=_new_dtype(self, "new_ones", dtype), requires_grad=requires_grad)

    def new_full(
        self: Any, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None, requires_grad: Any = False
    ) -> Any:
        _check_device("new_full", device)
        return self.full(size, fill_value, dtype=_new_dtype(self, "new_full", dtype), requires_grad=requires_grad)

    def new_tensor(self: Any, data: Any, *, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Any:
        """A copy of ``data`` (a Tensor's values, detached, as torch's) in this tensor's dtype unless ``dtype``."""
        _check_device("new_tensor", device)
        return _tensor_class()(data, dtype=_new_dtype(self, "new_tensor", dtype), requires_grad=requires_grad)

    # ---- conversions (last: from here on, int, float and bool in this class body are these methods) ----------------
    def to(
        self: Any, *args: Any, dtype: Any = None, device: Any = None, non_blocking: Any = False, copy: Any = False
    ) -> Any:
        """torch's ``to(dtype)``, ``to(device)``, ``to(device, dtype)`` and ``to(other)`` (other's dtype): the cast
        ``astype`` makes, or this tensor itself when nothing changes (a copy in the graph with ``copy=True``).
        ``non_blocking`` is accepted and changes nothing."""
        if len(args) > 2:
            raise TypeError(f"to: takes a device and a dtype, or a tensor, got {len(args)} positional arguments")
        for arg in args:
            if isinstance(arg, (np.ndarray, _tensor_class())):
                arg = arg.dtype  # torch's to(other): other's dtype (and device: the CPU)
            if not isinstance(arg, str) or _is_dtype(arg):  # a string that names no dtype is a device
                if dtype is not None:
                    raise TypeError(f"to: got two dtypes, {dtype!r} and {arg!r}")
                dtype = arg
            elif device is not None:
                raise TypeError(f"to: got two devices, {device!r} and {arg!r}")
            else:
                device = arg
        _check_device("to", device)
        out = self if dtype is None else self.astype(_dtype("to", dtype))
        return out.clone() if copy and out is self else out

    def type(self: Any, dtype: Any = None, non_blocking: Any = False) -> Any:
        """With no dtype, torch's name of this tensor's type ("torch.DoubleTensor"); with one (also such a name), the
        cast to it, as ``to(dtype)``."""
        if dtype is None:
            if self.dtype not in _TYPE_NAMES:
                raise TypeError(f"type: dtype {self.dtype} has no torch type name")
            return _TYPE_NAMES[self.dtype]
        return self.astype(_dtype("type", dtype))

    def type_as(self: Any, other: Any) -> Any:
        """``to(other.dtype)``."""
        if not isinstance(other, (np.ndarray, _tensor_class())):
            raise TypeError(f"type_as: expected a Tensor, got {type(other).__name__}")
        return self.astype(other.dtype)

    def double(self: Any) -> Any:
        """float64; in the graph from a float tensor, as every float-to-float cast."""
        return self.astype(np.float64)

    def float(self: Any) -> Any:
        """float32 (torch's ``float``); in the graph from a float tensor."""
        return self.astype(np.float32)

    def half(self: Any) -> Any:
        """float16; in the graph from a float tensor."""
        return self.astype(np.float16)

    def long(self: Any) -> Any:
        """int64, outside the graph (values truncated toward zero, as torch's)."""
        return self.astype(np.int64)

    def int(self: Any) -> Any:
        """int32, outside the graph (values truncated toward zero, as torch's)."""
        return self.astype(np.int32)

    def bool(self: Any) -> Any:
        """Whether each element is nonzero, outside the graph."""
        return self.astype(np.bool_)


def _every_axis_if_empty(dim: Any, ndim: int) -> Any:
    """torch's ``dim=()`` of amax/amin: every axis (as a tuple, not None, so NaN maxima follow amax's rule)."""
    return tuple(range(ndim)) if isinstance(dim, (tuple, list)) and not dim else dim
