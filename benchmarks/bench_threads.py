"""Time demo-like training with torch's default thread count against one thread,
on an idle machine and on a loaded one, on both training paths.

The demo's training (``sklandscapes demo``): MLPs 2 -> 15 x 10 -> 2 with ReLU,
Adam (lr 3e-3), minibatches of 64, on the nine-disks lattice, trained together
by ``train_networks``; here a few networks for a few epochs. The skorch path:
one such network fitted by ``make_mlp_classifier`` (with its
``"train_acc"`` scoring after every epoch) on ``--skorch-points`` points of
the lattice for ``--skorch-epochs`` epochs. Each setting is timed as the best
of ``--repeats`` runs (after a warm-up), with ``n_threads`` set explicitly:
torch's default count (the number it had at start, usually the cores) and 1.
"Loaded" starts one busy-loop process per usable core first
(as other work on a shared machine would), and stops them afterwards; "as
found" adds nothing to whatever else runs (the printed load average says how
idle that was).

Both thread counts compute the same networks up to float32 rounding (the sums
run in another order); the script prints the largest difference in final
training accuracy as a sanity check, not as a failure condition.

Run from the repository root (about 1-3 minutes)::

    python benchmarks/bench_threads.py [--networks 4] [--epochs 1] [--repeats 1]
        [--skorch-epochs 2] [--skorch-points 4000]

It writes its output to ``benchmarks/results/bench_threads.txt`` too.
"""

import argparse
import contextlib
import io
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info  # noqa: E402

from sklandscapes.datasets import make_nine_disks  # noqa: E402
from sklandscapes.nets import make_mlp_classifier, train_networks  # noqa: E402

WIDTHS = (2,) + (15,) * 10 + (2,)
RESULTS = Path(__file__).resolve().parent / "results" / "bench_threads.txt"


def _busy_loop():
    while True:
        pass


@contextlib.contextmanager
def loaded(n_processes):
    """One busy-looping process per core while the block runs."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_busy_loop, daemon=True) for _ in range(n_processes)
    ]
    for process in processes:
        process.start()
    time.sleep(1.0)  # let them occupy the cores
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()


def time_training(X, y, args, n_threads):
    times, result = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            # No network reaches 1.0 in a few epochs; that warning is expected.
            warnings.simplefilter("ignore")
            result = train_networks(
                X,
                y,
                args.networks,
                WIDTHS,
                thresholds=(1.0,),
                lr=3e-3,
                batch_size=64,
                max_epochs=args.epochs,
                random_state=0,
                device="cpu",
                n_threads=n_threads,
            )
        times.append(time.perf_counter() - start)
    return min(times), result


def time_skorch(X, y, args, n_threads):
    """Best time of fitting one skorch net, and its training accuracies."""
    times, accuracy = [], None
    for _ in range(args.repeats):
        net = make_mlp_classifier(
            WIDTHS,
            lr=3e-3,
            batch_size=64,
            max_epochs=args.skorch_epochs,
            train_split=None,
            random_state=0,
            verbose=0,
            device="cpu",
            n_threads=n_threads,
        )
        start = time.perf_counter()
        net.fit(X, y)
        times.append(time.perf_counter() - start)
        accuracy = np.array(net.history[:, "train_acc"])
    return min(times), accuracy


def _batched(X, y, args):
    def timer(n_threads):
        seconds, result = time_training(X, y, args, n_threads)
        return seconds, result.train_accuracy

    return timer


def _skorch(X, y, args):
    subset = np.random.default_rng(0).permutation(len(X))[: args.skorch_points]

    def timer(n_threads):
        return time_skorch(X[subset], y[subset], args, n_threads)

    return timer


def compare(timer, default_threads, load):
    """Rows (machine, busy processes, default s, 1 thread s, accuracy gap)."""
    rows = []
    # "as found" is idle only where nothing else runs: the load average above
    # says how idle it was.
    for label, busy in (("as found", 0), ("loaded", load)):
        with loaded(busy) if busy else contextlib.nullcontext():
            default_s, default_accuracy = timer(default_threads)
            one_s, one_accuracy = timer(1)
        gap = np.nanmax(np.abs(default_accuracy - one_accuracy))
        rows.append((label, busy, default_s, one_s, gap))
    return rows


def print_rows(title, rows):
    print(
        f"\n{title}\n  {'machine':<8} {'added busy procs':>16} {'default s':>10} "
        f"{'1 thread s':>10} {'default / 1':>12}  max |accuracy difference|"
    )
    for label, load, default_s, one_s, gap in rows:
        print(
            f"  {label:<8} {load:>16} {default_s:10.2f} {one_s:10.2f} "
            f"{default_s / one_s:12.2f}  {gap:.4f}"
        )
    idle, busy = rows
    print(
        f"loaded / as found with the default threads: {busy[2] / idle[2]:.1f}x; "
        f"with 1 thread: {busy[3] / idle[3]:.1f}x"
    )


def run(args):
    X, y = make_nine_disks(random_state=0)
    X = X.astype(np.float32)
    default_threads = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    print(machine_info(["torch", "numpy"]))
    print(
        f"train_networks: {args.networks} networks {WIDTHS}, ReLU, Adam lr=3e-3, "
        f"batch_size=64, {args.epochs} epochs on {len(X)} points, CPU\n"
        f"make_mlp_classifier: 1 network, the same settings, {args.skorch_epochs} "
        f"epochs on {min(args.skorch_points, len(X))} points\nbest of "
        f"{args.repeats}; torch default threads: {default_threads}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')!r}"
    )
    # Warm-up: the first call pays for torch's one-time initialization.
    time_training(X, y, argparse.Namespace(**{**vars(args), "repeats": 1}), 1)
    load = args.load or cores
    for title, timer in (
        ("train_networks (batched)", _batched(X, y, args)),
        ("make_mlp_classifier (skorch)", _skorch(X, y, args)),
    ):
        print_rows(title, compare(timer, default_threads, load))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Small defaults: with torch's default threads on a busy machine even this
    # takes a minute or more.
    parser.add_argument("--networks", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skorch-epochs", type=int, default=2)
    parser.add_argument("--skorch-points", type=int, default=4000)
    parser.add_argument(
        "--load", type=int, default=0, help="busy processes (default: one per core)"
    )
    parser.add_argument(
        "--no-save", action="store_true", help=f"do not write {RESULTS.name}"
    )
    args = parser.parse_args()
    buffer = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, text):
            sys.__stdout__.write(text)
            sys.__stdout__.flush()
            buffer.write(text)
            return len(text)

    with contextlib.redirect_stdout(Tee()):
        run(args)
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(buffer.getvalue())


if __name__ == "__main__":
    main()
