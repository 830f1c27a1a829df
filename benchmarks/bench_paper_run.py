"""The paper's synthetic preset end to end, measured: wall time, peak memory, stages.

Runs the README's paper command, ``sklandscapes run synthetic --preset paper``,
in a child process (so that its peak memory is its own), into a fresh folder,
and prints:

- the wall time from start to report, and the child's peak resident memory;
- the seconds of every stage as the run recorded them (``timings.json``), and
  what is left for the report and figures;
- the work the run did and the work it did not do again: clouds that went
  through Rips, input-layer clouds and same-epoch snapshots that were reused;
- the load average before and after, since other work on the machine would
  slow the run down.

The target (issue 13) is under 20 minutes on a 2-core machine. Run from the
repository root, on an otherwise idle machine::

    python benchmarks/bench_paper_run.py [--out DIR] [--n-jobs -1] [--keep]

``--networks-per-group`` trains the networks in groups of that size instead
of the preset's one batched run of all 100 (stage times of both settings can
then be compared side by side).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info


def run(out, n_jobs, networks_per_group):
    if networks_per_group is None:
        # The README's command, as a user types it.
        code = "import sys; from sklandscapes.cli import main_exit; main_exit()"
        arguments = ["run", "synthetic", "--preset", "paper", "--out", str(out)]
        arguments += ["--n-jobs", str(n_jobs), "--quiet"]
    else:
        code = (
            "import sys; from sklandscapes.experiments import make_config, "
            "run_experiment; run_experiment(make_config('synthetic', 'paper', "
            "networks_per_group=int(sys.argv[1])), sys.argv[2], "
            "n_jobs=int(sys.argv[3]), verbose=0)"
        )
        arguments = [str(networks_per_group), str(out), str(n_jobs)]
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code, *arguments], check=False)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return completed.returncode, wall, peak_kib * 1024


def report(out, wall, peak):
    calls = json.loads((Path(out) / "timings.json").read_text())["calls"]
    if len(calls) != 1:
        print(f"warning: {len(calls)} calls recorded; this benchmark expects one")
    call = calls[-1]
    stages = call["timings"]
    print(f"wall time, start to report: {wall:.0f} s ({wall / 60:.1f} min)")
    print(f"peak resident memory of the run: {peak / 2**30:.2f} GiB")
    print("stage seconds (as the run recorded them):")
    for stage, seconds in stages.items():
        print(f"  {stage:<12} {seconds:8.1f} s  {seconds / wall:6.1%}")
    rest = wall - sum(stages.values())
    if rest >= 0:
        print(f"  {'rest':<12} {rest:8.1f} s  {rest / wall:6.1%}  (report, figures)")
    else:
        print(
            "  the stages add up to more than the wall time: extraction and "
            "persistence ran during training too"
        )
    work = call.get("work", {})
    if work:
        config = json.loads((Path(out) / "config.json").read_text())
        n_layers = len(config["widths"])
        reused = work["input_reused"] + work["snapshot_reused"] * n_layers
        naive = work["clouds"] + reused
        print(
            f"samples stored: {work['samples']}; clouds through Rips: "
            f"{work['clouds']} of the {naive} that every sample on its own would "
            f"take ({1 - work['clouds'] / naive:.1%} fewer): "
            f"{work['input_reused']} input-layer clouds reused, "
            f"{work['snapshot_reused']} samples of same-epoch snapshots reused"
        )
        print(
            f"samples computed while the networks trained (second process): "
            f"{work.get('during_training', 0)}"
        )
        print(
            f"persistence per cloud computed: "
            f"{stages['persistence'] / work['clouds']:.3f} s (recorded seconds "
            "per cloud; the second process adds its own)"
        )
    target = 20 * 60
    verdict = "under" if wall < target else "OVER"
    print(f"target 20 min: {verdict} ({wall / target:.0%} of it)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--networks-per-group", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run folder")
    args = parser.parse_args()
    print(machine_info(["torch", "gudhi", "numpy", "scikit-learn"]))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "paper-synthetic"
    code, wall, peak = run(out, args.n_jobs, args.networks_per_group)
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if code != 0:
        print(f"the run failed with exit status {code}")
        sys.exit(1)
    report(out, wall, peak)
    if not args.keep and not args.out:
        shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
