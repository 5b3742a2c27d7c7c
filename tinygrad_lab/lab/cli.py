"""The ``tinygrad-lab`` command (also ``python -m tinygrad_lab``):

    tinygrad-lab train --task xor --hidden 4 4 --lr 0.1 --epochs 20000 --out runs/xor
    tinygrad-lab predict --model runs/xor/model.npz
    tinygrad-lab train --task digits --model cnn --out runs/cnn     # Adam 1e-3, batch 64, 20 epochs
    tinygrad-lab predict --model runs/cnn/model.npz --task digits   # accuracy on the test split
    tinygrad-lab report --out report [--quick] [--workers N]
    tinygrad-lab graph --task xor --hidden 4 4 --view backward --after-epochs 2000 --out graph.svg
    tinygrad-lab explain --task xor --hidden 2 2 --after-epochs 2000 --out backprop.html

Exit codes: 0 done; 1 a runtime error, one line ``error: ...`` (a model file that is missing, corrupt or
does not fit its model, an output folder that cannot be created or replaced, memory); 2 a usage error, one
line naming the reason (bad arguments, sizes over the limits of tinygrad_lab.lab.config, a missing extra that the
command cannot work without, such as scikit-learn for the digits); 3 the training run diverged (its loss stopped
being finite; the run is still written); 130 interrupted. No command prints a traceback. A run's outputs are
written into a temporary folder beside --out that then replaces --out in one rename, so --out holds one whole run
or nothing new.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "tinygrad-lab"
GRAPH_FORMATS = ("svg", "png", "pdf")
RUN_FIGURES = ("comparison.png", "learning_curve.png", "decision_boundary.png")
IMAGE_FIGURES = ("learning_curve.png", "confusion_matrix.png", "misclassified.png")  # tasks with a test set
RUN_FILES = (*dict.fromkeys(RUN_FIGURES + IMAGE_FIGURES), "model.npz", "history.json", "metrics.json")
DIVERGED = 3  # the exit code of a training run whose loss stopped being finite
MAX_WORKERS = 256
MAX_SEEDS = 100


# ---- argument types: each failure becomes argparse's one-line usage error, exit code 2 ------------------------------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _int(text: str, minimum: int, maximum: int | None = None, limit: str = "") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum:,} ({limit}), got {_clip(text)}")
    return value


def _clip(text: str, limit: int = 30) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def non_negative_int(text: str) -> int:
    return _int(text, 0)


def bounded(minimum: int, maximum: int, limit: str) -> Any:
    """An argparse type: an integer from minimum to maximum; ``limit`` says what the maximum protects."""

    def convert(text: str) -> int:
        return _int(text, minimum, maximum, limit)

    return convert


def output_dir(text: str) -> Path:
    """A folder to write into: it may not exist yet, but its parent must, and it must not be a file."""
    path = Path(text)
    parent = path.absolute().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the parent folder {str(parent)!r} of {text!r} does not exist")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    return path


def _output_file(formats: Sequence[str]) -> Any:
    """An argparse type: a file path in an existing folder, ending in one of ``formats``."""

    def parse(text: str) -> Path:
        path = Path(text)
        parent = path.absolute().parent
        if not parent.is_dir():
            raise argparse.ArgumentTypeError(f"the parent folder {str(parent)!r} of {text!r} does not exist")
        if path.suffix.lstrip(".").lower() not in formats:
            raise argparse.ArgumentTypeError(f"{text!r} must end in one of {', '.join('.' + f for f in formats)}")
        return path

    return parse


graph_file = _output_file(GRAPH_FORMATS)
page_file = _output_file(("html",))


def _epochs(minimum: int = 1, every_task: bool = False) -> Any:
    """The --epochs type: bounded by configs.MAX_EPOCHS, and with ``every_task`` (the report's lab sections run
    several tasks) by the epochs x points limit of the largest of them; per-task limits are TrainConfig's."""
    from tinygrad_lab.lab import config as configs
    from tinygrad_lab.lab.report.experiments import TASKS

    if not every_task:
        return bounded(minimum, configs.MAX_EPOCHS, "the limit on a run's length")
    points = max(configs.task_shape(task).points for task in TASKS)
    return bounded(
        minimum,
        min(configs.MAX_EPOCHS, configs.MAX_EPOCH_POINTS // points),
        f"the limit on a run's work, {configs.MAX_EPOCH_POINTS:,} epochs x data points, over {points} points",
    )


# ---- the parser ------------------------------------------------------------------------------------------------------


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from tinygrad_lab.lab import config as configs
    from tinygrad_lab.lab import data

    p.add_argument("--task", choices=list(data.TASKS), default="xor", help="dataset (default: xor)")
    p.add_argument(
        "--model",
        choices=list(configs.MODELS),
        default=None,
        help="architecture: the lab's MLP, or a CNN for images (default: cnn on digits, else mlp)",
    )
    p.add_argument(
        "--hidden",
        type=bounded(1, configs.MAX_WIDTH, "the limit on a layer's width"),
        nargs="+",
        default=None,
        metavar="H",
        help="hidden layer sizes, or the CNN's conv channels (default: 4 4, "
        "the lab's; 16 32 for the CNN; 128 for the MLP on digits; at most "
        f"{configs.MAX_WIDTH:,} each and {configs.MAX_PARAMETERS:,} parameters in all)",
    )
    p.add_argument(
        "--activation",
        choices=list(configs.ACTIVATIONS),
        default=None,
        help="hidden activation; none removes every activation, output included (default: sigmoid; relu on digits)",
    )
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: 0.1; 1e-3 on digits)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the data and the initial weights")
    p.add_argument(
        "--bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the layers biases (default: none, as the lab's network; biases on digits)",
    )


def build_parser() -> argparse.ArgumentParser:
    from tinygrad_lab import optim
    from tinygrad_lab.lab import config as configs

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The backprop lab on tinygrad_lab: train, predict, "
        "draw graphs, and regenerate the whole lab report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,predict,report,graph,explain}")
    sub.required = True

    p = sub.add_parser(
        "train",
        help="train the lab's network and write figures, model and metrics",
        description="Train, print the lab's log, and write into --out: comparison.png, "
        "learning_curve.png, decision_boundary.png (on digits: learning_curve.png, "
        "confusion_matrix.png, misclassified.png), model.npz, history.json, metrics.json.",
    )
    _add_model_args(p)
    p.add_argument(
        "--epochs",
        type=_epochs(),
        default=None,
        help=f"epochs (default: 20000; 20 on digits; at most {configs.MAX_EPOCHS:,}, and epochs x data "
        f"points at most {configs.MAX_EPOCH_POINTS:,})",
    )
    p.add_argument(
        "--batch-size",
        type=bounded(0, configs.MAX_BATCH_SIZE, "the limit on a batch"),
        default=None,
        metavar="N",
        help="minibatch size, 0 for full batch (default: full batch, the lab's; 64 on digits)",
    )
    p.add_argument(
        "--loss", choices=list(configs.LOSSES), default=None, help="loss (default: mse; cross_entropy on digits)"
    )
    p.add_argument(
        "--optimizer",
        choices=list(configs.OPTIMIZERS),
        default=None,
        help=f"optimizer; momentum is SGD with momentum {optim.MOMENTUM} (default: sgd; adam on digits)",
    )
    p.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--log-every",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="print a log line every N epochs, 0 for none (default: 1000; every epoch with minibatches)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no log; print only the accuracy")
    p.add_argument("--no-compile", action="store_true", help="run the eager step, not the captured one")

    p = sub.add_parser("predict", help="load a model.npz and print its predictions and accuracy on a task")
    p.add_argument("--model", type=Path, required=True, metavar="FILE", help="a model.npz written by train")
    from tinygrad_lab.lab import data

    p.add_argument("--task", choices=list(data.TASKS), default=None, help="dataset (default: the training task)")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="seed of the data (default: the training seed, i.e. the training data); a task with a "
        "test set (digits) is evaluated on it",
    )

    p = sub.add_parser("report", help="rerun every experiment of the lab report into DIR/README.md")
    p.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--quick", action="store_true", help="few epochs and 2 seeds: a smoke run of the whole report")
    p.add_argument(
        "--workers",
        type=bounded(1, MAX_WORKERS, "the limit on worker processes"),
        default=None,
        metavar="N",
        help="worker processes (default: the number of CPU cores)",
    )
    p.add_argument(
        "--seeds",
        type=bounded(1, MAX_SEEDS, "the limit on seeds per cell"),
        default=None,
        metavar="N",
        help="seeds per cell (default 5)",
    )
    p.add_argument(
        "--epochs", type=_epochs(every_task=True), default=None, metavar="N", help="epochs per run (default 20000)"
    )
    p.add_argument("--no-compile", action="store_true", help="run the eager step, not the captured one")

    p = sub.add_parser("graph", help="render the lab's network with its loss as a graph (svg, png, pdf)")
    _add_model_args(p)
    from tinygrad_lab.viz import VIEWS

    p.add_argument("--view", choices=tuple(VIEWS), default="forward", help="default: forward")
    p.add_argument(
        "--after-epochs",
        type=_epochs(minimum=0),
        default=0,
        metavar="N",
        help="train N epochs first, so values and gradients are real (default: 0)",
    )
    p.add_argument("--out", type=graph_file, required=True, metavar="FILE", help="graph.svg, .png or .pdf")

    p = sub.add_parser(
        "explain",
        help="write a page that steps through the lab network's backward pass",
        description="Write one self-contained HTML page (no network access) that walks the "
        "backward pass of the lab's network and its loss, node by node, in the engine's order.",
    )
    _add_model_args(p)
    p.add_argument(
        "--after-epochs", type=_epochs(minimum=0), default=0, metavar="N", help="train N epochs first (default: 0)"
    )
    p.add_argument("--out", type=page_file, required=True, metavar="FILE", help="the page, e.g. backprop.html")
    for subparser in sub.choices.values():
        subparser.set_defaults(subparser=subparser)  # so a command can report a usage error found after parsing
    return parser


# ---- commands --------------------------------------------------------------------------------------------------------


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser, **extra: Any) -> Any:
    """The TrainConfig of the arguments: the task's defaults (config.defaults_for), then what was given."""
    from tinygrad_lab.lab import config as configs

    full_batch = extra.get("batch_size") == 0  # --batch-size 0
    try:
        cfg = configs.TrainConfig.for_task(
            args.task,
            args.model,
            hidden=tuple(args.hidden) if args.hidden else None,
            lr=args.lr,
            activation=args.activation,
            seed=args.seed,
            bias=args.bias,
            **{k: v for k, v in extra.items() if not (k == "batch_size" and full_batch)},
        )
        return cfg.replace(batch_size=None) if full_batch else cfg
    except ValueError as err:
        parser.error(str(err))


def _title(cfg: Any, images: bool) -> str:
    sizes = "x".join(map(str, cfg.hidden))
    if images:
        batch = "full batch" if cfg.batch_size is None else f"batch {cfg.batch_size}"
        return f"{cfg.task}, {cfg.model} {sizes}, {cfg.optimizer} lr {cfg.lr:g}, {batch}"
    return f"{cfg.task}, hidden {sizes}, {cfg.activation}, {cfg.optimizer} lr {cfg.lr}"


def run_figures(run: Any) -> tuple[str, ...]:
    """The figures a run's folder gets: the lab's three, or for a task with a test set (images) the learning
    curves with the test accuracy, the confusion matrix and the misclassified test images."""
    return RUN_FIGURES if run.test is None else IMAGE_FIGURES


def write_run_outputs(out_dir: Path, run: Any, figures: bool = True) -> list[Path]:
    """The files of a training run (its run_figures only with ``figures``, then model, history, metrics),
    each written atomically."""
    from tinygrad_lab import files
    from tinygrad_lab.lab import runs

    cfg, hist = run.config, run.history
    written = []
    if figures:
        from tinygrad_lab.lab import plots

        name = _title(cfg, images=run.test is not None)
        if run.test is None:
            written += [
                files.save_figure(
                    plots.comparison_figure(run.x, run.y, run.predict(), title=name), out_dir / "comparison.png"
                ),
                files.save_figure(
                    plots.learning_curve_figure(hist.loss, hist.accuracy, title=name), out_dir / "learning_curve.png"
                ),
                files.save_figure(
                    plots.decision_boundary_figure(run.predict, run.x, run.y, title=name),
                    out_dir / "decision_boundary.png",
                ),
            ]
        else:
            from tinygrad_lab.lab import data, train

            test_set = data.load_test(cfg.task)
            assert test_set is not None  # run.test is set only for a task that has a test set
            images, labels = test_set
            predicted = train.predicted_labels(run.predict(run.test[0]))
            classes = run.predict(run.test[0][:1]).shape[-1]
            curves = plots.learning_curve_figure(hist.loss, hist.accuracy, title=name, val_accuracy=hist.val_accuracy)
            confusion = plots.confusion_matrix_figure(labels, predicted, classes, title=f"test set: {name}")
            written += [
                files.save_figure(curves, out_dir / "learning_curve.png"),
                files.save_figure(confusion, out_dir / "confusion_matrix.png"),
                files.save_figure(plots.misclassified_figure(images, labels, predicted), out_dir / "misclassified.png"),
            ]
    written += [
        runs.save_run(out_dir / "model.npz", run),
        files.write_json(out_dir / "history.json", hist.to_dict()),
        files.write_json(out_dir / "metrics.json", metrics(run)),
    ]
    return written


def metrics(run: Any) -> dict:
    """The summary of a run: config, final accuracy and loss (and test accuracy on a task with a test set),
    epochs to 100%, divergence, size and timing."""
    hist = run.history
    summary = {
        "config": run.config.to_dict(),
        "final_accuracy": hist.to_dict()["final_accuracy"],
        "final_loss": hist.to_dict()["final_loss"],
        "epochs": hist.epochs,
        "epochs_to_100": hist.epochs_to_100,
        "diverged_at_epoch": hist.diverged_at,
        "wall_time_s": hist.wall_time,
        "seconds_per_epoch": hist.wall_time / max(hist.epochs, 1),
        "compiled": hist.compiled,
        "backend": hist.backend,
        "parameters": sum(int(p.data.size) for p in run.model.parameters()),
    }
    if run.test is not None:
        summary["test_accuracy"] = hist.to_dict()["final_val_accuracy"]
        summary["test_size"] = len(run.test[1])
    return summary


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Train, then publish the run's files into --out in one step. Without matplotlib the figures are
    skipped with one note; a diverged run is written too, and says so with exit code DIVERGED."""
    from tinygrad_lab import files
    from tinygrad_lab.lab import plots, runs, train

    cfg = _config(
        args, parser, epochs=args.epochs, loss=args.loss, optimizer=args.optimizer, batch_size=args.batch_size
    )
    log_every = args.log_every if args.log_every is not None else (1000 if cfg.batch_size is None else 1)
    figures = plots.available()
    with files.staged_folder(args.out, RUN_FILES) as stage:  # fails here, before training, if --out cannot be
        run = runs.run(cfg, log_every=log_every, quiet=args.quiet, compile=not args.no_compile)
        written = write_run_outputs(stage, run, figures=figures)
    if args.quiet:
        print(f"Accuracy(%): {train.format_accuracy(run.history.final_accuracy)}")
    else:
        print(f"training step: {run.history.backend}")
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    if not figures:
        print(
            f"note: matplotlib is not installed, so {', '.join(run_figures(run))} were skipped; "
            f"{plots.INSTALL} draws them",
            file=sys.stderr,
        )
    epoch = run.history.diverged_at
    if epoch is not None:
        when = f"at epoch {epoch}" if epoch <= run.history.epochs else "after the last epoch"
        print(
            f"error: the run diverged: its loss stopped being finite {when} (try a lower --lr); "
            f"the run is in {args.out}",
            file=sys.stderr,
        )
        return DIVERGED
    return 0


def cmd_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the model's predictions and accuracy on a task's data (its test set when it has one)."""
    import numpy as np

    from tinygrad_lab import files
    from tinygrad_lab.lab import config as configs
    from tinygrad_lab.lab import data, runs, train

    try:
        model, meta = runs.load_model(args.model)
    except files.ModelFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    trained = meta.get("config", {})  # load_model checked its task and seed
    task = args.task or trained.get("task", "xor")
    seed = args.seed if args.seed is not None else trained.get("seed", 0)
    test = data.load_test(task)
    x, y = test if test is not None else data.load_task(task, configs.seeded_rngs(seed)[0])
    spec = meta["model"]
    x = configs.model_inputs(spec, x)
    in_shape = tuple(spec.get("in_shape", [spec.get("in_features")]))
    if x.shape[1:] != in_shape:
        takes = f"{in_shape[0]} inputs" if len(in_shape) == 1 else f"inputs of shape {in_shape}"
        has = f"{x.shape[1]}" if x.ndim == 2 else f"shape {x.shape[1:]}"
        print(f"error: {args.model}: the model takes {takes} but task {task!r} has {has}", file=sys.stderr)
        return 1
    pred = runs.predict(model, x.astype(spec.get("dtype", "float64"), copy=False), trained.get("batch_size"))
    classes = pred.shape[-1] if pred.ndim == 2 else 1
    if y.ndim == 1 and classes != int(y.max()) + 1:
        print(
            f"error: {args.model}: the model has {classes} outputs but task {task!r} has {int(y.max()) + 1} classes",
            file=sys.stderr,
        )
        return 1
    if test is not None:
        print(f"test set of {task}: {len(y)} samples")
        print(f"Accuracy(%): {train.format_accuracy(train.accuracy(pred, y))}")
    else:
        print(train.format_result(np.asarray(pred), train.accuracy(pred, y)))
    return 0


def cmd_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinygrad_lab.lab import plots

    if not plots.available():  # every section draws figures: say so before any run starts
        print(
            f"error: report draws figures and needs matplotlib, which is not installed: {plots.INSTALL}",
            file=sys.stderr,
        )
        return 2
    from tinygrad_lab.lab import data, report

    data.load_test("digits")  # the convolution section trains on the digits: without scikit-learn, stop here
    settings = report.settings_for(quick=args.quick, seeds=args.seeds, epochs=args.epochs)
    readme = report.build_report(args.out, settings, workers=args.workers, compile=not args.no_compile, log=sys.stdout)
    print(f"report written to {readme}")
    return 0


def cmd_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinygrad_lab import viz
    from tinygrad_lab.lab import runs

    cfg = _config(args, parser, epochs=max(args.after_epochs, 1))
    root, model = runs.graph_root(cfg, after_epochs=args.after_epochs, compile=True)
    try:  # render writes atomically itself; without Graphviz's dot it saves the .dot text beside args.out
        viz.render(root, args.out, view=args.view, params=dict(model.named_parameters()))
    except (RuntimeError, OSError, ValueError) as err:
        print(f"error: {args.out}: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tinygrad_lab.lab import runs

    cfg = _config(args, parser, epochs=max(args.after_epochs, 1))
    path = runs.explain_page(cfg, args.out, after_epochs=args.after_epochs)
    print(f"wrote {path}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "report": cmd_report,
    "graph": cmd_graph,
    "explain": cmd_explain,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module's docstring). Every failure is one line
    on stderr: numpy's floating-point warnings are off (a diverged run says so itself) and exceptions
    become ``error: ...``."""
    import numpy as np

    from tinygrad_lab import files
    from tinygrad_lab.lab import data

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return COMMANDS[args.command](args, args.subparser)
    except SystemExit as exc:  # argparse's usage errors and --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except data.MissingExtraError as err:  # a dataset's optional package: a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except files.PathError as err:
        return _fail(str(err))
    except MemoryError as err:
        return _fail(f"out of memory{': ' + str(err) if str(err) else ''}")
    except OSError as err:
        return _fail(f"{err.filename}: {err.strerror}" if err.filename and err.strerror else str(err))
    except Exception as err:  # noqa: BLE001  (anything else still ends in one line, not a traceback)
        return _fail(f"{type(err).__name__}: {err}")


def _fail(message: str) -> int:
    lines = message.strip().splitlines() or [""]
    print(f"error: {lines[0]}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
