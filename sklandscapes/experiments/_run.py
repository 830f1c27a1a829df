"""run_experiment: the stages in order, and what they return."""

import contextlib
import dataclasses
import numbers
import time
from pathlib import Path

import numpy as np
from joblib import effective_n_jobs

from sklandscapes._devices import check_device
from sklandscapes.experiments import (
    _background,
    _data,
    _diagrams,
    _folder,
    _observations,
    _report,
    _training,
    _vectors,
)
from sklandscapes.experiments._config import (
    ExperimentConfig,
    ExperimentError,
    _check_config,
)
from sklandscapes.landscapes import LandscapeVectorizer, all_levels_grid_squares
from sklandscapes.stats import PermutationTest, topological_complexity


@dataclasses.dataclass
class ExperimentResult:
    """What :func:`run_experiment` computed, also saved in ``results.npz``.

    Attributes
    ----------
    config : ExperimentConfig
    landscapes : numpy.memmap of shape (n_samples, n_features)
        One landscape vector per (threshold, network, subsample): a
        read-only memory map of the file ``landscapes.npy`` in ``out``
        (``mmap_mode="r"``), read from disk as it is used. It keeps the file
        open while it (or an array taken from it) lives: on Windows, a
        later run on ``out`` that must delete the file (``force=True``, or
        ``resume=True`` finding it damaged) raises an
        :class:`ExperimentError` naming it until it is released
        (``del result``, or ``del result.landscapes``).
    thresholds : ndarray of shape (n_samples,)
        The training threshold of each sample (the group label).
    networks : ndarray of shape (n_samples,)
        The network of each sample.
    shape : tuple of int
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)``.
    grid : ndarray of shape (n_bins,)
    norms : ndarray of shape (n_samples, n_layers)
        Topological complexity per layer, exact (all landscape levels, from
        the pairs: :func:`~sklandscapes.stats.topological_complexity`).
    test : PermutationTest
        Fitted on the landscapes grouped by threshold, with the network as
        the unit (``groups=networks``): a network's subsamples are averaged,
        its snapshots paired across thresholds. Thresholds that fewer than 2
        networks reached are not tested.
    observations : dict
        The paper's three observations, checked with numbers.
    out : Path
        The output folder.
    timings : dict
        Seconds spent in this call on each stage: ``data``, ``training``,
        ``extraction``, ``persistence``, ``landscapes`` (with norms) and
        ``tests``. On resume, stages stored before are only loaded.
    timing_history : list of dict
        Every call on this run folder, first one first: its ``timings`` and
        the number of diagrams it computed (``timings.json`` in ``out``).
    paper_test : PermutationTest
        The paper's test on the same samples: every sample relabelled on its
        own, as if independent (whole vectors only), for comparison. Fitted
        on the Gram matrix of the samples (``kernel="precomputed"``),
        computed in blocks from the stored landscapes.
    mean_landscapes : ndarray of shape (n_thresholds, n_features)
        The mean landscape vector of each threshold (``np.unique(thresholds)``
        order) over all its samples, as
        :func:`~sklandscapes.stats.mean_landscapes` gives it.

    Examples
    --------
    >>> import tempfile
    >>> from sklandscapes.experiments import make_config, run_experiment
    >>> config = make_config(
    ...     "synthetic", n_networks=2, widths=(2, 16, 16, 2), thresholds=(0.6, 0.7),
    ...     lr=1e-2, batch_size=64, max_epochs=40, spacing=0.05,
    ...     sublattice_step=2, n_landscapes=5, resolution=51, n_permutations=99)
    >>> out = tempfile.mkdtemp()
    >>> result = run_experiment(config, out, verbose=0)
    >>> result.shape  # input + 2 hidden layers + logits, H1, 5 landscapes
    (4, 1, 5, 51)
    >>> result.norms.shape == (len(result.landscapes), 4)
    True
    >>> result.observations["holes"]["mean"][0]  # the input batch's nine holes
    9.0
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
    timing_history: list = dataclasses.field(default_factory=list)
    paper_test: PermutationTest = None
    mean_landscapes: np.ndarray = None


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
        log), ``diagrams/`` (one file per sample), ``landscapes.npy`` (one
        landscape vector per sample, written chunk by chunk) with
        ``landscapes.crc.json`` (the CRC-32 of each chunk, checked whenever
        the file is reused or loaded), ``results.npz`` (everything else
        computed; :func:`load_results` reads both), the figures,
        ``report.md`` and ``timings.json`` (the stage timings of every call).
        A run locks ``run.lock`` there for its whole life: a second run on
        the same folder, in any process, is an :class:`ExperimentError` naming
        the first one's process id. The lock ends with its process, however
        that ends, so a killed run does not block the next one.
    resume : bool, default=False
        Continue the run in ``out`` (same configuration), skipping every
        result already stored. A stored file that cannot be read back whole
        (truncated, empty, corrupted) is reported as a
        :class:`~sklandscapes.exceptions.DamagedFileWarning`, deleted and
        computed again; a damaged ``config.json`` is an
        :class:`ExperimentError`, because the configuration of the stored
        results is then unknown (``force=True`` starts over). An ``out``
        that holds no run (no ``config.json``) is an :class:`ExperimentError`:
        there is nothing to resume.
    force : bool, default=False
        Start over in ``out`` even if it holds another run; excludes
        ``resume``.
    n_jobs : int, default=None
        Jobs for the persistence stage and the permutation tests. With two or
        more (and ``backend="loky"``), a second process computes the
        diagrams of the snapshots already taken while the networks train, on
        the core the training (one torch thread) leaves free; the results do
        not change.
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
    ...     sublattice_step=2, n_landscapes=5, resolution=51, n_permutations=99)
    >>> out = tempfile.mkdtemp()
    >>> result = run_experiment(config, out, verbose=0)
    >>> sorted(p.name for p in result.out.iterdir() if p.suffix not in (".png", ".md"))
    ... # doctest: +NORMALIZE_WHITESPACE
    ['config.json', 'diagrams', 'landscapes.crc.json', 'landscapes.npy',
     'results.npz', 'run.lock', 'timings.json', 'training']
    >>> resumed = run_experiment(config, out, resume=True, verbose=0)  # loads all
    >>> bool((resumed.landscapes == result.landscapes).all())
    True
    """
    # Everything is checked before anything is computed or written.
    _check_config(config)
    _check_options(config, resume, force, n_jobs, device, backend, scheduler)
    _folder.check_out(out, resume)
    _folder.check_folder(out, config, resume, force)
    # One run at a time on a folder: a second would write the same files.
    with _folder.locked(out) as out:
        _folder.prepare_out(out, config, resume, force)
        return _run(config, out, n_jobs, device, backend, scheduler, verbose)


def _run(config, out, n_jobs, device, backend, scheduler, verbose):
    """The stages, in the prepared and locked folder ``out``."""
    costs = _Costs(out)
    try:
        with costs.stage("data"):
            data = _data.load_data(config)
        training = _train(config, data, out, costs, n_jobs, device, backend, verbose)
        with _diagrams.backend(backend, scheduler, n_jobs):
            computed = _diagrams.compute_diagrams(
                config,
                training,
                batches=data.batches,
                out=out,
                n_jobs=n_jobs,
                device=device,
                verbose=verbose,
                per_sample=backend == "loky",
            )
        costs.add(computed.work)
        features, test, paper_test, observations = _analyse(
            config, computed, training, data, costs, n_jobs, verbose, out
        )
    except BaseException as exc:
        # An interrupted call's costs stay in the history of the folder.
        costs.add(_diagrams.work_before(exc))
        costs.record()
        raise
    calls = costs.record()
    result = ExperimentResult(
        config=config,
        landscapes=_vectors.open_landscapes(features.path),
        thresholds=features.thresholds,
        networks=features.networks,
        shape=features.vectorizer.shape_,
        grid=features.vectorizer.grid_,
        norms=features.norms,
        test=test,
        observations=observations,
        out=out,
        timings=costs.timings,
        timing_history=calls,
        paper_test=paper_test,
        mean_landscapes=features.summaries.means,
    )
    _report.save_results(result)
    _report.write_report(result, training, data)
    return result


def _analyse(config, computed, training, data, costs, n_jobs, verbose, out):
    """Landscapes, the tests between thresholds and the paper's observations."""
    with costs.stage("landscapes"):
        features = _landscapes(config, computed.keys, computed.diagrams, out)
    with costs.stage("tests"):
        test, paper_test = _tests(config, features, n_jobs, verbose)
    observations = _observations.observations(
        config,
        computed.diagrams,
        computed.keys,
        training,
        features.norms,
        test,
        paper_test,
    )
    observations["grid"] = features.grid
    if config.experiment == "digits":
        observations["rays"] = _rays(config, training, data, observations)
    return features, test, paper_test, observations


# The stages timed in timings.json, in the report's order.
_STAGES = ("data", "training", "extraction", "persistence", "landscapes", "tests")


class _Costs:
    """What this call spends: seconds per stage and the diagram work.

    ``timings.json`` keeps them (:meth:`record`), with the number of diagrams
    stored in this call, also for a call that is interrupted.
    """

    def __init__(self, out):
        self.out = out
        self.timings = dict.fromkeys(_STAGES, 0.0)
        self.work = {}
        self.stored_before = _folder.count_diagrams(out)

    @contextlib.contextmanager
    def stage(self, name):
        """Time the block as stage ``name``, also when it is interrupted.

        An interrupted call's seconds are spent all the same: the report's
        "all calls" column counts them.
        """
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - clock

    def add(self, work):
        """Add a :class:`~sklandscapes.experiments._diagrams.DiagramWork`."""
        self.timings, self.work = _diagrams.add_work(self.timings, self.work, work)

    def record(self):
        """Append this call to ``timings.json``; return every call's costs."""
        computed = _folder.count_diagrams(self.out) - self.stored_before
        return _folder.record_timings(self.out, self.timings, computed, self.work)


def _train(config, data, out, costs, n_jobs, device, backend, verbose):
    """Train the networks; with a spare core, compute diagrams meanwhile.

    Training takes one core: a second one computes the diagrams of the
    snapshots taken so far (local runs only; the results are the same).
    """
    spare = backend == "loky" and effective_n_jobs(n_jobs) >= 2
    during = (
        _background.diagrams_during_training(
            config, data.batches, out, device=device, verbose=verbose
        )
        if spare
        else contextlib.nullcontext()
    )
    with costs.stage("training"):
        background = None
        try:
            with during as background:
                training = _training.train(
                    config, data.X, data.y, out, device, verbose, data.batches[0]
                )
        finally:
            if background is not None:
                costs.add(background)
    if not training.reached.any():
        raise ExperimentError(
            "no network reached the first threshold "
            f"{config.thresholds[0]} within {config.max_epochs} epochs; raise "
            "max_epochs or lower the thresholds"
        )
    return training


@dataclasses.dataclass
class _Features:
    """The stored landscape vectors of the samples and what is measured on them."""

    path: Path
    vectorizer: LandscapeVectorizer
    thresholds: np.ndarray
    networks: np.ndarray
    norms: np.ndarray
    summaries: _vectors.Summaries
    grid: dict


def _landscapes(config, keys, diagrams, out):
    """Landscape vectors stored in chunks, their means, exact complexities and
    grid diagnostics; the whole matrix of vectors is never in memory."""
    layered = np.empty((len(diagrams),) + diagrams[0].shape, dtype=object)
    for i, sample in enumerate(diagrams):
        layered[i] = sample
    vectorizer = LandscapeVectorizer(
        n_landscapes=config.n_landscapes,
        sample_range=config.sample_range,
        resolution=config.resolution,
    ).fit(layered)
    path = _vectors.store_landscapes(out, vectorizer, layered)
    thresholds = np.asarray([config.thresholds[j] for j, _, _ in keys])
    networks = np.asarray([k for _, k, _ in keys])
    summaries = _vectors.summaries(
        path, thresholds, networks, vectorizer.shape_, vectorizer.grid_
    )
    # Complexity from the closed form: deep layers have bars narrower than
    # the grid step, where the grid's norms are quadrature noise.
    norms = topological_complexity(layered, config.sample_range)
    return _Features(
        path=path,
        vectorizer=vectorizer,
        thresholds=thresholds,
        networks=networks,
        norms=norms,
        summaries=summaries,
        grid=_grid_diagnostics(layered, summaries.kept_norms, vectorizer, norms),
    )


def _tests(config, features, n_jobs, verbose):
    """Table I with the network as the unit, and the paper's test beside it.

    Both test the thresholds that at least 2 networks reached (a paired test
    needs 2 networks with both snapshots; a network that reached a threshold
    reached every lower one). The first needs only the mean of every
    (threshold, network), the second the Gram matrix of the samples: neither
    the landscape vectors themselves.
    """
    thresholds, networks = features.thresholds, features.networks
    reached_by = {
        t: len(np.unique(networks[thresholds == t])) for t in np.unique(thresholds)
    }
    tested = [t for t, count in reached_by.items() if count >= 2]
    if len(tested) < 2:
        raise ExperimentError(
            "fewer than two thresholds were reached by at least two networks, so "
            "nothing can be compared; raise max_epochs or change the thresholds"
        )
    common = dict(
        n_permutations=config.n_permutations,
        random_state=config.seed,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    grid = features.vectorizer.grid_
    # Per-layer tests on the same relabelings; the whole-vector results do
    # not depend on it. The cell means give the test on the samples bit for
    # bit: it averages a cell's replicates first anyway.
    cells = features.summaries.cells
    kept = np.isin(cells.labels, tested)
    if kept.all():
        # A view, not a copy: without replicates (the synthetic presets) the
        # cell means are as large as all the landscapes.
        kept = slice(None)
    test = PermutationTest(n_layers=features.vectorizer.shape_[0], grid=grid, **common)
    test.fit(
        features.summaries.cell_means[kept],
        cells.labels[kept],
        groups=cells.units[kept],
        n_replicates=cells.counts[kept],
    )
    rows = np.isin(thresholds, tested)
    gram = _vectors.gram_matrix(features.path, grid, samples=rows)
    paper_test = PermutationTest(kernel="precomputed", **common)
    paper_test.fit(gram, thresholds[rows])
    return test, paper_test


# A layer whose grid norm (all levels, trapezoid rule) is off the exact one by
# more than this share has bars that the grid cannot resolve.
_RESOLUTION_RTOL = 0.1


def _grid_diagnostics(layered, kept, vectorizer, norms):
    """Per layer: the share of the norm the kept levels carry, and resolution.

    ``kept_share``: squared norm of the kept levels on the grid over that of
    all levels on the grid (summed over samples and homology dimensions).
    ``grid_over_exact``: squared norm of all levels on the grid over the exact
    one; far from 1 where bars are narrower than the grid step. ``kept``:
    the grid norms of the kept levels, per sample and layer.
    """
    squares = all_levels_grid_squares(list(layered.ravel()), vectorizer.grid_)
    all_levels = squares.reshape(layered.shape).sum(axis=(0, 2))
    kept_squares = (kept**2).sum(axis=0)
    exact_squares = (norms**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kept_share = np.where(all_levels > 0, kept_squares / all_levels, 1.0)
        ratio = np.where(exact_squares > 0, all_levels / exact_squares, 1.0)
    return {
        "n_landscapes": int(vectorizer.n_landscapes_),
        "kept_share": [float(v) for v in kept_share],
        "grid_over_exact": [float(v) for v in ratio],
        "unresolved_layers": [
            int(i) for i in np.flatnonzero(np.abs(ratio - 1) > _RESOLUTION_RTOL)
        ],
    }


def _rays(config, training, data, observations):
    """Observation 5 (digits): classes on rays, per layer, with a baseline."""
    from sklandscapes.activations import ActivationExtractor

    well = observations["well_reached_thresholds"]
    j = config.thresholds.index(well[-1]) if well else len(config.thresholds) - 1
    nets = [net for net in training.snapshots[j] if net is not None]
    clouds = ActivationExtractor(inputs=data.batches[0], device="cpu").transform(nets)
    scores, baselines = zip(
        *(
            _observations.ray_alignment(row, data.batch_labels[0], config.seed)
            for row in clouds
        )
    )
    return {
        "threshold": float(config.thresholds[j]),
        "n_networks": len(nets),
        "alignment": [float(v) for v in np.mean(scores, axis=0)],
        "shuffled": [float(v) for v in np.mean(baselines, axis=0)],
    }


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
    try:
        check_device(device, name="--device")
    except ValueError as error:
        raise ExperimentError(str(error).rstrip(".")) from None
