"""Jacobians, Hessians and vector products with torch.autograd.functional's signatures and return structure.

    tl.jacobian(func, inputs, create_graph=False, strict=False)
    tl.hessian(func, inputs, create_graph=False, strict=False)
    tl.vjp(func, inputs, v=None, create_graph=False, strict=False)  -> (func_output, vjp)
    tl.jvp(func, inputs, v=None, create_graph=False, strict=False)  -> (func_output, jvp)
    tl.vhp(func, inputs, v=None, create_graph=False, strict=False)  -> (func_output, vhp)
    tl.hvp(func, inputs, v=None, create_graph=False, strict=False)  -> (func_output, hvp)

``inputs`` is a Tensor or a tuple of Tensors and ``func`` returns a Tensor or a tuple of Tensors. A single
Tensor gives a single result, a tuple a tuple: ``jacobian`` of two inputs and two outputs is
``((d out0/d in0, d out0/d in1), (d out1/d in0, d out1/d in1))``, each of shape ``out.shape + in.shape``.
An output independent of an input gives zeros, or an error with ``strict=True``. Results carry no graph
unless ``create_graph=True``. Everything is built from reverse mode (``tl.grad``); ``jvp`` and ``hvp`` use
the double-backward trick, as torch's do. ``functional_call`` and ``loss_hessian`` apply them to models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tinygrad_lab.engine.autograd import enable_grad, grad
from tinygrad_lab.engine.tensor import Tensor

Tensors = Any  # a Tensor or a tuple of Tensors (nested for jacobian and hessian)


# ---- torch's pre- and post-processing ------------------------------------------------------------------------------


def _as_tuple(value: Any, what: str, fn_name: str) -> tuple[bool, tuple]:
    """(was it a tuple, value as a tuple of Tensors), or torch's TypeError."""
    is_tuple = isinstance(value, (tuple, list))
    items = tuple(value) if is_tuple else (value,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {what}"
            raise TypeError(
                f"The {what} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                f"{where} has type {type(item).__name__}."
            )
        if what == "inputs" and item.dtype.kind not in "fc":  # torch: only float tensors can require gradients
            where = f"input {i}" if is_tuple else "the input"
            raise TypeError(
                f"{fn_name}: {where} has dtype {item.dtype}; only floating-point tensors can be differentiated"
            )
    return is_tuple, items


def _unpack(result: tuple, is_tuple: Any) -> Any:
    """Undo _as_tuple on a result: one flag, or (outer, inner) flags for nested tuples."""
    if isinstance(is_tuple, tuple):
        if not is_tuple[1]:
            result = tuple(r[0] for r in result)
        is_tuple = is_tuple[0]
    return result if is_tuple else result[0]


def _prepare(inputs: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """New Tensor objects for the inputs: differentiable copies of ones that require grad under create_graph
    (so gradients reach the caller's tensors), detached leaves otherwise."""
    result = []
    for t in inputs:
        if create_graph and t.requires_grad:
            result.append(t.reshape(t.shape))
        else:
            leaf = t.detach()
            leaf.requires_grad = need_graph and leaf.dtype.kind == "f"
            result.append(leaf)
    return tuple(result)


def _finish(values: Any, create_graph: bool) -> Any:
    """Detach results (recursing into tuples) unless the caller asked for a graph."""
    if isinstance(values, tuple):
        return tuple(_finish(v, create_graph) for v in values)
    return values if create_graph else values.detach()


def _check_v(v: tuple, reference: tuple, is_tuple: bool) -> None:
    if len(v) != len(reference):
        raise RuntimeError(
            f"v is a tuple of invalid length: should be {len(reference)} but got {len(v)}."
            if is_tuple
            else "The given v should contain a single Tensor."
        )
    for i, (a, b) in enumerate(zip(v, reference)):
        if a.shape != b.shape:
            prefix = f"Entry {i} in " if is_tuple else ""
            raise RuntimeError(f"{prefix}v has invalid size: should be {b.shape} but got {a.shape}.")


def _strict_outputs(outputs: tuple, strict: bool) -> None:
    if strict:
        for i, out in enumerate(outputs):
            if not out.requires_grad:
                raise RuntimeError(
                    f"Output {i} of the user-provided function does not require gradients. The "
                    "outputs must be computed in a differentiable manner from the input when running "
                    "in strict mode."
                )


def _grad(
    outputs: tuple, inputs: tuple, grad_outputs: tuple | None, create_graph: bool, retain_graph: bool | None = None
) -> tuple:
    """tl.grad over the outputs that require grad; None for inputs they do not reach."""
    pairs = [
        (o, None if grad_outputs is None else g)
        for o, g in zip(outputs, grad_outputs or outputs)
        if o is not None and o.requires_grad
    ]
    if not pairs:
        return (None,) * len(inputs)
    return grad(
        [o for o, _ in pairs],
        list(inputs),
        [g for _, g in pairs] if grad_outputs is not None else None,
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )


def _zeros_for_none(grads: tuple, refs: tuple, strict: bool, create_graph: bool, what: str) -> tuple:
    """Zeros where no gradient reached an input; with strict, torch's error naming the input instead."""
    result = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"The {what} of the user-provided function is independent of input {i}. "
                    "This is not allowed in strict mode."
                )
            g = Tensor._wrap(np.zeros_like(refs[i].data))
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(
                f"The {what} of the user-provided function is independent of input {i}. "
                "This is not allowed in strict mode when create_graph=True."
            )
        result.append(g)
    return tuple(result)


def _single_element(outputs: tuple, fn_name: str) -> None:
    if len(outputs) != 1:
        raise RuntimeError(f"The function given to {fn_name} must return a single Tensor")
    if outputs[0].size != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {fn_name} should contain a single element "
            f"(it has shape {outputs[0].shape})"
        )


# ---- the public functions ----------------------------------------------------------------------------------------


def vjp(
    func: Callable, inputs: Tensors, v: Tensors = None, create_graph: bool = False, strict: bool = False
) -> tuple[Tensors, Tensors]:
    """(func(*inputs), v^T J): the vector-Jacobian product, shaped like ``inputs``. ``v`` (shaped like the
    outputs) may be omitted when func returns a single one-element Tensor."""
    with enable_grad():
        is_in_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
        ins = _prepare(ins, create_graph, need_graph=True)
        is_out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", "vjp")
        _strict_outputs(outs, strict)
        if v is not None:
            vs = _prepare(_as_tuple(v, "v", "vjp")[1], create_graph, need_graph=False)
            _check_v(vs, outs, is_out_tuple)
        elif len(outs) != 1 or outs[0].size != 1:
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single "
                "Tensor with a single element."
            )
        else:
            vs = None
    result = _zeros_for_none(_grad(outs, ins, vs, create_graph), ins, strict, create_graph, "output")
    return _unpack(_finish(outs, create_graph), is_out_tuple), _unpack(_finish(result, create_graph), is_in_tuple)


def jvp(
    func: Callable, inputs: Tensors, v: Tensors = None, create_graph: bool = False, strict: bool = False
) -> tuple[Tensors, Tensors]:
    """(func(*inputs), J v): the Jacobian-vector product, shaped like the outputs. Computed as torch does, with
    the double-backward trick: u -> vjp(u) is linear in u, so differentiating ``vjp(u) . v`` in u gives J v,
    with two reverse passes and no forward mode. ``v`` (shaped like ``inputs``) may be omitted for a single
    one-element input."""
    with enable_grad():
        is_in_tuple, ins = _as_tuple(inputs, "inputs", "jvp")
        ins = _prepare(ins, create_graph, need_graph=True)
        if v is not None:
            vs = _prepare(_as_tuple(v, "v", "jvp")[1], create_graph, need_graph=False)
            _check_v(vs, ins, is_in_tuple)
        elif len(ins) != 1 or ins[0].size != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        else:
            vs = None
        is_out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", "jvp")
        _strict_outputs(outs, strict)
        dummies = tuple(Tensor(np.zeros_like(o.data), requires_grad=True) for o in outs)
        grad_ins = _grad(outs, ins, dummies, create_graph=True)
        if strict:
            for i, g in enumerate(grad_ins):
                if g is None or not g.requires_grad:
                    raise RuntimeError(
                        f"The output of the user-provided function is independent of input {i}. "
                        "This is not allowed in strict mode."
                    )
    result = _zeros_for_none(
        _grad(grad_ins, dummies, vs, create_graph),
        outs,
        strict,
        create_graph,
        "gradient (through the double-backward trick)",
    )
    return _unpack(_finish(outs, create_graph), is_out_tuple), _unpack(_finish(result, create_graph), is_out_tuple)


def jacobian(func: Callable, inputs: Tensors, create_graph: bool = False, strict: bool = False) -> Tensors:
    """d func / d inputs: for each output and input a Tensor of shape ``out.shape + in.shape``, nested as
    torch nests them (output index first). One reverse pass per output element."""
    with enable_grad():
        is_in_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
        ins = _prepare(ins, create_graph, need_graph=True)
        is_out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", "jacobian")
        _strict_outputs(outs, strict)
        blocks = []
        for i, out in enumerate(outs):
            rows: list[list] = [[] for _ in ins]
            for k in range(out.size):
                seed = np.zeros(out.size, dtype=out.dtype)
                seed[k] = 1
                grads = _grad((out,), ins, (seed.reshape(out.shape),), create_graph, retain_graph=True)
                for j, g in enumerate(grads):
                    if g is None and strict:
                        raise RuntimeError(
                            f"Output {i} of the user-provided function is independent of input {j}. "
                            "This is not allowed in strict mode."
                        )
                    if g is not None and strict and create_graph and not g.requires_grad:
                        raise RuntimeError(
                            f"The jacobian of the user-provided function is independent of input {j}. "
                            "This is not allowed in strict mode when create_graph=True."
                        )
                    rows[j].append(Tensor._wrap(np.zeros_like(ins[j].data)) if g is None else g)
            blocks.append(tuple(_rows_to_block(r, out.shape, inp.shape) for r, inp in zip(rows, ins)))
    return _unpack(_finish(tuple(blocks), create_graph), (is_out_tuple, is_in_tuple))


def _rows_to_block(rows: list, out_shape: tuple, in_shape: tuple) -> Tensor:
    """Stack one gradient per output element into a Tensor of shape out_shape + in_shape."""
    if not rows:  # an empty output
        return Tensor._wrap(np.zeros(out_shape + in_shape))
    if not any(r.requires_grad for r in rows):
        return Tensor._wrap(np.stack([r.data for r in rows]).reshape(out_shape + in_shape))
    from tinygrad_lab.engine.ops import stack

    return stack(rows).reshape(out_shape + in_shape)


def hessian(func: Callable, inputs: Tensors, create_graph: bool = False, strict: bool = False) -> Tensors:
    """The matrix of second derivatives of a function returning one element: for one input a Tensor of shape
    ``in.shape + in.shape``, for a tuple of inputs a tuple of tuples of blocks ``d2 f / d in_i d in_j``."""
    is_in_tuple, ins = _as_tuple(inputs, "inputs", "hessian")

    def scalar(*args: Tensor) -> Tensor:
        is_out_tuple, outs = _as_tuple(func(*args), "outputs of the user-provided function", "hessian")
        _strict_outputs(outs, strict)
        if is_out_tuple:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        _single_element(outs, "hessian")
        return outs[0].reshape(())

    def gradient(*args: Tensor) -> tuple:
        jac = jacobian(scalar, args, create_graph=True)
        if strict:
            for i, g in enumerate(jac):
                if not g.requires_grad:
                    raise RuntimeError(
                        f"While computing the hessian, found that the jacobian of the user-provided "
                        f"function with respect to input {i} is independent of the input. This is not "
                        "allowed in strict mode."
                    )
        return jac

    result = jacobian(gradient, ins, create_graph=create_graph, strict=strict)
    return _unpack(result, (is_in_tuple, is_in_tuple))


def vhp(
    func: Callable, inputs: Tensors, v: Tensors = None, create_graph: bool = False, strict: bool = False
) -> tuple[Tensor, Tensors]:
    """(func(*inputs), v^T H) for a function returning one element: two reverse passes, no Hessian built."""
    return _second_order(func, inputs, v, create_graph, strict, "vhp")


def hvp(
    func: Callable, inputs: Tensors, v: Tensors = None, create_graph: bool = False, strict: bool = False
) -> tuple[Tensor, Tensors]:
    """(func(*inputs), H v) for a function returning one element, by the double-backward trick as torch does
    (equal to vhp wherever the Hessian is symmetric)."""
    return _second_order(func, inputs, v, create_graph, strict, "hvp")


def _second_order(func: Callable, inputs: Tensors, v: Tensors, create_graph: bool, strict: bool, name: str) -> tuple:
    with enable_grad():
        is_in_tuple, ins = _as_tuple(inputs, "inputs", name)
        ins = _prepare(ins, create_graph, need_graph=True)
        if v is not None:
            vs = _prepare(_as_tuple(v, "v", name)[1], create_graph, need_graph=False)
            _check_v(vs, ins, is_in_tuple)
        elif len(ins) != 1 or ins[0].size != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        else:
            vs = None
        is_out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", name)
        _strict_outputs(outs, strict)
        if is_out_tuple:
            raise RuntimeError(f"The function given to {name} must return a single Tensor")
        _single_element(outs, name)
        jac = _grad(outs, ins, None, create_graph=True)
        for i, g in enumerate(jac):
            if strict and (g is None or not g.requires_grad):
                raise RuntimeError(
                    f"The jacobian of the user-provided function with respect to input {i} is "
                    "independent of the input. This is not allowed in strict mode."
                )
        if name == "hvp":  # u -> (J-transpose of the gradient) u is linear in u: its gradient in u is H v
            dummies = tuple(Tensor(np.zeros_like(t.data), requires_grad=True) for t in ins)
            back = _grad(jac, ins, dummies, create_graph=True)
            firsts, seconds = back, dummies
        else:
            firsts, seconds = jac, ins
    result = _zeros_for_none(_grad(firsts, seconds, vs, create_graph), ins, strict, create_graph, "hessian")
    return _finish(outs[0], create_graph), _unpack(_finish(result, create_graph), is_in_tuple)


# ---- models --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _parameters_replaced(module: Any, values: dict) -> Iterator[None]:
    """Inside, ``module``'s named parameters read as the given Tensors (the module's own are restored after)."""
    modules = dict(module.named_modules())
    owners = {}
    for name, _ in module.named_parameters():
        path, _, attr = name.rpartition(".")
        owners[name] = (modules[path], attr)
    unknown = set(values) - set(owners)
    if unknown:
        raise KeyError(f"functional_call: {sorted(unknown)} are not parameters of {type(module).__name__}")
    saved = [(owner, attr, getattr(owner, attr)) for name, (owner, attr) in owners.items() if name in values]
    try:
        for name, tensor in values.items():
            owner, attr = owners[name]
            object.__setattr__(owner, attr, tensor)
        yield
    finally:
        for owner, attr, original in saved:
            object.__setattr__(owner, attr, original)


def functional_call(module: Any, parameters: dict, args: Any) -> Any:
    """``module(*args)`` with some parameters replaced by the given Tensors (by dotted name), as
    torch.func.functional_call: makes a model's output a function of its weights, for jacobian and hessian."""
    with _parameters_replaced(module, parameters):
        return module(*args) if isinstance(args, tuple) else module(args)


def loss_hessian(model: Any, x: Any, y: Any, loss: Callable) -> np.ndarray:
    """The Hessian of ``loss(model(x), y)`` in all the model's weights, flattened in named_parameters order."""
    names = [n for n, _ in model.named_parameters()]
    weights = tuple(p.detach() for _, p in model.named_parameters())
    x, y = Tensor(x), Tensor(y)

    def f(*ws: Tensor) -> Tensor:
        return loss(functional_call(model, dict(zip(names, ws)), (x,)), y)

    blocks = hessian(f, weights)
    sizes = [w.size for w in weights]
    return np.block(
        [
            [np.asarray(blocks[i][j].data).reshape(sizes[i], sizes[j]) for j in range(len(sizes))]
            for i in range(len(sizes))
        ]
    )
