"""Time the permutation test of average landscapes against the naive loop.

Compared, on ``--n-samples`` (200) landscape vectors of ``--n-features``
(55,000 = 11 layers x 1 homology dimension x 5 landscapes x 1000 grid points)
in two equal groups, with the trapezoid weights of the grid
``np.linspace(0, 1, 1000)``:

- ``sklandscapes.stats.PermutationTest(n_permutations=10_000, grid=grid)``:
  one Gram matrix, then blocks of 1000 relabelings as matrix products
  (``n_jobs=1`` and ``n_jobs=2``);
- the naive test: for each relabeling, the two group means of the
  (n_samples, n_features) matrix and the weighted squared distance between
  them, ``sum_j w_j (mean_A - mean_B)_j^2`` (its square root is the
  statistic). It is timed on ``--naive-permutations`` (50) relabelings and
  extrapolated linearly to ``--n-permutations``; the output says so.

Checks before the times are trusted: the naive statistic of the observed
labels equals ours (relative 1e-10), and so do the naive statistics of ours'
first relabelings, redrawn from the seeding that ``PermutationTest``
documents (one seed per block of 1000, drawn from ``random_state``); if that
stream cannot be reproduced the output says so instead of failing.

Memory: the peak of memory allocated during ``fit`` (``tracemalloc``, which
sees NumPy's buffers), for 1,000 and for 10,000 permutations, with X already
allocated. It should not grow with the number of permutations.

The data are uniform random numbers (the second group shifted by
``--shift``); the test's cost does not depend on the values.

Run from the repository root::

    python benchmarks/bench_permutation.py [--n-features 55000] [--repeats 3]
"""

import argparse
import sys
import time
import tracemalloc

import numpy as np
from _common import best_of, machine_info

from sklandscapes.kernels import feature_weights
from sklandscapes.stats import PermutationTest

RESOLUTION = 1000
FAILURES = []


# -- shared helpers ---------------------------------------------------------


# -- the methods ------------------------------------------------------------


def ours(X, y, grid, n_permutations, n_jobs=None, random_state=0):
    return PermutationTest(
        n_permutations=n_permutations,
        grid=grid,
        random_state=random_state,
        n_jobs=n_jobs,
    ).fit(X, y)


def naive_statistic(X, weights, in_a):
    """sqrt(sum_j w_j (mean_A - mean_B)_j^2) for the boolean mask ``in_a``."""
    difference = X[in_a].mean(axis=0) - X[~in_a].mean(axis=0)
    return np.sqrt(np.sum(weights * difference**2))


def naive_null(X, weights, n_a, n_permutations, seed):
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    in_a = np.zeros(len(X), dtype=bool)
    for p in range(n_permutations):
        in_a[:] = False
        in_a[rng.permutation(len(X))[:n_a]] = True
        null[p] = naive_statistic(X, weights, in_a)
    return null


def documented_relabelings(n, n_a, n_permutations, random_state, count):
    """The first ``count`` group-A masks of PermutationTest's first block.

    PermutationTest draws one seed per block of 1000 permutations from
    ``check_random_state(random_state)``; within a block, relabeling p puts in
    group A the first n_a positions of ``argsort(rng.random((size, n)))[p]``.
    """
    n_blocks = -(-n_permutations // 1000)
    seed = np.random.RandomState(random_state).randint(
        np.iinfo(np.int32).max, size=(1, n_blocks)
    )[0, 0]
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((min(1000, n_permutations), n)), axis=1)
    masks = np.zeros((count, n), dtype=bool)
    for p in range(count):
        masks[p, order[p, :n_a]] = True
    return masks


def peak_memory(fn, *args, **kwargs):
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument(
        "--n-features", type=int, default=55_000, help="a multiple of 1000"
    )
    parser.add_argument("--n-permutations", type=int, default=10_000)
    parser.add_argument("--naive-permutations", type=int, default=50)
    parser.add_argument("--shift", type=float, default=0.002)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.n_features % RESOLUTION:
        parser.error(f"--n-features must be a multiple of {RESOLUTION}")

    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "numpy", "scipy", "scikit-learn", "joblib"]))
    print(f"options: {vars(args)}")
    start = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    n, n_a = args.n_samples, args.n_samples // 2
    X = rng.random((n, args.n_features))
    X[n_a:] += args.shift
    y = np.repeat([0, 1], [n_a, n - n_a])
    grid = np.linspace(0.0, 1.0, RESOLUTION)
    weights = feature_weights(args.n_features, grid)
    print(
        f"X: {n} x {args.n_features} ({X.nbytes / 2**20:.0f} MiB), groups of "
        f"{n_a} and {n - n_a}, trapezoid weights of np.linspace(0, 1, {RESOLUTION})"
    )

    # -- agreement ----------------------------------------------------------
    test = ours(X, y, grid, args.n_permutations)
    observed = naive_statistic(X, weights, y == 0)
    relative = abs(observed - test.statistic_) / observed
    print(
        f"\nobserved statistic: ours {test.statistic_:.12g}, naive {observed:.12g}, "
        f"relative difference {relative:.1e}; ours p-value {test.pvalue_:.4g}"
    )
    if relative > 1e-10:
        FAILURES.append(f"observed statistic differs: relative {relative:.3g}")
    count = min(args.naive_permutations, args.n_permutations, 1000)
    masks = documented_relabelings(n, n_a, args.n_permutations, 0, count)
    naive_first = np.array([naive_statistic(X, weights, m) for m in masks])
    null_diff = np.abs(naive_first - test.null_distribution_[:count]).max() / observed
    if null_diff <= 1e-10:
        print(
            f"null distribution: ours' first {count} relabelings redrawn; naive "
            f"statistics equal ours' (max relative difference {null_diff:.1e})"
        )
    else:
        print(
            f"null distribution: could not reproduce ours' relabelings (max "
            f"relative difference {null_diff:.1e}); the seeding scheme may have "
            "changed, so the null was not compared value by value"
        )

    # -- time ---------------------------------------------------------------
    rows = []
    reference = None
    for n_jobs in (1, 2):
        seconds, _ = best_of(
            args.repeats, ours, X, y, grid, args.n_permutations, n_jobs=n_jobs
        )
        reference = reference or seconds
        rows.append((f"sklandscapes PermutationTest n_jobs={n_jobs}", seconds, ""))
    seconds, _ = best_of(
        args.repeats, naive_null, X, weights, n_a, args.naive_permutations, 1
    )
    per_permutation = seconds / args.naive_permutations
    rows.append(
        (
            "naive loop (extrapolated)",
            per_permutation * args.n_permutations,
            f"timed on {args.naive_permutations} permutations: {seconds:.2f} s, "
            f"{per_permutation * 1e3:.1f} ms each",
        )
    )
    print(
        f"\n{args.n_permutations} permutations, {n} x {args.n_features}; "
        "ratio = time / sklandscapes n_jobs=1 time"
    )
    print(f"  {'method':<38} {'seconds':>9} {'ratio':>8}  note")
    for name, seconds, note in rows:
        print(f"  {name:<38} {seconds:9.3f} {seconds / reference:8.1f}  {note}")

    # -- memory -------------------------------------------------------------
    print("\npeak memory allocated during fit (tracemalloc), X already allocated:")
    for n_permutations in (1_000, 10_000):
        peak, _ = peak_memory(ours, X, y, grid, n_permutations)
        print(
            f"  n_permutations={n_permutations:>6}: {peak / 2**20:7.1f} MiB "
            f"(X itself: {X.nbytes / 2**20:.1f} MiB)"
        )

    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    if FAILURES:
        print("\nDISAGREEMENTS:\n" + "\n".join(FAILURES))
        sys.exit(1)
    print("the naive statistic agrees with ours")


if __name__ == "__main__":
    main()
