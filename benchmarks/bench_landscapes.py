"""Time persistence landscapes on a grid: sklandscapes against its peers.

Compared: the first 5 landscapes on 1000 points of [0, 1] of ``--n-diagrams``
random diagrams of about ``--n-pairs`` pairs each (the number of pairs is
uniform in [0.8, 1.2] x n-pairs), seeded by ``--seed``, for two inputs:

- uniform pairs: every pair is two uniform numbers of [0, 1], sorted (mean
  length 1/3: each tent covers a third of the grid);
- short pairs: a uniform birth and an exponential length of mean
  ``--short-mean`` (0.02), the death clipped to 1; closer to the H1 diagrams
  of normalized activation clouds (see bench_persistence.py).

Methods:

- ``sklandscapes.LandscapeVectorizer(n_landscapes=5, sample_range=(0, 1),
  resolution=1000)``;
- ``gudhi.representations.Landscape(num_landscapes=5, resolution=1000,
  sample_range=[0, 1])``. Its grid (``grid_``) is ``np.linspace(0, 1, 1000)``
  when both ends of ``sample_range`` are given, the same as ours (``grid_``);
  the script checks that, and that gudhi's values are ours x sqrt(2);
- naive numpy, one diagram at a time: the full (n_pairs, n_bins) matrix of
  tents ``max(0, min(t - b, d - t))``, then the top 5 per grid point with
  ``np.sort`` (one variant) or ``np.partition`` (another);
- persim ``PersLandscapeApprox(start=0, stop=1, num_steps=1000)``, if
  installed. It is pure Python and slow, so it is timed on the first
  ``--persim-diagrams`` diagrams and extrapolated linearly to all of them (the
  output says so). It snaps births and deaths to the nearest grid point first,
  so its values differ from the exact ones by up to half a grid step; the
  script reports that difference and checks exact agreement on diagrams
  already snapped to the grid;
- giotto-tda ``PersistenceLandscape(n_layers=5, n_bins=1000)``, if installed.
  It picks its own grid in ``fit`` (``samplings_``, which also spans the
  (0, 0) rows that pad the diagrams to one array); ours is evaluated on that
  grid with ``landscape_values`` for the check (no sqrt(2) factor there).
  ``pip install giotto-tda`` 0.6.2 downgrades scikit-learn to 1.3.2 and numpy
  to 1.26, which sklandscapes does not support, so it is usually "not
  installed"; see benchmarks/README.md for a side run in another venv.

Times are the best of ``--repeats`` runs; the ratio column is the peer's time
over ours (> 1: ours is faster). A disagreement is printed and the script exits
with status 1.

Run from the repository root::

    python benchmarks/bench_landscapes.py [--n-diagrams 2000] [--n-pairs 100]
"""

import argparse
import sys
import time

import numpy as np
from _common import best_of, machine_info, print_table
from gudhi.representations import Landscape

from sklandscapes import LandscapeVectorizer
from sklandscapes.landscapes import landscape_values

try:
    from persim.landscapes import PersLandscapeApprox
except ImportError:
    PersLandscapeApprox = None
try:
    from gtda.diagrams import PersistenceLandscape
except ImportError:
    PersistenceLandscape = None

N_LANDSCAPES = 5
RESOLUTION = 1000
FAILURES = []


# -- shared helpers ---------------------------------------------------------


def agree(name, expected, actual, atol):
    """Max abs difference, recorded as a failure when above ``atol``."""
    diff = float(np.abs(np.asarray(expected) - np.asarray(actual)).max())
    if diff > atol:
        FAILURES.append(f"{name}: max |difference| {diff:.3g} > {atol:g}")
        return f"DISAGREES: max |diff| {diff:.1e}"
    return f"agrees: max |diff| {diff:.1e}"


# -- inputs -----------------------------------------------------------------


def random_diagrams(rng, n_diagrams, n_pairs, mean_length=None):
    """Pairs of two sorted uniform numbers of [0, 1], or, with ``mean_length``,
    a uniform birth and an exponential length (death clipped to 1)."""
    sizes = rng.integers(int(0.8 * n_pairs), int(1.2 * n_pairs) + 1, n_diagrams)
    if mean_length is None:
        return [np.sort(rng.random((size, 2)), axis=1) for size in sizes]
    diagrams = []
    for size in sizes:
        births = rng.random(size)
        deaths = np.minimum(births + rng.exponential(mean_length, size), 1.0)
        diagrams.append(np.c_[births, deaths])
    return diagrams


# -- the methods ------------------------------------------------------------


def ours(diagrams):
    vectorizer = LandscapeVectorizer(
        n_landscapes=N_LANDSCAPES, sample_range=(0.0, 1.0), resolution=RESOLUTION
    )
    return vectorizer.fit_transform(diagrams), vectorizer.grid_


def gudhi_landscape(diagrams):
    landscape = Landscape(
        num_landscapes=N_LANDSCAPES, resolution=RESOLUTION, sample_range=[0.0, 1.0]
    )
    return landscape.fit_transform(diagrams), landscape.grid_


def naive(diagrams, grid, use_partition):
    out = np.zeros((len(diagrams), N_LANDSCAPES, len(grid)))
    for i, diagram in enumerate(diagrams):
        births, deaths = diagram[:, :1], diagram[:, 1:]
        tents = np.maximum(np.minimum(grid - births, deaths - grid), 0.0)
        k = min(N_LANDSCAPES, len(tents))
        if use_partition and len(tents) > k:
            tents = np.partition(tents, len(tents) - k, axis=0)[-k:]
        out[i, :k] = np.sort(tents, axis=0)[::-1][:k]
    return out.reshape(len(diagrams), -1)


def persim_landscape(diagrams):
    out = np.zeros((len(diagrams), N_LANDSCAPES, RESOLUTION))
    for i, diagram in enumerate(diagrams):
        values = PersLandscapeApprox(
            start=0.0, stop=1.0, num_steps=RESOLUTION, dgms=[diagram], hom_deg=0
        ).values
        k = min(N_LANDSCAPES, len(values))
        out[i, :k] = values[:k]
    return out.reshape(len(diagrams), -1)


def gtda_landscape(diagrams):
    """giotto-tda wants (n_samples, n_points, 3) arrays padded with diagonal rows."""
    width = max(len(d) for d in diagrams)
    X = np.zeros((len(diagrams), width, 3))
    for i, diagram in enumerate(diagrams):
        X[i, : len(diagram), :2] = diagram
    transformer = PersistenceLandscape(n_layers=N_LANDSCAPES, n_bins=RESOLUTION)
    values = transformer.fit_transform(X)
    return values.reshape(len(diagrams), -1), transformer.samplings_[0]


def compare_all(title, diagrams, args):
    """Time every method on ``diagrams``, check it against ours, print a table."""
    n_total = sum(len(d) for d in diagrams)
    what = (
        f"{title}: {len(diagrams)} diagrams, {n_total} pairs in all, "
        f"{N_LANDSCAPES} landscapes on {RESOLUTION} grid points of [0, 1]"
    )
    reference, (values, grid) = best_of(args.repeats, ours, diagrams)
    rows = [("sklandscapes LandscapeVectorizer", reference, reference, "")]

    seconds, (gudhi_values, gudhi_grid) = best_of(
        args.repeats, gudhi_landscape, diagrams
    )
    if not np.array_equal(gudhi_grid, grid):
        FAILURES.append(
            f"{title}: gudhi's grid differs from ours: max |diff| "
            f"{np.abs(gudhi_grid - grid).max():.3g}"
        )
    note = "same grid; values / sqrt(2) " + agree(
        f"{title}: gudhi Landscape / sqrt(2)", values, gudhi_values / np.sqrt(2), 1e-12
    )
    rows.append(("gudhi representations.Landscape", seconds, reference, note))

    for label, use_partition in (("np.sort", False), ("np.partition", True)):
        seconds, naive_values = best_of(
            args.repeats, naive, diagrams, grid, use_partition
        )
        note = agree(f"{title}: naive {label}", values, naive_values, 1e-12)
        rows.append((f"naive numpy, tent matrix + {label}", seconds, reference, note))

    if PersLandscapeApprox is None:
        rows.append(("persim PersLandscapeApprox", None, None, "not installed"))
    else:
        subset = diagrams[: args.persim_diagrams]
        seconds, persim_values = best_of(args.repeats, persim_landscape, subset)
        extrapolated = seconds * len(diagrams) / len(subset)
        # persim snaps (b, d) to the grid: compare with ours on snapped diagrams.
        snapped = [grid[np.rint(d * (RESOLUTION - 1)).astype(int)] for d in subset]
        exact = agree(
            f"{title}: persim on grid-snapped diagrams",
            ours(snapped)[0],
            persim_landscape(snapped),
            1e-12,
        )
        snap_error = np.abs(values[: len(subset)] - persim_values).max()
        note = (
            f"timed on {len(subset)} diagrams ({seconds:.2f} s) and extrapolated; "
            f"snapping error {snap_error:.1e} (step/2 = "
            f"{0.5 / (RESOLUTION - 1):.1e}); grid-snapped diagrams: {exact}"
        )
        rows.append(
            ("persim PersLandscapeApprox (extrapolated)", extrapolated, reference, note)
        )

    if PersistenceLandscape is None:
        rows.append(("giotto-tda PersistenceLandscape", None, None, "not installed"))
    else:
        seconds, (gtda_values, gtda_grid) = best_of(
            args.repeats, gtda_landscape, diagrams
        )
        # giotto-tda has no sqrt(2) factor; it picks its own grid.
        mine = landscape_values(diagrams, gtda_grid, N_LANDSCAPES)
        note = "its own grid (samplings_); values " + agree(
            f"{title}: giotto-tda PersistenceLandscape",
            mine.reshape(len(diagrams), -1),
            gtda_values,
            1e-12,
        )
        rows.append(("giotto-tda PersistenceLandscape", seconds, reference, note))

    print_table(f"{what}; ratio = time / sklandscapes time", rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-diagrams", type=int, default=2000)
    parser.add_argument("--n-pairs", type=int, default=100)
    parser.add_argument(
        "--short-mean",
        type=float,
        default=0.02,
        help="mean length of the pairs of the second input (0: skip it)",
    )
    parser.add_argument(
        "--persim-diagrams",
        type=int,
        default=40,
        help="diagrams persim is timed on (extrapolated to --n-diagrams)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of this many")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "gudhi", "persim", "giotto-tda", "numpy"]))
    print(f"options: {vars(args)}")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    compare_all(
        "uniform pairs",
        random_diagrams(rng, args.n_diagrams, args.n_pairs),
        args,
    )
    if args.short_mean > 0:
        compare_all(
            f"short pairs (mean length {args.short_mean:g})",
            random_diagrams(rng, args.n_diagrams, args.n_pairs, args.short_mean),
            args,
        )
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    if FAILURES:
        print("\nDISAGREEMENTS:\n" + "\n".join(FAILURES))
        sys.exit(1)
    print("all landscapes agree with ours")


if __name__ == "__main__":
    main()
