"""Peak memory of exact Rips persistence against the number of points.

Each measurement runs in a fresh subprocess: it draws ``n`` points from a
standard normal in R^``--n-features`` (10, the width of the paper's synthetic
layers), reads its resident-set high-water mark (``VmHWM``) once the cloud
exists, runs ``RipsPersistence(homology_dimensions=...).fit_transform`` on the
one cloud (the dense path: ``max_edge_length=inf``, GUDHI's Ripser on the full
distance matrix), and reads the high-water mark again. The difference is the
peak memory of the computation. The memory guard is switched off in the child
(its refusal is what is being calibrated); the parent never starts a size whose
guard estimate exceeds ``--max-gib``.

Rows: ``homology_dimensions=(0, 1)`` at ``--sizes`` and ``(1,)`` at
``--sizes-h1`` (the experiments' two settings; Ripser computes H0 in both).
Then a least-squares fit ``peak = a n^2 + b`` over all rows, the exponent of
``peak`` against ``n`` between the two largest sizes (2 means no growth
beyond n^2), and the guard's estimate (``sklandscapes.persistence``) beside
each measurement. The script exits with status 1 if the guard's estimate is
below a measured peak.

``--sparse`` adds rows of the sparse path (finite ``max_edge_length``),
whose memory grows with the number of edges kept, not with n^2.

Run from the repository root::

    python benchmarks/bench_memory.py [--sizes 1000 2000 4000 8000 12000]
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _common import machine_info, peak_rss_bytes

from sklandscapes import persistence

GIB = 1024**3
MIB = 1024**2
# (n, features, max_edge_length) of the sparse rows: from ~8% to ~37% of all
# pairs in R^10, where GUDHI's gathering of the end points dominates, and a few
# million edges in R^2 and R^3, where Ripser's own structures do.
SPARSE_RUNS = [(4000, 10, 3.0), (4000, 10, 4.0), (8000, 2, 1.0), (20000, 3, 0.64)]


def child(n, dims, n_features, max_edge_length, seed):
    from sklandscapes import RipsPersistence, _validation

    _validation._available_memory = lambda: None
    cloud = np.random.default_rng(seed).normal(size=(n, n_features))
    edges = None
    if np.isfinite(max_edge_length):
        from scipy.spatial import cKDTree

        edges = (
            cKDTree(cloud).count_neighbors(cKDTree(cloud), max_edge_length) - n
        ) // 2
    baseline = peak_rss_bytes()
    start = time.perf_counter()
    out = RipsPersistence(
        homology_dimensions=dims, max_edge_length=max_edge_length
    ).fit_transform([cloud])
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    pairs = [len(d) for d in out[0, 0]]
    print(
        json.dumps(
            dict(seconds=seconds, bytes=peak - baseline, pairs=pairs, edges=edges)
        )
    )


def measure(n, dims, args, max_edge_length=np.inf, n_features=None):
    command = [
        sys.executable,
        __file__,
        "--child",
        str(n),
        ",".join(map(str, dims)),
        str(n_features or args.n_features),
        repr(float(max_edge_length)),
        str(args.seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(f"child for n={n}, dims={dims} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_dense(rows):
    n = np.array([row[1] for row in rows], dtype=float)
    peak = np.array([row[2] for row in rows], dtype=float)
    (a, b), *_ = np.linalg.lstsq(np.c_[n**2, np.ones_like(n)], peak, rcond=None)
    print(f"\nleast squares over every row: peak = {a:.1f} n^2 + {b / MIB:.0f} MiB")
    largest = sorted(zip(n, peak))[-2:]
    if len(largest) == 2 and largest[0][0] != largest[1][0]:
        (n1, p1), (n2, p2) = largest
        exponent = np.log(p2 / p1) / np.log(n2 / n1)
        print(
            f"growth exponent of peak in n between n={n1:.0f} and {n2:.0f}: "
            f"{exponent:.2f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1000, 2000, 4000, 6000, 8000, 12000]
    )
    parser.add_argument("--sizes-h1", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--max-gib", type=float, default=12.0)
    parser.add_argument("--sparse", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, dims, n_features, max_edge_length, seed = args.child
        child(
            int(n),
            tuple(int(d) for d in dims.split(",")),
            int(n_features),
            float(max_edge_length),
            int(seed),
        )
        return

    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "numpy", "scipy", "gudhi"]))
    print(f"options: {vars(args)}")
    wall = time.perf_counter()
    runs = [((0, 1), n) for n in args.sizes] + [((1,), n) for n in args.sizes_h1]
    rows, failures = [], []
    print(
        f"\ndense path, standard normal clouds in R^{args.n_features}; "
        "peak = RSS high-water mark (VmHWM) of a fresh process\n  minus its value "
        "before the call"
    )
    print(
        f"  {'dims':<7} {'n':>6} {'seconds':>8} {'peak MiB':>9} {'B / n^2':>8} "
        f"{'guard MiB':>10} {'guard / peak':>12}"
    )
    for dims, n in runs:
        estimate = persistence._dense_rips_bytes(n)
        if estimate > args.max_gib * GIB:
            print(
                f"  {str(dims):<7} {n:>6}  skipped: guard estimate "
                f"{estimate / GIB:.1f} GiB > --max-gib {args.max_gib}"
            )
            continue
        result = measure(n, dims, args)
        peak = result["bytes"]
        rows.append((dims, n, peak))
        print(
            f"  {str(dims):<7} {n:>6} {result['seconds']:8.1f} {peak / MIB:9.0f} "
            f"{peak / n**2:8.1f} {estimate / MIB:10.0f} {estimate / peak:12.2f}",
            flush=True,
        )
        if estimate < peak:
            failures.append(f"guard underestimates {dims}, n={n}")

    if rows:
        fit_dense(rows)
    print(
        "guard's model (sklandscapes.persistence): "
        f"{persistence._MEMORY_SAFETY} x ("
        f"{persistence._DENSE_BYTES_PER_SQUARED_POINT} n^2 + "
        f"{persistence._DENSE_BYTES_OVERHEAD / MIB:.0f} MiB)"
    )

    if args.sparse:
        print(
            "\nsparse path (finite max_edge_length), standard normal clouds: "
            "peak per edge kept"
        )
        print(
            f"  {'n':>6} {'d':>3} {'max_edge':>9} {'edges':>11} {'seconds':>8} "
            f"{'peak MiB':>9} {'B / edge':>9} {'guard / peak':>12}"
        )
        for n_points, n_features, length in SPARSE_RUNS:
            result = measure(n_points, (0, 1), args, length, n_features)
            estimate = persistence._sparse_rips_bytes(
                n_points, result["edges"], n_features
            )
            per_edge = result["bytes"] / max(result["edges"], 1)
            print(
                f"  {n_points:>6} {n_features:>3} {length:9.2f} {result['edges']:>11} "
                f"{result['seconds']:8.1f} {result['bytes'] / MIB:9.0f} "
                f"{per_edge:9.1f} {estimate / result['bytes']:12.2f}",
                flush=True,
            )
            if estimate < result["bytes"]:
                failures.append(f"guard underestimates sparse n={n_points}")

    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    print("the guard's estimate is above every measured peak")


if __name__ == "__main__":
    main()
