"""The CNN on the digits against PyTorch: the same architecture (conv 16 - relu - pool - conv 32 - relu - pool -
linear, 5x5 kernels padded to keep the size), Adam 1e-3, minibatches of 64, 20 epochs, float32, the same fixed
train/test split with the same standardized pixels, over 3 seeds each. The PyTorch twin reads its recipe (model
spec, optimizer, lr, batch size, epochs) from the lab's config, so the two cannot drift apart.

    python -m benchmarks.digits [--seeds 3] [--epochs 20] [--threads 1]

Prints each run's test accuracy and seconds per epoch, the medians, and whether tinygrad_lab's median test
accuracy reaches 97.5% and lies within 0.5 points of PyTorch's. The two never share weights or batch orders
(each draws its own from the seed), so the comparison is of the training recipe, not of one trajectory.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

TARGET, TOLERANCE = 97.5, 0.5


def recipe(seed: int, epochs: int | None):
    """The lab's config of `tinygrad-lab train --task digits --model cnn` for this seed (epochs None: its own)."""
    from tinygrad_lab.lab.config import TrainConfig

    return TrainConfig.for_task("digits", "cnn", seed=seed, epochs=epochs)


def ours(seed: int, epochs: int | None) -> tuple[float, float]:
    """(test accuracy in percent, seconds per epoch) of `tinygrad-lab train --task digits --model cnn`."""
    from tinygrad_lab.lab import runs

    config = recipe(seed, epochs)
    run = runs.run(config, quiet=True)
    return run.history.final_val_accuracy, run.history.wall_time / config.epochs


def torch_cnn(spec: dict):
    """The PyTorch twin of the lab's CNN from its model spec (config._build_cnn): conv kxk (padding k // 2) -
    activation - max pool 2 per conv layer, flatten, linear; PyTorch's default initialisation."""
    from torch import nn

    from tinygrad_lab.lab.config import cnn_kernel_size

    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if spec["activation"] not in activations:
        raise ValueError(f"benchmarks.digits: no PyTorch twin for activation {spec['activation']!r}")
    channels, height, width = spec["in_shape"]
    kernel = cnn_kernel_size(spec)
    layers: list = []
    for out in spec["hidden"]:
        layers += [
            nn.Conv2d(channels, out, kernel, padding=kernel // 2),
            activations[spec["activation"]](),
            nn.MaxPool2d(2),
        ]
        channels, height, width = out, height // 2, width // 2
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * height * width, spec["out_features"]))
    return model.float()  # float32 as the lab's digits runs, whatever torch's default dtype


def pytorch(seed: int, epochs: int | None) -> tuple[float, float]:
    """The same recipe in PyTorch eager (default initialisation, shuffled DataLoader), read from the lab's config."""
    import torch
    from torch import nn

    from tinygrad_lab.lab import data
    from tinygrad_lab.lab.config import run_spec

    config = recipe(seed, epochs)
    if (config.optimizer, config.loss) != ("adam", "cross_entropy") or config.batch_size is None:
        raise ValueError(f"benchmarks.digits: the PyTorch twin trains Adam on minibatches, not {config}")
    torch.manual_seed(seed)
    x_np, y_np = data.digits("train")
    x, y = (torch.from_numpy(np.array(a)) for a in (x_np, y_np))
    xt, yt = (torch.from_numpy(np.array(a)) for a in data.digits("test"))
    model = torch_cnn(run_spec(config, x_np, y_np))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=config.batch_size, shuffle=True
    )
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():  # evaluated every epoch, as fit does with its validation set
            acc = 100.0 * (model(xt).argmax(1) == yt).double().mean().item()
    return acc, (time.perf_counter() - start) / config.epochs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digits", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the lab's, 20)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and PyTorch threads (default 1)")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    medians = {}
    with threadpool_limits(args.threads):
        for name, train in (("tinygrad_lab", ours), ("pytorch", pytorch)):
            results = [train(seed, args.epochs) for seed in range(args.seeds)]
            for seed, (acc, per_epoch) in enumerate(results):
                print(f"{name:12s} seed {seed}: test accuracy {acc:.2f}%  {per_epoch * 1e3:.1f} ms per epoch")
            medians[name] = statistics.median(a for a, _ in results)
            print(
                f"{name:12s} median test accuracy {medians[name]:.2f}%, median "
                f"{statistics.median(t for _, t in results) * 1e3:.1f} ms per epoch"
            )
    gap = medians["tinygrad_lab"] - medians["pytorch"]
    ok = medians["tinygrad_lab"] >= TARGET and abs(gap) <= TOLERANCE
    print(
        f"tinygrad_lab - pytorch: {gap:+.2f} points; target {TARGET}% and within {TOLERANCE} points: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
