"""The paper's two experiments as plain functions, resumable and scalable.

An experiment is described by an :class:`ExperimentConfig` (everything that
changes the results) and run by :func:`run_experiment` with runtime options
(jobs, device, Dask) that do not. Every expensive result is written to the
output folder as soon as it exists: the training snapshots and log, then the
persistence diagrams of every (threshold, network, input subsample). A run that
is interrupted continues with ``resume=True`` and recomputes nothing stored.

Stages: data -> train the networks at once with threshold snapshots ->
activations -> normalization -> Rips persistence -> landscapes -> averages per
(threshold, layer), norms per layer, the 2-D curve projection and pairwise
permutation tests across thresholds -> ``results.npz``, figures and a report.
"""

import contextlib
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.exceptions import SklandscapesWarning
from sklandscapes.landscapes import LandscapeVectorizer
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence
from sklandscapes.stats import (
    PermutationTest,
    landscape_curve_projection,
    landscape_norms,
)

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "ExperimentConfig",
    "ExperimentError",
    "ExperimentResult",
    "make_config",
    "run_experiment",
]

EXPERIMENTS = ("synthetic", "digits")
PRESETS = ("fast", "paper")

_CONFIG_FILE = "config.json"
_TRAINING_DIR = "training"
# How long to try reaching a Dask scheduler before giving up.
_SCHEDULER_TIMEOUT = "10s"
_DIAGRAMS_DIR = "diagrams"


class ExperimentError(Exception):
    """A problem with the user's request (configuration, folder, data, cluster).

    The command line prints its message on one line, without a traceback.

    Examples
    --------
    >>> from sklandscapes.experiments import ExperimentError, make_config
    >>> try:
    ...     make_config("synthetic", thresholds=(0.9, 0.5))
    ... except ExperimentError as error:
    ...     print(error)
    thresholds must be increasing training accuracies in (0, 1], got (0.9, 0.5)
    """


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's results.

    Use :func:`make_config` to start from a preset and change some fields.
    It is frozen and round-trips through JSON (``config.json`` in ``--out``).

    Parameters
    ----------
    experiment : {"synthetic", "digits"}
        ``"synthetic"``: the nine-disks lattice (paper III-A); ``"digits"``:
        handwritten digits (paper III-B), scikit-learn's 8 x 8 digits unless
        ``mnist_path`` points at local MNIST files.
    preset : {"fast", "paper"}
        The preset the configuration started from (recorded, not used).
    n_networks : int
        Networks trained, each from its own initial weights and data split.
    widths : tuple of int
        Architecture of the MLP, input and output included.
    thresholds : tuple of float
        Training-accuracy thresholds at which networks are snapshotted.
    lr, batch_size, max_epochs, test_size :
        Training with Adam, as in :func:`sklandscapes.nets.train_networks`.
    method : {"global", "local"}
        :class:`ActivationNormalizer` method; ``"local"`` also selects local
        homology in :class:`RipsPersistence`.
    homology_dimensions : tuple of int
        Homology dimensions of the diagrams.
    n_landscapes, resolution : int
        Landscape functions per diagram and grid points.
    sample_range : tuple of float
        Ends of the landscape grid.
    batch_class : int or None
        Synthetic data: only points of this class form the persistence batch
        (class 1, the complement of the nine disks, has the nine holes);
        ``None`` uses both classes.
    spacing : float or None
        Synthetic data: lattice spacing of
        :func:`~sklandscapes.datasets.make_nine_disks`; ``None`` gives the
        paper's 14,235 points.
    sublattice_step : int
        Synthetic data: the batch is every ``step``-th lattice point (training
        and test points alike).
    n_inputs : int
        Digits: size of each random input subsample.
    n_subsamples : int
        Digits: input subsamples per network (the paper's fourth parameter).
    networks_per_group : int
        Networks trained together in one batched run. Each finished group is
        stored at once, so an interrupted training resumes at the first
        unfinished group; group ``g`` is seeded from ``(seed, g)``, so the
        results depend on this value but not on interruptions.
    n_permutations : int
        Permutations of each pairwise test between thresholds.
    seed : int
        Seeds the data, the networks and the tests.
    mnist_path : str or None
        Digits: folder or file of local MNIST data (see
        :func:`sklandscapes.datasets.load_mnist`); ``None`` uses the 8 x 8
        digits that ship with scikit-learn.

    Examples
    --------
    >>> from sklandscapes.experiments import ExperimentConfig, make_config
    >>> config = make_config("digits", n_networks=4)
    >>> config.method, config.n_networks, config.widths
    ('local', 4, (64, 32, 32, 32, 10))
    >>> ExperimentConfig.from_dict(config.to_dict()) == config
    True
    """

    experiment: str
    preset: str
    n_networks: int
    widths: tuple
    thresholds: tuple
    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 200
    test_size: float = 0.2
    method: str = "global"
    homology_dimensions: tuple = (1,)
    n_landscapes: int = 5
    resolution: int = 201
    sample_range: tuple = (0.0, 1.0)
    batch_class: int = None
    spacing: float = None
    sublattice_step: int = 1
    n_inputs: int = 500
    n_subsamples: int = 1
    networks_per_group: int = 25
    n_permutations: int = 10_000
    seed: int = 0
    mnist_path: str = None

    def to_dict(self):
        """The configuration as plain JSON-compatible values."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        for name in ("widths", "thresholds", "homology_dimensions", "sample_range"):
            values[name] = tuple(values[name])
        return cls(**values)


_PRESETS = {
    ("synthetic", "fast"): dict(
        # The paper's network; a larger step size and smaller minibatches get
        # every network past 0.93 within 200 epochs (about a minute on 2 cores).
        n_networks=16,
        widths=(2,) + (15,) * 10 + (2,),
        thresholds=(0.75, 0.85, 0.93),
        lr=3e-3,
        batch_size=64,
        max_epochs=200,
        batch_class=1,
        sublattice_step=4,
        n_permutations=2_000,
    ),
    ("synthetic", "paper"): dict(
        n_networks=100,
        widths=(2,) + (15,) * 10 + (2,),
        thresholds=(0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999),
        max_epochs=1000,
        batch_class=1,
        sublattice_step=3,
        resolution=1001,
        n_permutations=10_000,
    ),
    ("digits", "fast"): dict(
        n_networks=6,
        widths=(64, 32, 32, 32, 10),
        thresholds=(0.5, 0.8, 0.95),
        max_epochs=100,
        method="local",
        sample_range=(0.0, 2.0),
        n_inputs=300,
        n_subsamples=2,
        n_permutations=2_000,
    ),
    ("digits", "paper"): dict(
        n_networks=30,
        widths=(64, 50, 50, 50, 50, 10),
        thresholds=(0.3, 0.5, 0.7, 0.9, 0.95, 0.99),
        max_epochs=500,
        method="local",
        sample_range=(0.0, 2.0),
        resolution=1001,
        n_inputs=500,
        n_subsamples=5,
        n_permutations=10_000,
    ),
}


def make_config(experiment, preset="fast", **overrides):
    """Configuration of a preset, with some fields changed.

    Parameters
    ----------
    experiment : {"synthetic", "digits"}
    preset : {"fast", "paper"}, default="fast"
        ``"fast"`` finishes in a few minutes on 2 CPU cores and still shows
        the paper's effects; ``"paper"`` is the paper's scale (100 networks for
        the synthetic data).
    **overrides
        Fields of :class:`ExperimentConfig` to change; ``None`` values are
        ignored, so command-line options can be passed through as they are.
        For ``"digits"``, a ``mnist_path`` without ``widths`` gives the preset's
        network with 784 inputs (28 x 28 MNIST images).

    Returns
    -------
    config : ExperimentConfig

    Examples
    --------
    >>> from sklandscapes.experiments import make_config
    >>> config = make_config("synthetic", n_networks=3)
    >>> config.n_networks, config.widths[:3], config.method
    (3, (2, 15, 15), 'global')
    """
    if experiment not in EXPERIMENTS:
        raise ExperimentError(
            f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}"
        )
    if preset not in PRESETS:
        raise ExperimentError(
            f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
        )
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ExperimentError(f"unknown configuration field(s): {', '.join(unknown)}")
    values = dict(_PRESETS[experiment, preset])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    mnist = experiment == "digits" and "mnist_path" in overrides
    if mnist and "widths" not in overrides:
        # MNIST images have 28 x 28 = 784 pixels, not the 8 x 8 of the digits.
        values["widths"] = (784,) + tuple(values["widths"][1:])
    values.update(overrides)
    for name in ("widths", "thresholds", "homology_dimensions", "sample_range"):
        if name in values:
            values[name] = tuple(values[name])
    config = ExperimentConfig(experiment=experiment, preset=preset, **values)
    _check_config(config)
    return config


def _check_config(config):
    thresholds = np.asarray(config.thresholds, dtype=float)
    if (
        thresholds.size == 0
        or (thresholds <= 0).any()
        or (thresholds > 1).any()
        or (np.diff(thresholds) <= 0).any()
    ):
        raise ExperimentError(
            "thresholds must be increasing training accuracies in (0, 1], got "
            f"{config.thresholds!r}"
        )
    if len(config.widths) < 2 or min(config.widths) < 1:
        raise ExperimentError(
            "widths must list at least two positive layer widths, got "
            f"{config.widths!r}"
        )
    if config.n_networks < 1:
        raise ExperimentError(f"n_networks must be at least 1, got {config.n_networks}")
    if config.networks_per_group < 1:
        raise ExperimentError(
            f"networks_per_group must be at least 1, got {config.networks_per_group}"
        )
    if config.method not in ("global", "local"):
        raise ExperimentError(
            f"method must be 'global' or 'local', got {config.method!r}"
        )


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


# --------------------------------------------------------------------------
# The output folder


def _prepare_out(out, config, resume, force):
    out = Path(out)
    config_path = out / _CONFIG_FILE
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"--out {str(out)!r} exists and is not a folder")
    if config_path.exists() and not force:
        stored = json.loads(config_path.read_text())
        if stored != config.to_dict():
            changed = sorted(
                k
                for k in set(stored) | set(config.to_dict())
                if stored.get(k) != config.to_dict().get(k)
            )
            raise ExperimentError(
                f"{str(out)!r} holds a run with another configuration (differs in "
                f"{', '.join(changed)}); choose another --out, or pass --force to "
                "start over there"
            )
        if not resume:
            raise ExperimentError(
                f"{str(out)!r} already holds a run of this configuration; pass "
                "--resume to continue it or --force to start over"
            )
    elif out.exists() and any(out.iterdir()) and not force:
        if not config_path.exists():
            raise ExperimentError(
                f"{str(out)!r} is not empty and holds no sklandscapes run; choose "
                "another --out or pass --force"
            )
    if force and out.exists():
        _clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_dict(), indent=2).encode()
    atomic_write(config_path, lambda handle: handle.write(text))
    return out


def _clear_run(out):
    """Remove what a previous run wrote (only our own files and folders)."""
    import shutil

    for name in (_TRAINING_DIR, _DIAGRAMS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for pattern in ("*.png", "*.npz", "*.md", _CONFIG_FILE):
        for path in out.glob(pattern):
            path.unlink()


# --------------------------------------------------------------------------
# Stages


@dataclasses.dataclass
class _Data:
    X: np.ndarray  # training inputs
    y: np.ndarray
    batches: list  # persistence batches, one per input subsample
    batch_labels: list


def _load_data(config):
    from sklandscapes import datasets

    rng = np.random.default_rng(config.seed)
    if config.experiment == "synthetic":
        X, y = datasets.make_nine_disks(config.spacing, random_state=config.seed)
        mask = datasets.sublattice_mask(
            X, config.sublattice_step, spacing=config.spacing
        )
        if config.batch_class is not None:
            mask &= y == config.batch_class
        return _Data(X.astype(np.float32), y, [X[mask].astype(np.float32)], [y[mask]])
    if config.mnist_path is not None:
        try:
            X_train, y_train, X_test, y_test = datasets.load_mnist(
                config.mnist_path, download_if_missing=False
            )
        except (OSError, ValueError) as exc:
            raise ExperimentError(str(exc).splitlines()[0]) from exc
        X_train, y_train = np.asarray(X_train), np.asarray(y_train)
        pool_X = np.concatenate([X_train, np.asarray(X_test)])
        pool_y = np.concatenate([y_train, np.asarray(y_test)])
        X, y = X_train, y_train
    else:
        X, y = datasets.load_digits()
        pool_X, pool_y = X, y
    if X.shape[1] != config.widths[0]:
        raise ExperimentError(
            f"the data have {X.shape[1]} features but widths starts with "
            f"{config.widths[0]}; set the first width to {X.shape[1]}"
        )
    if config.n_inputs > len(pool_X):
        raise ExperimentError(
            f"n_inputs={config.n_inputs} exceeds the {len(pool_X)} available inputs"
        )
    # Subsamples mix training and test images, as in the paper.
    subsets = [
        rng.choice(len(pool_X), config.n_inputs, replace=False)
        for _ in range(config.n_subsamples)
    ]
    batches = [pool_X[s].astype(np.float32) for s in subsets]
    return _Data(X.astype(np.float32), y, batches, [pool_y[s] for s in subsets])


def _train(config, X, y, out, device, verbose):
    """Train (or, on resume, reload) the networks, one stored group at a time.

    Snapshots are written as they are taken, and each finished group as a whole
    (``training/group<g>.pt``), so an interrupted run loses at most the group in
    progress.
    """
    import torch

    from sklandscapes.nets import train_networks

    size = config.networks_per_group
    groups = []
    for g, start in enumerate(range(0, config.n_networks, size)):
        path = out / _TRAINING_DIR / f"group{g:04d}.pt"
        if path.exists():
            groups.append(torch.load(path, weights_only=False))
            continue
        if verbose:
            print(
                f"training networks {start}-"
                f"{min(start + size, config.n_networks) - 1} of {config.n_networks}",
                file=sys.stderr,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("default", SklandscapesWarning)
            result = train_networks(
                X,
                y,
                min(size, config.n_networks - start),
                config.widths,
                config.thresholds,
                lr=config.lr,
                batch_size=config.batch_size,
                max_epochs=config.max_epochs,
                test_size=config.test_size,
                random_state=int(
                    np.random.SeedSequence([config.seed, g]).generate_state(1)[0]
                ),
                device=device,
                verbose=verbose,
                directory=out / _TRAINING_DIR / "snapshots" / f"group{g:04d}",
            )
        atomic_write(path, lambda handle, result=result: torch.save(result, handle))
        groups.append(result)
    result = _merge_training(groups)
    log = json.dumps(result.log, indent=1).encode()
    atomic_write(out / _TRAINING_DIR / "log.json", lambda handle: handle.write(log))
    return result


def _merge_training(groups):
    """One TrainingResult of consecutive groups of networks."""
    if len(groups) == 1:
        return groups[0]
    n_epochs = max(group.train_accuracy.shape[1] for group in groups)
    accuracy = np.full((sum(len(g.seeds) for g in groups), n_epochs), np.nan)
    start = 0
    for group in groups:
        stop = start + len(group.seeds)
        accuracy[start:stop, : group.train_accuracy.shape[1]] = group.train_accuracy
        start = stop

    def stack(name):
        return np.concatenate([getattr(group, name) for group in groups])

    first = groups[0]
    return dataclasses.replace(
        first,
        snapshots=[
            sum((g.snapshots[j] for g in groups), [])
            for j in range(len(first.thresholds))
        ],
        paths=[
            sum((g.paths[j] for g in groups), []) for j in range(len(first.thresholds))
        ],
        train_accuracy=accuracy,
        **{
            name: stack(name)
            for name in (
                "snapshot_epoch",
                "snapshot_train_accuracy",
                "snapshot_test_accuracy",
                "n_epochs_trained",
                "train_indices",
                "test_indices",
                "seeds",
            )
        },
    )


def _sample_keys(config, training):
    """(threshold index, network, subsample) of every sample, in a fixed order."""
    reached = training.reached
    return [
        (j, k, s)
        for j in range(len(config.thresholds))
        for k in range(config.n_networks)
        if reached[k, j]
        for s in range(config.n_subsamples)
    ]


def _diagram_path(out, key):
    j, k, s = key
    return out / _DIAGRAMS_DIR / f"threshold{j}_network{k:04d}_subsample{s}.npz"


def _save_diagrams(path, diagrams):
    arrays = {
        f"layer{layer}_dim{d}": diagrams[layer, d]
        for layer in range(diagrams.shape[0])
        for d in range(diagrams.shape[1])
    }
    arrays["shape"] = np.asarray(diagrams.shape)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def _load_diagrams(path):
    with np.load(path) as stored:
        shape = tuple(stored["shape"])
        diagrams = np.empty(shape, dtype=object)
        for layer, d in np.ndindex(*shape):
            diagrams[layer, d] = stored[f"layer{layer}_dim{d}"]
    return diagrams


def _compute_diagrams(config, training, batches, out, n_jobs, device, verbose, timings):
    """Diagrams of every sample, computed in chunks and stored as they come.

    Adds the seconds spent on extraction and on normalization + persistence
    to ``timings``.
    """
    from tqdm.auto import tqdm

    from sklandscapes.activations import ActivationExtractor

    keys = _sample_keys(config, training)
    todo = [key for key in keys if not _diagram_path(out, key).exists()]
    normalizer = ActivationNormalizer(method=config.method)
    rips = RipsPersistence(
        homology_dimensions=config.homology_dimensions,
        local=config.method == "local",
        n_jobs=n_jobs,
    )
    # A chunk is small enough to lose little on interruption and large enough
    # to keep every worker busy with (sample, layer) clouds.
    chunk = 4
    with tqdm(
        total=len(keys),
        initial=len(keys) - len(todo),
        disable=not verbose,
        desc="Persistence",
        unit="sample",
    ) as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            started = time.perf_counter()
            clouds = []
            for j, k, s in part:
                extractor = ActivationExtractor(inputs=batches[s], device=device)
                try:
                    clouds.append(extractor.transform([training.snapshots[j][k]])[0])
                except ValueError as exc:
                    raise ExperimentError(
                        f"network {k} at threshold {config.thresholds[j]}: {exc}"
                    ) from exc
            layered = np.empty((len(clouds), len(clouds[0])), dtype=object)
            for i, row in enumerate(clouds):
                layered[i] = row
            extracted = time.perf_counter()
            diagrams = rips.fit_transform(normalizer.fit_transform(layered))
            for key, sample in zip(part, diagrams):
                _save_diagrams(_diagram_path(out, key), sample)
            timings["extraction"] += extracted - started
            timings["persistence"] += time.perf_counter() - extracted
            bar.update(len(part))
    return keys, [_load_diagrams(_diagram_path(out, key)) for key in keys]


@contextlib.contextmanager
def _backend(backend, scheduler, n_jobs):
    """joblib's backend for the persistence stage: local processes/threads or Dask."""
    if backend == "loky":
        yield
        return
    if backend != "dask":
        raise ExperimentError(f"unknown backend {backend!r}; choose loky or dask")
    try:
        import joblib
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ExperimentError(
            "--backend dask needs dask.distributed: pip install 'sklandscapes[dask]'"
        ) from exc
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_jobs if n_jobs and n_jobs > 0 else None,
                    processes=False,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(
                    Client(scheduler, timeout=_SCHEDULER_TIMEOUT)
                )
            except (OSError, TimeoutError) as exc:
                raise ExperimentError(
                    f"cannot reach the Dask scheduler at {scheduler!r}: {exc}"
                ) from exc
        stack.enter_context(joblib.parallel_config(backend="dask"))
        del client
        yield


def _observations(config, diagrams, groups_of, norms, test):
    """The paper's three observations, with the numbers that support them."""
    # 1. Holes of the input found by the first layers: count the long H1 bars of
    # the input batch (layer 0), which does not depend on the network.
    h1 = (
        list(config.homology_dimensions).index(1)
        if 1 in config.homology_dimensions
        else 0
    )
    input_diagram = diagrams[0][0, h1]
    lengths = np.sort(input_diagram[:, 1] - input_diagram[:, 0])[::-1]
    lengths = lengths[np.isfinite(lengths)]
    # A bar is a feature when it is long compared with the sampling noise: a
    # gap of at least a factor 3 below the longest bars separates them.
    n_features = _count_long_bars(lengths)
    first_layers = norms[:, : max(2, norms.shape[1] // 4)].mean(axis=0)
    # 2. Complexity against depth, at the highest threshold some network reached.
    top = groups_of == np.max(test.groups_)
    mean_top = norms[top].mean(axis=0)
    increases = [int(layer) for layer in np.flatnonzero(np.diff(mean_top) > 0) + 1]
    # 3. Complexity against the training threshold.
    totals = [float(norms[groups_of == t].sum(axis=1).mean()) for t in test.groups_]
    significant = float(
        (test.pvalues_[np.triu_indices(len(test.groups_), 1)] < 0.05).mean()
    )
    return {
        "input_h1_features": int(n_features),
        "input_h1_longest_bars": [float(v) for v in lengths[: max(n_features, 1) + 2]],
        "first_layers_mean_norm": [float(v) for v in first_layers],
        "monotone_decreasing": not increases,
        "layers_where_complexity_increases": increases,
        "mean_total_norm_by_threshold": dict(zip(map(str, test.groups_), totals)),
        "share_of_significant_pairs": significant,
    }


def _count_long_bars(lengths):
    """Bars before the largest relative drop among the longest ones."""
    if len(lengths) == 0:
        return 0
    if len(lengths) == 1:
        return 1
    head = lengths[:50]
    ratios = head[:-1] / np.maximum(head[1:], np.finfo(float).tiny)
    return int(np.argmax(ratios)) + 1


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
        result already stored.
    force : bool, default=False
        Start over in ``out`` even if it holds another run.
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
    out = _prepare_out(out, config, resume, force)
    timings = dict.fromkeys(
        ("data", "training", "extraction", "persistence", "landscapes", "tests"), 0.0
    )
    clock = time.perf_counter()
    data = _load_data(config)
    timings["data"] = time.perf_counter() - clock
    clock = time.perf_counter()
    training = _train(config, data.X, data.y, out, device, verbose)
    timings["training"] = time.perf_counter() - clock
    if not training.reached.any():
        raise ExperimentError(
            "no network reached the first threshold "
            f"{config.thresholds[0]} within {config.max_epochs} epochs; raise "
            "max_epochs or lower the thresholds"
        )
    with _backend(backend, scheduler, n_jobs):
        keys, diagrams = _compute_diagrams(
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
    observations = _observations(config, diagrams, groups_of, norms, test)
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
    _save_results(result)
    _write_report(result, training, data)
    return result


def _save_results(result):
    arrays = dict(
        landscapes=result.landscapes,
        thresholds=result.thresholds,
        networks=result.networks,
        shape=np.asarray(result.shape),
        grid=result.grid,
        norms=result.norms,
        groups=result.test.groups_,
        pvalues=result.test.pvalues_,
        statistics=result.test.statistics_,
        config=np.asarray(json.dumps(result.config.to_dict())),
        observations=np.asarray(json.dumps(result.observations)),
        timings=np.asarray(json.dumps(result.timings)),
    )
    atomic_write(
        result.out / "results.npz", lambda handle: np.savez_compressed(handle, **arrays)
    )


def _write_report(result, training, data):
    from sklandscapes.activations import ActivationExtractor
    from sklandscapes.plotting import (
        plot_activations,
        plot_complexity,
        plot_landscape_curves,
        plot_landscapes,
        plot_pvalues,
    )

    out, config = result.out, result.config
    figures = {}
    last = len(config.thresholds) - 1
    reached_last = np.flatnonzero(training.reached[:, last])
    if len(reached_last):
        network = training.snapshots[last][reached_last[0]]
        extractor = ActivationExtractor(inputs=data.batches[0], device="cpu")
        activations = extractor.transform([network])[0]
        labels = data.batch_labels[0]
        n_layers = activations.shape[0]
        layers = sorted({0, 1, n_layers // 2, n_layers - 1})
        figures["activations"] = plot_activations(activations, labels, layers=layers)
    groups = result.test.groups_
    shown = sorted({groups[0], groups[len(groups) // 2], groups[-1]})
    figures["landscapes"] = plot_landscapes(
        result.landscapes,
        result.thresholds,
        result.shape,
        grid=result.grid,
        groups=shown,
    )
    projection = landscape_curve_projection(
        result.landscapes, result.thresholds, result.shape, grid=result.grid
    )
    figures["curves"] = plot_landscape_curves(projection)
    figures["complexity"] = plot_complexity(result.norms, result.thresholds)
    figures["pvalues"] = plot_pvalues(result.test)
    for name, fig in figures.items():
        atomic_write(
            out / f"{name}.png",
            lambda handle, f=fig: f.savefig(handle, format="png", dpi=110),
        )
    text = _report_text(result, figures, projection, training).encode()
    atomic_write(out / "report.md", lambda handle: handle.write(text))


def _report_text(result, figures, projection, training):
    config, obs, test = result.config, result.observations, result.test
    reached = training.reached.sum(axis=0)
    lines = [
        f"# Activation landscapes: {config.experiment} ({config.preset} preset)",
        "",
        f"{config.n_networks} networks of widths {list(config.widths)}, snapshotted at "
        f"training accuracies {list(config.thresholds)}; {config.method} "
        f"normalization, homology in degree(s) {list(config.homology_dimensions)}"
        + (" (local homology)" if config.method == "local" else "")
        + f"; {config.n_landscapes} landscapes on {config.resolution} grid points.",
        "",
        "Networks that reached each threshold within "
        f"{config.max_epochs} epochs: "
        + ", ".join(
            f"{t}: {n}/{config.n_networks}" for t, n in zip(config.thresholds, reached)
        )
        + ".",
        "",
        "## The paper's observations, checked",
        "",
    ]
    if config.experiment == "synthetic":
        lines.append(
            f"1. **Holes of the input.** The input batch has "
            f"{obs['input_h1_features']} long H1 bars (the nine-disks complement "
            "has nine holes); the first layers keep landscape norms "
            + ", ".join(f"{v:.3g}" for v in obs["first_layers_mean_norm"])
            + "."
        )
    else:
        lines.append(
            f"1. **Features of the input.** The input batch has "
            f"{obs['input_h1_features']} H1 bars that stand out; first-layer norms "
            + ", ".join(f"{v:.3g}" for v in obs["first_layers_mean_norm"])
            + "."
        )
    if obs["monotone_decreasing"]:
        lines.append(
            f"2. **Complexity across layers.** At threshold {np.max(test.groups_)} "
            "the mean norm decreases at every layer here (the paper reports it "
            "does not)."
        )
    else:
        lines.append(
            "2. **Complexity across layers is not monotonically decreasing**: at "
            f"threshold {np.max(test.groups_)} the mean norm increases at layer(s) "
            + ", ".join(map(str, obs["layers_where_complexity_increases"]))
            + "."
        )
    totals = obs["mean_total_norm_by_threshold"]
    lines.append(
        "3. **Complexity changes with training.** Mean total norm by threshold: "
        + ", ".join(f"{k}: {v:.3g}" for k, v in totals.items())
        + f"; {obs['share_of_significant_pairs']:.0%} of the pairs of thresholds "
        "differ at the 0.05 level."
    )
    lines += ["", "## Topological complexity per layer (mean landscape norm)", ""]
    n_layers = result.norms.shape[1]
    lines.append(
        "| threshold | " + " | ".join(f"layer {i}" for i in range(n_layers)) + " |"
    )
    lines.append("|---" * (n_layers + 1) + "|")
    for group in test.groups_:
        mean = result.norms[result.thresholds == group].mean(axis=0)
        lines.append(f"| {group} | " + " | ".join(f"{v:.3g}" for v in mean) + " |")
    lines += ["", f"## Permutation tests ({config.n_permutations} permutations)", ""]
    lines.append("| | " + " | ".join(str(g) for g in test.groups_) + " |")
    lines.append("|---" * (len(test.groups_) + 1) + "|")
    for i, group in enumerate(test.groups_):
        cells = [
            "—" if i == j else f"{test.pvalues_[i, j]:.3g}"
            for j in range(len(test.groups_))
        ]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    n_diagrams = len(result.thresholds) * result.shape[0] * result.shape[1]
    lines += [
        "",
        "## Where the time went (this call; stages stored earlier are only loaded)",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {secs:.1f} |" for stage, secs in result.timings.items()]
    lines.append(
        f"| persistence per diagram ({n_diagrams} diagrams) | "
        f"{result.timings['persistence'] / max(n_diagrams, 1):.3g} |"
    )
    lines += ["", "## Figures", ""]
    captions = {
        "activations": "Activations of some layers of one trained network (PCA).",
        "landscapes": "Average activation landscapes per threshold (rows) and layer.",
        "curves": "2-D projection of the activation landscape curves "
        f"(explained variance {projection.explained_variance_ratio.sum():.0%}).",
        "complexity": "Landscape norm per layer, one line per threshold.",
        "pvalues": "Pairwise permutation-test p-values between thresholds.",
    }
    for name in figures:
        lines += [f"![{captions[name]}]({name}.png)", "", captions[name], ""]
    return "\n".join(lines)
