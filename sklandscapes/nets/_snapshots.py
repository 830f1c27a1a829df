"""Weight snapshots at training-accuracy thresholds: files, and a skorch callback."""

import dataclasses
import json
import os

import numpy as np
from skorch.callbacks import Callback

from sklandscapes._io import atomic_write
from sklandscapes._snapshot_files import (
    load_snapshot,
    load_snapshot_metadata,
    save_snapshot,
)

__all__ = [
    "AccuracyThresholdSnapshots",
    "Snapshot",
    "load_snapshot",
    "load_snapshot_metadata",
    "save_snapshot",
]

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
