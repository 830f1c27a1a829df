"""
Topology watched during training
================================

The paper compares a handful of snapshots taken at training-accuracy
thresholds. Here the topology is watched continuously instead:
:func:`~sklandscapes.nets.train_networks` trains a few MLPs on the nine-disks
data together and, with ``monitor=``, measures after every few epochs the
exact topological complexity (the norm of all H1 landscapes,
:func:`~sklandscapes.stats.topological_complexity`) of every layer of every
network, on a fixed batch of the nine-holed class. The monitor runs the
pipeline's own estimators (``ActivationExtractor -> ActivationNormalizer ->
RipsPersistence``), so a record equals what the pipeline gives on a snapshot
of that epoch. For one skorch network, the
:class:`~sklandscapes.nets.TopologicalComplexity` callback records the same in
``net.history``.

To run in seconds, the lattice is coarse (1,257 points) and the networks are
wider and shallower than the paper's ten layers of 15 units, which learn this
lattice slowly.

What the figure shows in this run (the table printed below has the numbers):
layer 0, the input batch, has the nine holes and does not change. Before
training (epoch 0, the first record) the random networks pass the holes on:
every hidden layer has two thirds or more of the input's complexity, the
logits about a third. The first five epochs wipe it out of the deep layers:
at epoch 5 the two deepest hidden layers and the logits are near zero. The
first hidden layer (``layers.1``) keeps its complexity throughout and creeps
up towards the input's value as training accuracy climbs from about 0.7 to
0.9. The second hidden layer falls to about a third of the input's
complexity in the first ten epochs and then rises again as accuracy climbs.
The two deepest hidden layers stay small, rising a little late in training,
and the logits stay near zero: these networks never reach the accuracy at
which the paper sees the deep layers' complexity rise. The bands (one
standard deviation across the networks) are wide in the middle layers: each
network goes at its own pace.
"""

import argparse
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figures go to files
import matplotlib.pyplot as plt
import numpy as np

from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.nets import ThresholdNotReachedWarning, train_networks
from sklandscapes.plotting import plot_training_complexity


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n-networks", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32, 32, 32])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--every", type=int, default=5, help="epochs between records")
    parser.add_argument(
        "--n-points", type=int, default=100, help="points of the monitor's batch"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    # train_networks and its monitor use one torch thread (these networks are
    # tiny), so the figures do not depend on how many cores are free.
    X, y = make_nine_disks(0.05, random_state=args.seed)
    X = X.astype(np.float32)
    holes = X[sublattice_mask(X, 2, spacing=0.05) & (y == 1)]
    step = max(1, len(holes) // args.n_points)
    batch = holes[::step][: args.n_points]
    with warnings.catch_warnings():
        # No threshold is the point here: 0.999 only sets when a network stops.
        warnings.simplefilter("ignore", ThresholdNotReachedWarning)
        result = train_networks(
            X,
            y,
            args.n_networks,
            (2, *args.hidden, 2),
            thresholds=(0.999,),
            lr=1e-2,
            batch_size=32,
            max_epochs=args.max_epochs,
            random_state=args.seed,
            device="cpu",
            monitor=dict(inputs=batch, every=args.every),
        )
    record = result.topology
    mean = np.nanmean(record.complexity, axis=0)
    print(
        f"Topological complexity (H1, mean of {args.n_networks} networks) on "
        f"{len(batch)} points, every {args.every} epochs"
    )
    print("epoch  accuracy  " + "".join(f"{name:>10}" for name in record.layer_names))
    accuracy = np.nanmean(result.train_accuracy, axis=0)
    for index in np.unique(np.linspace(0, len(record.epochs) - 1, 6).astype(int)):
        epoch = record.epochs[index]
        cells = "".join(f"{value:10.4f}" for value in mean[index])
        # Epoch 0 is the networks before training, whose accuracy is not measured.
        measured = f"{accuracy[epoch - 1]:8.3f}" if epoch else f"{'-':>8}"
        print(f"{epoch:5d}  {measured}  {cells}")

    fig = plot_training_complexity(
        record.complexity, record.epochs, layer_names=record.layer_names
    )
    fig.suptitle(
        f"{args.n_networks} MLPs {(2, *args.hidden, 2)} learning the nine disks"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "training_dynamics.png", dpi=110)

    fig_acc, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    epochs = np.arange(1, result.train_accuracy.shape[1] + 1)
    for k, curve in enumerate(result.train_accuracy):
        ax.plot(epochs, curve, label=str(k))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training accuracy (fraction)")
    ax.set_title("Training accuracy of each network")
    ax.legend(title="network", fontsize="small")
    fig_acc.savefig(args.out / "training_accuracy.png", dpi=110)
    print(f"Figures written to {args.out}")
    return result


if __name__ == "__main__":
    main()
