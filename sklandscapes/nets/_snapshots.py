"""Weight snapshots at training-accuracy thresholds: files, and a skorch callback."""

import dataclasses
import json
import os

import numpy as np
import torch
from skorch.callbacks import Callback

from sklandscapes._io import atomic_write
from sklandscapes.nets._mlp import ACTIVATIONS, MLP, mlp_from_state_dict

__all__ = [
    "AccuracyThresholdSnapshots",
    "Snapshot",
    "load_snapshot",
    "load_snapshot_metadata",
    "save_snapshot",
]

SNAPSHOT_FORMAT = "sklandscapes-snapshot"
SNAPSHOT_VERSION = 1
LOG_NAME = "snapshots.jsonl"


def check_thresholds(thresholds):
    """Return ``thresholds`` as a tuple of floats in (0, 1], strictly increasing."""
    try:
        values = np.asarray(thresholds, dtype=float)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or values.size == 0:
        raise ValueError(
            "thresholds must be a non-empty 1-D sequence of training accuracies "
            f"such as (0.5, 0.9, 1.0), got {thresholds!r}."
        )
    if not np.all((values > 0) & (values <= 1)):
        raise ValueError(
            f"thresholds must lie in (0, 1] (they are training accuracies), got "
            f"{thresholds!r}."
        )
    if np.any(np.diff(values) <= 0):
        raise ValueError(
            f"thresholds must be strictly increasing, got {thresholds!r}; sort them "
            "and drop duplicates."
        )
    return tuple(float(v) for v in values)


def write_log(directory, records):
    """Rewrite ``directory/snapshots.jsonl`` atomically, one JSON object a line."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    atomic_write(os.path.join(directory, LOG_NAME), lambda f: f.write(text.encode()))


def _optional(value, kind):
    return None if value is None else kind(value)


def save_snapshot(module, path, *, threshold=None, accuracy=None, epoch=None):
    """Write ``module``'s weights atomically to ``path`` in the snapshot format.

    The file is ``torch.save`` of a dict with ``format="sklandscapes-snapshot"``,
    ``version=1``, ``module_class="MLP"``, ``module_kwargs`` (``widths`` and
    ``activation``), ``state_dict`` (CPU tensors), ``threshold``, ``accuracy``
    and ``epoch``. It holds tensors, numbers and strings only, so
    :func:`load_snapshot` reads it with ``weights_only=True``.

    Parameters
    ----------
    module : MLP
        The network. Only a named activation (a string) can be saved.
    path : str or path-like
        Destination; written to a temporary file in the same directory and
        renamed, so an interrupted write never leaves a truncated snapshot.
    threshold : float or None, default=None
        The training-accuracy threshold this snapshot was taken for.
    accuracy : float or None, default=None
        The training accuracy of the network when it was taken.
    epoch : int or None, default=None
        The (1-based) epoch after which it was taken.

    See Also
    --------
    load_snapshot : Read the network back.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_snapshot(MLP((2, 3, 2), random_state=0), path, threshold=0.9,
    ...               accuracy=0.93, epoch=4)
    >>> load_snapshot(path).widths
    (2, 3, 2)
    """
    if not isinstance(module, MLP):
        raise ValueError(
            f"save_snapshot saves sklandscapes.nets.MLP modules, got "
            f"{type(module).__name__}; for a skorch net pass net.module_."
        )
    if not isinstance(module.activation, str):
        raise ValueError(
            "only an MLP with a named activation can be saved as a snapshot "
            f"(one of {sorted(ACTIVATIONS)}), got activation={module.activation!r}."
        )
    state_dict = {
        key: value.detach().to("cpu", copy=True)
        for key, value in module.state_dict().items()
    }
    payload = dict(
        format=SNAPSHOT_FORMAT,
        version=SNAPSHOT_VERSION,
        module_class="MLP",
        module_kwargs={"widths": list(module.widths), "activation": module.activation},
        state_dict=state_dict,
        threshold=_optional(threshold, float),
        accuracy=_optional(accuracy, float),
        epoch=_optional(epoch, int),
    )
    atomic_write(path, lambda file: torch.save(payload, file))


def _read_snapshot(path, device):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No snapshot file at {path!r}.")
    expected = (
        f"expected a file written by sklandscapes.nets.save_snapshot (a dict with "
        f"format={SNAPSHOT_FORMAT!r})"
    )
    try:
        # weights_only: a snapshot holds tensors, numbers and strings, so nothing
        # in it needs arbitrary unpickling; map_location makes CUDA snapshots
        # load on a CPU-only machine.
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path!r} is not a sklandscapes snapshot: {expected}; torch.load "
            f"failed with {type(error).__name__}: {error}"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path!r} is not a sklandscapes snapshot: {expected}.")
    if payload.get("version") != SNAPSHOT_VERSION or payload.get("module_class") != (
        "MLP"
    ):
        raise ValueError(
            f"{path!r} is a snapshot of version {payload.get('version')!r} with "
            f"module_class={payload.get('module_class')!r}; this sklandscapes reads "
            f"version {SNAPSHOT_VERSION} with module_class='MLP'."
        )
    return payload


def load_snapshot(path, device="cpu"):
    """Read a snapshot written by :func:`save_snapshot` as an ``MLP`` module.

    Parameters
    ----------
    path : str or path-like
        The snapshot file.
    device : str or torch.device, default="cpu"
        Where the weights go; a snapshot taken on a GPU loads on a CPU-only
        machine.

    Returns
    -------
    module : MLP
        The network, in eval mode.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a snapshot.

    See Also
    --------
    load_snapshot_metadata : Threshold, accuracy and epoch of a snapshot.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> net = MLP((2, 4, 2), random_state=0)
    >>> save_snapshot(net, path)
    >>> bool(torch.equal(load_snapshot(path)(torch.ones(1, 2)),
    ...                  net(torch.ones(1, 2))))
    True
    """
    payload = _read_snapshot(path, device)
    kwargs = payload["module_kwargs"]
    return mlp_from_state_dict(
        kwargs["widths"], kwargs["activation"], payload["state_dict"]
    )


def load_snapshot_metadata(path):
    """Return a snapshot's ``threshold``, ``accuracy``, ``epoch`` and ``module_kwargs``.

    Parameters
    ----------
    path : str or path-like
        The snapshot file.

    Returns
    -------
    metadata : dict
        Keys ``"threshold"``, ``"accuracy"``, ``"epoch"`` (``None`` where the
        snapshot was saved without them) and ``"module_kwargs"``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot_metadata
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_snapshot(MLP((2, 4, 2), random_state=0), path, threshold=0.5,
    ...               accuracy=0.75, epoch=2)
    >>> meta = load_snapshot_metadata(path)
    >>> meta["threshold"], meta["accuracy"], meta["epoch"]
    (0.5, 0.75, 2)
    """
    payload = _read_snapshot(path, "cpu")
    keys = ("threshold", "accuracy", "epoch", "module_kwargs")
    return {key: payload[key] for key in keys}


@dataclasses.dataclass
class Snapshot:
    """The weights of a network when it first reached a training-accuracy threshold.

    Attributes
    ----------
    threshold : float
        The threshold reached.
    accuracy : float
        The training accuracy after ``epoch`` (at least ``threshold``).
    epoch : int
        The first epoch (1-based, as in skorch's history) whose training
        accuracy reached ``threshold``.
    state_dict : dict of str to torch.Tensor
        A copy of the module's ``state_dict`` on the CPU.
    path : str or None
        The snapshot file, when one was written.

    Examples
    --------
    The weights go back into a network of the same architecture the usual
    torch way:

    >>> import numpy as np
    >>> from sklandscapes.nets import (
    ...     MLP, AccuracyThresholdSnapshots, make_mlp_classifier)
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 16, dtype=np.float32)
    >>> y = np.array([0, 1] * 16)
    >>> callback = AccuracyThresholdSnapshots(thresholds=(1.0,))
    >>> net = make_mlp_classifier((2, 8, 2), lr=0.05, max_epochs=200,
    ...                           train_split=None, random_state=0, verbose=0,
    ...                           callbacks=[callback], device="cpu").fit(X, y)
    >>> snapshot = callback.snapshots_[0]
    >>> snapshot.threshold, snapshot.accuracy
    (1.0, 1.0)
    >>> module = MLP((2, 8, 2))
    >>> module.load_state_dict(snapshot.state_dict)
    <All keys matched successfully>
    """

    threshold: float
    accuracy: float
    epoch: int
    state_dict: dict
    path: str | None = None


class AccuracyThresholdSnapshots(Callback):
    """skorch callback: keep the weights the first time training accuracy
    reaches each threshold, and stop training after the last one.

    After every epoch it reads the training accuracy that ``monitor`` names in
    the net's history (:func:`make_mlp_classifier` records ``"train_acc"``, the
    accuracy of the model after the epoch on the whole training set). For every
    threshold not yet reached that this accuracy reaches, it stores a
    :class:`Snapshot` of the module (one epoch may reach several thresholds;
    each then gets a snapshot of that epoch). When the last threshold is
    reached it stops training the way skorch's ``EarlyStopping`` does, by
    raising ``KeyboardInterrupt``, which skorch's ``fit`` catches. Later calls
    to ``partial_fit`` then train normally and take no more snapshots.

    Parameters
    ----------
    thresholds : sequence of float
        Training accuracies in (0, 1], strictly increasing.
    directory : str, path-like or None, default=None
        If given (created when missing), every snapshot is also written there
        as it is taken, to ``snapshot_<j>.pt`` for threshold index ``j``, in
        the format of :func:`save_snapshot`, together with ``snapshots.jsonl``
        (one line per snapshot: threshold, accuracy, epoch, file). Both are
        written atomically, so a run that is interrupted keeps every snapshot
        already taken. Needs the module to be an :class:`MLP`.
    monitor : str, default="train_acc"
        The history key holding the training accuracy.

    Attributes
    ----------
    snapshots_ : list of Snapshot
        One per threshold reached, in threshold order.

    See Also
    --------
    make_mlp_classifier : A classifier that records ``"train_acc"``.
    train_networks : The same snapshots for many networks trained at once.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import AccuracyThresholdSnapshots, make_mlp_classifier
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 16, dtype=np.float32)
    >>> y = np.array([0, 1] * 16)
    >>> snapshots = AccuracyThresholdSnapshots(thresholds=(0.75, 1.0))
    >>> net = make_mlp_classifier((2, 8, 2), lr=0.05, max_epochs=200,
    ...                           train_split=None, random_state=0, verbose=0,
    ...                           callbacks=[snapshots], device="cpu")
    >>> net = net.fit(X, y)
    >>> [s.threshold for s in snapshots.snapshots_]
    [0.75, 1.0]
    >>> len(net.history) == snapshots.snapshots_[-1].epoch
    True
    """

    def __init__(self, thresholds, directory=None, monitor="train_acc"):
        self.thresholds = thresholds
        self.directory = directory
        self.monitor = monitor

    def initialize(self):
        check_thresholds(self.thresholds)
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
        self.snapshots_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        thresholds = check_thresholds(self.thresholds)
        if len(self.snapshots_) == len(thresholds):
            return
        try:
            accuracy = float(net.history[-1, self.monitor])
        except KeyError:
            raise ValueError(
                f"AccuracyThresholdSnapshots(monitor={self.monitor!r}) found no "
                f"{self.monitor!r} in the history; add a training-accuracy "
                "scoring callback, e.g. EpochScoring('accuracy', on_train=True, "
                "use_caching=False, name='train_acc', lower_is_better=False), or "
                "build the net with make_mlp_classifier."
            ) from None
        epoch = int(net.history[-1, "epoch"])
        for index in range(len(self.snapshots_), len(thresholds)):
            if accuracy < thresholds[index]:
                break
            self._take(net.module_, index, thresholds[index], accuracy, epoch)
        if len(self.snapshots_) == len(thresholds):
            raise KeyboardInterrupt

    def _take(self, module, index, threshold, accuracy, epoch):
        state_dict = {
            key: value.detach().to("cpu", copy=True)
            for key, value in module.state_dict().items()
        }
        path = None
        if self.directory is not None:
            path = os.path.join(os.fspath(self.directory), f"snapshot_{index:02d}.pt")
            save_snapshot(
                module, path, threshold=threshold, accuracy=accuracy, epoch=epoch
            )
        self.snapshots_.append(Snapshot(threshold, accuracy, epoch, state_dict, path))
        if self.directory is not None:
            records = [
                dict(
                    threshold=s.threshold,
                    accuracy=s.accuracy,
                    epoch=s.epoch,
                    file=os.path.basename(s.path),
                )
                for s in self.snapshots_
            ]
            write_log(self.directory, records)
