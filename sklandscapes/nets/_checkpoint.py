"""The files of batched training: its resumable checkpoint and its training log.

A checkpoint is one ``torch.save`` of a dict of plain values and tensors, so
that ``torch.load(weights_only=True)`` reads it::

    format, version   CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    fingerprint       the arguments and data it was written for (fingerprint)
    state             TrainingState.to_checkpoint(), NumPy arrays as tensors
    generators        the random state of every network's minibatch order
    snapshots         [threshold][network] state dict, or None where not taken
    records           the records of snapshots.jsonl so far
    monitor           StackedMonitor.state(), or None without a monitor

The training log of a snapshot folder is ``training_log.json`` (the result's
per-network log) and ``snapshots.jsonl`` (one record per snapshot file).
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings

import numpy as np
import torch

from sklandscapes._io import atomic_write
from sklandscapes.exceptions import DamagedFileWarning
from sklandscapes.nets._snapshots import LOG_NAME

__all__ = ["training_log_texts", "write_training_log"]

# Default epochs between two training checkpoints: writing one costs a small
# fraction of an epoch, and an interrupt loses at most this many epochs.
CHECKPOINT_EVERY = 10
CHECKPOINT_FORMAT = "sklandscapes-training-checkpoint"
CHECKPOINT_VERSION = 1

# Keys of the checkpoint's "state" that hold NumPy arrays (stored as tensors).
_ARRAY_KEYS = (
    "training",
    "train_accuracy",
    "n_epochs_trained",
    "snapshot_epoch",
    "snapshot_train",
    "snapshot_test",
    "n_reached",
)


def snapshot_name(network, threshold_index):
    """File name of a network's snapshot at a threshold, inside its folder."""
    return f"network{network:04d}_threshold{threshold_index:02d}.pt"


def final_name(network):
    """File name of a network's final weights (``keep_final``), in its folder."""
    return f"network{network:04d}_final.pt"


def json_float(value):
    """``value`` as a JSON number, or ``None`` for NaN (which JSON lacks)."""
    return None if np.isnan(value) else float(value)


def fingerprint(
    *,
    X,
    y,
    widths,
    thresholds,
    activation,
    lr,
    batch_size,
    max_epochs,
    test_size,
    seeds,
):
    """What a checkpoint must have been written for, as plain values."""
    digest = hashlib.sha256()
    for array in (X, y):
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return dict(
        data=digest.hexdigest(),
        widths=list(widths),
        thresholds=list(thresholds),
        activation=activation,
        lr=float(lr),
        batch_size=int(batch_size),
        max_epochs=int(max_epochs),
        test_size=float(test_size),
        seeds=[int(seed) for seed in seeds],
    )


def write_checkpoint(
    path, *, fingerprint, state, generators, snapshots, records, monitor
):
    """Write a checkpoint atomically (the format is in this module's docstring).

    ``state`` is a ``TrainingState.to_checkpoint()``, ``snapshots`` holds the
    snapshot modules (or ``None``) by threshold and network, ``monitor`` is a
    ``StackedMonitor.state()`` or ``None``.
    """
    payload = dict(
        format=CHECKPOINT_FORMAT,
        version=CHECKPOINT_VERSION,
        fingerprint=fingerprint,
        state=_to_tensors(state),
        generators=[generator.get_state() for generator in generators],
        snapshots=[
            [
                None
                if module is None
                else {k: v.clone() for k, v in module.state_dict().items()}
                for module in row
            ]
            for row in snapshots
        ],
        records=[dict(record) for record in records],
        monitor=monitor,
    )
    atomic_write(path, lambda file: torch.save(payload, file))


def read_checkpoint(path, fingerprint, *, stacklevel=1):
    """The stored checkpoint, or ``None`` when there is none or it is unusable.

    An unusable checkpoint (damaged, or written for another ``fingerprint``)
    is deleted after a :class:`DamagedFileWarning`; ``stacklevel`` places that
    warning as ``warnings.warn``'s does, counted from the caller of this
    function. The "state" of the returned dict holds NumPy arrays again.
    """
    if not os.path.exists(path):
        return None
    try:
        stored = _load(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read means damaged
        lines = str(exc).strip().splitlines()
        reason = type(exc).__name__ + (f": {lines[0]}" if lines else "")
        _discard(path, f"is damaged ({reason})", stacklevel + 1)
        return None
    if stored.get("fingerprint") != fingerprint:
        changed = sorted(
            key
            for key in {*fingerprint, *stored.get("fingerprint", {})}
            if stored.get("fingerprint", {}).get(key) != fingerprint.get(key)
        )
        _discard(
            path,
            f"was written for other arguments (differs in {', '.join(changed)})",
            stacklevel + 1,
        )
        return None
    return stored


def _load(path):
    """The checkpoint at ``path``; raises on anything that is not one."""
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or stored.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a file of format {CHECKPOINT_FORMAT!r}")
    if stored.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"version {stored.get('version')!r}")
    state = {
        key: value.numpy() if key in _ARRAY_KEYS else value
        for key, value in stored["state"].items()
    }
    stored["state"] = state
    for key in ("generators", "snapshots", "records"):
        stored[key]  # noqa: B018 - a missing key means a damaged file
    return stored


def _to_tensors(state):
    """NumPy arrays as tensors, so that ``torch.load(weights_only=True)`` reads them."""
    return {
        key: torch.from_numpy(value.copy()) if isinstance(value, np.ndarray) else value
        for key, value in state.items()
    }


def _discard(path, problem, stacklevel):
    # stacklevel counts from read_checkpoint's caller; this frame adds one.
    warnings.warn(
        f"training checkpoint {os.fspath(path)!r} {problem}; deleted, training "
        "starts over",
        DamagedFileWarning,
        stacklevel=stacklevel + 1,
    )
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_training_log(directory, result):
    """Write ``training_log.json`` and ``snapshots.jsonl`` of ``result`` anew."""
    for name, text in training_log_texts(result).items():
        atomic_write(
            os.path.join(directory, name), lambda f, text=text: f.write(text.encode())
        )


def training_log_texts(result):
    """The text of ``training_log.json`` and ``snapshots.jsonl`` of ``result``.

    Paths in them are relative to the snapshot folder, so that it can be
    moved; the records are in the order the snapshots were taken.
    """
    local = dataclasses.replace(
        result,
        paths=[
            [None if path is None else os.path.basename(path) for path in row]
            for row in result.paths
        ],
        final_paths=None
        if result.final_paths is None
        else [
            None if path is None else os.path.basename(path)
            for path in result.final_paths
        ],
    )
    taken = sorted(
        (int(result.snapshot_epoch[k, j]), int(k), int(j))
        for k, j in zip(*np.nonzero(result.reached))
    )
    records = [
        snapshot_record(
            network=k,
            threshold_index=j,
            threshold=result.thresholds[j],
            accuracy=result.snapshot_train_accuracy[k, j],
            test_accuracy=result.snapshot_test_accuracy[k, j],
            epoch=epoch,
        )
        for epoch, k, j in taken
    ]
    return {
        "training_log.json": json.dumps(local.log, indent=1),
        LOG_NAME: "".join(json.dumps(record) + "\n" for record in records),
    }


def snapshot_record(
    *, network, threshold_index, threshold, accuracy, test_accuracy, epoch
):
    """One record of ``snapshots.jsonl``: a snapshot file and when it was taken."""
    return dict(
        network=int(network),
        threshold_index=threshold_index,
        threshold=threshold,
        accuracy=float(accuracy),
        test_accuracy=json_float(test_accuracy),
        epoch=int(epoch),
        file=snapshot_name(network, threshold_index),
    )
