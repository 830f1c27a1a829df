"""Topology watched during training: per-layer complexity at every few epochs.

One computation serves both the skorch callback and ``train_networks``'s
``monitor=``: the pipeline's own estimators (``ActivationExtractor`` ->
``ActivationNormalizer`` -> ``RipsPersistence`` [-> ``LandscapeVectorizer``])
and :func:`~sklandscapes.stats.topological_complexity` on their diagrams.
"""

import dataclasses
import hashlib
import inspect
import numbers

import numpy as np
from skorch.callbacks import Callback, PrintLog

from sklandscapes._validation import check_count
from sklandscapes.activations import (
    ActivationExtractor,
    activation_layers,
    paper_centering,
)
from sklandscapes.landscapes import LandscapeVectorizer
from sklandscapes.nets._threads import torch_threads
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence
from sklandscapes.stats import topological_complexity

__all__ = ["TopologicalComplexity", "TopologyRecord", "history_complexity"]

_METHODS = ("global", "local")
# The history key of the record of the untrained network is its record's key
# with this suffix, in the row of the first epoch (a history has no row 0).
INITIAL_SUFFIX = "_epoch0"


class TopologicalComplexity(Callback):
    """skorch callback: per-layer topological complexity every few epochs.

    After every ``every``-th epoch it runs the network on the fixed batch
    ``inputs`` through the pipeline's own estimators,
    ``ActivationExtractor -> ActivationNormalizer -> RipsPersistence``, and
    records :func:`~sklandscapes.stats.topological_complexity` of every layer
    (the exact norm of all its landscapes) in ``net.history`` under ``name``,
    as a list of floats, one per layer. With ``n_landscapes`` set it also
    records the landscape vectors (``LandscapeVectorizer``) under
    ``name + "_landscapes"``. The records live in the history, so they are
    pickled, saved (``net.save_params(f_history=...)``) and continued by
    ``partial_fit`` with the net; epochs are skorch's, counted from 1, so a
    resumed fit keeps the schedule.

    The network before its first epoch is measured too, as epoch 0: skorch's
    history has one row per epoch and none before the first, so that record
    is kept in the first epoch's row under ``name + "_epoch0"`` (and
    ``name + "_landscapes_epoch0"``); :func:`history_complexity` returns it
    first. The records stay out of skorch's printed table (``verbose=1``),
    which would show every layer's value in every row: the callback adds
    its keys to the ``keys_ignored`` of the net's ``PrintLog`` when training
    begins. They are in ``net.history`` all the same.

    The measurement runs inside :func:`~sklandscapes.nets.torch_threads`:
    one torch thread unless you chose a count.

    The same object, passed as ``monitor=`` to
    :func:`~sklandscapes.nets.train_networks`, watches every network of a
    batched run.

    Parameters
    ----------
    inputs : array-like or torch.Tensor of shape (n_points, ...)
        The fixed batch, as for :class:`~sklandscapes.ActivationExtractor`.
        Its size sets the cost: Rips persistence of every layer's cloud.
    every : int, default=1
        Record after epochs ``every``, ``2 * every``, ...
    layers : "auto" or list of str and int, default="auto"
        As for :class:`~sklandscapes.ActivationExtractor`; ``"auto"`` takes
        the output of every nonlinearity after an affine layer (``Linear`` or
        convolution), then the logits.
    include_input : bool, default=True
        Layer 0 is the batch itself (the paper's x^(0)); it does not change
        during training.
    method : {"global", "local"}, default="global"
        :class:`~sklandscapes.ActivationNormalizer` method; ``"local"`` also
        selects local homology in :class:`~sklandscapes.RipsPersistence` and
        centers the layers that are not ReLU outputs (the paper's rule,
        :func:`~sklandscapes.relu_layers`).
    homology_dimensions : tuple of int, default=(1,)
        Homology dimensions of the diagrams; the complexity sums over them.
    sample_range : (float, float), default=(0.0, 1.0)
        Interval of the landscapes (an infinite death is truncated at its
        end); ``(0.0, 2.0)`` suits ``method="local"``, as in the experiments.
    n_landscapes : int or None, default=None
        Also record the first ``n_landscapes`` landscapes of every diagram on
        a grid of ``resolution`` points of ``sample_range``; ``None`` records
        the complexity only.
    resolution : int, default=101
        Grid points of the recorded landscapes.
    device : str, default="auto"
        Where the forward pass runs, as for the extractor.
    n_jobs : int, default=None
        Number of jobs to run in parallel. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context. ``-1`` means using all
        processors. Passed to :class:`~sklandscapes.RipsPersistence`
        (threads over the layers' clouds).
    name : str, default="topological_complexity"
        The history key.

    Attributes
    ----------
    layer_names_ : list of str
        The name of each recorded layer (``"input"`` first when
        ``include_input``), set at the first record.

    See Also
    --------
    history_complexity : The records of a history as arrays.
    sklandscapes.plotting.plot_training_complexity : Their figure.

    Notes
    -----
    Place it before an :class:`AccuracyThresholdSnapshots` callback, which
    stops training by raising from its own ``on_epoch_end``: callbacks after
    it do not see the last epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import TopologicalComplexity, make_mlp_classifier
    >>> angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    >>> X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> monitor = TopologicalComplexity(X, every=2)
    >>> net = make_mlp_classifier((2, 8, 8, 2), max_epochs=4, train_split=None,
    ...                           random_state=0, verbose=0, device="cpu",
    ...                           callbacks=[monitor]).fit(X, y)
    >>> epochs, complexity = history_complexity(net.history)
    >>> epochs.tolist(), complexity.shape, monitor.layer_names_
    ([0, 2, 4], (3, 4), ['input', 'layers.1', 'layers.3', 'layers.4'])
    >>> round(float(complexity[0, 0]), 4)  # the input: a circle, one H1 bar
    0.2114

    That bar, on the circle normalized to diameter 1, is born at the chord of
    one step and dies at the chord of 14 steps of the 40:

    >>> h = (np.sin(14 * np.pi / 40) - np.sin(np.pi / 40)) / 2
    >>> round(float(np.sqrt(2 * h**3 / 3)), 4)
    0.2114
    """

    def __init__(
        self,
        inputs,
        every=1,
        layers="auto",
        include_input=True,
        method="global",
        homology_dimensions=(1,),
        sample_range=(0.0, 1.0),
        n_landscapes=None,
        resolution=101,
        device="auto",
        n_jobs=None,
        name="topological_complexity",
    ):
        self.inputs = inputs
        self.every = every
        self.layers = layers
        self.include_input = include_input
        self.method = method
        self.homology_dimensions = homology_dimensions
        self.sample_range = sample_range
        self.n_landscapes = n_landscapes
        self.resolution = resolution
        self.device = device
        self.n_jobs = n_jobs
        self.name = name

    def initialize(self):
        check_monitor(self)
        self.layer_names_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        # PrintLog has no hook for a callback's keys; its fitted set of keys
        # to leave out is what it reads (set again when it is initialized).
        keys = self._keys()
        for _, callback in getattr(net, "callbacks_", []):
            if isinstance(callback, PrintLog) and hasattr(callback, "keys_ignored_"):
                callback.keys_ignored_.update(keys)

    def on_epoch_begin(self, net, **kwargs):
        # The first row of a history: the network has not trained yet.
        if len(net.history) == 1:
            self._record(net, INITIAL_SUFFIX)

    def on_epoch_end(self, net, **kwargs):
        epoch = int(net.history[-1, "epoch"])
        if epoch % self.every:
            return
        self._record(net, "")

    def _keys(self):
        return [
            self.name + part + suffix
            for part in ("", "_landscapes")
            for suffix in ("", INITIAL_SUFFIX)
        ]

    def _record(self, net, suffix):
        center = centering(self, net.module_)
        complexity, landscapes, names, _ = measure(self, [net.module_], center)
        self.layer_names_ = names
        net.history.record(self.name + suffix, complexity[0].tolist())
        if landscapes is not None:
            net.history.record(
                self.name + "_landscapes" + suffix, landscapes[0].tolist()
            )


def check_monitor(monitor):
    """Check the settings a monitor has beyond its estimators' own checks."""
    check_count(monitor.every, "`every`")
    if monitor.method not in _METHODS:
        raise ValueError(
            f"`method` must be 'global' or 'local', got {monitor.method!r}."
        )
    count = monitor.n_landscapes
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1
    ):
        # "auto" would choose a different width at each record.
        raise ValueError(f"`n_landscapes` must be None or an int >= 1, got {count!r}.")
    if not isinstance(monitor.name, str) or not monitor.name:
        raise ValueError(f"`name` must be a non-empty str, got {monitor.name!r}.")


def as_monitor(monitor):
    """``monitor=`` of ``train_networks`` as a checked TopologicalComplexity."""
    if isinstance(monitor, dict):
        try:
            monitor = TopologicalComplexity(**monitor)
        except TypeError as exc:
            raise ValueError(
                f"monitor: {exc}; the keys are TopologicalComplexity's parameters "
                f"{sorted(inspect.signature(TopologicalComplexity).parameters)}."
            ) from None
    if not isinstance(monitor, TopologicalComplexity):
        raise ValueError(
            "monitor must be None, a TopologicalComplexity or a dict of its "
            f"parameters, got {type(monitor).__name__}."
        )
    check_monitor(monitor)
    return monitor


def centering(monitor, network):
    """The paper's rule (:func:`~sklandscapes.activations.paper_centering`)."""
    return paper_centering(
        network,
        monitor.inputs,
        method=monitor.method,
        layers=monitor.layers,
        include_input=monitor.include_input,
    )


def measure(monitor, networks, center):
    """Complexity (and landscapes) of every network: the pipeline itself.

    Returns ``complexity`` of shape (n_networks, n_layers), ``landscapes`` of
    shape (n_networks, n_features) or None, the layer names and the fitted
    ``LandscapeVectorizer`` (or None).
    """
    extractor = ActivationExtractor(
        inputs=monitor.inputs,
        layers=monitor.layers,
        include_input=monitor.include_input,
        device=monitor.device,
    )
    normalizer = ActivationNormalizer(method=monitor.method, center=center)
    rips = RipsPersistence(
        homology_dimensions=monitor.homology_dimensions,
        local=monitor.method == "local",
        n_jobs=monitor.n_jobs,
    )
    with torch_threads():
        clouds = extractor.fit_transform(networks)
    diagrams = rips.fit_transform(normalizer.fit_transform(clouds))
    complexity = topological_complexity(diagrams, monitor.sample_range)
    landscapes = vectorizer = None
    if monitor.n_landscapes is not None:
        vectorizer = LandscapeVectorizer(
            n_landscapes=monitor.n_landscapes,
            sample_range=monitor.sample_range,
            resolution=monitor.resolution,
        )
        landscapes = vectorizer.fit_transform(diagrams)
    return complexity, landscapes, layer_names(monitor, networks[0]), vectorizer


def layer_names(monitor, network):
    """Names of the recorded layers, as the extractor orders them."""
    auto = activation_layers(network, monitor.inputs)
    if isinstance(monitor.layers, str):
        names = auto
    else:
        names = [
            item if isinstance(item, str) else auto[item] for item in monitor.layers
        ]
    return ["input", *names] if monitor.include_input else list(names)


def fingerprint(monitor):
    """The monitor's settings as plain values, its batch as a digest."""
    inputs = monitor.inputs
    if hasattr(inputs, "detach"):
        inputs = inputs.detach().cpu().numpy()
    inputs = np.ascontiguousarray(np.asarray(inputs, dtype=np.float64))
    digest = hashlib.sha256(str(inputs.shape).encode() + inputs.tobytes())
    params = monitor.get_params()
    params.pop("inputs")
    params.pop("n_jobs")  # results do not depend on it
    return dict(
        inputs=digest.hexdigest(),
        # Checkpoints of earlier versions hold records without the untrained
        # network: resuming one would shift every epoch by one.
        records="from epoch 0",
        **{key: repr(value) for key, value in sorted(params.items())},
    )


def history_complexity(history, name="topological_complexity"):
    """The complexity records of a skorch history, as arrays.

    Parameters
    ----------
    history : skorch.history.History
        ``net.history`` of a net trained with a :class:`TopologicalComplexity`
        callback.
    name : str, default="topological_complexity"
        The callback's ``name``; ``name + "_landscapes"`` reads the landscape
        vectors instead.

    Returns
    -------
    epochs : ndarray of shape (n_records,), dtype int
        The epochs recorded, increasing: 0 (the network before training,
        when the history starts at its first epoch), then every ``every``-th.
    complexity : ndarray of shape (n_records, n_layers)
        Topological complexity of every layer after each of them.

    Examples
    --------
    >>> from skorch.history import History
    >>> from sklandscapes.nets import history_complexity
    >>> history = History()
    >>> for epoch in (1, 2):
    ...     history.new_epoch()
    ...     history.record("epoch", epoch)
    ...     if epoch == 1:  # in the first row: the untrained network
    ...         history.record("topological_complexity_epoch0", [0.125, 0.0])
    >>> history.record("topological_complexity", [0.5, 0.25])
    >>> epochs, complexity = history_complexity(history)
    >>> epochs.tolist(), complexity.tolist()
    ([0, 2], [[0.125, 0.0], [0.5, 0.25]])
    """
    try:
        rows = list(history[:, ("epoch", name)])
    except KeyError:
        rows = []
    initial = history[0].get(name + INITIAL_SUFFIX) if len(history) else None
    if initial is not None:
        rows.insert(0, (0, initial))
    if not rows:
        raise ValueError(
            f"the history has no {name!r} records; train with a "
            f"TopologicalComplexity(name={name!r}) callback."
        )
    epochs = np.array([epoch for epoch, _ in rows], dtype=int)
    complexity = np.array([values for _, values in rows], dtype=np.float64)
    return epochs, complexity


@dataclasses.dataclass
class TopologyRecord:
    """What the ``monitor=`` of :func:`~sklandscapes.nets.train_networks` recorded.

    Attributes
    ----------
    epochs : ndarray of shape (n_records,), dtype int
        The epochs after which every network still training was measured:
        0 (before training, every network as it started), then the
        multiples of the monitor's ``every``.
    complexity : ndarray of shape (n_networks, n_records, n_layers)
        Topological complexity of every layer; NaN after a network stopped
        training (its weights no longer change), like ``train_accuracy``.
    layer_names : list of str
        The name of each layer.
    landscapes : ndarray of shape (n_networks, n_records, n_features) or None
        The landscape vectors, when the monitor has ``n_landscapes``; NaN
        where ``complexity`` is.
    landscape_shape : tuple of int or None
        ``(n_layers, n_homology_dimensions, n_landscapes, resolution)``, the
        layout of a landscape vector (see
        :func:`~sklandscapes.landscapes.reshape_landscapes`).
    grid : ndarray of shape (resolution,) or None
        The grid of the landscapes.
    settings : dict
        The monitor's parameters other than ``inputs``, as text.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import TopologyRecord
    >>> record = TopologyRecord(
    ...     epochs=np.array([1, 2]), complexity=np.zeros((3, 2, 4)),
    ...     layer_names=["input", "a", "b", "c"])
    >>> record.complexity.shape
    (3, 2, 4)
    """

    epochs: np.ndarray
    complexity: np.ndarray
    layer_names: list
    landscapes: np.ndarray = None
    landscape_shape: tuple = None
    grid: np.ndarray = None
    settings: dict = dataclasses.field(default_factory=dict)


class StackedMonitor:
    """The monitor of one ``train_networks`` run: measures, stores, resumes."""

    def __init__(self, monitor, n_networks, build):
        self.monitor = monitor
        self.n_networks = n_networks
        # build(layers of one network) -> torch module
        self.build = build
        self.center = None
        self.names = None
        self.shape = self.grid = None
        self.rows = []  # (epoch, networks, complexity, landscapes)

    def __call__(self, epoch, training, layers):
        networks = [
            self.build([(weight[p], bias[p]) for weight, bias in layers])
            for p in range(len(training))
        ]
        if self.center is None:
            self.center = centering(self.monitor, networks[0])
        complexity, landscapes, self.names, vectorizer = measure(
            self.monitor, networks, self.center
        )
        if vectorizer is not None:
            self.shape, self.grid = vectorizer.shape_, vectorizer.grid_
        self.rows.append(
            (int(epoch), np.asarray(training).copy(), complexity, landscapes)
        )

    def state(self):
        """The rows as tensors and plain values, for a checkpoint."""
        import torch

        return dict(
            names=self.names,
            center=self.center,
            shape=self.shape,
            grid=None if self.grid is None else torch.from_numpy(self.grid),
            rows=[
                [
                    epoch,
                    torch.from_numpy(networks.astype(np.int64)),
                    torch.from_numpy(complexity),
                    None if landscapes is None else torch.from_numpy(landscapes),
                ]
                for epoch, networks, complexity, landscapes in self.rows
            ],
        )

    def restore(self, state):
        self.names = state["names"]
        self.center = state["center"]
        self.shape = state["shape"]
        self.grid = None if state["grid"] is None else state["grid"].numpy()
        self.rows = [
            (
                int(epoch),
                networks.numpy(),
                complexity.numpy(),
                None if landscapes is None else landscapes.numpy(),
            )
            for epoch, networks, complexity, landscapes in state["rows"]
        ]

    def record(self):
        if not self.rows:
            return None
        epochs = np.array([row[0] for row in self.rows], dtype=int)
        n_layers = self.rows[0][2].shape[1]
        complexity = np.full((self.n_networks, len(epochs), n_layers), np.nan)
        with_landscapes = self.rows[0][3] is not None
        landscapes = None
        if with_landscapes:
            width = self.rows[0][3].shape[1]
            landscapes = np.full((self.n_networks, len(epochs), width), np.nan)
        for index, (_, networks, values, vectors) in enumerate(self.rows):
            complexity[networks, index] = values
            if with_landscapes:
                landscapes[networks, index] = vectors
        settings = fingerprint(self.monitor)
        settings.pop("inputs")
        return TopologyRecord(
            epochs=epochs,
            complexity=complexity,
            layer_names=list(self.names),
            landscapes=landscapes,
            landscape_shape=None if self.shape is None else tuple(self.shape),
            grid=self.grid,
            settings=settings,
        )


def merge_records(records, sizes):
    """One TopologyRecord of consecutive groups of networks (``None`` if none).

    ``sizes`` is the number of networks in each group; a group may have
    stopped earlier than another, so the epochs are the union, NaN-padded.
    """
    if all(record is None for record in records):
        return None
    present = [record for record in records if record is not None]
    epochs = np.unique(np.concatenate([record.epochs for record in present]))
    n_layers = present[0].complexity.shape[2]
    complexity = np.full((sum(sizes), len(epochs), n_layers), np.nan)
    start = 0
    for record, size in zip(records, sizes):
        if record is not None:
            columns = np.searchsorted(epochs, record.epochs)
            complexity[start : start + size, columns] = record.complexity
        start += size
    # Landscapes of many groups would be large; the experiments do not use them.
    return dataclasses.replace(
        present[0],
        epochs=epochs,
        complexity=complexity,
        landscapes=None,
        landscape_shape=None,
        grid=None,
    )
