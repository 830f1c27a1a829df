"""
Do activation landscapes change with training? A permutation test
=================================================================

Several MLPs learn the nine-disks data of the paper (on a coarse lattice, so
that they train in seconds) and are snapshotted the first time their training
accuracy reaches each of two thresholds. Every snapshot is run on the same
batch, the points of the nine-holed class on a sublattice, and the
persistence landscapes of the degree-1 homology of each layer's activations
form one landscape vector per snapshot.

Is the average activation landscape of the early snapshots different from
that of the late ones? :class:`~sklandscapes.PermutationTest` answers with
the statistic of the paper's Table I, the distance between the two average
landscapes in the landscape Hilbert space. Every network gives one snapshot
to each stage, so the stages are paired samples, not the independent ones
the paper's relabelings assume: the network is the unit of the test
(``groups=network_ids``). A relabeling swaps a network's two snapshots or
not, so a network that is more complex than the others at both stages
weighs on both means alike, as in the data, instead of widening the null
distribution and hiding a difference. With the default 10 networks the
test enumerates all ``2**10`` relabelings and the p-value is exact; as
flipping every sign gives back the observed statistic, it is at least
``2 / 2**10``. The user guide's :doc:`/user_guide/unit_of_test` shows what
goes wrong otherwise.

Run ``python examples/plot_permutation_test_stages.py --help`` for options;
the null distribution with the observed statistic, the p-value table and the
average landscapes of each stage are written to ``--out``.
"""

import argparse
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figures go to files
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import Pipeline

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeVectorizer,
    PermutationTest,
    RipsPersistence,
)
from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.nets import ThresholdNotReachedWarning, train_networks
from sklandscapes.plotting import plot_landscapes, plot_pvalues


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n-networks", type=int, default=10)
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs=2,
        default=[0.75, 0.9],
        help="the early and the late training accuracy",
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32, 32])
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument(
        "--spacing", type=float, default=0.05, help="lattice spacing of the data"
    )
    parser.add_argument(
        "--sublattice-step",
        type=int,
        default=2,
        help="the batch is every step-th lattice point of the nine-holed class",
    )
    parser.add_argument("--n-permutations", type=int, default=9999)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    """Train the networks, test the two stages and draw the figures."""
    X, y = make_nine_disks(args.spacing, random_state=args.seed)
    X = X.astype(np.float32)
    thresholds = sorted(args.thresholds)
    with warnings.catch_warnings():
        # Networks that miss a threshold are left out below; say how many.
        warnings.simplefilter("ignore", ThresholdNotReachedWarning)
        training = train_networks(
            X,
            y,
            args.n_networks,
            (2, *args.hidden, 2),
            thresholds,
            lr=5e-3,
            batch_size=32,
            max_epochs=args.max_epochs,
            random_state=args.seed,
            device="cpu",
        )
    complete = np.flatnonzero(training.reached.all(axis=1))
    print(
        f"{len(complete)} of {args.n_networks} networks reached both thresholds "
        f"{thresholds}, after {training.snapshot_epoch[complete].mean(0).round(1)} "
        "epochs on average"
    )
    if len(complete) < 2:
        raise SystemExit(
            "a permutation test needs at least 2 networks per stage; raise "
            "--max-epochs or --n-networks, or lower --thresholds."
        )
    networks, stages, network_ids = training.samples()

    # The nine-holed class only: its nine holes are what the layers reshape.
    mask = sublattice_mask(X, args.sublattice_step, spacing=args.spacing) & (y == 1)
    batch = X[mask]
    topology = Pipeline(
        [
            ("activations", ActivationExtractor(inputs=batch)),
            ("normalize", ActivationNormalizer()),
            ("rips", RipsPersistence(homology_dimensions=(1,), n_jobs=args.n_jobs)),
            ("landscapes", LandscapeVectorizer()),
        ]
    )
    vectors = topology.fit_transform(networks)
    vectorizer = topology.named_steps["landscapes"]

    test = PermutationTest(
        n_permutations=args.n_permutations,
        grid=vectorizer.grid_,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    ).fit(vectors, stages, groups=network_ids)
    null = test.null_distribution_
    drawn = "all of them" if test.table_[0]["exhaustive"] else "drawn at random"
    print(f"Batch of {len(batch)} points; {vectors.shape[1]} landscape features")
    print(
        f"Distance between the average landscapes at {thresholds[0]:.0%} and "
        f"{thresholds[1]:.0%} training accuracy: {test.statistic_:.4g}"
    )
    print(
        f"Null distribution ({len(null)} relabelings, {drawn}): mean "
        f"{null.mean():.4g}, 95th percentile {np.percentile(null, 95):.4g}"
    )
    print(f"p-value: {test.pvalue_:.4g}")

    fig, (ax_null, ax_p) = plt.subplots(
        1, 2, figsize=(9, 3.5), layout="constrained", width_ratios=(3, 2)
    )
    ax_null.hist(null, bins=40, color="0.6", label="snapshots swapped in networks")
    ax_null.axvline(
        test.statistic_, color="C3", lw=2, label=f"observed (p = {test.pvalue_:.3g})"
    )
    ax_null.set_xlabel("distance between the average landscapes")
    ax_null.set_ylabel("relabelings")
    ax_null.set_title("Permutation null distribution")
    ax_null.legend(fontsize="small")
    plot_pvalues(test, ax=ax_p)
    args.out.mkdir(parents=True, exist_ok=True)
    test_path = args.out / "permutation_test_stages.png"
    fig.savefig(test_path, dpi=120)
    plt.close(fig)

    shape = vectorizer.shape_
    fig = plot_landscapes(vectors, stages, shape, grid=vectorizer.grid_)
    fig.suptitle("Average H1 landscape per layer (rows: training accuracy)")
    landscapes_path = args.out / "permutation_test_landscapes.png"
    fig.savefig(landscapes_path, dpi=120)
    print(f"Figures written to {test_path} and {landscapes_path}")
    return test


if __name__ == "__main__":
    main()
