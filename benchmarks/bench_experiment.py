"""Where the time of the experiments goes: the demo, and the paper preset's persistence.

1. ``sklandscapes demo`` (the fast synthetic preset) is run in a temporary
   folder; its wall time and the seconds of each stage (training, extraction,
   persistence, landscapes, tests) are printed, as recorded by
   :func:`sklandscapes.experiments.run_experiment`.
2. The paper preset's persistence stage, per diagram: one network of the paper
   preset (2 -> 15 x 10 -> 2) is trained to its first threshold, its
   activations on the paper preset's batch are normalized, and the diagram of
   every layer is timed; the total for the whole preset (every network,
   threshold and layer) is extrapolated from that, which the output says.
3. Activation extraction alone: 100 networks of the paper's synthetic
   architecture on a 1000-point batch, on the CPU.

Run from the repository root::

    python benchmarks/bench_experiment.py [--skip-demo] [--n-jobs 2]
"""

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import torch

from sklandscapes import ActivationExtractor, ActivationNormalizer, RipsPersistence
from sklandscapes.datasets import make_nine_disks, sublattice_mask
from sklandscapes.experiments import make_config, run_experiment
from sklandscapes.nets import MLP, train_networks


def time_demo(n_jobs):
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_experiment(
                make_config("synthetic", "fast"), out, n_jobs=n_jobs, verbose=0
            )
        wall = time.perf_counter() - start
    for warning in caught:
        print(f"warning: {warning.message}")
    print(f"sklandscapes demo (fast synthetic preset, n_jobs={n_jobs}): {wall:.1f} s")
    for stage, seconds in result.timings.items():
        print(f"  {stage:<12} {seconds:7.1f} s  {seconds / wall:6.1%}")
    n_diagrams = len(result.thresholds) * result.shape[0] * result.shape[1]
    print(
        f"  persistence per diagram: {result.timings['persistence'] / n_diagrams:.3f} s"
        f" ({n_diagrams} diagrams)"
    )


def time_paper_persistence(n_jobs):
    config = make_config("synthetic", "paper")
    X, y = make_nine_disks(config.spacing, random_state=config.seed)
    mask = sublattice_mask(X, config.sublattice_step, spacing=config.spacing)
    mask &= y == config.batch_class
    batch = X[mask].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training = train_networks(
            X.astype(np.float32),
            y,
            1,
            config.widths,
            config.thresholds[:1],
            lr=config.lr,
            batch_size=config.batch_size,
            max_epochs=config.max_epochs,
            random_state=0,
            device="cpu",
        )
    network = training.snapshots[0][0]
    clouds = ActivationExtractor(inputs=batch, device="cpu").fit_transform([network])
    clouds = ActivationNormalizer(method=config.method).fit_transform(clouds)
    rips = RipsPersistence(homology_dimensions=config.homology_dimensions)
    seconds = []
    for layer in range(clouds.shape[1]):
        start = time.perf_counter()
        rips.fit_transform(clouds[:, layer : layer + 1])
        seconds.append(time.perf_counter() - start)
    seconds = np.array(seconds)
    n_diagrams = config.n_networks * len(config.thresholds) * len(seconds)
    print(
        f"paper preset persistence: batch of {len(batch)} points, "
        f"{len(seconds)} layers, network at threshold {config.thresholds[0]}"
    )
    print("  seconds per layer: " + ", ".join(f"{s:.2f}" for s in seconds))
    print(f"  mean per diagram: {seconds.mean():.2f} s")
    print(
        f"  extrapolated to {config.n_networks} networks x "
        f"{len(config.thresholds)} thresholds x {len(seconds)} layers = "
        f"{n_diagrams} diagrams: {seconds.mean() * n_diagrams / 60:.0f} min on one "
        f"core, about {seconds.mean() * n_diagrams / 60 / max(n_jobs, 1):.0f} min "
        f"with n_jobs={n_jobs} (persistence parallelizes over diagrams)"
    )


def time_extraction():
    networks = [MLP((2,) + (15,) * 10 + (2,), random_state=i) for i in range(100)]
    batch = np.random.default_rng(0).random((1000, 2)).astype(np.float32)
    extractor = ActivationExtractor(inputs=batch, device="cpu")
    extractor.fit_transform(networks[:2])  # warm-up
    start = time.perf_counter()
    clouds = extractor.fit_transform(networks)
    seconds = time.perf_counter() - start
    print(
        f"extraction: 100 networks x {clouds.shape[1]} layers on 1000 points: "
        f"{seconds:.2f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}"
    )
    if not args.skip_demo:
        time_demo(args.n_jobs)
    time_paper_persistence(args.n_jobs)
    time_extraction()


if __name__ == "__main__":
    main()
