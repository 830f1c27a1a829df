"""Approximate Rips (``approximation=eps``) against exact Rips: error and scale.

1. Error, on clouds of ``--n-check`` (1,000) points drawn from a standard
   normal in R^2 and R^3 (``--check-features``):
   ``RipsPersistence(homology_dimensions=(0, 1))`` exact and with
   ``approximation=eps`` for each ``eps`` of ``--check-eps``.
   For H0 and H1, the bottleneck distance between the finite parts of the two
   diagrams on the log scale (H0 on its deaths, its births being all 0) is
   printed beside the guarantee ``log(1 / (1 - eps))``; a distance above it
   makes the script exit with status 1. Times of both paths and their ratio.
2. Scale, on standard normal clouds of ``--sizes`` (20,000 and 60,000) points
   in R^``--scale-features`` (3) with ``approximation=--scale-eps`` (0.9):
   wall time and peak memory of the approximate path, each in a fresh process
   (RSS high-water mark, VmHWM, minus its value once the cloud exists). The exact path
   is called on the same cloud first: its memory guard refuses it before
   allocating anything, and the refusal is printed.

Sparse Rips in GUDHI builds a simplex tree and reduces it with GUDHI's own
persistent cohomology, not with Ripser: at 1,000 points it is slower than the
exact path, and its size grows fast with the intrinsic dimension (a standard
normal in R^10 did not finish 1,000 points at eps=0.9 within 100 s). Its
memory is linear in the points, which is what makes the large clouds fit.

Run from the repository root::

    python benchmarks/bench_approximation.py [--sizes 20000 60000]
"""

import argparse
import json
import subprocess
import sys
import time

import gudhi
import numpy as np
from _common import machine_info, peak_rss_bytes

from sklandscapes import RipsPersistence

MIB = 1024**2
FAILURES = []


def log_bottleneck(approximate, exact, dimension):
    approximate = approximate[np.isfinite(approximate[:, 1])]
    exact = exact[np.isfinite(exact[:, 1])]
    if dimension == 0:
        if len(approximate) != len(exact):
            return np.inf
        return float(
            np.max(
                np.abs(
                    np.log(np.sort(approximate[:, 1])) - np.log(np.sort(exact[:, 1]))
                ),
                initial=0,
            )
        )
    return gudhi.bottleneck_distance(np.log(approximate), np.log(exact))


def check(args):
    if not args.check_features:
        return
    print(
        f"\n1. error against exact Rips, {args.n_check} standard normal points; "
        "log-bottleneck distance of the finite pairs"
    )
    print(
        f"  {'cloud':<6} {'eps':>5} {'bound':>7} {'H0':>7} {'H1':>7} "
        f"{'pairs H1 (exact)':>17} {'exact s':>8} {'approx s':>9} {'ratio':>6}"
    )
    rng = np.random.default_rng(args.seed)
    for n_features in args.check_features:
        cloud = rng.normal(size=(args.n_check, n_features))
        start = time.perf_counter()
        exact = RipsPersistence(homology_dimensions=(0, 1)).fit_transform([cloud])
        exact_seconds = time.perf_counter() - start
        for epsilon in args.check_eps:
            start = time.perf_counter()
            approximate = RipsPersistence(
                homology_dimensions=(0, 1),
                approximation=epsilon,
                random_state=args.seed,
            ).fit_transform([cloud])
            seconds = time.perf_counter() - start
            bound = np.log(1 / (1 - epsilon))
            errors = [
                log_bottleneck(approximate[0, 0, k], exact[0, 0, k], k) for k in (0, 1)
            ]
            print(
                f"  R^{n_features:<4} {epsilon:5.2f} {bound:7.3f} {errors[0]:7.3f} "
                f"{errors[1]:7.3f} "
                f"{len(approximate[0, 0, 1]):>8} ({len(exact[0, 0, 1]):>5}) "
                f"{exact_seconds:8.2f} {seconds:9.2f} {seconds / exact_seconds:6.1f}",
                flush=True,
            )
            if max(errors) > bound + 1e-9:
                FAILURES.append(f"R^{n_features}, eps={epsilon}: {errors} > {bound}")


def child(n, n_features, epsilon, seed):
    cloud = np.random.default_rng(seed).normal(size=(n, n_features))
    baseline = peak_rss_bytes()
    start = time.perf_counter()
    out = RipsPersistence(
        homology_dimensions=(0, 1), approximation=epsilon, random_state=seed
    ).fit_transform([cloud])
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    print(
        json.dumps(
            dict(
                seconds=seconds,
                bytes=peak - baseline,
                pairs=[len(d) for d in out[0, 0]],
            )
        )
    )


def scale(args):
    print(
        f"\n2. scale: standard normal clouds in R^{args.scale_features}, "
        f"approximation={args.scale_eps}, homology_dimensions=(0, 1); "
        "peak = RSS high-water mark (VmHWM) of a fresh process\n  minus its value "
        "before the call"
    )
    for n in args.sizes:
        cloud = np.random.default_rng(args.seed).normal(size=(n, args.scale_features))
        try:
            RipsPersistence(homology_dimensions=(0, 1)).fit_transform([cloud])
            print(f"  n={n}: the exact path was NOT refused by the memory guard")
        except ValueError as error:
            print(f"  n={n}: exact path refused: {error}")
        del cloud
        command = [
            sys.executable,
            __file__,
            "--child",
            str(n),
            str(args.scale_features),
            repr(args.scale_eps),
            str(args.seed),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  n={n}: approximate path failed:\n{done.stderr}")
            FAILURES.append(f"n={n} failed")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  n={n}: approximate path {result['seconds']:.1f} s, peak "
            f"{result['bytes'] / MIB:.0f} MiB, pairs (H0, H1) {result['pairs']}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-check", type=int, default=1000)
    parser.add_argument("--check-features", type=int, nargs="*", default=[2, 3])
    parser.add_argument("--check-eps", type=float, nargs="*", default=[0.5, 0.9])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20000, 60000])
    parser.add_argument("--scale-features", type=int, default=3)
    parser.add_argument("--scale-eps", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, n_features, epsilon, seed = args.child
        child(int(n), int(n_features), float(epsilon), int(seed))
        return
    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "numpy", "scipy", "gudhi"]))
    print(f"options: {vars(args)}")
    wall = time.perf_counter()
    check(args)
    scale(args)
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s")
    if FAILURES:
        print("FAILURES:\n  " + "\n  ".join(FAILURES))
        raise SystemExit(1)
    print("every approximate diagram is within its bound")


if __name__ == "__main__":
    main()
