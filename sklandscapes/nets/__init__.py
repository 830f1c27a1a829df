"""The torch side of sklandscapes: networks, their training and their snapshots.

:class:`MLP` is the paper's network; :func:`make_mlp_classifier` wraps it in a
skorch classifier whose history records the training accuracy, and
:class:`AccuracyThresholdSnapshots` keeps its weights at training-accuracy
thresholds. :func:`train_networks` trains many networks of one architecture at
once and snapshots each at the same thresholds. Snapshot files are read by
:func:`load_snapshot` (and by ``ActivationExtractor``).

Importing this subpackage imports torch and skorch (``pip install
sklandscapes[torch]``); ``import sklandscapes`` does not.
"""

from sklandscapes.nets._batched import (
    ThresholdNotReachedWarning,
    TrainingResult,
    train_networks,
    warn_thresholds_not_reached,
)
from sklandscapes.nets._mlp import MLP
from sklandscapes.nets._monitor import (
    TopologicalComplexity,
    TopologyRecord,
    history_complexity,
)
from sklandscapes.nets._skorch import (
    ThreadedNeuralNetClassifier,
    make_mlp_classifier,
    train_accuracy_scoring,
)
from sklandscapes.nets._snapshots import (
    AccuracyThresholdSnapshots,
    Snapshot,
    load_snapshot,
    load_snapshot_metadata,
    save_snapshot,
)
from sklandscapes.nets._threads import torch_threads

__all__ = [
    "MLP",
    "AccuracyThresholdSnapshots",
    "Snapshot",
    "ThreadedNeuralNetClassifier",
    "ThresholdNotReachedWarning",
    "TopologicalComplexity",
    "TopologyRecord",
    "TrainingResult",
    "history_complexity",
    "load_snapshot",
    "load_snapshot_metadata",
    "make_mlp_classifier",
    "save_snapshot",
    "torch_threads",
    "train_accuracy_scoring",
    "train_networks",
    "warn_thresholds_not_reached",
]
