"""Time training many networks at once against one skorch fit per network.

The paper's synthetic setting: MLPs 2 -> 15 x 10 -> 2 with ReLU, Adam (lr 1e-3),
minibatches of 128, on ~14,000 lattice points of the nine-disks data, 20 epochs,
on the CPU. Both sides do the same work per network and epoch: the shuffled
minibatch pass plus the training accuracy of the model after the epoch on its
whole training set (80% of the points); no snapshot stops either side early
(the only threshold, 1.0, is not reached in 20 epochs).

``train_networks`` trains all networks in one run. The skorch loop is timed on a
few fits and extrapolated linearly to all networks, which the output says.

Run from the repository root::

    python benchmarks/bench_training.py [--networks 100] [--skorch-fits 3]
"""

import argparse
import time
import warnings

import numpy as np
import torch

from sklandscapes.datasets import make_nine_disks
from sklandscapes.nets import make_mlp_classifier, train_networks

WIDTHS = (2,) + (15,) * 10 + (2,)


def load_data():
    X, y = make_nine_disks(random_state=0)
    return X.astype(np.float32), y.astype(np.int64), "make_nine_disks(random_state=0)"


def time_batched(X, y, n_networks, epochs, batch_size):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Nobody reaches 1.0 in 20 epochs; that warning is expected here.
        warnings.simplefilter("ignore")
        result = train_networks(
            X,
            y,
            n_networks,
            WIDTHS,
            thresholds=(1.0,),
            batch_size=batch_size,
            max_epochs=epochs,
            test_size=0.2,
            random_state=0,
            device="cpu",
        )
    return time.perf_counter() - start, result


def time_skorch(X, y, n_fits, epochs, batch_size):
    # The same 80% training split that train_networks gives its networks.
    rng = np.random.default_rng(0)
    train = rng.permutation(len(X))[: int(round(0.8 * len(X)))]
    times = []
    for seed in range(n_fits):
        net = make_mlp_classifier(
            WIDTHS,
            lr=1e-3,
            max_epochs=epochs,
            batch_size=batch_size,
            device="cpu",
            random_state=seed,
            train_split=None,
            verbose=0,
        )
        start = time.perf_counter()
        net.fit(X[train], y[train])
        times.append(time.perf_counter() - start)
    return np.array(times), net


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--skorch-fits", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    X, y, source = load_data()
    print(f"data: {len(X)} points from {source}, {y.mean():.1%} in class 1")
    print(
        f"architecture {WIDTHS}, ReLU, Adam lr=1e-3, batch_size={args.batch_size}, "
        f"{args.epochs} epochs, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    batched_s, result = time_batched(X, y, args.networks, args.epochs, args.batch_size)
    final = result.train_accuracy[:, -1]
    print(
        f"train_networks: {args.networks} networks in {batched_s:.1f} s "
        f"({batched_s / args.networks:.3f} s per network); final training "
        f"accuracy median {np.median(final):.3f} [{final.min():.3f}, "
        f"{final.max():.3f}]"
    )

    skorch_s, net = time_skorch(X, y, args.skorch_fits, args.epochs, args.batch_size)
    fastest, mean = skorch_s.min(), skorch_s.mean()
    print(
        f"skorch loop: {args.skorch_fits} fits timed (each: "
        f"{', '.join(f'{s:.2f}' for s in skorch_s)} s); extrapolated to "
        f"{args.networks} networks: {fastest * args.networks:.0f} s from the fastest "
        f"fit, {mean * args.networks:.0f} s from the mean; final training accuracy "
        f"of the last fit {net.history[-1, 'train_acc']:.3f}"
    )
    per_network = batched_s / args.networks
    print(
        f"speed-up per network (skorch time per network / batched time per "
        f"network): {fastest / per_network:.1f}x against the fastest skorch fit, "
        f"{mean / per_network:.1f}x against the mean"
    )


if __name__ == "__main__":
    main()
