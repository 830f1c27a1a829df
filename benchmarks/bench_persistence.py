"""Time Vietoris-Rips persistence (H1): sklandscapes against its peers.

Compared, on the same clouds and the same (modified) distances:

- ``sklandscapes.RipsPersistence`` (GUDHI's Ripser-based Rips persistence,
  dense distance matrix, no edge collapse), timed end to end from the
  normalized clouds;
- ripser.py, ``ripser.ripser(X, maxdim=1)``;
- giotto-ph, ``gph.ripser_parallel(X, maxdim=1, n_threads=...)``;
- plain GUDHI, ``gudhi.RipsComplex(...).create_simplex_tree(max_dimension=2)
  .persistence()``. It stores every triangle of the full complex
  (C(n, 3) of them: 1.7e8 for 1000 points), so it runs on the first
  ``--gudhi-points`` points of each cloud, against ours on the same points.

Inputs (seeded, ``--seed``):

(a) global: one noisy circle of ``--n-points`` points embedded in R^15 by a
    random rotation, after ``ActivationNormalizer(method="global")``.
(b) local: a noisy annulus of ``--n-points`` points embedded in R^64, after
    ``ActivationNormalizer(method="local")``; ours runs with
    ``RipsPersistence(local=True)``. The peers get the distance matrix that
    ours builds (Euclidean distances, then 0 between every two points whose
    norms are both >= 1, with the same relative slack
    ``sklandscapes.persistence._RADIUS_RTOL``) as a precomputed matrix; that
    matrix is built outside their timings (it takes a few ms), while ours
    builds it inside.
(c) throughput: ``--n-clouds`` noisy circles of ``--throughput-points`` points
    in R^15 (global normalization). Ours with ``n_jobs=1`` and ``n_jobs=2``
    (threads); the peers in a ``joblib.Parallel`` loop (loky processes, whose
    start-up is excluded: the best repeat reuses the workers).

Before the times are trusted, the diagrams of every peer are checked against
ours: same number of pairs and bottleneck distance <= ``--tol`` (1e-6). The
largest difference of the pairs sorted by (birth, death) is reported too.
ripser.py and giotto-ph compute in float32, hence differences of ~1e-8. A
disagreement is printed with the input and the script exits with status 1.

Times are the best of ``--repeats`` runs. The ratio column is the peer's time
over ours on the same input (> 1: ours is faster).

Run from the repository root::

    python benchmarks/bench_persistence.py [--n-points 1000] [--repeats 3]
"""

import argparse
import sys
import time

import gudhi
import numpy as np
from _common import best_of, machine_info, print_table
from joblib import Parallel, delayed
from scipy.spatial.distance import pdist, squareform

from sklandscapes import ActivationNormalizer, RipsPersistence

try:
    from sklandscapes.persistence import _RADIUS_RTOL
except ImportError:  # the value documented in persistence.py
    _RADIUS_RTOL = 1e-9

try:
    import ripser
except ImportError:
    ripser = None
try:
    import gph
except ImportError:
    gph = None

FAILURES = []


# -- shared helpers ---------------------------------------------------------


# -- inputs -----------------------------------------------------------------


def rotation(rng, dim):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def noisy_circle(rng, n_points, dim, noise=0.1):
    angles = rng.uniform(0, 2 * np.pi, n_points)
    plane = np.c_[np.cos(angles), np.sin(angles)] + noise * rng.normal(
        size=(n_points, 2)
    )
    cloud = np.c_[plane, np.zeros((n_points, dim - 2))] @ rotation(rng, dim).T
    return cloud + 0.05 * noise * rng.normal(size=(n_points, dim))


def noisy_annulus(rng, n_points, dim):
    angles = rng.uniform(0, 2 * np.pi, n_points)
    radii = rng.uniform(0.3, 1.7, n_points)
    plane = np.c_[radii * np.cos(angles), radii * np.sin(angles)]
    cloud = np.c_[plane, np.zeros((n_points, dim - 2))] @ rotation(rng, dim).T
    return cloud + 0.05 * rng.normal(size=(n_points, dim))


def local_distance_matrix(cloud, radius=1.0):
    """The matrix RipsPersistence(local=True) filters (see persistence.py)."""
    distances = squareform(pdist(cloud))
    norms = np.linalg.norm(cloud, axis=1)
    outside = np.flatnonzero(norms >= radius * (1 - _RADIUS_RTOL))
    distances[np.ix_(outside, outside)] = 0.0
    return distances


# -- the methods ------------------------------------------------------------


def ours(clouds, local=False, n_jobs=None):
    diagrams = RipsPersistence(local=local, n_jobs=n_jobs).fit_transform(clouds)
    return [d for d in diagrams[:, 0, 0]]


def ripser_one(data, precomputed=False):
    return ripser.ripser(data, maxdim=1, distance_matrix=precomputed)["dgms"][1]


def gph_one(data, precomputed=False, n_threads=1):
    metric = "precomputed" if precomputed else "euclidean"
    return gph.ripser_parallel(data, maxdim=1, metric=metric, n_threads=n_threads)[
        "dgms"
    ][1]


def gudhi_one(data, precomputed=False):
    if precomputed:
        complex_ = gudhi.RipsComplex(distance_matrix=data)
    else:
        complex_ = gudhi.RipsComplex(points=data)
    tree = complex_.create_simplex_tree(max_dimension=2)
    tree.persistence()
    return tree.persistence_intervals_in_dimension(1)


def loop(fn, items, n_jobs):
    return Parallel(n_jobs=n_jobs)(delayed(fn)(item) for item in items)


# -- agreement --------------------------------------------------------------


def clean(diagram):
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    diagram = diagram[diagram[:, 1] > diagram[:, 0]]
    return diagram[np.lexsort((diagram[:, 1], diagram[:, 0]))]


def check(name, what, reference, other, tol):
    """Compare one peer diagram with ours; returns a short note for the table."""
    a, b = clean(reference), clean(other)
    bottleneck = gudhi.bottleneck_distance(a, b, 0.0) if len(a) + len(b) else 0.0
    sorted_diff = float(np.abs(a - b).max()) if len(a) == len(b) and len(a) else None
    note = f"{len(b)} pairs, bottleneck {bottleneck:.1e}"
    if sorted_diff is not None:
        note += f", max |sorted diff| {sorted_diff:.1e}"
    if len(a) != len(b) or bottleneck > tol:
        message = (
            f"DISAGREEMENT {name} on {what}: ours {len(a)} pairs, {name} {len(b)} "
            f"pairs, bottleneck distance {bottleneck:.3g} > {tol:g}"
        )
        FAILURES.append(message)
        print(message)
        return "DISAGREES: " + note
    return "agrees: " + note


# -- the cases --------------------------------------------------------------


def case_single(title, cloud, local, args):
    """(a) or (b): one cloud, ours against each peer; plain GUDHI on a prefix."""
    clouds = np.empty((1, 1), dtype=object)
    clouds[0, 0] = cloud
    what = f"{title} ({len(cloud)} points in R^{cloud.shape[1]})"
    data = local_distance_matrix(cloud) if local else cloud
    reference, (ours_diagram,) = best_of(args.repeats, ours, clouds, local=local)
    rows = [("sklandscapes RipsPersistence", reference, reference, "")]
    peers = [
        ("ripser.py ripser", ripser, lambda: ripser_one(data, local)),
        ("giotto-ph n_threads=1", gph, lambda: gph_one(data, local)),
        (
            "giotto-ph n_threads=2",
            gph,
            lambda: gph_one(data, local, n_threads=2),
        ),
    ]
    for name, module, run in peers:
        if module is None:
            rows.append((name, None, None, "not installed"))
            continue
        seconds, diagram = best_of(args.repeats, run)
        rows.append(
            (
                name,
                seconds,
                reference,
                check(name, what, ours_diagram, diagram, args.tol),
            )
        )

    m = min(args.gudhi_points, len(cloud))
    small = np.empty((1, 1), dtype=object)
    small[0, 0] = cloud[:m]
    small_data = local_distance_matrix(cloud[:m]) if local else cloud[:m]
    small_what = f"{title} (first {m} points)"
    small_reference, (small_ours,) = best_of(args.repeats, ours, small, local=local)
    seconds, diagram = best_of(args.repeats, gudhi_one, small_data, local)
    rows += [
        (
            f"sklandscapes RipsPersistence, {m} points",
            small_reference,
            small_reference,
            "",
        ),
        (
            f"plain gudhi SimplexTree, {m} points",
            seconds,
            small_reference,
            check("plain gudhi", small_what, small_ours, diagram, args.tol),
        ),
    ]
    if ripser is not None:
        seconds, diagram = best_of(args.repeats, ripser_one, small_data, local)
        rows.append(
            (
                f"ripser.py ripser, {m} points",
                seconds,
                small_reference,
                check("ripser.py", small_what, small_ours, diagram, args.tol),
            )
        )
    print_table(f"{what}, H1; ratio = time / sklandscapes time", rows)


def case_throughput(clouds, args):
    n = len(clouds)
    grid = np.empty((n, 1), dtype=object)
    for i, cloud in enumerate(clouds):
        grid[i, 0] = cloud
    what = f"(c) throughput: {n} clouds of {len(clouds[0])} points in R^15"
    rows = []
    reference = {}
    ours_diagrams = None
    for n_jobs in (1, 2):
        seconds, diagrams = best_of(args.repeats, ours, grid, n_jobs=n_jobs)
        reference[n_jobs] = seconds
        note = ""
        if ours_diagrams is None:
            ours_diagrams = diagrams
        else:
            same = all(np.array_equal(a, b) for a, b in zip(ours_diagrams, diagrams))
            note = "same diagrams as n_jobs=1" if same else "DIFFERS from n_jobs=1"
            if not same:
                FAILURES.append(f"ours n_jobs={n_jobs} differs from n_jobs=1 on {what}")
        rows.append(
            (
                f"sklandscapes RipsPersistence n_jobs={n_jobs}",
                seconds,
                reference[1],
                note,
            )
        )
    peers = [
        ("ripser.py ripser", ripser, ripser_one),
        ("giotto-ph n_threads=1", gph, gph_one),
    ]
    for name, module, fn in peers:
        for n_jobs in (1, 2):
            label = f"{name}, joblib n_jobs={n_jobs}"
            if module is None:
                rows.append((label, None, None, "not installed"))
                continue
            seconds, diagrams = best_of(args.repeats, loop, fn, clouds, n_jobs)
            notes = [
                check(name, f"{what}, cloud {i}", mine, theirs, args.tol)
                for i, (mine, theirs) in enumerate(zip(ours_diagrams, diagrams))
            ]
            bad = [note for note in notes if note.startswith("DISAGREES")]
            note = bad[0] if bad else f"agrees on all {n} clouds"
            rows.append((label, seconds, reference[1], note))
    print_table(f"{what}, H1; ratio = time / sklandscapes n_jobs=1 time", rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-points", type=int, default=1000, help="cases (a), (b)")
    parser.add_argument(
        "--gudhi-points",
        type=int,
        default=200,
        help="points given to plain GUDHI (full simplex tree), and to ours beside it",
    )
    parser.add_argument("--n-clouds", type=int, default=8, help="case (c)")
    parser.add_argument("--throughput-points", type=int, default=500, help="case (c)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "gudhi", "ripser", "giotto-ph", "numpy"]))
    print(f"options: {vars(args)}")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()

    normalized = ActivationNormalizer(method="global").fit_transform(
        [noisy_circle(rng, args.n_points, 15)]
    )
    case_single("(a) global", normalized[0, 0], False, args)

    normalized = ActivationNormalizer(method="local").fit_transform(
        [noisy_annulus(rng, args.n_points, 64)]
    )
    cloud = normalized[0, 0]
    n_outside = int((np.linalg.norm(cloud, axis=1) >= 1 - _RADIUS_RTOL).sum())
    print(f"\n(b) local: {n_outside} of {len(cloud)} points have norm >= 1 (coned off)")
    case_single("(b) local", cloud, True, args)

    normalized = ActivationNormalizer(method="global").fit_transform(
        [noisy_circle(rng, args.throughput_points, 15) for _ in range(args.n_clouds)]
    )
    case_throughput(list(normalized[:, 0]), args)

    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    if FAILURES:
        print("\nDISAGREEMENTS:\n" + "\n".join(FAILURES))
        sys.exit(1)
    print("all diagrams agree with ours within", args.tol)


if __name__ == "__main__":
    main()
