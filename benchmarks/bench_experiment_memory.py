"""Peak memory and wall time of an experiment against its number of samples.

The digits paper preset at ``--n-inputs`` (200) inputs per subsample, with
``--subsamples`` (5, 20, 56: 900, 3,600 and 10,080 samples of 30 networks at
6 thresholds), each run by ``run_experiment(config, out, n_jobs=2)`` in a
fresh process. The peak is that process's resident-set high-water mark
(``VmHWM``: everything it held at once, torch included); the landscape
matrix is what holding every landscape vector would take (n_samples x
n_features float64), which the streamed run never does.

``--out-root DIR`` keeps the run folders there (``digits_k{K}``); a folder
that holds a run of the same configuration is resumed (``resume=True``):
stages stored before (training, diagrams) are loaded, not computed, and its
row says so. ``--backend dask`` runs the persistence stage on a Dask
``LocalCluster`` in the process, as ``sklandscapes run --backend dask`` does.

Run from the repository root::

    python benchmarks/bench_experiment_memory.py [--subsamples 5 20 56]
        [--out-root DIR] [--backend dask] [--json FILE]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, peak_rss_bytes

GIB = 1024**3


def child(k, n_inputs, out, backend):
    import sklandscapes
    from sklandscapes.experiments import make_config, run_experiment

    config = make_config("digits", "paper", n_subsamples=k, n_inputs=n_inputs)
    resumed = (Path(out) / "config.json").exists()
    start = time.perf_counter()
    result = run_experiment(
        config, out, resume=resumed, n_jobs=2, backend=backend, verbose=0
    )
    seconds = time.perf_counter() - start
    n_samples, n_features = result.landscapes.shape
    print(
        json.dumps(
            dict(
                subsamples=k,
                samples=n_samples,
                features=n_features,
                matrix_gib=n_samples * n_features * 8 / GIB,
                peak_gib=peak_rss_bytes() / GIB,
                seconds=seconds,
                resumed=resumed,
                backend=backend,
                stages={s: round(v, 1) for s, v in result.timings.items()},
                # Whether the package measured is this checkout's (not an
                # installed copy), without writing this machine's paths.
                package_in_this_checkout=Path(sklandscapes.__file__)
                .resolve()
                .is_relative_to(Path(__file__).resolve().parents[1]),
            )
        )
    )


def measure(k, args, root):
    out = Path(root) / (f"digits_k{k}" + ("_dask" if args.backend == "dask" else ""))
    command = [
        sys.executable,
        __file__,
        "--child",
        str(k),
        str(args.n_inputs),
        str(out),
        args.backend,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the run with {k} subsamples failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subsamples", type=int, nargs="*", default=[5, 20, 56])
    parser.add_argument("--n-inputs", type=int, default=200)
    parser.add_argument("--out-root", default=None)
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        k, n_inputs, out, backend = args.child
        child(int(k), int(n_inputs), out, backend)
        return
    print(__doc__.splitlines()[0])
    print(machine_info(["sklandscapes", "numpy", "torch", "gudhi"]))
    print(f"options: {vars(args)}")
    print(
        f"\n  {'subsamples':>10} {'samples':>8} {'matrix GiB':>10} {'peak GiB':>9} "
        f"{'peak/matrix':>11} {'seconds':>8}  stages (s)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out_root or scratch
        for k in args.subsamples:
            row = measure(k, args, root)
            rows.append(row)
            note = " (resumed: training and diagrams loaded)" if row["resumed"] else ""
            print(
                f"  {k:>10} {row['samples']:>8} {row['matrix_gib']:10.2f} "
                f"{row['peak_gib']:9.2f} {row['peak_gib'] / row['matrix_gib']:11.2f} "
                f"{row['seconds']:8.0f}  {row['stages']}{note}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
