"""Configuration of the experiments: the dataclass, the presets, their checks."""

import dataclasses
import json
import math
import numbers

import numpy as np

EXPERIMENTS = ("synthetic", "digits")
PRESETS = ("fast", "paper")


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
    n_landscapes : int or "auto"
        Landscape functions per diagram; ``"auto"``: as many as carry 99% of
        every layer's squared norm (see :class:`LandscapeVectorizer`).
    resolution : int
        Grid points of the landscapes.
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
        stored at once, and the group in training keeps a checkpoint every 10
        epochs, so an interrupted training resumes from its last checkpoint;
        group ``g`` is seeded from ``(seed, g)``, so the results depend on this
        value but not on interruptions.
    n_permutations : int
        Permutations of each pairwise test between thresholds.
    seed : int
        Seeds the data, the networks and the tests.
    mnist_path : str or None
        Digits: folder or file of local MNIST data (see
        :func:`sklandscapes.datasets.load_mnist`); ``None`` uses the 8 x 8
        digits that ship with scikit-learn.
    monitor_every : int or None
        Watch topology during training: every this many epochs, the exact
        topological complexity of every layer of every network still training,
        on ``monitor_points`` points of the first persistence batch (see
        :class:`sklandscapes.nets.TopologicalComplexity`). The report then
        draws ``dynamics.png`` and stores the curves in ``dynamics.npz``.
        ``None``: no monitoring.
    monitor_points : int
        Size of the monitor's batch: a seeded random subset of the first
        persistence batch (all of it when that is smaller).

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
    n_landscapes: int | str = 5
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
    monitor_every: int = None
    monitor_points: int = 200

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
        # The paper's network, with a larger step size and smaller minibatches
        # than the defaults, so that a short run reaches the highest threshold.
        # Batches of 32, not the paper preset's 64: so that every network of
        # the default seed reaches every threshold within max_epochs, and the
        # first run warns of nothing (docs/reproduce.rst has the epochs).
        n_networks=16,
        widths=(2,) + (15,) * 10 + (2,),
        thresholds=(0.75, 0.85, 0.93),
        lr=3e-3,
        batch_size=32,
        max_epochs=200,
        batch_class=1,
        sublattice_step=4,
        n_landscapes="auto",
        n_permutations=2_000,
    ),
    ("synthetic", "paper"): dict(
        n_networks=100,
        widths=(2,) + (15,) * 10 + (2,),
        # Every threshold is one that all networks reach. Above the majority
        # class's share (0.639), so that the first snapshot is not a network
        # that answers "majority class"; below 0.98, which these ten-layer
        # networks of width 15 reach only in part on the full lattice (the
        # counts are in docs/results.rst).
        thresholds=(0.7, 0.8, 0.9, 0.95, 0.97),
        lr=3e-3,
        batch_size=64,
        max_epochs=400,
        # One batched run of all 100: a batched step costs about the same for
        # 25 networks or 100 (it is overhead, not arithmetic), and each group
        # trains until its slowest network is done (docs/results.rst).
        networks_per_group=100,
        batch_class=1,
        sublattice_step=3,
        n_landscapes="auto",
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
        n_landscapes="auto",
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
        n_landscapes="auto",
        resolution=1001,
        n_inputs=500,
        n_subsamples=5,
        n_permutations=10_000,
    ),
}


def preset_values(name):
    """The value of configuration field ``name`` in every preset.

    Returns a dict keyed by ``(experiment, preset)``, for text that states
    the presets' defaults (the command's help).
    """
    default = next(
        field.default
        for field in dataclasses.fields(ExperimentConfig)
        if field.name == name
    )
    return {
        (experiment, preset): _PRESETS[experiment, preset].get(name, default)
        for experiment in EXPERIMENTS
        for preset in PRESETS
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


# (features, classes) of each experiment's data, to check widths against them.
_DATA_SHAPES = {"synthetic": (2, 2), "digits": (64, 10), "mnist": (784, 10)}


def _check_int(config, name, minimum):
    value = getattr(config, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ExperimentError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_config(config):
    """Every field, before any work: a refused run has written nothing."""
    if config.experiment not in EXPERIMENTS:
        raise ExperimentError(
            f"unknown experiment {config.experiment!r}; choose one of "
            f"{', '.join(EXPERIMENTS)}"
        )
    _check_counts(config)
    _check_training(config)
    _check_thresholds(config)
    _check_widths(config)
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


def _check_counts(config):
    """The integer fields, each with its smallest value."""
    for name, minimum in (
        ("max_epochs", 1),
        ("batch_size", 1),
        ("n_permutations", 1),
        ("resolution", 2),
        ("sublattice_step", 1),
        ("n_inputs", 1),
        ("n_subsamples", 1),
        ("seed", 0),
        ("monitor_points", 1),
    ):
        _check_int(config, name, minimum)
    if config.monitor_every is not None:
        _check_int(config, "monitor_every", 1)
    if config.n_landscapes != "auto":
        _check_int(config, "n_landscapes", 1)


def _check_training(config):
    """Step size and test share."""
    if not (
        isinstance(config.lr, numbers.Real)
        and not isinstance(config.lr, bool)
        and math.isfinite(config.lr)
        and config.lr > 0
    ):
        raise ExperimentError(f"lr must be a positive number, got {config.lr!r}")
    if not (
        isinstance(config.test_size, numbers.Real)
        and not isinstance(config.test_size, bool)
        and 0 <= config.test_size < 1
    ):
        raise ExperimentError(
            f"test_size must be a fraction in [0, 1), got {config.test_size!r}"
        )


def _check_thresholds(config):
    """Increasing training accuracies in (0, 1]."""
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


def _check_widths(config):
    """Widths, and their ends against the data's features and classes."""
    if (
        len(config.widths) < 2
        or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool)
            for w in config.widths
        )
        or min(config.widths) < 1
    ):
        raise ExperimentError(
            "widths must list at least two positive layer widths, got "
            f"{config.widths!r}"
        )
    data = "mnist" if config.experiment == "digits" and config.mnist_path else None
    n_features, n_classes = _DATA_SHAPES[data or config.experiment]
    name = "MNIST images" if data else f"the {config.experiment} data"
    if config.widths[0] != n_features:
        raise ExperimentError(
            f"widths={config.widths!r} starts with {config.widths[0]}, but {name} "
            f"have {n_features} features; set the first width to {n_features}"
        )
    if config.widths[-1] < n_classes:
        raise ExperimentError(
            f"widths={config.widths!r} ends with {config.widths[-1]} outputs, but "
            f"{name} have {n_classes} classes; set the last width to {n_classes}"
        )
