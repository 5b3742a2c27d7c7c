"""Runs of the lab's network: training one config (``run``), the graph the pictures are drawn from
(``graph_root``), and model files (``save_run`` / ``load_model``, with the metadata checked before use)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

import tinygrad_lab as tl
from tinygrad_lab import files, nn
from tinygrad_lab.engine.tensor import Tensor
from tinygrad_lab.lab import data
from tinygrad_lab.lab.config import ACTIVATIONS, MODELS, TrainConfig, build_model, run_spec, setup, shuffle_rng
from tinygrad_lab.lab.train import History, fit


@dataclass
class Run:
    """A finished run: its config, the trained model, the data it saw (as the model takes them), its
    History, and the task's test set (None when it has none)."""

    config: TrainConfig
    model: Any
    x: np.ndarray
    y: np.ndarray
    history: History
    test: tuple[np.ndarray, np.ndarray] | None = None

    def predict(self, x: np.ndarray | None = None) -> np.ndarray:
        """The model's outputs on x (default: the training data), in eval mode and in batches."""
        x = self.x if x is None else x
        return predict(self.model, x, self.config.batch_size)


def predict(model: Any, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """``model``'s outputs on x without gradients, in eval mode, in batches of ``batch_size`` (None: one)."""
    size = len(x) if batch_size is None else batch_size
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        with tl.no_grad():
            outs = [model(Tensor(x[i : i + size], dtype=x.dtype)).data for i in range(0, len(x), max(size, 1))]
    finally:
        if was_training:
            model.train()
    return np.concatenate(outs) if outs else np.zeros((0,))


def run(
    config: TrainConfig,
    *,
    log_every: int = 1000,
    out: TextIO | None = None,
    quiet: bool = False,
    progress: bool | None = None,
    compile: bool = True,
    until: Any = None,
) -> Run:
    """Make the task's data and the model from ``config.seed``, train, and return the Run. A task with a test
    set is evaluated on it after every epoch (History.val_accuracy)."""
    x, y, model, opt, loss_fn, test = setup(config)
    try:
        history = fit(
            model,
            x,
            y,
            loss=loss_fn,
            optimizer=opt,
            epochs=config.epochs,
            batch_size=config.batch_size,
            validation=test,
            val_name="test",
            rng=shuffle_rng(config.seed),
            log_every=log_every,
            until=until,
            progress=progress,
            out=out,
            quiet=quiet,
            compile=compile,
        )
    except tl.CaptureError as err:
        # The captured step refused this model or disagreed with eager execution (it checks itself on its
        # first replays): start the whole run again eagerly; the seed makes it the same run.
        if not quiet:
            print(f"warning: the captured step failed ({str(err).splitlines()[0]}); running eagerly", file=sys.stderr)
        return run(config, log_every=log_every, out=out, quiet=quiet, progress=progress, compile=False, until=until)
    return Run(config, model, x, y, history, test)


def graph_root(config: TrainConfig, after_epochs: int = 0, compile: bool = True) -> tuple[Tensor, Any]:
    """The lab's network and its loss on the task, after ``after_epochs`` epochs of training, with one more
    forward and backward whose graph is kept (retain_graph) and whose gradients are in ``.grad``: what
    tinygrad_lab.viz draws. Returns ``(loss, model)``."""
    x, y, model, opt, loss_fn, _ = setup(config)
    if after_epochs > 0:
        fit(
            model,
            x,
            y,
            loss=loss_fn,
            optimizer=opt,
            epochs=after_epochs,
            batch_size=config.batch_size,
            rng=shuffle_rng(config.seed),
            quiet=True,
            compile=compile,
        )
    model.zero_grad()
    loss = loss_fn(model(Tensor(x, name="x")), Tensor(y, dtype=y.dtype, name="y"))
    loss.name = "loss"
    loss.backward(retain_graph=True)
    return loss, model


def explain_page(config: TrainConfig, path: Any, after_epochs: int = 0) -> Any:
    """The explainer page (viz.explain) of the lab's network and its loss after ``after_epochs`` epochs."""
    from tinygrad_lab import viz

    loss, model = graph_root(config, after_epochs=after_epochs)
    title = (
        f"the lab's network on {config.task}: hidden {' x '.join(map(str, config.hidden))}, "
        f"{config.activation}, {config.loss.upper()}, after {after_epochs:,} epoch{'s' if after_epochs != 1 else ''} "
        f"at lr {config.lr}"
    )
    return viz.explain(loss, path, params=dict(model.named_parameters()), title=title)


# ---- model files ----------------------------------------------------------------------------------------------------


def save_run(path: Any, run_: Run) -> Any:
    """model.npz: the state_dict plus the model spec and the training config."""
    spec = run_spec(run_.config, run_.x, run_.y)
    return files.save_model(path, run_.model, {"model": spec, "config": run_.config.to_dict()})


def load_model(path: Any) -> tuple[nn.Module, dict]:
    """The model saved by save_run and its metadata; every problem is a files.ModelFileError. The metadata
    is checked (types, names, the size limits) before anything is built from it."""
    meta, arrays = files.read_model_file(path)
    spec = meta.get("model")
    if not isinstance(spec, dict):
        raise files.ModelFileError(path, "metadata is missing key 'model' (the layer sizes and activation)")
    kind = spec.get("kind", "mlp")
    if kind not in MODELS:
        raise files.ModelFileError(
            path, f"metadata 'model.kind' must be one of {', '.join(MODELS)}, got {_short(kind)}"
        )
    for key in MODELS[kind].keys:
        if key not in spec:
            raise files.ModelFileError(path, f"metadata is missing key 'model.{key}'")
    problem = _spec_problem(spec) or _config_problem(meta.get("config", {}))
    if problem:
        raise files.ModelFileError(path, f"metadata {problem}")
    if meta["version"] == 1:  # its Linear weights are (in, out): PyTorch's layout is their transpose
        arrays = {k: v.T if k.endswith(".weight") and v.ndim == 2 else v for k, v in arrays.items()}
    model = build_model(spec, np.random.default_rng(0))
    files.check_state(path, model, arrays)
    model.load_state_dict(arrays)
    return model, meta


def _is_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _spec_problem(spec: dict) -> str | None:
    """Why a model spec read from a file cannot be built, or None."""
    for key in ("in_features", "out_features"):
        if key in spec and not _is_int(spec[key]):
            return f"'model.{key}' must be an integer >= 1, got {spec[key]!r}"
    in_shape = spec.get("in_shape", [spec.get("in_features")])
    if not isinstance(in_shape, list) or not 1 <= len(in_shape) <= 3 or not all(_is_int(d) for d in in_shape):
        return f"'model.in_shape' must be a list of 1 to 3 integers >= 1, got {_short(in_shape)}"
    if "in_features" in spec and int(np.prod(in_shape)) != spec["in_features"]:
        return (
            f"'model.in_features' is {spec['in_features']} but 'model.in_shape' {in_shape} holds "
            f"{int(np.prod(in_shape))}"
        )
    if spec.get("dtype", "float64") not in ("float32", "float64"):
        return f"'model.dtype' must be float32 or float64, got {_short(spec['dtype'])}"
    hidden = spec["hidden"]
    if not isinstance(hidden, list) or not hidden or not all(_is_int(h) for h in hidden):
        return f"'model.hidden' must be a non-empty list of integers >= 1, got {_short(hidden)}"
    for key, allowed in (("activation", ACTIVATIONS), ("out_activation", ("sigmoid", "none")), ("init", nn.INITS)):
        if key in spec and spec[key] not in allowed:
            return f"'model.{key}' must be one of {', '.join(allowed)}, got {_short(spec[key])}"
    if not isinstance(spec.get("bias", True), bool):
        return f"'model.bias' must be true or false, got {_short(spec['bias'])}"
    problems = MODELS[spec.get("kind", "mlp")].problems({**spec, "in_shape": in_shape})
    return f"'model' is over the limits: {problems[0]}" if problems else None


def _config_problem(config: Any) -> str | None:
    """Why the training config read from a file cannot give predict its task and seed, or None."""
    if not isinstance(config, dict):
        return f"'config' must be an object, got {type(config).__name__}"
    if "task" in config and not (isinstance(config["task"], str) and config["task"] in data.TASKS):
        return f"'config.task' must be one of {', '.join(data.TASKS)}, got {_short(config['task'])}"
    if "seed" in config and not _is_int(config["seed"], 0):
        return f"'config.seed' must be an integer >= 0, got {_short(config['seed'])}"
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
