"""``Module`` and ``Parameter``: attributes register in assignment order, so ``named_parameters()`` yields dotted
paths (``fc1.weight``) and ``state_dict()`` saves and loads them by those names."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tinygrad_lab.engine import traceable
from tinygrad_lab.engine.autograd import state, zero_grads
from tinygrad_lab.engine.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that requires grad and that a Module registers when it is assigned to an attribute."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :].replace("\n" + " " * 7, "\n" + " " * 10)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped: model keys not in the dict, and dict keys not in the model."""

    missing_keys: list
    unexpected_keys: list


class StateDictKeyError(KeyError):
    """A KeyError whose message prints as written (KeyError's own str() shows the repr of its message)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _whole_numbers_of(arr: np.ndarray, dtype: np.dtype) -> bool:
    """Whether every value of the float array is a whole number the integer dtype holds."""
    info = np.iinfo(dtype)
    return bool(np.all((np.mod(arr, 1) == 0) & (arr >= info.min) & (arr <= info.max)))


def _attribute_of(owner: Any, name: str, kind: type, kind_name: str) -> Any:
    """``owner``'s attribute ``name``, which must be a ``kind``: one step of get_submodule's and get_parameter's
    dotted paths, with torch's AttributeError when it is missing or something else."""
    if not hasattr(owner, name):
        raise AttributeError(f"{type(owner).__name__} has no attribute `{name}`")
    found = getattr(owner, name)
    if not isinstance(found, kind):
        raise AttributeError(f"`{name}` is not an {kind_name}")
    return found


class Module:
    """Base class of layers and models: subclasses set Parameters and Modules as attributes and write ``forward``."""

    training: bool
    #: buffers a state dict may lack (torch's older checkpoints): loading without one keeps the module's value
    optional_buffers: tuple[str, ...] = ()
    _parameters: dict[str, Any]  # set in __init__ through object.__setattr__ (this class's own setattr tracks them)
    _modules: dict[str, Module]
    _buffers: dict[str, Any]
    _non_persistent: set[str]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # ---- registration: attributes that are Parameters or Modules are tracked in assignment order -----------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name == "training":  # set directly, not through train(): a captured step checks modes again
            traceable.note_mode_change()
        if name in self._buffers:  # assigning to a buffer replaces its value, as in torch
            traceable.note_assignment()  # a captured step traced the old one: it traces again
            value = self._buffer_value(name, value)
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        for registry, kind in ((self._parameters, Parameter), (self._modules, Module)):
            if name in registry and value is not None and not isinstance(value, kind):  # as torch refuses
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} as {kind.__name__.lower()} "
                    f"{name!r} ({kind.__name__} or None expected)"
                )
        if isinstance(value, (Parameter, Module)) or name in self._parameters or name in self._modules:
            traceable.note_assignment()  # a captured step traced the old one: it traces again
        # a name already registered keeps its place (a tied weight stays in state_dict's order, as in torch)
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._modules or name in self._buffers:
            traceable.note_assignment()  # a captured step traced it: it traces again
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    # ---- buffers: state that is saved and loaded but not trained (batch norm's running statistics) ----------
    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Keep ``tensor`` (a Tensor, an array or None) as the attribute ``name``, in ``state_dict`` when persistent."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before register_buffer")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: buffer name must be a non-empty string without '.', got {name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: {name!r} is already a parameter or module of {type(self).__name__}")
        self._buffers[name] = None
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)
        setattr(self, name, tensor)

    def add_module(self, name: str, module: Module) -> None:
        """Register ``module`` as the sub-module ``name``, as assigning the attribute does, once the name is checked
        as torch checks it: a string, not empty, without '.', and not already an attribute other than a module."""
        if not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}: cannot add a {type(module).__name__} as module {name!r} (a Module expected)"
            )
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: a module name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{type(self).__name__}: a module name must be non-empty and without '.', got {name!r}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        setattr(self, name, module)

    def _buffer_value(self, name: str, value: Any) -> Any:
        if value is None or isinstance(value, Tensor) and not value.requires_grad:
            return value
        if isinstance(value, np.ndarray):
            return Tensor(value, dtype=value.dtype)
        raise TypeError(
            f"{type(self).__name__}: buffer {name!r} must be a Tensor without grad, an array or None, "
            f"got {type(value).__name__}"
        )

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) of every buffer that is not None, module by module as named_modules orders them."""
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self) -> Iterator[Tensor]:
        """The buffers of named_buffers, without names."""
        return (b for _, b in self.named_buffers())

    def _state(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """What state_dict holds, in PyTorch's order: each module's parameters, then its persistent buffers,
        then its children's. A module or parameter reached by two names is listed under both, as torch does,
        so a state dict exported from PyTorch with shared or tied weights has the same keys."""
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, child in self._modules.items():
            yield from child._state(f"{prefix}{name}.")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; every subclass defines it, and calling the module runs it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``module(x)`` is ``module.forward(x)``."""
        tracer = state.tracing  # (inline: this runs on every layer call)
        if tracer is not None:  # tl.compile is recording: its replay holds only in this module's training mode
            tracer.modules[id(self)] = self
        return self.forward(*args, **kwargs)

    # ---- traversal ------------------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``, "" by default) and every descendant, depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, as named_modules orders them."""
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) of the direct sub-modules, in assignment order."""
        return iter(self._modules.items())

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in assignment order."""
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs as PyTorch orders them: a module's own parameters in assignment order,
        then each child's, depth first; a Parameter shared by two modules comes once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of named_parameters, without names: what an optimizer takes."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    # ---- training state ----------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (None, as PyTorch's default), or zero it in place with
        ``set_to_none=False``, so the next backward starts afresh."""
        zero_grads(self.parameters(), set_to_none)

    def train(self, mode: bool = True) -> Module:
        """Set ``.training`` on this module and all its descendants; returns self."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}.train: mode must be True or False, got {mode!r}")
        for m in self.modules():
            if m.training != mode:
                object.__setattr__(m, "training", bool(mode))
                traceable.note_mode_change()
        return self

    def eval(self) -> Module:
        """``train(False)``; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (freeze a part of a model with False); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every child's subtree first, then on this module (torch's order); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- dtypes ------------------------------------------------------------------------------------------------
    def float(self) -> Module:
        """Convert the floating parameters and buffers (and gradients) to float32 in place; returns self."""
        return self._convert(np.dtype(np.float32))

    def double(self) -> Module:
        """Convert the floating parameters and buffers (and gradients) to float64 in place; returns self."""
        return self._convert(np.dtype(np.float64))

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """torch's ``to(dtype)``, ``to(device)`` or ``to(device, dtype)``: a floating dtype converts as ``float()``
        does; "cpu" is the only device (a no-op); ``non_blocking`` is accepted and changes nothing."""
        kwargs.pop("non_blocking", None)
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        if kwargs or len(args) > 2:
            raise TypeError(f"{type(self).__name__}.to: unexpected arguments {args!r} {kwargs!r}")
        for arg in args:
            if isinstance(arg, str) and (arg.split(":")[0] in ("cpu", "cuda", "mps", "meta", "xla") or ":" in arg):
                device = arg
            elif isinstance(arg, Tensor):
                dtype = arg.dtype
            else:
                dtype = arg
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"{type(self).__name__}.to: only the 'cpu' device exists here (numpy), got {device!r}")
        if dtype is None:
            return self
        try:
            target = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: {dtype!r} is neither a dtype nor a device") from None
        if target.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes are accepted, got {target}")
        return self._convert(target)

    def _convert(self, dtype: np.dtype) -> Module:
        """Every floating parameter, gradient and buffer as ``dtype``, each the same Tensor object with a new array
        (as torch keeps the Parameter objects, so an optimizer made before still holds them). A captured step
        traced before sees new arrays in the tensors it read and traces again (engine/traceable.py, rule 6)."""
        tensors = [t for _, m in self.named_modules() for t in (*m._parameters.values(), *m._buffers.values())]
        for t in {id(t): t for t in tensors if t is not None}.values():
            if t.dtype.kind == "f" and t.dtype != dtype:
                t.data = t.data.astype(dtype)
            if t.grad is not None and t.grad.dtype.kind == "f" and t.grad.dtype != dtype:
                t.grad.data = t.grad.data.astype(dtype)
        return self

    def get_submodule(self, target: str) -> Module:
        """The module at the dotted path ``target`` ("" is this module), as torch's; AttributeError naming the part
        that is missing or not a Module."""
        module = self
        for part in target.split(".") if target else ():
            module = _attribute_of(module, part, Module, "nn.Module")
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The Parameter at the dotted path ``target`` (``"fc1.weight"``), as torch's."""
        module_path, _, name = target.rpartition(".")
        return _attribute_of(self.get_submodule(module_path), name, Parameter, "nn.Parameter")

    # ---- saving and loading ------------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameter and persistent buffer name -> a copy of its array, in registration order, each module's
        parameters before its buffers as in PyTorch (what ``np.savez`` wants)."""
        return OrderedDict((name, t.data.copy()) for name, t in self._state())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers in place (so optimizers holding them stay valid).

        Nothing is written unless every entry fits: a wrong shape is a ValueError naming the key and both
        shapes, a wrong dtype (say strings, or fractions for an integer buffer) a TypeError. With ``strict`` a
        missing or unexpected key is a KeyError naming them all; without it they are skipped and returned. A
        module's ``optional_buffers`` may be missing either way (batch norm's count, as torch).
        """
        own = dict(self._state())
        optional = {f"{prefix}.{name}".lstrip(".") for prefix, m in self.named_modules() for name in m.optional_buffers}
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictKeyError(f"load_state_dict into {type(self).__name__}: {' and '.join(parts)}")
        arrays = {}
        for name, p in own.items():
            if name in state_dict:
                value = state_dict[name]
                arr = np.asarray(value.data if isinstance(value, Tensor) else value)
                if arr.dtype.kind == "f" and p.dtype.kind in "iu" and _whole_numbers_of(arr, p.dtype):
                    arr = arr.astype(p.dtype)  # whole numbers stored as floats (a counter in a float32 state dict)
                if not np.can_cast(arr.dtype, p.dtype, casting="same_kind"):  # before shapes: "abc" has shape ()
                    raise TypeError(
                        f"load_state_dict into {type(self).__name__}: {name!r} has dtype {arr.dtype}, "
                        f"which cannot be stored in the model's {p.dtype} (got a {type(value).__name__})"
                    )
                if arr.shape != p.shape:
                    raise ValueError(
                        f"load_state_dict into {type(self).__name__}: {name!r} has shape {arr.shape} in the "
                        f"state dict but {p.shape} in the model"
                    )
                arrays[name] = arr
        for name, arr in arrays.items():
            np.copyto(own[name].data, arr, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    # ---- repr --------------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr line (its settings)."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout: ``Name(settings)`` for a leaf, else one indented ``(name): child`` line per child."""
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({name}): {child!r}".replace("\n", "\n  ") for name, child in self._modules.items()]
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({''.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
