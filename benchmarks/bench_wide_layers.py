"""Memory and time of wide layers: float64 clouds vs distances computed in torch.

A small convolutional network (``Conv2d(1, 4, 3, stride=2, padding=1)``,
``ReLU``, ``Flatten``, ``Linear(16384, 10)``, seeded weights) sees a batch of
``--n-points`` (1000) random images of 1 x ``--side`` x ``--side``
(128 x 128), in float32. Its layers are the input (16,384 features), the ReLU
feature map (4 x 64 x 64 = 16,384 features) and the logits (10): two of the
three clouds are 131 MB each in float64.

Both paths run the paper's local homology on every layer, as one would on a
real network:

- clouds: ``ActivationExtractor(inputs=batch)`` (float64 clouds), then
  ``ActivationNormalizer(method="local", center=~relu_layers(...))``, then
  ``RipsPersistence(local=True)`` (H1);
- distances: ``ActivationExtractor(inputs=batch, output="distances")``
  (``LayerDistances`` computed blockwise in float64 by torch), then the same
  normalizer, then ``RipsPersistence(local=True, metric="precomputed")``.

Both run the forward pass on ``--batch-size`` (100) images at a time
(``ActivationExtractor(batch_size=...)``), as one does with wide layers, so
that the network's own intermediate outputs stay small beside the clouds.

Each path runs in a fresh subprocess, with ``--threads`` (1) threads for torch
and BLAS, since scipy's ``pdist`` in the clouds path uses one. Memory is the
peak resident set size (``VmHWM``, reset through ``/proc/self/clear_refs``
before each stage) above the resident size once the network and the batch
exist, so what the caller already holds is not counted; tracemalloc cannot
see torch's buffers. Times are the wall time of each stage (one run; noisy on
a shared machine, see the README's caveat).

Check before the numbers are trusted: both paths give diagrams within
bottleneck distance 1e-8 of each other on every layer (the documented
precision of the distances: 1e-8 relative on squared distances of the
normalized clouds, whose distances are at most 2). A disagreement makes the
script exit with status 1.

Run from the repository root::

    python benchmarks/bench_wide_layers.py [--n-points 1000] [--side 128]
"""

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time

from _common import machine_info

TOLERANCE = 1e-8


def _rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    # Writing 5 resets VmHWM to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def child(path, n_points, side, batch_size, out):
    """One path in this process; writes its diagrams and measurements."""
    import torch
    from torch import nn

    from sklandscapes import (
        ActivationExtractor,
        ActivationNormalizer,
        RipsPersistence,
        relu_layers,
    )

    generator = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * (side // 2) ** 2, 10),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    batch = torch.rand(n_points, 1, side, side, generator=generator)
    center = ~relu_layers(net, batch[:2])
    distances = path == "distances"
    stages = [
        (
            "extraction",
            ActivationExtractor(
                inputs=batch,
                output="distances" if distances else "clouds",
                batch_size=batch_size,
            ),
        ),
        ("normalization", ActivationNormalizer(method="local", center=center)),
        (
            "persistence",
            RipsPersistence(
                local=True, metric="precomputed" if distances else "euclidean"
            ),
        ),
    ]
    baseline = _rss_kib("VmRSS")
    data, report = [net], {"baseline_mib": baseline / 1024}
    for name, step in stages:
        _reset_peak()
        start = time.perf_counter()
        data = step.fit_transform(data)
        report[f"{name}_s"] = time.perf_counter() - start
        report[f"{name}_peak_mib"] = (_rss_kib("VmHWM") - baseline) / 1024
    with open(out, "wb") as file:
        pickle.dump({"report": report, "diagrams": data}, file)


def run_child(path, args, directory):
    out = os.path.join(directory, f"{path}.pkl")
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(args.threads)
    command = [
        sys.executable,
        __file__,
        "--child",
        path,
        "--n-points",
        str(args.n_points),
        "--side",
        str(args.side),
        "--batch-size",
        str(args.batch_size),
        "--out",
        out,
    ]
    subprocess.run(command, check=True, env=env)
    with open(out, "rb") as file:
        return pickle.load(file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-points", type=int, default=1000)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--child", choices=["clouds", "distances"])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        child(args.child, args.n_points, args.side, args.batch_size, args.out)
        return 0

    import gudhi

    print(machine_info(["numpy", "scipy", "torch", "gudhi", "scikit-learn"]))
    width = 4 * (args.side // 2) ** 2
    print(
        f"{args.n_points} images of 1 x {args.side} x {args.side}; layers: input "
        f"({args.side**2}), ReLU feature map ({width}), logits (10); "
        f"{args.threads} thread(s); forward pass in chunks of {args.batch_size} "
        "images; local homology, H1"
    )
    with tempfile.TemporaryDirectory() as directory:
        results = {
            path: run_child(path, args, directory) for path in ("clouds", "distances")
        }
    clouds, distances = results["clouds"], results["distances"]
    worst = 0.0
    for index in [(0, layer, 0) for layer in range(clouds["diagrams"].shape[1])]:
        worst = max(
            worst,
            gudhi.bottleneck_distance(
                clouds["diagrams"][index], distances["diagrams"][index]
            ),
        )
    print(f"\nagreement: largest bottleneck distance between the paths {worst:.2e}")
    failed = worst > TOLERANCE
    if failed:
        print(f"DISAGREEMENT: above the tolerance {TOLERANCE:g}")

    print(f"\n  {'stage':<16} {'clouds':>22} {'distances':>22} {'ratio':>14}")
    print(
        f"  {'':<16} {'s':>10} {'peak MiB':>11} {'s':>10} {'peak MiB':>11} "
        f"{'time':>6} {'memory':>7}"
    )
    for stage in ("extraction", "normalization", "persistence"):
        a, b = clouds["report"], distances["report"]
        print(
            f"  {stage:<16} {a[stage + '_s']:10.2f} {a[stage + '_peak_mib']:11.1f} "
            f"{b[stage + '_s']:10.2f} {b[stage + '_peak_mib']:11.1f} "
            f"{a[stage + '_s'] / b[stage + '_s']:6.2f} "
            f"{a[stage + '_peak_mib'] / max(b[stage + '_peak_mib'], 1e-9):7.2f}"
        )
    total = {
        path: sum(
            results[path]["report"][f"{s}_s"]
            for s in ("extraction", "normalization", "persistence")
        )
        for path in results
    }
    peak = {
        path: max(
            results[path]["report"][f"{s}_peak_mib"]
            for s in ("extraction", "normalization", "persistence")
        )
        for path in results
    }
    print(
        f"  {'whole pipeline':<16} {total['clouds']:10.2f} {peak['clouds']:11.1f} "
        f"{total['distances']:10.2f} {peak['distances']:11.1f} "
        f"{total['clouds'] / total['distances']:6.2f} "
        f"{peak['clouds'] / peak['distances']:7.2f}"
    )
    print(
        "\npeak MiB: peak resident memory during the stage above the resident "
        "memory once the network and the batch exist (baseline "
        f"{clouds['report']['baseline_mib']:.0f} MiB clouds, "
        f"{distances['report']['baseline_mib']:.0f} MiB distances); ratio = "
        "clouds / distances (> 1: the distances path is faster / smaller)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
