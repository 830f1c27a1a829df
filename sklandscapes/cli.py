"""The ``sklandscapes`` command: reproduce the paper's experiments from a shell."""

import argparse
import sys
import warnings
from pathlib import Path

from sklandscapes import __version__, experiments
from sklandscapes.experiments._config import EXPERIMENTS, PRESETS, preset_values
from sklandscapes.experiments._folder import CONFIG_FILE

__all__ = ["main"]

_DESCRIPTION = """\
Activation landscapes: persistent homology of the activations of every layer
of neural networks, summarized as persistence landscapes (Wheeler, Bouza and
Bubenik, 2021). Trains networks, snapshots them at training-accuracy
thresholds, computes their activation landscapes, tests the differences between
thresholds and writes results.npz, figures and report.md to --out.
"""

_EPILOG = """\
examples:
  sklandscapes demo
  sklandscapes run synthetic --preset paper --n-jobs 2 --out paper-synthetic
  sklandscapes run digits --networks 10 --thresholds 0.5 0.9 0.99
  sklandscapes run synthetic --out run1 --resume      # continue an interrupted run
  sklandscapes run synthetic --backend dask --scheduler tcp://10.0.0.5:8786
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog="sklandscapes",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="the fast synthetic experiment, written to ./sklandscapes-out",
        description="Run the fast preset of the synthetic (nine disks) experiment "
        "and write its report. Run again, it continues the demo run already in "
        "--out and recomputes nothing stored there.",
    )
    _add_runtime_options(demo, default_out="sklandscapes-out")
    run = commands.add_parser(
        "run",
        help="run one experiment with chosen settings",
        description="Run the synthetic (nine disks) or digits experiment.",
    )
    _add_run_options(run)
    _add_runtime_options(run, default_out=None)
    return parser


def _add_run_options(run):
    """The experiment and its settings; the defaults are the presets'."""
    run.add_argument("experiment", choices=EXPERIMENTS)
    run.add_argument(
        "--preset",
        choices=PRESETS,
        default="fast",
        help="fast: minutes on 2 CPU cores; paper: the paper's scale (default: fast)",
    )
    run.add_argument(
        "--networks",
        type=int,
        metavar="N",
        help=f"number of networks (default: {_preset_values('n_networks')})",
    )
    run.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        metavar="ACC",
        help="training-accuracy thresholds in (0, 1], increasing",
    )
    run.add_argument(
        "--widths",
        type=int,
        nargs="+",
        metavar="W",
        help="layer widths, input and output included (e.g. 2 15 15 2)",
    )
    run.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        help="most training epochs per network; a network that has not reached a "
        "threshold by then has no snapshot there (default: the preset's, "
        f"{_preset_values('max_epochs')})",
    )
    run.add_argument(
        "--permutations",
        type=int,
        metavar="N",
        help="random relabelings per pair of thresholds in the permutation test, "
        "or all of them where there are fewer (2**networks); the smallest "
        "p-value of random ones is 1/(N+1) "
        f"(default: {_preset_values('n_permutations')})",
    )
    run.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help=f"random seed (default: {_preset_values('seed')})",
    )
    run.add_argument(
        "--monitor-every",
        type=int,
        metavar="N",
        help="watch topology during training: every N epochs, the topological "
        "complexity of every layer of every network on "
        f"{_preset_values('monitor_points')} points of the batch; the report "
        "draws it (dynamics.png) and keeps the curves (dynamics.npz) "
        "(default: off)",
    )
    run.add_argument(
        "--mnist",
        type=Path,
        metavar="PATH",
        help="digits: folder or file with local MNIST data (IDX or .npz)",
    )


def _preset_values(name):
    """A configuration field's value in every preset, for the help.

    One value where all presets agree; ``"2000 fast, 10000 paper"`` where
    the experiments agree; else ``"synthetic 200 fast / 400 paper, digits
    100 fast / 500 paper"``.
    """
    values = preset_values(name)
    if len(set(values.values())) == 1:
        return f"{next(iter(values.values()))}"
    per_preset = [{values[e, preset] for e in EXPERIMENTS} for preset in PRESETS]
    if all(len(agreed) == 1 for agreed in per_preset):
        return ", ".join(
            f"{next(iter(agreed))} {preset}"
            for agreed, preset in zip(per_preset, PRESETS)
        )
    return ", ".join(
        f"{experiment} "
        + " / ".join(f"{values[experiment, preset]} {preset}" for preset in PRESETS)
        for experiment in EXPERIMENTS
    )


def _add_runtime_options(parser, default_out):
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        metavar="DIR",
        help="output folder (default: "
        + (default_out or "sklandscapes-EXPERIMENT-PRESET")
        + ")",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run stored in --out"
    )
    parser.add_argument(
        "--force", action="store_true", help="start over even if --out holds a run"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        metavar="N",
        help="parallel jobs for persistence and the tests (default: -1, all cores)",
    )
    parser.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda (default: auto)"
    )
    parser.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="where the persistence stage runs: loky, on this machine in "
        "--n-jobs threads of this process (GUDHI releases the GIL); dask, on the "
        "Dask cluster at --scheduler, or on a local in-process cluster of "
        "--n-jobs workers (default: loky)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address (default with --backend dask: a local cluster)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv=None):
    """Entry point of the ``sklandscapes`` console script; returns the exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``sklandscapes``; ``None`` reads ``sys.argv``.

    Returns
    -------
    code : int
        0 on success, 2 for a user error (one line on stderr), 130 when
        interrupted (everything computed so far is kept for ``--resume``).

    Examples
    --------
    >>> from sklandscapes.cli import main
    >>> main(["run", "synthetic", "--thresholds", "0.9", "0.5"])
    2
    """
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
        out = args.out or Path(f"sklandscapes-{config.experiment}-{config.preset}")
        with warnings.catch_warnings():
            # A shell user gets warnings as one line, without our source line.
            warnings.showwarning = _show_warning
            result = experiments.run_experiment(
                config,
                out,
                resume=_resume(args, out),
                force=args.force,
                n_jobs=args.n_jobs,
                device=args.device,
                backend=args.backend,
                scheduler=args.scheduler,
                verbose=0 if args.quiet else 1,
            )
    except experiments.ExperimentError as exc:
        print(f"sklandscapes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "sklandscapes: interrupted; everything computed so far is kept, "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    print(f"Report: {result.out / 'report.md'}")
    print(f"Results: {result.out / 'results.npz'}")
    return 0


def _resume(args, out):
    """Whether to continue a run: asked for, or the demo's own earlier run."""
    demo_run = (Path(out) / CONFIG_FILE).exists()
    return args.resume or (args.command == "demo" and not args.force and demo_run)


def _config(args):
    """The configuration the arguments ask for, with the options checked."""
    if args.resume and args.force:
        raise experiments.ExperimentError(
            "--resume and --force exclude each other: --resume continues the "
            "run in --out, --force deletes it; pass one of them"
        )
    if args.command == "demo":
        config = experiments.make_config("synthetic", "fast")
    else:
        config = experiments.make_config(
            args.experiment,
            args.preset,
            n_networks=args.networks,
            thresholds=args.thresholds,
            widths=args.widths,
            max_epochs=args.max_epochs,
            n_permutations=args.permutations,
            seed=args.seed,
            monitor_every=args.monitor_every,
            mnist_path=None if args.mnist is None else str(args.mnist),
        )
    if args.scheduler and args.backend != "dask":
        raise experiments.ExperimentError("--scheduler needs --backend dask")
    return config


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"sklandscapes: warning: {message}", file=sys.stderr)


def main_exit():
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    main_exit()
