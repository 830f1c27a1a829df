"""Training the networks of an experiment, one stored group at a time."""

import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.experiments import _data, _folder

# Epochs between two checkpoints of the group in training (see train).
_CHECKPOINT_EVERY = 10


def train(config, X, y, out, device, verbose, monitor_batch=None):
    """Train (or, on resume, reload) the networks, one stored group at a time.

    Snapshots are written as they are taken, each finished group as a whole
    (``training/group<g>.pt``), and the group in progress keeps a checkpoint of
    its whole training state every ``_CHECKPOINT_EVERY`` epochs
    (``training/group<g>.checkpoint.pt``), so an interrupted run loses at most
    that many epochs and resumes to the same result, bit for bit. On resume,
    a stored group, snapshot or checkpoint that cannot be read back whole is
    reported as a :class:`~sklandscapes.exceptions.DamagedFileWarning` and
    computed again. Paths stored in the folder are relative to it.

    With ``config.monitor_every``, the networks' topology is watched on
    ``monitor_batch`` (default: the run's first persistence batch) during
    training (:func:`monitor_settings`).
    """
    if config.monitor_every is not None and monitor_batch is None:
        monitor_batch = _data.load_data(config).batches[0]
    groups = []
    for g in range(math.ceil(config.n_networks / config.networks_per_group)):
        stored = _stored_group(out, g)
        if stored is None:
            stored = _train_group(config, X, y, out, g, device, verbose, monitor_batch)
        groups.append(stored)
    merged = _merge_training(groups)
    _warn_missed_thresholds(config, merged)
    training_dir = out / _folder.TRAINING_DIR
    _folder.write_checked(training_dir / "log.json", json.dumps(merged.log, indent=1))
    return dataclasses.replace(
        merged,
        paths=[[_folder.resolve_path(out, p) for p in row] for row in merged.paths],
    )


def _group_files(out, g):
    """The stored group, its checkpoint and its snapshot folder."""
    training_dir = out / _folder.TRAINING_DIR
    return (
        training_dir / f"group{g:04d}.pt",
        training_dir / f"group{g:04d}.checkpoint.pt",
        training_dir / "snapshots" / f"group{g:04d}",
    )


def _stored_group(out, g):
    """Group ``g`` as stored in ``out``, its snapshot files repaired; or None."""
    path, _, directory = _group_files(out, g)
    stored = _folder.load_intact(path, _load_group)
    if stored is None:
        return None
    # The layout is fixed, so a stored absolute path (maybe of another
    # machine) maps to this folder too.
    stored = dataclasses.replace(
        stored,
        paths=[
            [
                None
                if p is None
                else _folder.relative_path(out, directory / Path(p).name)
                for p in row
            ]
            for row in stored.paths
        ],
    )
    _repair_snapshots(out, directory, stored)
    return stored


def _train_group(config, X, y, out, g, device, verbose, monitor_batch):
    """Train group ``g`` (from its checkpoint, if any) and store it."""
    import torch

    from sklandscapes.nets import ThresholdNotReachedWarning, train_networks

    path, checkpoint, directory = _group_files(out, g)
    start = g * config.networks_per_group
    size = min(config.networks_per_group, config.n_networks - start)
    if verbose:
        print(
            f"training networks {start}-{start + size - 1} of {config.n_networks}",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        # Networks that missed a threshold are numbered within their group
        # here; one warning after the merge numbers them as log.json does.
        warnings.simplefilter("ignore", ThresholdNotReachedWarning)
        result = train_networks(
            X,
            y,
            size,
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
            directory=directory,
            checkpoint=checkpoint,
            checkpoint_every=_CHECKPOINT_EVERY,
            monitor=monitor_settings(config, monitor_batch),
        )
    stored = dataclasses.replace(
        result,
        paths=[[_folder.relative_path(out, p) for p in row] for row in result.paths],
    )
    atomic_write(path, lambda handle: torch.save(stored, handle))
    checkpoint.unlink(missing_ok=True)
    # Snapshots restored from a checkpoint were written before it: check them.
    _repair_snapshots(out, directory, stored)
    return stored


def _warn_missed_thresholds(config, merged):
    """One warning for every network that missed a threshold, numbered as in
    ``training/log.json``."""
    from sklandscapes.nets import warn_thresholds_not_reached

    missed = np.flatnonzero(~merged.reached.all(axis=1))
    if len(missed):
        warn_thresholds_not_reached(
            missed,
            n_networks=config.n_networks,
            max_epochs=config.max_epochs,
            numbering="numbered as in training/log.json",
            consequence="the report marks the thresholds that fewer than 90% of "
            "them reached",
            # Past train, _run._train, _run._run and run_experiment: at the
            # line that called run_experiment.
            stacklevel=6,
        )


def monitor_settings(config, batch):
    """``train_networks``'s ``monitor=`` for a run, or None.

    The monitor measures what the run measures (method, homology dimensions,
    landscape range, the paper's centering) on ``config.monitor_points`` points
    of ``batch``, drawn with the run's seed.
    """
    if config.monitor_every is None:
        return None
    rng = np.random.default_rng([config.seed, 12])
    n_points = min(config.monitor_points, len(batch))
    points = np.sort(rng.choice(len(batch), n_points, replace=False))
    return dict(
        inputs=batch[points],
        every=config.monitor_every,
        method=config.method,
        homology_dimensions=config.homology_dimensions,
        sample_range=config.sample_range,
    )


def _load_group(path):
    import torch

    from sklandscapes.nets import TrainingResult

    group = torch.load(path, weights_only=False)
    if not isinstance(group, TrainingResult):
        raise ValueError(f"expected a TrainingResult, got {type(group).__name__}")
    return group


def _repair_snapshots(out, directory, group):
    """Write again every snapshot file of a stored group that is not intact.

    The group holds every snapshot's weights, so a damaged or missing snapshot
    file is rewritten from them; so are the folder's two log files.
    """
    from sklandscapes.nets import load_snapshot, save_snapshot
    from sklandscapes.nets._batched import training_log_texts

    for j, row in enumerate(group.snapshots):
        for k, module in enumerate(row):
            if module is None or group.paths[j][k] is None:
                continue
            path = Path(_folder.resolve_path(out, group.paths[j][k]))

            def intact(file, module=module):
                stored = load_snapshot(file).state_dict()
                for key, value in module.state_dict().items():
                    if not _torch_equal(stored[key], value):
                        raise ValueError(f"{key} differs from the stored group")
                return True

            if path.exists() and _folder.load_intact(path, intact):
                continue
            save_snapshot(
                module,
                path,
                threshold=group.thresholds[j],
                accuracy=group.snapshot_train_accuracy[k, j],
                epoch=group.snapshot_epoch[k, j],
            )
    for name, text in training_log_texts(group).items():
        _folder.write_checked(directory / name, text)


def _torch_equal(first, second):
    import torch

    return first.shape == second.shape and bool(torch.equal(first, second))


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
    from sklandscapes.nets._monitor import merge_records

    topology = merge_records(
        [getattr(g, "topology", None) for g in groups], [len(g.seeds) for g in groups]
    )
    return dataclasses.replace(
        first,
        topology=topology,
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
