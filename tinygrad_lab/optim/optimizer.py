"""The base of every optimizer: torch.optim's interface (``param_groups``, ``defaults``, ``add_param_group``,
``state_dict``/``load_state_dict``, ``step(closure)``) and ``step()`` calling each optimizer's
``_update(p, g, state, lr, hyper)`` in place on numpy arrays (what ``tl.compile`` records)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import enable_grad, zero_grads
from tinygrad_lab.engine.autograd import state as engine_state
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.engine.traceable import active_tracer, note_assignment

_ABSENT = object()


class ParamGroup(dict):
    """One of ``Optimizer.param_groups``: torch's dict of ``"params"`` and hyperparameters, whose writes go through
    its optimizer, which checks them, puts the learning rate in the array the updates read (``lr_array``) and has a
    captured step trace again when another hyperparameter changes. ``state`` holds its parameters' state dicts,
    ``hyper`` a plain dict of the same hyperparameters for the updates (a dict subclass's lookups cost more)."""

    def __init__(self, owner: Optimizer, items: dict[str, Any]):
        super().__init__(items)
        self._owner = owner
        self.hyper = {key: value for key, value in items.items() if key != "params"}
        self.lr_array = np.array(float(items["lr"]))  # a captured step reads it on every replay
        self.state: list[dict[str, Any]] = [{} for _ in items["params"]]

    def __setitem__(self, key: str, value: Any) -> None:
        self._owner._write(self, {key: value})

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._owner._write(self, dict(*args, **kwargs))

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> ParamGroup:  # type: ignore[misc]  # group |= {...}: dict's |= returns the group, typed as dict's |
        self.update(other)
        return self

    def __delitem__(self, key: str) -> None:
        self._owner._refuse_removal(key)
        super().__delitem__(key)
        self.hyper.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._owner._refuse_removal(key)
            self.hyper.pop(key, None)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        raise TypeError(f"{type(self._owner).__name__}: a parameter group cannot be emptied (popitem)")

    def clear(self) -> None:
        raise TypeError(f"{type(self._owner).__name__}: a parameter group cannot be emptied (clear)")

    def __reduce__(self) -> tuple:
        return _restore_group, (dict(self),), self.__dict__  # copy.deepcopy and pickle: a group of the copy


def _restore_group(items: dict[str, Any]) -> ParamGroup:
    """A copied or unpickled group, its attributes (the optimizer among them) set after it."""
    group = ParamGroup.__new__(ParamGroup)
    dict.update(group, items)
    return group


class Optimizer:
    """Parameters in ``param_groups`` (dicts of ``"params"`` and hyperparameters, missing ones taken from
    ``defaults``), as torch.optim. ``params`` and ``state`` list every group's parameters and their state dicts in
    order (the indices of ``state_dict``); ``opt.lr``, ``opt.momentum``, ... read the first group's value and set
    the one group's. Subclasses implement ``_update(param, grad, state, lr, hyper)`` on numpy arrays."""

    # torch's hyperparameters of features these optimizers do not have, with the one value each accepts
    _unsupported: dict[str, Any] = {"maximize": False, "differentiable": False}
    _rules: dict[str, tuple[Callable[[Any], bool], str]] = {}  # hyperparameter -> (ok, rule) of _check
    _state_keys: tuple[str, ...] = ()  # torch's per-parameter state, what state_dict saves
    _required_state: tuple[str, ...] = ()  # the keys a parameter's saved state has all of, or none

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        defaults: dict[str, Any],
        options: Mapping[str, Any] | None = None,
    ):
        name = type(self).__name__
        unexpected = sorted(set(options or ()) - set(defaults))
        if (
            unexpected
        ):  # ``options``: torch's keyword-only arguments (foreach=None, maximize=False, ...), its group keys
            raise TypeError(f"{name}: unexpected keyword argument {unexpected[0]!r}")
        defaults = {**defaults, **(options or {})}
        if isinstance(params, (Tensor, set)):
            raise TypeError(
                f"{name}: params must be an ordered iterable (a list) of Tensors or of dicts, got a "
                f"{type(params).__name__}"
            )
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{name} got an empty parameter list (a used-up generator?)")
        self.defaults = self._checked_hyperparameters(defaults)
        self.param_groups: list[ParamGroup] = []
        self.params: list[Tensor] = []
        self.state: list[dict[str, Any]] = []
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- hyperparameters ----------------------------------------------------------------------------------------
    def _check(self, name: str, value: Any, ok: Callable[[Any], bool], rule: str, arg: str = "") -> None:
        """A hyperparameter (the argument ``arg``, by default ``name``) must be a real number, not a string or
        a bool, for which ``ok`` holds (``ok`` takes Any: the stubs' numbers.Real has no comparisons)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{type(self).__name__}: {arg or name} must be a number, got {type(value).__name__} {value!r}"
            )
        if not ok(value):
            raise ValueError(f"{type(self).__name__}: invalid {name} {value!r}; it must be {rule}")

    def _checked(self, key: str, value: Any) -> Any:
        """A hyperparameter's value once checked (subclasses normalise some, as betas to a tuple); other keys,
        which torch's groups may carry too ("initial_lr"), as they are."""
        if key == "lr":  # 0 is allowed, as in torch: a schedule may end there
            self._check("learning rate", value, lambda v: v >= 0, ">= 0", arg="lr (the learning rate)")
        elif key in self._unsupported and value != self._unsupported[key]:
            raise ValueError(
                f"{type(self).__name__}: {key}={value!r} is not supported (only {self._unsupported[key]!r})"
            )
        elif key in self._rules:
            self._check(key, value, *self._rules[key])
        return value

    def _check_together(self, group: Mapping[str, Any]) -> None:
        """Rules between a group's hyperparameters (SGD's Nesterov needs momentum)."""

    def _checked_hyperparameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        checked = {key: self._checked(key, value) for key, value in values.items()}
        self._check_together(checked)
        return checked

    def __getattr__(self, name: str) -> Any:
        """``opt.lr``, ``opt.betas``, ...: the first group's value (called only for names not found otherwise)."""
        groups = self.__dict__.get("param_groups")
        if groups and name in self.__dict__["defaults"]:
            return groups[0][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("defaults", ()):  # opt.lr = 0.01: the one group's, checked
            if len(self.param_groups) != 1:
                raise ValueError(
                    f"{type(self).__name__}: cannot set {name} for {len(self.param_groups)} parameter groups at "
                    f"once; set param_groups[i][{name!r}]"
                )
            self.param_groups[0][name] = value
        else:
            super().__setattr__(name, value)

    # -- parameter groups ---------------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (a dict of ``"params"`` and hyperparameters, the missing ones taken from ``defaults``),
        as torch: fine-tuning adds a layer's parameters with a learning rate of their own."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}: parameter group {len(self.param_groups)} is a {type(param_group).__name__}; give "
                "either Tensors or dicts of 'params' and hyperparameters"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} has no 'params'")
        hyper = self._checked_hyperparameters(
            {**self.defaults, **{key: value for key, value in param_group.items() if key != "params"}}
        )
        params = self._checked_params(param_group["params"], None)
        group = ParamGroup(self, {"params": params, **hyper})
        self.param_groups.append(group)
        self._flatten()

    def _checked_params(self, params: Any, replacing: ParamGroup | None) -> list[Tensor]:
        """A group's parameters as a list, each a leaf Tensor in no other group; numbered as in ``params``."""
        name = type(self).__name__
        if isinstance(params, set):
            raise TypeError(f"{name}: a group's params must be ordered (a list), not a set")
        params = [params] if isinstance(params, Tensor) else list(params)
        others: dict[int, int] = {}
        start = 0  # the index in ``self.params`` of the group's first parameter
        for g, group in enumerate(self.param_groups):
            if group is replacing:
                start = len(others)
            else:
                others.update((id(p), g) for p in group["params"])
        if replacing is None:
            start = len(others)
        seen: set[int] = set()
        for i, p in enumerate(params, start):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:  # a frozen parameter (requires_grad False) is kept, and skipped while it has no grad
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) must be a leaf Tensor, not the result of an op "
                    f"({type(p.grad_fn).__name__})"
                )
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} appears twice in the parameter list")
            if id(p) in others:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is already in parameter group {others[id(p)]}"
                )
            seen.add(id(p))
        return params

    def _flatten(self) -> None:
        """``params`` and ``state`` from the groups; a captured step traced the old ones: it traces again."""
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.state = [slots for group in self.param_groups for slots in group.state]
        note_assignment()

    def _write(self, group: ParamGroup, changes: dict[str, Any]) -> None:
        """Set ``changes`` in ``group`` once all of them are checked: the learning rate into its array, new
        parameters with their own state, and a captured step traces again when anything else it read changed."""
        checked = {key: self._checked(key, value) for key, value in changes.items() if key != "params"}
        self._check_together({**group, **checked})
        params = self._checked_params(changes["params"], group) if "params" in changes else None
        retrace = False
        for key, value in checked.items():
            old = group.get(key, _ABSENT)
            dict.__setitem__(group, key, value)
            group.hyper[key] = value
            if key == "lr":
                group.lr_array[...] = value
            elif key in self.defaults and (old is _ABSENT or type(old) is not type(value) or old != value):
                retrace = True
        if params is not None:
            kept = {id(p): slots for p, slots in zip(group["params"], group.state)}
            dict.__setitem__(group, "params", params)
            group.state = [kept.get(id(p), {}) for p in params]
            self._flatten()
        elif retrace:
            note_assignment()

    def _refuse_removal(self, key: str) -> None:
        if key == "params" or key in self.defaults:
            raise TypeError(f"{type(self).__name__}: {key!r} cannot be removed from a parameter group")

    # -- the step -----------------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (None, as torch's default), or zero it in place with
        ``set_to_none=False``, so the next backward starts afresh."""
        zero_grads(self.params, set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one update to every parameter that has a gradient, with grad mode off (as torch). ``closure``,
        if given, runs first with grad mode on (it re-evaluates the loss and its gradients) and its result is
        returned; otherwise None."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        tracer = active_tracer()  # tl.compile records the update: it must see the state arrays and lr too
        update = self._update
        grad_was_enabled = engine_state.grad_enabled  # no_grad() without its context manager's cost on the hot path
        engine_state.grad_enabled = False
        try:
            for group in self.param_groups:
                if type(group) is not ParamGroup:
                    raise TypeError(
                        f"{type(self).__name__}.step: param_groups holds a {type(group).__name__} the optimizer "
                        "did not make; add groups with add_param_group"
                    )
                params, states = group["params"], group.state
                if len(params) != len(states):
                    raise ValueError(
                        f"{type(self).__name__}.step: a group's 'params' list changed in place ({len(params)} "
                        f"parameters, {len(states)} states); assign a new list or use add_param_group"
                    )
                lr = group.lr_array if tracer is None else tracer.traced_state({"lr": group.lr_array})["lr"]
                hyper = group.hyper
                for p, slots in zip(params, states):
                    grad = p.grad
                    if grad is not None:
                        g, data = grad._data, p._data  # the slots: .data's property costs on every step
                        if g.shape != data.shape:  # a .grad set by hand: numpy would broadcast it into the update
                            raise ValueError(
                                f"{type(self).__name__}.step: a gradient of shape {g.shape} for a parameter of "
                                f"shape {data.shape}"
                            )
                        if not slots:
                            slots["buf"] = np.empty_like(data)  # scratch space reused by every step
                        update(data, g, slots if tracer is None else tracer.traced_state(slots), lr, hyper)
        finally:
            engine_state.grad_enabled = grad_was_enabled
        return loss

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: np.ndarray, hyper: dict[str, Any]
    ) -> None:
        """Update ``p`` in place from its gradient ``g`` with its group's hyperparameters ``hyper`` (read them
        there, each step, so that a change in ``param_groups`` takes effect). ``lr`` is the group's
        learning rate as a 0-d array: multiply by it, never read it into a Python number, so a captured step
        follows a changed learning rate."""
        raise NotImplementedError

    def _with_weight_decay(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], weight_decay: float
    ) -> np.ndarray:
        """g + weight_decay * p (L2 penalty) in a buffer of its own; g itself when weight_decay is 0."""
        if not weight_decay:
            return g
        if "decayed" not in state:
            state["decayed"] = np.empty_like(p)
        out = state["decayed"]
        np.multiply(p, weight_decay, out=out)
        out += g
        return out

    @staticmethod
    def _count_step(state: dict[str, Any]) -> np.ndarray:
        """Advance and return the parameter's step count, torch's "step" state: a 0-d array, so that a captured
        step records the addition and every replay advances it too."""
        t = state.get("step")
        if t is None:
            t = state["step"] = np.zeros(())
        if type(t) is np.ndarray:
            t[()] += 1  # eagerly, through the scalar: a fraction of an in-place ufunc's cost on a 0-d array
        else:
            t += 1  # a traced array: the addition is recorded
        return t

    # -- checkpoints --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """torch's layout with copies of the arrays: ``{"state": {index: {name: array}}, "param_groups": [{...,
        "params": [indices]}]}``, indices counting every group's parameters in order; a parameter never updated
        has no entry."""
        state = {}
        for i, slots in enumerate(self.state):
            saved = {key: slots[key].copy() for key in self._state_keys if key in slots}
            if saved:
                state[i] = saved
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append(
                {**{k: v for k, v in group.items() if k != "params"}, "params": list(range(start, start + n))}
            )
            start += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load ``state_dict``'s layout (ours or torch's, its tensors converted to numpy): its hyperparameters
        into the groups, its state copied into the parameters' existing arrays (a captured step keeps them).
        Nothing changes unless everything fits: group sizes, state names and shapes are checked."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or {"state", "param_groups"} - set(state_dict):
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups' (what state_dict() returns)")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: the state dict has {len(saved_groups)} parameter groups, the optimizer "
                f"{len(self.param_groups)}"
            )
        where: dict[Any, tuple[int, Tensor, dict[str, Any]]] = {}  # saved index -> (our index, parameter, state)
        hyper = []
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = list(saved["params"])
            if len(ids) != len(group["params"]):
                raise ValueError(
                    f"{name}: parameter group {g} has {len(ids)} parameters in the state dict, "
                    f"{len(group['params'])} in the optimizer"
                )
            first = len(where)
            where.update((k, (first + i, p, s)) for i, (k, p, s) in enumerate(zip(ids, group["params"], group.state)))
            values = {key: self._checked(key, value) for key, value in saved.items() if key != "params"}
            self._check_together({**group, **values})
            hyper.append(values)
        loaded = {}
        for key, saved_state in dict(state_dict["state"]).items():
            if key not in where:
                raise ValueError(f"{name}: the state dict has state for parameter {key!r}, which no group lists")
            i, p, _ = where[key]
            loaded[i] = self._checked_state(name, i, p, saved_state)
        retrace = False
        for i, p, slots in where.values():
            new = loaded.get(i, {})
            for key in self._state_keys:
                if key not in new:
                    retrace |= slots.pop(key, None) is not None
                elif key in slots and slots[key].shape == new[key].shape and slots[key].dtype == new[key].dtype:
                    np.copyto(slots[key], new[key])
                else:
                    slots[key], retrace = new[key], True
            if new and "buf" not in slots:
                slots["buf"] = np.empty_like(p.data)
        for values, group in zip(hyper, self.param_groups):
            self._write(group, values)
        if retrace:
            note_assignment()  # state arrays a captured step held were made or dropped: it traces again

    def _checked_state(self, name: str, i: int, p: Tensor, saved: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One parameter's saved state as arrays of the parameter's dtype ("step" a float64 scalar), checked; a
        None (an older torch's SGD without momentum saved momentum_buffer None) is no state."""
        saved = {key: value for key, value in saved.items() if value is not None}
        unknown = sorted(set(saved) - set(self._state_keys))
        if unknown:
            raise ValueError(
                f"{name}: parameter {i} has state {unknown}, which {type(self).__name__} does not keep "
                f"(it keeps {list(self._state_keys)})"
            )
        missing = [key for key in self._required_state if key not in saved]
        if saved and missing:
            raise ValueError(f"{name}: the state of parameter {i} lacks {missing}")
        arrays = {}
        for key, value in saved.items():
            arr = np.asarray(value)
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"{name}: state {key!r} of parameter {i} has dtype {arr.dtype}, not a real number")
            shape = () if key == "step" else p.shape
            if arr.shape != shape and not (key == "step" and arr.size == 1):
                raise ValueError(
                    f"{name}: state {key!r} of parameter {i} has shape {arr.shape}, the parameter {p.shape} "
                    f"(expected {shape})"
                )
            arrays[key] = arr.astype(np.float64 if key == "step" else p.dtype).reshape(shape)
        return arrays
