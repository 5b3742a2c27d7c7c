"""Layers: ``Linear``, ``Embedding``, ``Sequential`` and the lab's ``MLP``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from tinygrad_lab.engine.ops.convolution import Linear as Linear_
from tinygrad_lab.engine.random import resolve_rng
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.nn.activations import make_activation
from tinygrad_lab.nn.functional_conv import embedding
from tinygrad_lab.nn.init import init_weight, uniform_fan_in
from tinygrad_lab.nn.module import Module, Parameter


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features) as PyTorch keeps it; one graph node.

    Inits: "default" PyTorch's (weight and bias uniform in +-1/sqrt(in_features)); "xavier"/"glorot" uniform in
    +-sqrt(6 / (fan_in + fan_out)); "kaiming"/"he" normal with std sqrt(2 / fan_in); "randn" the lab's plain
    standard normal. The last three draw the (in, out) matrix the lab writes (rng.standard_normal((in, out)) for
    "randn") and keep its transpose, and their bias starts at zero, drawing nothing from ``rng``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "default",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Linear: {name} must be an integer >= 0, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(init_weight(init, self.in_features, self.out_features, rng, dtype))
        if not bias:
            self.bias = None
        elif str(init).lower() == "default":
            self.bias = Parameter(uniform_fan_in((out_features,), in_features, rng, dtype))
        else:
            self.bias = Parameter(np.zeros(out_features, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        # the op itself, not F.linear (whose checks cost a little on the lab's hot path); a shape mismatch is
        # explained only once the op has failed
        try:
            return Linear_.apply(x, self.weight) if self.bias is None else Linear_.apply(x, self.weight, self.bias)
        except ValueError:
            shape = np.shape(x.data if isinstance(x, Tensor) else x)
            if shape[-1:] != (self.in_features,):
                raise ValueError(
                    f"Linear({self.in_features}, {self.out_features}): input of shape {shape} does not fit: "
                    f"its last axis must be in_features, {self.in_features}"
                ) from None
            raise

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: ``weight`` (num_embeddings, embedding_dim), drawn from N(0, 1) as torch's (``rng``, or
    tl.manual_seed's generator), maps integer indices to its rows. The ``padding_idx`` row starts at zero and gets
    no gradient. ``_weight`` (an array) starts from given values, as torch's."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding: {name} must be an integer >= 1, got {value!r}")
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), got {padding_idx}"
            )
        if max_norm is not None or scale_grad_by_freq:
            raise ValueError("Embedding: max_norm and scale_grad_by_freq are not supported (use their defaults)")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = None if padding_idx is None else int(padding_idx) % self.num_embeddings
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, False, sparse
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            weight = resolve_rng(rng).standard_normal(shape).astype(dtype, copy=False)
            if self.padding_idx is not None:
                weight[self.padding_idx] = 0.0
        else:
            weight = np.array(_weight.data if isinstance(_weight, Tensor) else _weight, dtype=dtype)
            if weight.shape != shape:
                raise ValueError(f"Embedding: _weight has shape {weight.shape}, expected {shape}")
        self.weight = Parameter(weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None, sparse: bool = False
    ) -> Embedding:
        """An Embedding holding a copy of the (rows, dim) ``embeddings``, frozen unless ``freeze=False``."""
        arr = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if arr.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {arr.shape}")
        rows, dim = arr.shape
        return cls(rows, dim, padding_idx=padding_idx, sparse=sparse, _weight=arr, _freeze=freeze, dtype=arr.dtype)

    def forward(self, x: Any) -> Tensor:
        return embedding(x, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text + (", sparse=True" if self.sparse else "")


class Sequential(Module):
    """Applies its modules in order. ``Sequential(m1, m2, ...)`` names them "0", "1", ...; an OrderedDict
    (or dict) of name -> module keeps its names."""

    def __init__(self, *modules: Module | Mapping[str, Module]):
        super().__init__()
        items: list[tuple[str, Any]]
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in items:
            self.add_module(name, module)  # checked as torch's: a Module, and a name that hides no attribute

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...
    def __getitem__(self, index: int | slice) -> Module:
        """The module at ``index``, or a Sequential of a slice of them under their names (as torch)."""
        if isinstance(index, slice):
            return Sequential(dict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]


class MLP(Sequential):
    """Fully connected layers fc1, act1, fc2, act2, ... : one Linear per entry of ``hidden`` plus the output.

    The lab's network is ``MLP(2, (h1, h2), 1, bias=False, init="randn", rng=np.random.default_rng(seed))``:
    it draws w1, w2, w3 from ``rng`` in the order tinygrad_lab.lab.reference.Network does.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "sigmoid",
        out_activation: str = "sigmoid",
        bias: bool = True,
        init: str = "xavier",
        rng: np.random.Generator | None = None,
    ):
        sizes = [in_features, *hidden, out_features]
        layers: OrderedDict[str, Module] = OrderedDict()
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            layers[f"fc{i}"] = Linear(n_in, n_out, bias=bias, init=init, rng=rng)
            layers[f"act{i}"] = make_activation(out_activation if i == len(sizes) - 1 else activation)
        super().__init__(layers)
