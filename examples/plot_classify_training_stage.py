"""
Classifying how far a network has trained from its activation landscapes
========================================================================

Many small MLPs learn scikit-learn's 8 x 8 handwritten digits together
(:func:`~sklandscapes.nets.train_networks`), each snapshotted the first time
its training accuracy reaches each of a few thresholds. A *sample* is one
snapshot, that is one (network, threshold) pair, and its label is the index of
the threshold: the training stage.

The whole method is one scikit-learn ``Pipeline`` whose input is the list of
snapshot networks themselves: ``ActivationExtractor`` runs every network on
one fixed batch of digits, the activations of each layer are normalized and
summarized by local persistent homology in degree 1 (as the paper does for
MNIST), the diagrams become persistence landscapes, and an SVM classifies them
through the landscape kernel. ``GridSearchCV`` tunes the number of landscape
functions, the kernel and the SVM's ``C``.

Two details make the cross-validation honest and affordable:

- the folds are grouped by network (``StratifiedGroupKFold``), so the
  classifier never sees another stage of a network it is tested on;
- the pipeline caches its fitted transformers (``memory=``), so the
  persistence diagrams of a fold's training snapshots are computed once and
  reused by every candidate of the grid. Only the diagrams of the test
  snapshots are recomputed for each candidate, since a ``Pipeline`` caches
  ``fit_transform``, not ``transform``.

Run ``python examples/plot_classify_training_stage.py --help`` for options; the
confusion matrix of the best model and the average landscapes of each stage
are written to ``--out``.
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figures go to files
import matplotlib.pyplot as plt
import numpy as np
from joblib import Memory
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedGroupKFold,
    cross_val_predict,
)
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeKernel,
    LandscapeVectorizer,
    RipsPersistence,
)
from sklandscapes.datasets import load_digits
from sklandscapes.nets import ThresholdNotReachedWarning, train_networks
from sklandscapes.plotting import plot_landscapes


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n-networks", type=int, default=16)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.9, 0.99])
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32, 32])
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--n-points", type=int, default=150, help="digits in the batch")
    parser.add_argument("--n-splits", type=int, default=4)
    parser.add_argument("--n-landscapes", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--C", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: temporary)"
    )
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    """Train the networks, search the grid and draw the figures."""
    thresholds = sorted(args.thresholds)
    X, y = load_digits()
    widths = (X.shape[1], *args.hidden, 10)
    with warnings.catch_warnings():
        # Networks that miss a threshold are left out below; say how many.
        warnings.simplefilter("ignore", ThresholdNotReachedWarning)
        training = train_networks(
            X,
            y,
            args.n_networks,
            widths,
            thresholds,
            lr=3e-3,
            batch_size=64,
            max_epochs=args.max_epochs,
            random_state=args.seed,
            device="cpu",
        )
    # One sample per (network, threshold), for the networks that reached all.
    networks, reached_at, owners = training.samples()
    stages = np.searchsorted(training.thresholds, reached_at)  # 0, 1, 2, ...
    n_complete = len(networks) // len(thresholds)
    print(
        f"{n_complete} of {args.n_networks} networks reached every threshold "
        f"{thresholds}; mean epoch of each snapshot: "
        f"{training.snapshot_epoch[training.reached.all(axis=1)].mean(0).round(1)}"
    )
    if n_complete < args.n_splits:
        raise SystemExit(
            f"only {n_complete} networks reached every threshold, fewer than "
            f"--n-splits={args.n_splits}; raise --max-epochs or --n-networks."
        )

    # One batch for every network, drawn from all digits (training and test
    # images alike, as in the paper).
    rng = np.random.default_rng(args.seed)
    batch = X[rng.choice(len(X), args.n_points, replace=False)]

    with tempfile.TemporaryDirectory() as scratch:
        memory = Memory(args.cache or scratch, verbose=0)
        model = Pipeline(
            [
                ("activations", ActivationExtractor(inputs=batch)),
                ("normalize", ActivationNormalizer(method="local")),
                ("rips", RipsPersistence(local=True, n_jobs=args.n_jobs)),
                # After the local normalization every point lies in the unit
                # ball, so every filtration value lies in [0, 2].
                ("landscapes", LandscapeVectorizer(sample_range=(0.0, 2.0))),
                # grid=None weighs every grid point 1: the kernel is the
                # integral up to a constant factor, which C absorbs.
                ("kernel", LandscapeKernel()),
                ("svm", SVC(kernel="precomputed")),
            ],
            memory=memory,
        )
        param_grid = {
            "landscapes__n_landscapes": args.n_landscapes,
            # gamma=None: the inverse mean squared distance between the
            # training landscapes, which adapts to n_landscapes.
            "kernel__kernel": ["linear", "rbf"],
            "svm__C": args.C,
        }
        cv = StratifiedGroupKFold(args.n_splits, shuffle=True, random_state=args.seed)
        search = GridSearchCV(model, param_grid, cv=cv)
        search.fit(networks, stages, groups=owners)
        best = search.best_index_
        print(f"Best parameters: {search.best_params_}")
        print(
            f"{args.n_splits}-fold accuracy (grouped by network): "
            f"{search.best_score_:.3f} +/- "
            f"{search.cv_results_['std_test_score'][best]:.3f} "
            f"(chance {1 / len(thresholds):.3f})"
        )
        # Each snapshot predicted by the best model trained without its
        # network. The parameters were chosen on these same folds, so this is
        # slightly optimistic; nesting the search in an outer CV would not be.
        predicted = cross_val_predict(
            search.best_estimator_, networks, stages, cv=cv, groups=owners
        )
        # The refitted best pipeline without its kernel and SVM: one landscape
        # vector per sample.
        landscapes_step = search.best_estimator_.named_steps["landscapes"]
        vectors = search.best_estimator_[:-2].transform(networks)

    names = [f"{t:.0%}" for t in thresholds]
    fig, ax = plt.subplots(figsize=(4, 3.5), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(
        stages, predicted, display_labels=names, ax=ax, colorbar=False
    )
    ax.set_xlabel("predicted training accuracy threshold")
    ax.set_ylabel("true threshold")
    ax.set_title("Training stage from activation landscapes")
    args.out.mkdir(parents=True, exist_ok=True)
    confusion_path = args.out / "training_stage_confusion.png"
    fig.savefig(confusion_path, dpi=120)
    plt.close(fig)

    shape = landscapes_step.shape_
    fig = plot_landscapes(
        vectors,
        [names[s] for s in stages],
        shape,
        grid=landscapes_step.grid_,
        groups=names,
    )
    fig.suptitle("Average local H1 landscape per layer (rows: threshold)")
    landscapes_path = args.out / "training_stage_landscapes.png"
    fig.savefig(landscapes_path, dpi=120)
    print(f"Figures written to {confusion_path} and {landscapes_path}")
    return search


if __name__ == "__main__":
    main()
