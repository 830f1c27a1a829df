"""Many networks of one architecture trained together as one batched computation.

Network ``k``'s weights of layer ``l`` are row ``k`` of a stacked tensor of shape
``(n_networks, width_out, width_in)``; one ``torch.baddbmm`` per layer runs every
network on its own minibatch, and Adam (which is elementwise) updates the stacked
tensors as if each network had its own optimizer. Networks that passed their last
threshold are dropped from the stacks, so they stop changing and cost nothing.

What the epoch loop changes is one ``TrainingState`` (``_state``); the files of a
run, its checkpoint and its training log, have their formats in ``_checkpoint``.
"""

import contextlib
import dataclasses
import math
import numbers
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from sklandscapes._validation import check_count
from sklandscapes.exceptions import SklandscapesWarning
from sklandscapes.nets._checkpoint import (
    CHECKPOINT_EVERY,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    final_name,
    fingerprint,
    json_float,
    read_checkpoint,
    snapshot_name,
    snapshot_record,
    training_log_texts,
    write_checkpoint,
    write_training_log,
)
from sklandscapes.nets._mlp import (
    check_widths,
    init_linear_,
    mlp_from_state_dict,
    resolve_activation,
)
from sklandscapes.nets._monitor import StackedMonitor, as_monitor
from sklandscapes.nets._monitor import fingerprint as monitor_fingerprint
from sklandscapes.nets._skorch import resolve_device
from sklandscapes.nets._snapshots import check_thresholds, save_snapshot, write_log
from sklandscapes.nets._state import TrainingState, pad_stacks
from sklandscapes.nets._threads import torch_threads

# The checkpoint's and training log's public names are importable from here
# too: sklandscapes.experiments imports training_log_texts from this module.
__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "ThresholdNotReachedWarning",
    "TrainingResult",
    "train_networks",
    "training_log_texts",
    "warn_thresholds_not_reached",
    "write_training_log",
]

# Rows (networks x points) per chunk when scoring whole training sets: big
# enough to amortize the per-call overhead, small enough that a chunk's
# activations stay in the CPU cache (or a modest slice of GPU memory).
_EVAL_ROWS = 1 << 16


class ThresholdNotReachedWarning(SklandscapesWarning):
    """Some networks ended training before reaching every threshold.

    Raise ``max_epochs`` (or lower the thresholds) to silence it.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklandscapes.nets import ThresholdNotReachedWarning, train_networks
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 20, dtype=np.float32)
    >>> y = np.array([0, 1] * 20)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     result = train_networks(X, y, n_networks=2, widths=(2, 8, 2),
    ...                             thresholds=(1.0,), max_epochs=1,
    ...                             random_state=0, device="cpu")
    >>> caught[0].category is ThresholdNotReachedWarning
    True
    >>> missed = np.flatnonzero(~result.reached[:, 0])  # never reached 1.0
    >>> len(missed) > 0, all(result.snapshots[0][k] is None for k in missed)
    (True, True)
    """


def warn_thresholds_not_reached(
    missed, *, n_networks, max_epochs, consequence, numbering=None, stacklevel=1
):
    """Warn that networks ended training before reaching every threshold.

    The one place that issues :class:`ThresholdNotReachedWarning`.

    Parameters
    ----------
    missed : sequence of int
        The networks that missed a threshold, increasing.
    n_networks : int
        How many networks trained.
    max_epochs : int
        The epochs they had.
    consequence : str
        What became of the missed thresholds, for the reader of the warning.
    numbering : str or None, default=None
        How ``missed`` numbers the networks, when that needs saying.
    stacklevel : int, default=1
        As for ``warnings.warn``, counted from the caller of this function.

    Examples
    --------
    >>> import warnings
    >>> from sklandscapes.nets import warn_thresholds_not_reached
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_thresholds_not_reached([2], n_networks=4, max_epochs=50,
    ...                                 consequence="they have no snapshot there")
    >>> caught[0].category.__name__
    'ThresholdNotReachedWarning'
    """
    warnings.warn(
        _thresholds_not_reached_message(
            missed,
            n_networks=n_networks,
            max_epochs=max_epochs,
            consequence=consequence,
            numbering=numbering,
        ),
        ThresholdNotReachedWarning,
        stacklevel=stacklevel + 1,
    )


def _thresholds_not_reached_message(
    missed, *, n_networks, max_epochs, consequence, numbering
):
    missed = [int(network) for network in missed]
    listed = f"{missed[:10]}{', ...' if len(missed) > 10 else ''}"
    if numbering is not None:
        listed += f", {numbering}"
    return (
        f"{len(missed)} of {n_networks} networks did not reach every threshold "
        f"within max_epochs={max_epochs} (networks {listed}); {consequence}. "
        "Raise max_epochs to silence this warning."
    )


@dataclasses.dataclass
class TrainingResult:
    """Networks snapshotted by :func:`train_networks`, with their training log.

    Epochs count from 1, as in skorch's history. Accuracies are fractions of
    the network's own training (or test) set, measured after the epoch.

    Attributes
    ----------
    thresholds : tuple of float
        The training-accuracy thresholds, increasing.
    widths : tuple of int
        The architecture.
    activation : str or nn.Module subclass
        Its activation.
    snapshots : list of list of (MLP or None)
        ``snapshots[j][k]`` is network ``k`` as it was after the first epoch
        whose training accuracy reached ``thresholds[j]``, on the CPU in eval
        mode; ``None`` where it never did.
    snapshot_epoch : ndarray of shape (n_networks, n_thresholds), dtype int
        That epoch; ``-1`` where the threshold was not reached.
    snapshot_train_accuracy : ndarray of shape (n_networks, n_thresholds)
        Training accuracy of each snapshot; NaN where there is none.
    snapshot_test_accuracy : ndarray of shape (n_networks, n_thresholds)
        Accuracy of each snapshot on the network's test set; NaN where there
        is no snapshot or no test set.
    train_accuracy : ndarray of shape (n_networks, n_epochs)
        Training accuracy after every epoch; NaN after the network stopped.
    n_epochs_trained : ndarray of shape (n_networks,), dtype int
        Epochs each network trained: the epoch of its last snapshot when it
        reached every threshold, otherwise every epoch that ran.
    train_indices : ndarray of shape (n_networks, n_train), dtype int
        Rows of ``X`` each network trained on (sorted).
    test_indices : ndarray of shape (n_networks, n_test), dtype int
        Rows of ``X`` held out from each network (sorted).
    seeds : ndarray of shape (n_networks,), dtype int
        Network ``k`` started from the weights of ``MLP(widths, activation,
        random_state=seeds[k])``, its split is ``train_test_split(...,
        random_state=seeds[k])`` and its minibatch orders come from
        ``torch.Generator().manual_seed(seeds[k])`` after the initial weights.
    paths : list of list of (str or None)
        ``paths[j][k]``, the file of ``snapshots[j][k]`` when a ``directory``
        was given, else ``None``.
    topology : TopologyRecord or None
        The per-layer topological complexity that ``monitor=`` recorded
        during training; ``None`` without a monitor.
    final : list of MLP or None
        With ``keep_final=True``, ``final[k]`` is network ``k`` as it was
        after its last epoch (epoch ``n_epochs_trained[k]``), on the CPU in
        eval mode: after ``max_epochs``, or after the epoch that reached its
        last threshold (then equal to that snapshot); ``None`` otherwise.
    final_train_accuracy, final_test_accuracy : ndarray of shape \
(n_networks,) or None
        Training and test accuracy of each final network (test NaN without a
        test set); ``None`` without ``keep_final``.
    final_paths : list of (str or None) or None
        The file of each final network when a ``directory`` was given
        (``network<k>_final.pt``), else ``None`` entries; ``None`` without
        ``keep_final``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import train_networks
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 20, dtype=np.float32)
    >>> y = np.array([0, 1] * 20)
    >>> result = train_networks(X, y, n_networks=2, widths=(2, 8, 2),
    ...                         thresholds=(0.9, 1.0), lr=0.05, batch_size=8,
    ...                         max_epochs=50, random_state=0, device="cpu")
    >>> result.reached.tolist()
    [[True, True], [True, True]]
    >>> [sorted(entry) for entry in result.log][0][:3]
    ['epochs', 'network', 'reached_all']
    >>> type(result.snapshots[1][0]).__name__  # network 0 at threshold 1.0
    'MLP'
    """

    thresholds: tuple
    widths: tuple
    activation: object
    snapshots: list
    snapshot_epoch: np.ndarray
    snapshot_train_accuracy: np.ndarray
    snapshot_test_accuracy: np.ndarray
    train_accuracy: np.ndarray
    n_epochs_trained: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray
    seeds: np.ndarray
    paths: list
    topology: object = None
    final: list = None
    final_train_accuracy: np.ndarray = None
    final_test_accuracy: np.ndarray = None
    final_paths: list = None

    @property
    def reached(self):
        """Boolean array ``(n_networks, n_thresholds)``: which snapshots exist."""
        return self.snapshot_epoch >= 0

    def networks_at(self, threshold):
        """The snapshots taken at ``threshold``, skipping networks that missed it.

        Parameters
        ----------
        threshold : float
            One of ``thresholds``.

        Returns
        -------
        networks : list of MLP
            In network order; ``reached[:, j]`` says which networks they are.
        """
        matches = [
            j for j, t in enumerate(self.thresholds) if math.isclose(t, threshold)
        ]
        if not matches:
            raise ValueError(
                f"threshold {threshold!r} is not one of the trained thresholds "
                f"{self.thresholds!r}."
            )
        return [net for net in self.snapshots[matches[0]] if net is not None]

    def samples(self, complete=True, final=False):
        """Every snapshot as one sample, with its threshold and network.

        Parameters
        ----------
        complete : bool, default=True
            Only the networks that reached every threshold, so that each
            threshold has the same networks (a paired design); ``False`` keeps
            every snapshot taken.
        final : bool, default=False
            Also the final networks (:attr:`final`, needs
            ``keep_final=True``), as one more stage after the thresholds,
            labelled ``np.inf`` (it sorts after every threshold;
            ``np.isinf(thresholds)`` selects it). ``complete`` applies to it
            too.

        Returns
        -------
        networks : list of MLP
            Threshold-major: every network at the first threshold, then at the
            second, and so on (then every final network).
        thresholds : ndarray of shape (n_samples,)
            The threshold of each sample (use it as the group label).
        network_ids : ndarray of shape (n_samples,)
            The network each sample is a snapshot of (use it as ``groups`` of a
            grouped cross-validation).

        Examples
        --------
        >>> import numpy as np
        >>> from sklandscapes.nets import train_networks
        >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 20, dtype=np.float32)
        >>> y = np.array([0, 1] * 20)
        >>> result = train_networks(X, y, n_networks=2, widths=(2, 8, 2),
        ...                         thresholds=(0.9, 1.0), lr=0.05, batch_size=8,
        ...                         max_epochs=50, random_state=0, device="cpu",
        ...                         keep_final=True)
        >>> networks, thresholds, network_ids = result.samples()
        >>> len(networks), thresholds.tolist(), network_ids.tolist()
        (4, [0.9, 0.9, 1.0, 1.0], [0, 1, 0, 1])
        >>> networks, thresholds, network_ids = result.samples(final=True)
        >>> thresholds.tolist(), network_ids.tolist()
        ([0.9, 0.9, 1.0, 1.0, inf, inf], [0, 1, 0, 1, 0, 1])
        """
        if final and self.final is None:
            raise ValueError(
                "samples(final=True) needs the final networks; train with "
                "train_networks(..., keep_final=True)."
            )
        keep = self.reached.all(axis=1) if complete else np.ones(len(self.seeds), bool)
        pairs = [
            (j, k)
            for j in range(len(self.thresholds))
            for k in np.flatnonzero(keep)
            if self.reached[k, j]
        ]
        networks = [self.snapshots[j][k] for j, k in pairs]
        labels = [self.thresholds[j] for j, _ in pairs]
        network_ids = [k for _, k in pairs]
        if final:
            network_ids += np.flatnonzero(keep).tolist()
            networks += [self.final[k] for k in np.flatnonzero(keep)]
            labels += [np.inf] * int(keep.sum())
        return (
            networks,
            np.array(labels, dtype=float),
            np.array(network_ids, dtype=np.intp),
        )

    @property
    def log(self):
        """Per-network training log: a list with one dict per network.

        With ``keep_final=True`` each dict has a ``"final"`` entry too (epoch,
        training and test accuracy, file).
        """
        return [self._network_log(k) for k in range(len(self.seeds))]

    def _network_log(self, k):
        n_epochs = int(self.n_epochs_trained[k])
        snapshots = []
        for j, threshold in enumerate(self.thresholds):
            if self.snapshot_epoch[k, j] < 0:
                snapshots.append(None)
                continue
            snapshots.append(
                dict(
                    threshold=threshold,
                    epoch=int(self.snapshot_epoch[k, j]),
                    train_accuracy=float(self.snapshot_train_accuracy[k, j]),
                    test_accuracy=json_float(self.snapshot_test_accuracy[k, j]),
                    path=self.paths[j][k],
                )
            )
        entry = dict(
            network=k,
            seed=int(self.seeds[k]),
            epochs=n_epochs,
            train_accuracy=self.train_accuracy[k, :n_epochs].tolist(),
            reached_all=bool(self.reached[k].all()),
            snapshots=snapshots,
        )
        if self.final is not None:
            entry["final"] = dict(
                epoch=n_epochs,
                train_accuracy=float(self.final_train_accuracy[k]),
                test_accuracy=json_float(self.final_test_accuracy[k]),
                path=self.final_paths[k],
            )
        return entry


def _check_data(X, y, widths):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}."
        )
    if y.ndim != 1:
        raise ValueError(
            f"y must be a 1-D array of class indices, got shape {y.shape}."
        )
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same length, got {len(X)} rows in X and "
            f"{len(y)} labels in y."
        )
    if X.shape[1] != widths[0]:
        raise ValueError(
            f"X has {X.shape[1]} features but the network's input width "
            f"widths[0] is {widths[0]}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= widths[-1]:
        raise ValueError(
            f"y must hold class indices 0, ..., {widths[-1] - 1} (the output width "
            f"widths[-1] is {widths[-1]}), got values of dtype {y.dtype} in "
            f"[{y.min()!r}, {y.max()!r}]."
        )
    return X.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


def _check_test_size(test_size, n_samples):
    if isinstance(test_size, numbers.Real) and not isinstance(test_size, bool):
        if isinstance(test_size, numbers.Integral):
            ok = 0 <= test_size < n_samples
        else:
            ok = 0 <= test_size < 1
        if ok:
            return test_size
    raise ValueError(
        f"test_size must be a float in [0, 1) or an int in [0, n_samples) = "
        f"[0, {n_samples}), got {test_size!r}."
    )


def _split(y, test_size, seed):
    n_samples = len(y)
    indices = np.arange(n_samples)
    if test_size == 0:
        return indices, indices[:0]
    # Stratified like skorch's default ValidSplit for classifiers, which the
    # paper's code relied on to hold out test data.
    train, test = train_test_split(
        indices, test_size=test_size, stratify=y, random_state=seed
    )
    return np.sort(train), np.sort(test)


def _initial_stacks(widths, generators):
    """Stacked weights and biases, network ``k`` drawn as ``MLP`` draws them."""
    stacks = []
    for n_in, n_out in zip(widths, widths[1:]):
        weight = torch.empty(len(generators), n_out, n_in)
        bias = torch.empty(len(generators), n_out)
        stacks.append((weight, bias))
    # Network-major order: each network's generator draws its layers in the
    # same sequence as MLP(widths, random_state=seed) does.
    for k, generator in enumerate(generators):
        for weight, bias in stacks:
            init_linear_(weight[k], bias[k], generator)
    return stacks


def _forward(weights, biases, inputs, activation):
    """Logits of every network on its own inputs: (n, m, in) -> (n, m, out)."""
    hidden = inputs
    last = len(weights) - 1
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
        if index < last:
            hidden = activation(hidden)
    return hidden


@torch.no_grad()
def _accuracy(weights, biases, X, y, indices, activation):
    """Fraction of ``indices[k]`` that network ``k`` classifies correctly."""
    n_networks, n_points = indices.shape
    if n_points == 0:
        return np.full(n_networks, np.nan)
    correct = torch.zeros(n_networks, dtype=torch.int64, device=X.device)
    chunk = max(1, _EVAL_ROWS // n_networks)
    for start in range(0, n_points, chunk):
        rows = indices[:, start : start + chunk]
        logits = _forward(weights, biases, X[rows], activation)
        correct += (logits.argmax(dim=2) == y[rows]).sum(dim=1)
    # float64 division, like sklearn's accuracy_score in skorch's scoring.
    return correct.cpu().numpy() / n_points


@dataclasses.dataclass
class _StackedRun:
    train_accuracy: np.ndarray
    n_epochs_trained: np.ndarray
    snapshot_epoch: np.ndarray
    snapshot_train_accuracy: np.ndarray
    snapshot_test_accuracy: np.ndarray
    final: list


def _train_stacked(
    stacks,
    X,
    y,
    train_indices,
    epoch_orders,
    thresholds,
    *,
    activation,
    lr,
    batch_size,
    max_epochs,
    test_indices=None,
    on_snapshot=None,
    on_epoch=None,
    resume=None,
    on_checkpoint=None,
    checkpoint_every=None,
    on_monitor=None,
    monitor_every=None,
):
    """Train stacked networks with Adam; the testable core of ``train_networks``.

    Parameters
    ----------
    stacks : list of (Tensor (n, out, in), Tensor (n, out))
        Initial weights and biases of every layer, on the training device; not
        modified.
    X, y : Tensor (n_samples, n_features) float32, Tensor (n_samples,) int64
        All data, on the training device.
    train_indices : Tensor (n, n_train) int64
        Rows of ``X`` that each network trains on.
    epoch_orders : callable (epoch, networks) -> Tensor (len(networks), n_train)
        For each listed network still training, a permutation of
        ``range(n_train)``: the order in which it visits its training rows in
        that (1-based) epoch, in minibatches of ``batch_size`` (the last one
        smaller), exactly like a shuffled ``DataLoader``.
    thresholds : tuple of float
    activation : nn.Module
        Applied after every layer but the last.
    test_indices : Tensor (n, n_test) int64 or None
    on_snapshot : callable or None
        ``on_snapshot(network, threshold_index, epoch, train_accuracy,
        test_accuracy, layers)`` with ``layers`` a list of CPU ``(weight,
        bias)`` of that network, at every threshold crossing.
    on_epoch : callable or None
        ``on_epoch(epoch, n_training)`` after every epoch.
    resume : dict or None
        A state given to ``on_checkpoint`` by an earlier call with the same
        arguments: training continues after its epoch, exactly as that call
        went on (the caller restores ``epoch_orders``'s random state too).
    on_checkpoint : callable or None
        ``on_checkpoint(state)`` after every ``checkpoint_every``-th epoch
        while networks are still training; ``state`` is a dict of CPU tensors
        and NumPy arrays, the whole training state at the end of that epoch.
    checkpoint_every : int or None
        Epochs between two calls of ``on_checkpoint``.
    on_monitor : callable or None
        ``on_monitor(epoch, training, layers)`` before the first epoch (epoch
        0, unless resuming) and after every ``monitor_every``-th epoch,
        before the networks that finished in it are dropped: ``training``
        lists the networks still training and ``layers`` their unpadded CPU
        ``(weight, bias)`` stacks.
    monitor_every : int or None
        Epochs between two calls of ``on_monitor``.

    Returns
    -------
    run : _StackedRun
        ``final`` holds the stacked CPU weights each network had when it
        stopped (at its last threshold or at ``max_epochs``).
    """
    device = X.device
    shapes = [tuple(weight.shape[1:]) for weight, _ in stacks]
    padded = pad_stacks(stacks)
    setup = _Setup(
        X=X,
        y=y,
        activation=activation,
        thresholds=np.asarray(thresholds),
        batch_size=batch_size,
        shapes=shapes,
        masked_columns=_masked_columns(activation, X, shapes, padded),
    )
    rows = dict(train_rows=train_indices, test_rows=test_indices)
    if resume is None:
        state = TrainingState.start(
            stacks,
            padded,
            n_thresholds=len(thresholds),
            max_epochs=max_epochs,
            lr=lr,
            **rows,
        )
    else:
        state = TrainingState.from_checkpoint(resume, lr=lr, device=device, **rows)

    if on_monitor is not None and resume is None:
        on_monitor(0, state.training.copy(), state.layers(shapes))
    for epoch in range(state.epoch + 1, max_epochs + 1):
        order = epoch_orders(epoch, state.training).to(device)
        accuracy = _run_epoch(state, setup, epoch, order)
        _record_crossings(state, setup, accuracy, on_snapshot)
        if on_monitor is not None and epoch % monitor_every == 0:
            on_monitor(epoch, state.training.copy(), state.layers(shapes))
        # Without thresholds (keep_final only) every network trains on.
        done = (state.n_reached[state.training] == len(thresholds)) & bool(
            len(thresholds)
        )
        if on_epoch is not None:
            on_epoch(epoch, int((~done).sum()))
        if done.any():
            if not state.drop_finished(done, shapes=shapes, lr=lr, device=device):
                break
        if (
            on_checkpoint is not None
            and epoch % checkpoint_every == 0
            and epoch < max_epochs
        ):
            on_checkpoint(state.to_checkpoint())

    state.stop(shapes)
    n_epochs = int(state.n_epochs_trained.max())
    return _StackedRun(
        train_accuracy=state.train_accuracy[:, :n_epochs],
        n_epochs_trained=state.n_epochs_trained,
        snapshot_epoch=state.snapshot_epoch,
        snapshot_train_accuracy=state.snapshot_train,
        snapshot_test_accuracy=state.snapshot_test,
        final=[
            (state.final[i], state.final[i + 1]) for i in range(0, len(state.final), 2)
        ],
    )


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What stays fixed while stacked networks train."""

    X: torch.Tensor
    y: torch.Tensor
    activation: torch.nn.Module
    thresholds: np.ndarray
    batch_size: int
    # The true (n_out, n_in) of every layer, inside the padded stacks.
    shapes: list
    # (leaf index, n_in): the padded input columns whose gradient is zeroed.
    masked_columns: list


def _masked_columns(activation, X, shapes, padded):
    """``(leaf index, n_in)`` of the padded input columns to keep at zero."""
    # Padded units output activation(0); where that is not 0 (sigmoid) the
    # padded input columns of the next layer would get a gradient, so zero it.
    with torch.no_grad():
        leaks = bool(activation(X.new_zeros(1)).item() != 0)
    return [
        (2 * index, n_in)
        for index, (_, n_in) in enumerate(shapes)
        if leaks and padded[index][0].shape[2] > n_in
    ]


def _run_epoch(state, setup, epoch, order):
    """Train every network on its minibatches of one epoch, in ``order``.

    Returns the training accuracy of each network still training, measured
    after the epoch on its whole training set (and stored in ``state``).
    """
    X, y, batch_size = setup.X, setup.y, setup.batch_size
    epoch_rows = state.train_rows.gather(1, order)
    for start in range(0, state.train_rows.shape[1], batch_size):
        rows = epoch_rows[:, start : start + batch_size]
        logits = _forward(state.weights, state.biases, X[rows], setup.activation)
        # Sum over networks of each network's mean loss: network k's
        # gradient is exactly that of its own mean cross-entropy.
        loss = (
            F.cross_entropy(logits.flatten(0, 1), y[rows].flatten(), reduction="sum")
            / rows.shape[1]
        )
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for leaf, n_in in setup.masked_columns:
            state.leaves[leaf].grad[..., n_in:] = 0
        state.optimizer.step()
    accuracy = _accuracy(
        state.weights, state.biases, X, y, state.train_rows, setup.activation
    )
    state.train_accuracy[state.training, epoch - 1] = accuracy
    state.epoch = epoch
    return accuracy


def _record_crossings(state, setup, accuracy, on_snapshot):
    """Snapshot every network at each threshold its ``accuracy`` passed."""
    reached = np.searchsorted(setup.thresholds, accuracy, side="right")
    crossing = np.flatnonzero(reached > state.n_reached[state.training])
    if not crossing.size:
        return
    test_accuracy = _test_accuracy(state, setup, crossing)
    for position, test_acc in zip(crossing, test_accuracy):
        network = state.training[position]
        layers = state.layers(setup.shapes, position)
        for j in range(state.n_reached[network], reached[position]):
            state.snapshot_epoch[network, j] = state.epoch
            state.snapshot_train[network, j] = accuracy[position]
            state.snapshot_test[network, j] = test_acc
            if on_snapshot is not None:
                on_snapshot(
                    network, j, state.epoch, accuracy[position], test_acc, layers
                )
        state.n_reached[network] = reached[position]


def _test_accuracy(state, setup, positions):
    """Test accuracy of the networks at ``positions``; NaN without test rows."""
    if state.test_rows is None or not state.test_rows.shape[1]:
        return np.full(positions.size, np.nan)
    select = torch.as_tensor(positions, device=setup.X.device)
    return _accuracy(
        [weight.detach()[select] for weight in state.weights],
        [bias.detach()[select] for bias in state.biases],
        setup.X,
        setup.y,
        state.test_rows[select],
        setup.activation,
    )


def _state_dict(layers):
    state_dict = {}
    for index, (weight, bias) in enumerate(layers):
        state_dict[f"layers.{2 * index}.weight"] = weight
        state_dict[f"layers.{2 * index}.bias"] = bias
    return state_dict


def train_networks(
    X,
    y,
    n_networks,
    widths,
    thresholds,
    *,
    activation="relu",
    lr=1e-3,
    batch_size=128,
    max_epochs=100,
    test_size=0.2,
    random_state=None,
    device="auto",
    verbose=0,
    directory=None,
    checkpoint=None,
    checkpoint_every=CHECKPOINT_EVERY,
    n_threads=None,
    monitor=None,
    keep_final=False,
):
    """Train ``n_networks`` MLPs of one architecture at once, snapshotting each
    at training-accuracy thresholds.

    Every network has its own initial weights (drawn like ``nn.Linear``'s
    defaults), its own stratified train/test split of ``(X, y)`` and its own
    minibatch order every epoch, all derived from ``random_state`` in this
    process. They train with Adam on the cross-entropy of their logits, exactly
    as :func:`make_mlp_classifier` trains one network, but together: every
    layer of every network is one batched matrix product. After each epoch the
    training accuracy of every network on its whole training set is measured;
    the first epoch that reaches each threshold gives a snapshot, as with
    :class:`AccuracyThresholdSnapshots`. A network stops (its weights frozen)
    after the epoch in which it reached its last threshold; training ends when
    all have, or after ``max_epochs``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs; ``n_features`` must equal ``widths[0]``.
    y : array-like of shape (n_samples,)
        Class indices in ``0, ..., widths[-1] - 1``.
    n_networks : int
        How many networks to train.
    widths : sequence of int
        Architecture, as for :class:`MLP`.
    thresholds : sequence of float
        Training accuracies in (0, 1], strictly increasing. May be empty with
        ``keep_final=True``: every network then trains ``max_epochs`` epochs
        and only its final weights are kept.
    activation : str or nn.Module subclass, default="relu"
        As for :class:`MLP`; a class must have no parameters.
    lr : float, default=1e-3
        Adam's learning rate (torch's default; see
        :func:`make_mlp_classifier`).
    batch_size : int, default=128
        Minibatch size; the last minibatch of an epoch may be smaller.
    max_epochs : int, default=100
        Most epochs to train.
    test_size : float or int, default=0.2
        Fraction (or number) of the samples each network holds out, stratified
        by class like skorch's default validation split; ``0`` trains on all
        samples (test accuracies are then NaN).
    random_state : int, RandomState instance or None, default=None
        Seeds everything random; the same value gives the same result. Network
        ``k`` depends only on ``seeds[k]`` (see :class:`TrainingResult`), not on
        how many networks train beside it.
        Same result means the same computation: PyTorch sums in an order that
        depends on its thread count and device, so a different thread count
        (see ``n_threads``) or device can change the low bits and, over many
        epochs, when a threshold is crossed.
    device : str or torch.device, default="auto"
        ``"auto"`` trains on CUDA when torch sees a GPU, on the CPU otherwise.
    verbose : int, default=0
        If positive, a tqdm progress bar over epochs.
    directory : str, path-like or None, default=None
        If given (created when missing), every snapshot is written there as it
        is taken, atomically, to ``network<k>_threshold<j>.pt`` in the format
        of :func:`save_snapshot`, and ``snapshots.jsonl`` (rewritten
        atomically) lists them; an interrupted run keeps every snapshot already
        taken. At the end ``training_log.json`` holds :attr:`TrainingResult.log`
        with paths relative to ``directory``, so the folder can be moved.
        Needs a named activation.
    checkpoint : str, path-like or None, default=None
        If given, the whole training state (weights, Adam's moments, the random
        state of every minibatch order, accuracies and the snapshots taken so
        far) is written there, atomically, after every ``checkpoint_every``-th
        epoch. If the file exists when training starts, training continues from
        it and gives the result, bit for bit, that the uninterrupted call gives;
        a checkpoint that cannot be read, or was written for other arguments or
        data, is reported with a :class:`~sklandscapes.exceptions.
        DamagedFileWarning`, deleted and training starts over. The file is left
        in place at the end; delete it once the result is stored. Needs a named
        activation.
    checkpoint_every : int, default=10
        Epochs between two checkpoints (``CHECKPOINT_EVERY``); only used with
        ``checkpoint``.
    n_threads : int or None, default=None
        torch's intra-op threads while training (restored afterwards). ``None``
        keeps the count the user chose, with ``OMP_NUM_THREADS`` or
        ``MKL_NUM_THREADS`` or a ``torch.set_num_threads`` call after
        ``sklandscapes.nets`` was imported (or an enclosing
        :func:`torch_threads` block), and otherwise uses **1 thread**:
        these networks are too small for threads to help, and on a machine
        whose cores other work keeps busy torch's threads wait on each other
        and training gets many times slower (``benchmarks/bench_threads.py``
        measures it). One thread also makes the result independent of the
        machine's core count. Pass ``n_threads=os.cpu_count()`` for large
        networks on an idle machine.
    monitor : TopologicalComplexity, dict or None, default=None
        Watch topology during training: after every ``monitor.every``-th
        epoch, every network still training is run on ``monitor.inputs``
        through the pipeline's estimators and the topological complexity of
        each layer is stored in :attr:`TrainingResult.topology` (a
        :class:`TopologyRecord`). A dict holds
        :class:`TopologicalComplexity`'s parameters. The record is part of
        the checkpoint, so a resumed run has the same record; a checkpoint
        written with other monitor settings is discarded.
    keep_final : bool, default=False
        Also keep every network as it was after its last epoch, in
        :attr:`TrainingResult.final` (with its accuracies), whether or not it
        reached every threshold; :meth:`TrainingResult.samples` returns them
        with ``final=True``. With ``directory`` they are written there at the
        end to ``network<k>_final.pt`` (the format of :func:`save_snapshot`,
        threshold ``None``) and ``training_log.json`` lists them. They are
        part of the checkpoint, so a resumed run keeps the same final
        weights. Use it to compare networks after a fixed number of epochs,
        with ``thresholds=()``.

    Returns
    -------
    result : TrainingResult
        Snapshots per threshold and network, training log and splits.

    Warns
    -----
    ThresholdNotReachedWarning
        When some networks did not reach every threshold within ``max_epochs``;
        their missing snapshots are ``None`` and listed in the log.

    See Also
    --------
    make_mlp_classifier, AccuracyThresholdSnapshots : One network with skorch.

    Notes
    -----
    Training accuracy is that of the network after the epoch, on its whole
    training set (not the running accuracy of the epoch's minibatches).
    Network ``k`` trained here matches ordinary single-network training with
    ``torch.optim.Adam`` from the same initial weights and data order up to
    float32 rounding (the batched products sum in a different order).

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import train_networks
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 20, dtype=np.float32)
    >>> y = np.array([0, 1] * 20)
    >>> result = train_networks(X, y, n_networks=3, widths=(2, 8, 2),
    ...                         thresholds=(0.9, 1.0), lr=0.05, batch_size=8,
    ...                         max_epochs=50, random_state=0, device="cpu")
    >>> result.reached.all()
    np.True_
    >>> len(result.networks_at(1.0)), result.train_indices.shape
    (3, (3, 32))

    Every network after exactly 5 epochs, without thresholds:

    >>> result = train_networks(X, y, n_networks=3, widths=(2, 8, 2),
    ...                         thresholds=(), max_epochs=5, random_state=0,
    ...                         device="cpu", keep_final=True)
    >>> result.n_epochs_trained.tolist(), type(result.final[0]).__name__
    ([5, 5, 5], 'MLP')
    """
    n_networks = check_count(n_networks, "n_networks")
    widths = check_widths(widths)
    if not isinstance(keep_final, (bool, np.bool_)):
        raise ValueError(f"keep_final must be True or False, got {keep_final!r}.")
    thresholds = _check_stages(thresholds, keep_final)
    activation_module = _activation_module(activation, directory, checkpoint)
    batch_size = check_count(batch_size, "batch_size")
    max_epochs = check_count(max_epochs, "max_epochs")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    X, y = _check_data(X, y, widths)
    test_size = _check_test_size(test_size, len(y))
    checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
    if monitor is not None:
        monitor = as_monitor(monitor)
    device = torch.device(resolve_device(device))
    with torch_threads(n_threads):
        return _train_networks(
            X,
            y,
            n_networks,
            widths,
            thresholds,
            activation=activation,
            activation_module=activation_module,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            test_size=test_size,
            random_state=random_state,
            device=device,
            verbose=verbose,
            directory=directory,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            monitor=monitor,
            keep_final=bool(keep_final),
        )


def _activation_module(activation, directory, checkpoint):
    """The module that applies ``activation`` between the stacked layers."""
    activation_class = resolve_activation(activation)
    # In place saves a pass over memory per layer; safe because the batched
    # product before it does not need its own output for the backward pass.
    activation_module = (
        torch.nn.ReLU(inplace=True)
        if activation_class is torch.nn.ReLU
        else activation_class()
    )
    if any(True for _ in activation_module.parameters()):
        raise ValueError(
            f"train_networks needs an activation without parameters, got "
            f"{activation!r}; train such networks one at a time with "
            "make_mlp_classifier."
        )
    if directory is not None and not isinstance(activation, str):
        raise ValueError(
            "snapshots are written to `directory` only for a named activation, "
            f"got activation={activation!r}; pass directory=None."
        )
    if checkpoint is not None and not isinstance(activation, str):
        raise ValueError(
            "a training checkpoint is written only for a named activation, got "
            f"activation={activation!r}; pass checkpoint=None."
        )
    return activation_module


def _check_stages(thresholds, keep_final):
    """The thresholds as a tuple; empty is allowed when the final stage is kept."""
    empty = hasattr(thresholds, "__len__") and len(thresholds) == 0
    if empty and keep_final:
        return ()
    if empty:
        raise ValueError(
            "thresholds is empty: nothing would be kept. Pass thresholds, or "
            "keep_final=True to keep every network after max_epochs."
        )
    return check_thresholds(thresholds)


def _train_networks(
    X,
    y,
    n_networks,
    widths,
    thresholds,
    *,
    activation,
    activation_module,
    lr,
    batch_size,
    max_epochs,
    test_size,
    random_state,
    device,
    verbose,
    directory,
    checkpoint,
    checkpoint_every,
    monitor,
    keep_final,
):
    draws = _Draws.draw(
        random_state, n_networks=n_networks, y=y, test_size=test_size, widths=widths
    )
    snapshots = _Snapshots(
        n_networks=n_networks,
        widths=widths,
        activation=activation,
        thresholds=thresholds,
        directory=directory,
    )
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
    watcher = None
    if monitor is not None:
        watcher = StackedMonitor(monitor, n_networks, snapshots.build)
    saved = resume = None
    if checkpoint is not None:
        run_fingerprint = _run_fingerprint(
            X,
            y,
            draws,
            monitor,
            widths=widths,
            thresholds=thresholds,
            activation=activation,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            test_size=test_size,
        )
        saved = _Checkpoint(checkpoint, run_fingerprint, draws, snapshots, watcher)
        resume = saved.resume()

    with _progress_bar(max_epochs, resume, verbose) as on_epoch:
        run = _train_stacked(
            [(weight.to(device), bias.to(device)) for weight, bias in draws.stacks],
            torch.as_tensor(X, device=device),
            torch.as_tensor(y, device=device),
            torch.as_tensor(draws.train_indices, device=device),
            draws.epoch_orders,
            thresholds,
            activation=activation_module,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            test_indices=torch.as_tensor(draws.test_indices, device=device),
            on_snapshot=snapshots.take,
            on_epoch=on_epoch,
            resume=resume,
            on_checkpoint=None if saved is None else saved.write,
            checkpoint_every=checkpoint_every,
            on_monitor=watcher,
            monitor_every=None if monitor is None else monitor.every,
        )

    result = _training_result(
        run,
        draws=draws,
        snapshots=snapshots,
        watcher=watcher,
        widths=widths,
        thresholds=thresholds,
        activation=activation,
    )
    if keep_final:
        result = _with_finals(result, run, snapshots, X, y, activation_module)
    if directory is not None:
        write_training_log(directory, result)
    missed = np.flatnonzero(~result.reached.all(axis=1))
    if len(missed):
        warn_thresholds_not_reached(
            missed,
            n_networks=n_networks,
            max_epochs=max_epochs,
            consequence="their missing snapshots are None and TrainingResult.log "
            "lists them"
            + ("; their final weights are in TrainingResult.final" * keep_final),
            # Past train_networks, at its caller's line.
            stacklevel=3,
        )
    return result


def _run_fingerprint(X, y, draws, monitor, **arguments):
    """What the checkpoint of a run must have been written for."""
    run_fingerprint = fingerprint(X=X, y=y, seeds=draws.seeds, **arguments)
    if monitor is not None:
        run_fingerprint["monitor"] = monitor_fingerprint(monitor)
    return run_fingerprint


def _with_finals(result, run, snapshots, X, y, activation):
    """``result`` with every network's final weights, accuracies and files.

    ``run.final`` holds them, from the checkpoint too when the run resumed;
    the test accuracy is measured here, on the CPU, on the unpadded weights
    the returned networks have.
    """
    n_networks = len(result.seeds)
    networks = [
        snapshots.build([(weight[k], bias[k]) for weight, bias in run.final])
        for k in range(n_networks)
    ]
    last = np.asarray(result.n_epochs_trained) - 1
    test_accuracy = _accuracy(
        [weight for weight, _ in run.final],
        [bias for _, bias in run.final],
        torch.as_tensor(X),
        torch.as_tensor(y),
        torch.as_tensor(result.test_indices),
        activation,
    )
    result = dataclasses.replace(
        result,
        final=networks,
        final_train_accuracy=result.train_accuracy[np.arange(n_networks), last],
        final_test_accuracy=test_accuracy,
        final_paths=[None] * n_networks,
    )
    if snapshots.directory is not None:
        for k, network in enumerate(networks):
            path = os.path.join(os.fspath(snapshots.directory), final_name(k))
            save_snapshot(
                network,
                path,
                accuracy=result.final_train_accuracy[k],
                epoch=int(result.n_epochs_trained[k]),
            )
            result.final_paths[k] = path
    return result


def _training_result(run, *, draws, snapshots, watcher, widths, thresholds, activation):
    """The :class:`TrainingResult` of a ``_train_stacked`` run."""
    return TrainingResult(
        thresholds=thresholds,
        widths=widths,
        activation=activation,
        snapshots=snapshots.modules,
        snapshot_epoch=run.snapshot_epoch,
        snapshot_train_accuracy=run.snapshot_train_accuracy,
        snapshot_test_accuracy=run.snapshot_test_accuracy,
        train_accuracy=run.train_accuracy,
        n_epochs_trained=run.n_epochs_trained,
        train_indices=draws.train_indices,
        test_indices=draws.test_indices,
        seeds=draws.seeds,
        paths=snapshots.paths,
        topology=None if watcher is None else watcher.record(),
    )


@dataclasses.dataclass
class _Draws:
    """Everything random about the networks of a run, drawn from its seed.

    Network ``k`` depends only on ``seeds[k]``: its split, its initial weights
    and then, from the same generator, its minibatch orders.
    """

    seeds: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray
    generators: list
    stacks: list

    @classmethod
    def draw(cls, random_state, *, n_networks, y, test_size, widths):
        seeds = check_random_state(random_state).randint(
            np.iinfo(np.int32).max, size=n_networks
        )
        splits = [_split(y, test_size, int(seed)) for seed in seeds]
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        return cls(
            seeds=seeds,
            train_indices=np.stack([train for train, _ in splits]),
            test_indices=np.stack([test for _, test in splits]),
            generators=generators,
            stacks=_initial_stacks(widths, generators),
        )

    def epoch_orders(self, epoch, networks):
        """Each listed network's order of its training rows in ``epoch``."""
        n_train = self.train_indices.shape[1]
        return torch.stack(
            [torch.randperm(n_train, generator=self.generators[k]) for k in networks]
        )


class _Snapshots:
    """The snapshots of a run as they are taken, and their files in ``directory``."""

    def __init__(self, *, n_networks, widths, activation, thresholds, directory):
        self.widths = widths
        self.activation = activation
        self.thresholds = thresholds
        self.directory = directory
        self.modules = [[None] * n_networks for _ in thresholds]
        self.paths = [[None] * n_networks for _ in thresholds]
        # The records of snapshots.jsonl, in the order the files are written.
        self.records = []

    def build(self, layers):
        """The MLP of one network's ``(weight, bias)`` layers."""
        return mlp_from_state_dict(self.widths, self.activation, _state_dict(layers))

    def take(self, network, j, epoch, train_acc, test_acc, layers):
        """``_train_stacked``'s ``on_snapshot``: keep it, and write its file."""
        module = self.build(layers)
        self.modules[j][network] = module
        if self.directory is None:
            return
        path = self._path(network, j)
        save_snapshot(
            module, path, threshold=self.thresholds[j], accuracy=train_acc, epoch=epoch
        )
        self.paths[j][network] = path
        self.records.append(
            snapshot_record(
                network=network,
                threshold_index=j,
                threshold=self.thresholds[j],
                accuracy=train_acc,
                test_accuracy=test_acc,
                epoch=epoch,
            )
        )
        write_log(self.directory, self.records)

    def restore(self, state_dicts, records):
        """The snapshots a checkpoint holds, whose files were written before it."""
        for j, row in enumerate(state_dicts):
            for k, state_dict in enumerate(row):
                if state_dict is not None:
                    self.modules[j][k] = mlp_from_state_dict(
                        self.widths, self.activation, state_dict
                    )
                    if self.directory is not None:
                        self.paths[j][k] = self._path(k, j)
        self.records.extend(records)

    def _path(self, network, j):
        return os.path.join(os.fspath(self.directory), snapshot_name(network, j))


@dataclasses.dataclass
class _Checkpoint:
    """A run's checkpoint file: what resumes from it, and what writes it."""

    path: object
    fingerprint: dict
    draws: _Draws
    snapshots: _Snapshots
    watcher: object

    def resume(self):
        """The stored ``TrainingState.to_checkpoint()``, or ``None``.

        The rest of the run (minibatch orders, snapshots, monitor) continues
        from the checkpoint too.
        """
        # stacklevel 3: a warning about the file points at train_networks.
        stored = read_checkpoint(self.path, self.fingerprint, stacklevel=3)
        if stored is None:
            return None
        for generator, state in zip(self.draws.generators, stored["generators"]):
            generator.set_state(state)
        self.snapshots.restore(stored["snapshots"], stored["records"])
        if self.watcher is not None:
            self.watcher.restore(stored["monitor"])
        return stored["state"]

    def write(self, state):
        """``_train_stacked``'s ``on_checkpoint``: the whole run, to the file."""
        write_checkpoint(
            self.path,
            fingerprint=self.fingerprint,
            state=state,
            generators=self.draws.generators,
            snapshots=self.snapshots.modules,
            records=self.snapshots.records,
            monitor=None if self.watcher is None else self.watcher.state(),
        )


@contextlib.contextmanager
def _progress_bar(max_epochs, resume, verbose):
    """A tqdm bar over epochs, and the ``on_epoch`` that advances it."""
    start = 0 if resume is None else int(resume["epoch"])
    with tqdm(
        total=max_epochs, initial=start, disable=not verbose, unit="epoch"
    ) as bar:

        def on_epoch(epoch, n_training):
            bar.set_postfix(training=n_training)
            bar.update()

        yield on_epoch
