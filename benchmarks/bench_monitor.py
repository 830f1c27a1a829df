"""Cost of watching topology during training: training with and without a monitor.

The paper's network and data, as in the synthetic paper preset: MLPs
2 -> 15 x 10 -> 2 with ReLU, Adam (lr 3e-3), minibatches of 64, on the
nine-disks lattice (14,235 points, 80% for training), on the CPU with one
torch thread. The monitor records, after every epoch, the exact topological
complexity (H1) of all 12 layers on a fixed batch of 200 points of the
nine-holed class (every other point of the preset's sublattice batch), through
``ActivationExtractor -> ActivationNormalizer -> RipsPersistence``.

Two settings, each timed with and without the monitor on the same seeds:

- one network, trained by skorch with a ``TopologicalComplexity`` callback;
- ``--networks`` networks trained together by ``train_networks(monitor=...)``,
  where training costs little per network and the monitor's cost (one set of
  diagrams per network and epoch) weighs more.

Times are CPU seconds of this process (``time.process_time``; torch and the
persistence run on one thread), which other work on a shared machine disturbs
far less than wall time; the wall times are printed beside them.

Before timing, it checks that the monitored runs trained exactly as the plain
ones (same training accuracy after every epoch): the monitor must not change
training.

Run from the repository root::

    python benchmarks/bench_monitor.py [--epochs 3] [--networks 10] [--n-points 200]
        [--repeats 2]
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _common import machine_info

from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.nets import (
    TopologicalComplexity,
    history_complexity,
    make_mlp_classifier,
    train_networks,
)

WIDTHS = (2,) + (15,) * 10 + (2,)


def load_data(n_points):
    X, y = make_nine_disks(random_state=0)
    X = X.astype(np.float32)
    batch = X[sublattice_mask(X, 3) & (y == 1)]
    step = max(1, len(batch) // n_points)
    return X, y.astype(np.int64), batch[::step][:n_points]


def skorch_run(X, y, epochs, monitor):
    callbacks = [monitor] if monitor is not None else []
    net = make_mlp_classifier(
        WIDTHS,
        lr=3e-3,
        batch_size=64,
        max_epochs=epochs,
        device="cpu",
        random_state=0,
        train_split=None,
        verbose=0,
        callbacks=callbacks,
    )
    start, wall = time.process_time(), time.perf_counter()
    net.fit(X, y)
    return (time.process_time() - start, time.perf_counter() - wall), net


def batched_run(X, y, n_networks, epochs, monitor):
    start, wall = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        # Nobody reaches 1.0 in a few epochs; that warning is expected here.
        warnings.simplefilter("ignore")
        result = train_networks(
            X,
            y,
            n_networks,
            WIDTHS,
            thresholds=(1.0,),
            lr=3e-3,
            batch_size=64,
            max_epochs=epochs,
            random_state=0,
            device="cpu",
            n_threads=1,
            monitor=monitor,
        )
    return (time.process_time() - start, time.perf_counter() - wall), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--n-points", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(machine_info(["torch", "skorch", "gudhi", "numpy"]))
    X, y, batch = load_data(args.n_points)
    print(
        f"data: {len(X)} points; monitor batch {batch.shape}; architecture "
        f"{WIDTHS}; Adam lr=3e-3, batch_size=64; {args.epochs} epochs; 1 torch "
        "thread; monitor every epoch, H1, all layers"
    )

    # A first fit pays for imports and allocator warm-up; then plain and
    # monitored runs alternate, and the best of --repeats each is kept, so that
    # load from other work on the machine hits both sides alike.
    skorch_run(X, y, 1, TopologicalComplexity(batch))
    callback = TopologicalComplexity(batch)
    runs = {"plain": [], "watched": []}
    for _ in range(args.repeats):
        runs["plain"].append(skorch_run(X, y, args.epochs, None))
        runs["watched"].append(skorch_run(X, y, args.epochs, callback))
    (plain_s, plain_wall), plain = min(runs["plain"], key=lambda run: run[0])
    (watched_s, watched_wall), watched = min(runs["watched"], key=lambda run: run[0])
    if len(history_complexity(watched.history)[0]) != args.epochs:
        print("DISAGREEMENT: the callback did not record every epoch")
        sys.exit(1)
    if plain.history[:, "train_acc"] != watched.history[:, "train_acc"]:
        print("DISAGREEMENT: the callback changed skorch's training")
        sys.exit(1)
    print(
        f"\none network (skorch): {plain_s:.2f} s plain, {watched_s:.2f} s with the "
        f"callback (CPU; wall {plain_wall:.2f} and {watched_wall:.2f} s); ratio "
        f"{watched_s / plain_s:.2f} "
        f"(+{(watched_s - plain_s) / args.epochs:.3f} s per epoch for "
        f"{len(callback.layer_names_)} layers)"
    )

    monitor = dict(inputs=batch)
    runs = {"plain": [], "watched": []}
    for _ in range(args.repeats):
        runs["plain"].append(batched_run(X, y, args.networks, args.epochs, None))
        runs["watched"].append(batched_run(X, y, args.networks, args.epochs, monitor))
    (plain_s, plain_wall), plain = min(runs["plain"], key=lambda run: run[0])
    (watched_s, watched_wall), watched = min(runs["watched"], key=lambda run: run[0])
    if not np.array_equal(plain.train_accuracy, watched.train_accuracy):
        print("DISAGREEMENT: the monitor changed train_networks' training")
        sys.exit(1)
    extra = (watched_s - plain_s) / (args.epochs * args.networks)
    print(
        f"{args.networks} networks (train_networks): {plain_s:.2f} s plain, "
        f"{watched_s:.2f} s with monitor= (CPU; wall {plain_wall:.2f} and "
        f"{watched_wall:.2f} s); ratio {watched_s / plain_s:.2f} "
        f"(+{extra:.3f} s per network and epoch)"
    )
    for every in (5, 10):
        print(
            f"  with every={every}, the added time would be "
            f"{(watched_s - plain_s) / every / plain_s:.0%} of training"
        )


if __name__ == "__main__":
    main()
