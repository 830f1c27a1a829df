"""
Topological complexity of every layer as one network trains
===========================================================

One MLP learns the nine-disks data of the paper (on a coarse lattice, so that
it trains in seconds) as an ordinary skorch classifier. An
:class:`~sklandscapes.nets.AccuracyThresholdSnapshots` callback writes its
weights to a file the first time its training accuracy reaches each of a few
thresholds, and ``ActivationExtractor`` reads those snapshot files directly.

The *topological complexity* of a layer (paper II-C) is the norm of the
persistence landscape of its activations, here in homology degree 1 on a batch
of the nine-holed class. Plotted against the layer, it shows how the network
reshapes the nine holes of its input as it learns: the paper observes that
complexity need not decrease from layer to layer and that it grows with
training.

Run ``python examples/plot_complexity_curve.py --help`` for options; the
training curve and the complexity of each layer at each snapshot are written
to ``--out``, and the complexity table is printed.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figure goes to a file
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import Pipeline

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeVectorizer,
    RipsPersistence,
)
from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.nets import AccuracyThresholdSnapshots, make_mlp_classifier
from sklandscapes.plotting import plot_complexity
from sklandscapes.stats import landscape_norms


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.7, 0.8, 0.9, 0.95]
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32, 32])
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument(
        "--spacing", type=float, default=0.05, help="lattice spacing of the data"
    )
    parser.add_argument(
        "--sublattice-step",
        type=int,
        default=2,
        help="the batch is every step-th lattice point of the nine-holed class",
    )
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    """Train the network, measure every snapshot and draw the figure."""
    X, y = make_nine_disks(args.spacing, random_state=args.seed)
    X = X.astype(np.float32)
    thresholds = sorted(args.thresholds)
    snapshots = AccuracyThresholdSnapshots(thresholds, directory=args.out / "snapshots")
    # skorch holds out a stratified fifth of the data and reports its accuracy
    # as "valid_acc"; "train_acc" is measured on the other four fifths.
    net = make_mlp_classifier(
        (2, *args.hidden, 2),
        lr=5e-3,
        batch_size=32,
        max_epochs=args.max_epochs,
        device="cpu",
        random_state=args.seed,
        callbacks=[snapshots],
        verbose=0,
    )
    net.fit(X, y)
    taken = snapshots.snapshots_
    missed = thresholds[len(taken) :]
    if missed:
        print(
            f"Thresholds {missed} not reached within {args.max_epochs} epochs; "
            "raise --max-epochs to see them."
        )
    if not taken:
        raise SystemExit("no threshold reached; lower --thresholds.")

    # The batch mixes training and held-out points, as in the paper.
    mask = sublattice_mask(X, args.sublattice_step, spacing=args.spacing) & (y == 1)
    topology = Pipeline(
        [
            ("activations", ActivationExtractor(inputs=X[mask])),
            ("normalize", ActivationNormalizer()),
            ("rips", RipsPersistence(homology_dimensions=(1,), n_jobs=args.n_jobs)),
            ("landscapes", LandscapeVectorizer()),
        ]
    )
    vectors = topology.fit_transform([snapshot.path for snapshot in taken])
    vectorizer = topology.named_steps["landscapes"]
    shape = vectorizer.shape_
    n_layers = vectorizer.n_layers_
    norms = landscape_norms(vectors, shape, grid=vectorizer.grid_)

    valid_accuracy = net.history[:, "valid_acc"]
    header = "threshold  epoch  train  valid  " + "".join(
        f"{f'layer {layer}':>9}" for layer in range(n_layers)
    )
    print(f"Topological complexity (H1 landscape norm) on {mask.sum()} points")
    print(header)
    for snapshot, row in zip(taken, norms):
        cells = "".join(f"{value:9.4f}" for value in row)
        print(
            f"{snapshot.threshold:9.2f}  {snapshot.epoch:5d}  "
            f"{snapshot.accuracy:5.3f}  {valid_accuracy[snapshot.epoch - 1]:5.3f}  "
            f"{cells}"
        )

    fig, (ax_train, ax_norms) = plt.subplots(
        1, 2, figsize=(10, 3.8), layout="constrained"
    )
    epochs = net.history[:, "epoch"]
    ax_train.plot(epochs, net.history[:, "train_acc"], label="training")
    ax_train.plot(epochs, valid_accuracy, label="held out", alpha=0.7)
    for snapshot in taken:
        ax_train.plot(snapshot.epoch, snapshot.accuracy, "ko", ms=4)
    ax_train.set_xlabel("epoch")
    ax_train.set_ylabel("accuracy")
    ax_train.set_title("Training, with the snapshots marked")
    ax_train.legend(fontsize="small")
    # One snapshot per threshold, so there is no spread to draw.
    plot_complexity(norms, [s.threshold for s in taken], band=None, ax=ax_norms)
    ax_norms.set_title("Topological complexity per layer")
    ax_norms.get_legend().set_title("training accuracy")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "complexity_curve.png"
    fig.savefig(path, dpi=120)
    print(f"Figure written to {path}")
    return norms


if __name__ == "__main__":
    main()
