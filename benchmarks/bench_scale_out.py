"""Scale out, measured: Rips diagrams per second on joblib threads and on Dask.

The clouds are those of the paper's synthetic experiment: the 1,008 points of
class 1 on every third lattice point of the nine-disks data, through
``--n-networks`` networks of the paper's architecture (2, ten layers of 15,
2; ReLU; untrained, seeded), every layer after the input, globally
normalized: ``--n-networks`` x 11 clouds of 1,008 points, H1 as in the
experiment. Each backend computes the same diagrams with
``RipsPersistence(n_jobs=...)``:

- one job (the reference for the speed-up);
- joblib threads, ``n_jobs=2`` (``--backend loky``, the default of
  ``sklandscapes run``; GUDHI releases the GIL);
- ``--backend dask`` without ``--scheduler``: a ``LocalCluster`` of 2
  workers in this process (threads), as ``sklandscapes run`` starts it;
- a ``LocalCluster`` of 2 worker *processes* of one thread each, which is
  how a cluster of machines behaves: every chunk of clouds is pickled to a
  worker and its diagrams back.

Each row is the best of ``--repeats`` runs after one warm-up (cluster
start-up excluded; it is reported apart) and gives clouds per second, the
speed-up over one job and the ratio to joblib threads. The diagrams of every
backend are checked equal, array for array, to the one-job diagrams before
any time is printed; a difference exits with status 1.

Run from the repository root, on an otherwise idle machine::

    python benchmarks/bench_scale_out.py [--n-networks 4] [--repeats 3]
"""

import argparse
import sys
import time

import joblib
import numpy as np
import torch
from _common import machine_info

from sklandscapes import ActivationExtractor, ActivationNormalizer, RipsPersistence
from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.nets import MLP

WIDTHS = (2,) + (15,) * 10 + (2,)


def paper_clouds(n_networks):
    X, y = make_nine_disks(random_state=0)
    batch = X[sublattice_mask(X, 3) & (y == 1)].astype(np.float32)
    networks = [MLP(WIDTHS, random_state=seed) for seed in range(n_networks)]
    clouds = ActivationExtractor(inputs=batch, device="cpu").transform(networks)
    return ActivationNormalizer(method="global").fit_transform(clouds[:, 1:]), batch


def diagrams_of(clouds, n_jobs):
    return RipsPersistence(homology_dimensions=(1,), n_jobs=n_jobs).fit_transform(
        clouds
    )


def timed(repeats, fn):
    fn()  # warm-up: workers started, imports done
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def same(first, second):
    return first.shape == second.shape and all(
        np.array_equal(a, b) for a, b in zip(first.ravel(), second.ravel())
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-networks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    torch.set_num_threads(1)
    print(machine_info(["gudhi", "numpy", "joblib", "dask", "distributed"]))
    clouds, batch = paper_clouds(args.n_networks)
    n_clouds = clouds.size
    print(
        f"{n_clouds} clouds of {len(batch)} points (the paper's synthetic batch "
        f"through {args.n_networks} networks, layers 1-11), H1; best of "
        f"{args.repeats} after a warm-up"
    )
    rows = []
    serial, reference = timed(args.repeats, lambda: diagrams_of(clouds, 1))
    rows.append(("one job", serial, None))
    seconds, result = timed(args.repeats, lambda: diagrams_of(clouds, 2))
    if not same(reference, result):
        sys.exit("joblib threads gave other diagrams than one job")
    rows.append(("joblib threads, n_jobs=2 (--backend loky)", seconds, None))
    threads = seconds
    clusters = [
        ("Dask LocalCluster, 2 worker threads (--backend dask)", False),
        ("Dask LocalCluster, 2 worker processes of 1 thread", True),
    ]
    for name, processes in clusters:
        start = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
        client = Client(cluster)
        started = time.perf_counter() - start
        try:
            with joblib.parallel_config(backend="dask"):
                seconds, result = timed(args.repeats, lambda: diagrams_of(clouds, -1))
        finally:
            client.close()
            cluster.close()
        if not same(reference, result):
            sys.exit(f"{name} gave other diagrams than one job")
        rows.append((name, seconds, started))
    print("every backend gave the one-job diagrams, array for array\n")
    print(
        f"  {'backend':<52} {'seconds':>8} {'clouds/s':>9} {'speed-up':>9} "
        f"{'vs threads':>11} {'start-up':>9}"
    )
    for name, seconds, started in rows:
        start_up = "-" if started is None else f"{started:.1f} s"
        print(
            f"  {name:<52} {seconds:8.2f} {n_clouds / seconds:9.2f} "
            f"{serial / seconds:9.2f} {threads / seconds:11.2f} {start_up:>9}"
        )


if __name__ == "__main__":
    main()
