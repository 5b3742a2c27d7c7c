"""``ModuleList`` and ``ModuleDict``: sub-modules held in a list or a dict, registered through ``Module.add_module``
so ``parameters()``, ``state_dict()`` (keys such as ``layers.0.weight``, as torch's), ``train()`` and
``zero_grad()`` see them. Neither has a ``forward``: the model that holds one calls its modules."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

from tinygrad_lab.nn.module import Module


class ModuleList(Module):
    """A list of modules named "0", "1", ...: indexing, slicing, ``append``, ``extend``, ``insert``, ``pop`` and
    ``del`` keep the names numbered in order, as torch's."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index: Any) -> str:
        """The name of the module at ``index`` (negative counts from the end), or torch's IndexError."""
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"ModuleList: index {i} is out of range for {len(self)} modules")
        return str(i % len(self))

    def _renumber(self) -> None:
        """Name the modules "0", "1", ... again in their order, after some were deleted."""
        modules = list(self._modules.items())
        for name, _ in modules:
            delattr(self, name)
        for i, (_, module) in enumerate(modules):
            self.add_module(str(i), module)

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...
    def __getitem__(self, index: int | slice) -> Module:
        """The module at ``index``, or a new ModuleList of a slice of them (numbered from 0, as torch's)."""
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._index(index), module)

    def __delitem__(self, index: int | slice) -> None:
        names = list(self._modules)[index] if isinstance(index, slice) else [self._index(index)]
        for name in names:
            delattr(self, name)
        self._renumber()

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        """A new ModuleList of this one's modules followed by ``other``'s."""
        return ModuleList([*self, *other])

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of an iterable; returns self."""
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend takes an iterable of Modules, got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index``, as list.insert (an index past either end inserts there)."""
        index = operator.index(index)
        self.append(module)  # checks it is a Module before anything moves
        at = max(0, index + len(self) - 1) if index < 0 else min(index, len(self) - 1)
        for i in range(len(self) - 1, at, -1):
            setattr(self, str(i), self._modules[str(i - 1)])
        setattr(self, str(at), module)

    def pop(self, index: int = -1) -> Module:
        """Remove the module at ``index`` (the last by default) and return it."""
        module = self[index]
        del self[index]
        return module

    def __repr__(self) -> str:
        """torch's layout, with a run of equal modules on one line: ``(0-2): 3 x Linear(...)``."""
        if not self._modules:
            return "ModuleList()"
        runs: list[list[Any]] = []  # [first index, last index, repr]
        for i, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            label = f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x "
            lines.append((label + text).replace("\n", "\n  "))
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules by name: ``md[name]``, ``md[name] = module``, ``del``, ``in``, ``len``,
    iteration over the names, ``keys``, ``values``, ``items``, ``update``, ``pop`` and ``clear``, as torch's."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_has(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (it has {list(self._modules)})")

    def __getitem__(self, key: str) -> Module:
        self._check_has(key)
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self._check_has(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """(name, module) pairs, in insertion order."""
        return self._modules.items()

    def pop(self, key: str) -> Module:
        """Remove the module named ``key`` and return it."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            del self[key]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or from (name, module) pairs, in their order."""
        if isinstance(modules, Mapping):
            pairs: Iterable[Any] = modules.items()
        elif isinstance(modules, Iterable):
            pairs = modules
        else:
            raise TypeError(f"ModuleDict.update takes a mapping or (name, module) pairs, got {type(modules).__name__}")
        for j, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"ModuleDict.update: element {j} must be a (name, module) pair, got {pair!r}")
            self[pair[0]] = pair[1]
