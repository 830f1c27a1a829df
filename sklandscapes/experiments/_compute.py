"""The stages of an experiment: data, training, diagrams, observations."""

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
from sklandscapes.experiments import _folder
from sklandscapes.experiments._config import ExperimentError
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence

# How long to try reaching a Dask scheduler before giving up.
_SCHEDULER_TIMEOUT = "10s"

# Epochs between two checkpoints of the group in training (see train).
_CHECKPOINT_EVERY = 10


@dataclasses.dataclass
class Data:
    X: np.ndarray  # training inputs
    y: np.ndarray
    batches: list  # persistence batches, one per input subsample
    batch_labels: list


def load_data(config):
    from sklandscapes import datasets

    rng = np.random.default_rng(config.seed)
    if config.experiment == "synthetic":
        X, y = datasets.make_nine_disks(config.spacing, random_state=config.seed)
        mask = datasets.sublattice_mask(
            X, config.sublattice_step, spacing=config.spacing
        )
        if config.batch_class is not None:
            mask &= y == config.batch_class
        return Data(X.astype(np.float32), y, [X[mask].astype(np.float32)], [y[mask]])
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
    return Data(X.astype(np.float32), y, batches, [pool_y[s] for s in subsets])


def train(config, X, y, out, device, verbose):
    """Train (or, on resume, reload) the networks, one stored group at a time.

    Snapshots are written as they are taken, each finished group as a whole
    (``training/group<g>.pt``), and the group in progress keeps a checkpoint of
    its whole training state every ``_CHECKPOINT_EVERY`` epochs
    (``training/group<g>.checkpoint.pt``), so an interrupted run loses at most
    that many epochs and resumes to the same result, bit for bit. On resume,
    a stored group, snapshot or checkpoint that cannot be read back whole is
    reported as a :class:`~sklandscapes.exceptions.DamagedFileWarning` and
    computed again. Paths stored in the folder are relative to it.
    """
    import torch

    from sklandscapes.nets import train_networks

    size = config.networks_per_group
    training_dir = out / _folder.TRAINING_DIR
    groups = []
    for g, start in enumerate(range(0, config.n_networks, size)):
        path = training_dir / f"group{g:04d}.pt"
        directory = training_dir / "snapshots" / f"group{g:04d}"
        stored = _folder.load_intact(path, _load_group)
        if stored is not None:
            # The layout is fixed, so a path stored by an older version (absolute,
            # maybe of another machine) maps to this folder too.
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
            groups.append(stored)
            continue
        if verbose:
            print(
                f"training networks {start}-"
                f"{min(start + size, config.n_networks) - 1} of {config.n_networks}",
                file=sys.stderr,
            )
        checkpoint = training_dir / f"group{g:04d}.checkpoint.pt"
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
                directory=directory,
                checkpoint=checkpoint,
                checkpoint_every=_CHECKPOINT_EVERY,
            )
        stored = dataclasses.replace(
            result,
            paths=[
                [_folder.relative_path(out, p) for p in row] for row in result.paths
            ],
        )
        atomic_write(path, lambda handle, stored=stored: torch.save(stored, handle))
        checkpoint.unlink(missing_ok=True)
        # Snapshots restored from a checkpoint were written before it: check them.
        _repair_snapshots(out, directory, stored)
        groups.append(stored)
    merged = _merge_training(groups)
    _folder.write_checked(training_dir / "log.json", json.dumps(merged.log, indent=1))
    return dataclasses.replace(
        merged,
        paths=[[_folder.resolve_path(out, p) for p in row] for row in merged.paths],
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


def sample_keys(config, training):
    """(threshold index, network, subsample) of every sample, in a fixed order."""
    reached = training.reached
    return [
        (j, k, s)
        for j in range(len(config.thresholds))
        for k in range(config.n_networks)
        if reached[k, j]
        for s in range(config.n_subsamples)
    ]


def compute_diagrams(config, training, batches, out, n_jobs, device, verbose, timings):
    """Diagrams of every sample, computed in chunks and stored as they come.

    Adds the seconds spent on extraction and on normalization + persistence
    to ``timings``.
    """
    from tqdm.auto import tqdm

    from sklandscapes.activations import ActivationExtractor

    keys = sample_keys(config, training)
    todo = [key for key in keys if not _folder.diagrams_intact(out, key)]
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
                _folder.save_diagrams(_folder.diagram_path(out, key), sample)
            timings["extraction"] += extracted - started
            timings["persistence"] += time.perf_counter() - extracted
            bar.update(len(part))
    return keys, [_folder.load_diagrams(_folder.diagram_path(out, key)) for key in keys]


@contextlib.contextmanager
def backend(backend, scheduler, n_jobs):
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


def observations(config, diagrams, groups_of, norms, test):
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
