"""The CNN on the digits against PyTorch: the same architecture (conv 16 - relu - pool - conv 32 - relu - pool -
linear), Adam 1e-3, minibatches of 64, 20 epochs, float32, the same fixed train/test split, over 3 seeds each.

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


def ours(seed: int, epochs: int) -> tuple[float, float]:
    """(test accuracy in percent, seconds per epoch) of `tinygrad-lab train --task digits --model cnn`."""
    from tinygrad_lab.lab import runs
    from tinygrad_lab.lab.config import TrainConfig

    run = runs.run(TrainConfig.for_task("digits", "cnn", seed=seed, epochs=epochs), quiet=True)
    return run.history.final_val_accuracy, run.history.wall_time / epochs


def pytorch(seed: int, epochs: int) -> tuple[float, float]:
    """The same recipe in PyTorch eager (default initialisation, shuffled DataLoader)."""
    import torch
    from torch import nn

    from tinygrad_lab.lab import data

    torch.manual_seed(seed)
    x, y = (torch.from_numpy(np.array(a)) for a in data.digits("train"))
    xt, yt = (torch.from_numpy(np.array(a)) for a in data.digits("test"))
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():  # evaluated every epoch, as fit does with its validation set
            acc = 100.0 * (model(xt).argmax(1) == yt).double().mean().item()
    return acc, (time.perf_counter() - start) / epochs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digits", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
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
