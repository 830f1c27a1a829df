"""run_experiment: the stages in order, and what they return."""

import dataclasses
import numbers
import time
from pathlib import Path

import numpy as np

from sklandscapes.experiments import _compute, _folder, _report
from sklandscapes.experiments._config import (
    ExperimentConfig,
    ExperimentError,
    _check_config,
)
from sklandscapes.landscapes import LandscapeVectorizer
from sklandscapes.stats import PermutationTest, landscape_norms


@dataclasses.dataclass
class ExperimentResult:
    """What :func:`run_experiment` computed, also saved in ``results.npz``.

    Attributes
    ----------
    config : ExperimentConfig
    landscapes : ndarray of shape (n_samples, n_features)
        One landscape vector per (threshold, network, subsample).
    thresholds : ndarray of shape (n_samples,)
        The training threshold of each sample (the group label).
    networks : ndarray of shape (n_samples,)
        The network of each sample.
    shape : tuple of int
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)``.
    grid : ndarray of shape (n_bins,)
    norms : ndarray of shape (n_samples, n_layers)
        Topological complexity per layer.
    test : PermutationTest
        Fitted on the landscapes grouped by threshold.
    observations : dict
        The paper's three observations, checked with numbers.
    out : Path
        The output folder.
    timings : dict
        Seconds spent in this call on each stage: ``data``, ``training``,
        ``extraction``, ``persistence``, ``landscapes`` (with norms) and
        ``tests``. On resume, stages stored before are only loaded.

    Examples
    --------
    >>> import tempfile
    >>> from sklandscapes.experiments import make_config, run_experiment
    >>> config = make_config(
    ...     "synthetic", n_networks=2, widths=(2, 16, 16, 2), thresholds=(0.6, 0.7),
    ...     lr=1e-2, batch_size=64, max_epochs=40, spacing=0.05,
    ...     sublattice_step=2, resolution=51, n_permutations=99)
    >>> out = tempfile.mkdtemp()
    >>> result = run_experiment(config, out, verbose=0)
    >>> result.shape  # input + 2 hidden layers + logits, H1, 5 landscapes
    (4, 1, 5, 51)
    >>> result.norms.shape == (len(result.landscapes), 4)
    True
    >>> result.observations["input_h1_features"]  # the nine holes
    9
    """

    config: ExperimentConfig
    landscapes: np.ndarray
    thresholds: np.ndarray
    networks: np.ndarray
    shape: tuple
    grid: np.ndarray
    norms: np.ndarray
    test: PermutationTest
    observations: dict
    out: Path
    timings: dict


def run_experiment(
    config,
    out,
    *,
    resume=False,
    force=False,
    n_jobs=None,
    device="auto",
    backend="loky",
    scheduler=None,
    verbose=1,
):
    """Run an experiment end to end, storing everything in ``out``.

    Parameters
    ----------
    config : ExperimentConfig
        From :func:`make_config`.
    out : str or Path
        Output folder. Holds ``config.json``, ``training/`` (snapshots and
        log), ``diagrams/`` (one file per sample), ``results.npz``, the figures
        and ``report.md``.
    resume : bool, default=False
        Continue the run in ``out`` (same configuration), skipping every
        result already stored. A stored file that cannot be read back whole
        (truncated, empty, corrupted) is reported as a
        :class:`~sklandscapes.exceptions.DamagedFileWarning`, deleted and
        computed again; a damaged ``config.json`` is an
        :class:`ExperimentError`, because the configuration of the stored
        results is then unknown (``force=True`` starts over).
    force : bool, default=False
        Start over in ``out`` even if it holds another run; excludes
        ``resume``.
    n_jobs : int, default=None
        Jobs for the persistence stage and the permutation tests.
    device : str, default="auto"
        Torch device for training and extraction; ``"auto"`` is CUDA when
        available.
    backend : {"loky", "dask"}, default="loky"
        ``"dask"`` runs the persistence stage through joblib's Dask backend
        on the cluster at ``scheduler``, or on a local cluster.
    scheduler : str, default=None
        Address of a Dask scheduler.
    verbose : int, default=1
        Progress bars when > 0.

    Returns
    -------
    result : ExperimentResult

    Examples
    --------
    A tiny synthetic run (two small networks, two thresholds):

    >>> import tempfile
    >>> from sklandscapes.experiments import make_config, run_experiment
    >>> config = make_config(
    ...     "synthetic", n_networks=2, widths=(2, 16, 16, 2), thresholds=(0.6, 0.7),
    ...     lr=1e-2, batch_size=64, max_epochs=40, spacing=0.05,
    ...     sublattice_step=2, resolution=51, n_permutations=99)
    >>> out = tempfile.mkdtemp()
    >>> result = run_experiment(config, out, verbose=0)
    >>> sorted(p.name for p in result.out.iterdir() if p.suffix != ".png")
    ['config.json', 'diagrams', 'report.md', 'results.npz', 'training']
    >>> resumed = run_experiment(config, out, resume=True, verbose=0)  # loads all
    >>> bool((resumed.landscapes == result.landscapes).all())
    True
    """
    # Everything is checked before anything is computed or written.
    _check_config(config)
    _check_options(config, resume, force, n_jobs, device, backend, scheduler)
    _folder.check_out(out)
    out = _folder.prepare_out(out, config, resume, force)
    timings = dict.fromkeys(
        ("data", "training", "extraction", "persistence", "landscapes", "tests"), 0.0
    )
    clock = time.perf_counter()
    data = _compute.load_data(config)
    timings["data"] = time.perf_counter() - clock
    clock = time.perf_counter()
    training = _compute.train(config, data.X, data.y, out, device, verbose)
    timings["training"] = time.perf_counter() - clock
    if not training.reached.any():
        raise ExperimentError(
            "no network reached the first threshold "
            f"{config.thresholds[0]} within {config.max_epochs} epochs; raise "
            "max_epochs or lower the thresholds"
        )
    with _compute.backend(backend, scheduler, n_jobs):
        keys, diagrams = _compute.compute_diagrams(
            config, training, data.batches, out, n_jobs, device, verbose, timings
        )
    clock = time.perf_counter()
    layered = np.empty((len(diagrams),) + diagrams[0].shape, dtype=object)
    for i, sample in enumerate(diagrams):
        layered[i] = sample
    vectorizer = LandscapeVectorizer(
        n_landscapes=config.n_landscapes,
        sample_range=config.sample_range,
        resolution=config.resolution,
    )
    landscapes = vectorizer.fit_transform(layered)
    shape = vectorizer.shape_
    groups_of = np.asarray([config.thresholds[j] for j, _, _ in keys])
    networks = np.asarray([k for _, k, _ in keys])
    norms = landscape_norms(landscapes, shape, grid=vectorizer.grid_)
    timings["landscapes"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if len(np.unique(groups_of)) >= 2:
        test = PermutationTest(
            n_permutations=config.n_permutations,
            grid=vectorizer.grid_,
            random_state=config.seed,
            n_jobs=n_jobs,
            verbose=verbose,
        ).fit(landscapes, groups_of)
    else:
        raise ExperimentError(
            "fewer than two thresholds were reached by any network, so nothing "
            "can be compared; raise max_epochs or change the thresholds"
        )
    timings["tests"] = time.perf_counter() - clock
    observations = _compute.observations(config, diagrams, groups_of, norms, test)
    result = ExperimentResult(
        config=config,
        landscapes=landscapes,
        thresholds=groups_of,
        networks=networks,
        shape=shape,
        grid=vectorizer.grid_,
        norms=norms,
        test=test,
        observations=observations,
        out=out,
        timings=timings,
    )
    _report.save_results(result)
    _report.write_report(result, training, data)
    return result


def _check_options(config, resume, force, n_jobs, device, backend, scheduler):
    if resume and force:
        raise ExperimentError(
            "--resume and --force exclude each other: --resume continues the run "
            "in --out, --force deletes it; pass one of them"
        )
    if n_jobs is not None and (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, numbers.Integral)
        or not n_jobs
    ):
        raise ExperimentError(
            f"n_jobs must be a nonzero int (-1: all cores) or None, got {n_jobs!r}"
        )
    if backend not in ("loky", "dask"):
        raise ExperimentError(f"unknown backend {backend!r}; choose loky or dask")
    if scheduler is not None and backend != "dask":
        raise ExperimentError("--scheduler needs --backend dask")
    if config.mnist_path is not None and not Path(config.mnist_path).exists():
        raise ExperimentError(f"no MNIST data at {config.mnist_path!r}")
    _check_device(device)


def _check_device(device):
    import torch

    if isinstance(device, str) and device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ExperimentError(
            f"unknown device {device!r}; choose auto, cpu or cuda (cuda:N for the "
            "N-th GPU)"
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ExperimentError(
                f"device {device!r} needs CUDA, which torch {torch.__version__} does "
                "not see on this machine; use --device cpu (or auto)"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ExperimentError(
                f"device {device!r}: torch sees only {torch.cuda.device_count()} "
                "GPU(s), numbered from 0"
            )
        return
    if parsed.type == "mps" and torch.backends.mps.is_available():
        return
    raise ExperimentError(
        f"device {device!r} is not available here; choose auto, cpu or cuda"
    )
