"""The stages of an experiment: data, training, diagrams, observations."""

import contextlib
import dataclasses
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import clone

from sklandscapes._io import atomic_write
from sklandscapes.experiments import _folder
from sklandscapes.experiments._config import ExperimentError
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence

# How long to try reaching a Dask scheduler before giving up.
_SCHEDULER_TIMEOUT = "10s"

# What compute_diagrams counts (see there), kept per call in timings.json.
WORK_COUNTS = ("samples", "clouds", "input_reused", "snapshot_reused")

# How often the diagrams computed during training look for new snapshots.
_POLL_SECONDS = 2.0
# How long the end of training waits for that process to finish its sample;
# then it is killed (its sample, not stored yet, is computed again).
_BACKGROUND_WAIT_SECONDS = 120

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
    import torch

    from sklandscapes.nets import ThresholdNotReachedWarning, train_networks

    if config.monitor_every is not None and monitor_batch is None:
        monitor_batch = load_data(config).batches[0]
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
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
                monitor=monitor_settings(config, monitor_batch),
            )
        for caught_warning in caught:
            # Networks that missed a threshold are numbered within their group
            # there; one warning after the merge numbers them as log.json does.
            if not issubclass(caught_warning.category, ThresholdNotReachedWarning):
                warnings.warn_explicit(
                    caught_warning.message,
                    caught_warning.category,
                    caught_warning.filename,
                    caught_warning.lineno,
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
    missed = np.flatnonzero(~merged.reached.all(axis=1))
    if len(missed):
        warnings.warn(
            f"{len(missed)} of {config.n_networks} networks did not reach every "
            f"threshold within max_epochs={config.max_epochs} (networks "
            f"{missed.tolist()[:10]}{', ...' if len(missed) > 10 else ''}, "
            "numbered as in training/log.json); the report marks the thresholds "
            "that fewer than 90% of them reached. Raise max_epochs to silence "
            "this warning.",
            ThresholdNotReachedWarning,
            stacklevel=2,
        )
    _folder.write_checked(training_dir / "log.json", json.dumps(merged.log, indent=1))
    return dataclasses.replace(
        merged,
        paths=[[_folder.resolve_path(out, p) for p in row] for row in merged.paths],
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


def shared_snapshot(training, key):
    """The first key whose snapshot is the same network state as ``key``'s.

    A network that crosses several thresholds in one epoch is snapshotted once
    per threshold, with the same weights, so those keys share their diagrams.
    """
    j, k, s = key
    epoch = training.snapshot_epoch[k, j]
    first = int(np.flatnonzero(training.snapshot_epoch[k, : j + 1] == epoch)[0])
    return (first, k, s)


def compute_diagrams(
    config,
    training,
    batches,
    out,
    n_jobs,
    device,
    verbose,
    timings,
    work=None,
    *,
    stop=None,
    stored=None,
    input_diagrams=None,
    chunk=None,
    per_sample=False,
):
    """Diagrams of every sample, computed in chunks and stored as they come.

    Nothing is computed twice: the input layer's cloud is the subsample itself,
    the same for every network and threshold, so it gets one diagram per
    subsample; snapshots taken in the same epoch share their diagrams (see
    :func:`shared_snapshot`); the networks of a chunk that see the same input
    subsample go through one extraction. Every sample is still stored whole, in
    its own file, so a resumed or reread run sees the same folder.

    Adds the seconds spent on extraction and on normalization + persistence
    to ``timings``, and counts the work in ``work`` as it goes (so that an
    interrupted call still says what it did): ``samples`` stored,
    ``clouds`` that went through Rips, ``input_reused`` computed samples whose
    input-layer diagram is their subsample's, and ``snapshot_reused`` samples
    copied whole from an identical snapshot's. Computing every sample on its
    own would take ``clouds + input_reused + snapshot_reused * n_layers``
    clouds. Returns the keys and their diagrams; with a ``stop`` event (see
    :func:`diagrams_during_training`), returns ``None`` once it is set or the
    work is done, and loads nothing. ``stored``, a set of keys known to be
    stored and intact, spares reading those files again; the keys stored
    here are added to it. ``input_diagrams`` maps a subsample to its input
    layer's diagrams, across calls. ``chunk`` samples are computed and stored
    at a time: few enough to lose little on interruption, enough to keep
    every worker busy with (sample, layer) clouds; by default twice the
    workers of the joblib backend in use (at least 4), so that a Dask cluster
    of many workers gets whole rounds of work. With ``per_sample`` (local
    runs) and two jobs or more, chunks are not used: each of ``n_jobs``
    threads takes the samples of one network after another, from extraction
    to the stored files, so that no core waits at the end of a chunk; the
    diagrams are the same.
    """
    from tqdm.auto import tqdm

    keys = sample_keys(config, training)
    stored = set() if stored is None else stored
    todo = [
        key
        for key in keys
        if key not in stored and not _folder.diagrams_intact(out, key)
    ]
    work = {} if work is None else work
    for name in WORK_COUNTS:
        work.setdefault(name, 0)
    # Samples that earlier work (the process during training) counted are
    # already left out of todo.
    counted_before = work["samples"]
    # Keys whose snapshot is the same as an earlier key's wait for its diagrams.
    owners = {}
    for key in todo:
        owners.setdefault(shared_snapshot(training, key), []).append(key)
    ready = [
        o
        for o in owners
        if o not in todo and (o in stored or _folder.diagrams_intact(out, o))
    ]
    for owner in ready:
        copied = _folder.load_diagrams(_folder.diagram_path(out, owner))
        for key in owners.pop(owner):
            _folder.save_diagrams(_folder.diagram_path(out, key), copied)
            stored.add(key)
            work["samples"] += 1
            work["snapshot_reused"] += 1
    centering = layer_centering(config, training, batches)
    normalizer, input_normalizer = (
        ActivationNormalizer(method=config.method, center=center)
        for center in (
            (centering, centering)
            if isinstance(centering, str)
            else (centering[1:], centering[:1])
        )
    )
    input_diagrams = {} if input_diagrams is None else input_diagrams
    n_workers = effective_n_jobs(n_jobs)
    if chunk is None:
        chunk = max(4, 2 * n_workers)

    def rips_with(jobs):
        return RipsPersistence(
            homology_dimensions=config.homology_dimensions,
            local=config.method == "local",
            n_jobs=jobs,
        )

    def run_part(part, rips):
        """Compute and store the samples of the owners in ``part``."""
        started = time.perf_counter()
        clouds = _extract(config, training, batches, part, device)
        # Layer 0 is the subsample itself: one diagram per subsample.
        new_inputs = {}
        for (_, _, s), row in zip(part, clouds):
            if s not in input_diagrams:
                new_inputs.setdefault(s, row[0])
        extracted = time.perf_counter()
        if new_inputs:
            computed = rips.fit_transform(
                clone(input_normalizer).fit_transform(
                    _layered([[c] for c in new_inputs.values()])
                )
            )
            input_diagrams.update(zip(new_inputs, computed[:, 0]))
        # Fitted in this call only (threads may run several at once).
        deeper = rips.fit_transform(
            clone(normalizer).fit_transform(_layered([row[1:] for row in clouds]))
        )
        for owner, layers in zip(part, deeper):
            sample = np.empty((len(layers) + 1, layers.shape[1]), dtype=object)
            sample[0] = input_diagrams[owner[2]]
            sample[1:] = layers
            for key in owners[owner]:
                _folder.save_diagrams(_folder.diagram_path(out, key), sample)
        clouds_computed = len(new_inputs) + deeper.shape[0] * deeper.shape[1]
        seconds = (extracted - started, time.perf_counter() - extracted)
        return part, len(new_inputs), clouds_computed, seconds

    def record(done, bar, timed=True):
        part, n_inputs, clouds_computed, (extraction, persistence) = done
        if timed:  # the thread pool times its own wall time
            timings["extraction"] += extraction
            timings["persistence"] += persistence
        work["clouds"] += clouds_computed
        work["input_reused"] += len(part) - n_inputs
        for owner in part:
            for key in owners[owner]:
                stored.add(key)
                work["samples"] += 1
                work["snapshot_reused"] += key != owner
            bar.update(len(owners[owner]))

    pending = list(owners)
    with tqdm(
        total=len(keys),
        initial=len(keys) - len(todo) + work["samples"] - counted_before,
        disable=not verbose,
        desc="Persistence",
        unit="sample",
    ) as bar:
        if per_sample and n_workers >= 2 and pending:
            # Each thread takes whole samples (extraction, normalization,
            # Rips, storing), one network after another: no thread waits for
            # another's last cloud or for the serial steps between two Rips
            # calls. The input layers' diagrams come first, once per subsample.
            first = {}
            for owner in pending:
                if owner[2] not in input_diagrams:
                    first.setdefault(owner[2], owner)
            first = list(first.values())
            if first:
                record(run_part(first, rips_with(n_jobs)), bar)
                pending = [o for o in pending if o not in first]
            # A task holds every subsample of one network: extraction hooks
            # the network's modules, which two threads must not do at once.
            by_network = {}
            for owner in pending:
                by_network.setdefault(owner[:2], []).append(owner)
            if _run_in_threads(
                list(by_network.values()),
                n_workers,
                stop,
                lambda part: run_part(part, rips_with(1)),
                lambda done: record(done, bar, timed=False),
                timings,
            ):
                return None
        else:
            rips = rips_with(n_jobs)
            for start in range(0, len(pending), chunk):
                if stop is not None and stop.is_set():
                    return None
                record(run_part(pending[start : start + chunk], rips), bar)
    if stop is not None:
        return None
    diagrams = [_folder.load_diagrams(_folder.diagram_path(out, key)) for key in keys]
    return keys, diagrams


def _run_in_threads(items, n_workers, stop, task, record, timings):
    """Run ``task`` on every item in ``n_workers`` threads, at most two per
    worker queued; ``record`` each result in this thread as it comes. Returns
    whether ``stop`` was set (the tasks started then still finish and are
    recorded). An error in a task is raised once the tasks that finished with
    it are recorded; the queued ones are dropped. Adds the wall seconds to
    ``timings``: the tasks' extraction seconds over the workers to
    ``"extraction"``, the rest to ``"persistence"``.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    started = time.perf_counter()
    extraction = 0.0
    stopped = False
    queue = iter(items)
    running = set()
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="diagrams")
    try:
        while True:
            while len(running) < 2 * n_workers and not stopped:
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                item = next(queue, None)
                if item is None:
                    break
                running.add(pool.submit(task, item))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            # Every finished task is recorded before an error is raised.
            errors = [f.exception() for f in finished]
            for future, error in zip(finished, errors):
                if error is None:
                    done = future.result()
                    extraction += done[3][0]
                    record(done)
            for error in errors:
                if error is not None:
                    raise error
        pool.shutdown()
    except BaseException:
        # Queued tasks are dropped; those running finish their network (each
        # stores its files whole) while the error or Ctrl-C goes on.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        share = extraction / n_workers
        timings["extraction"] += share
        timings["persistence"] += time.perf_counter() - started - share
    return stopped


@contextlib.contextmanager
def diagrams_during_training(config, batches, out, device, timings, work, verbose):
    """Compute the diagrams of the snapshots already taken while training runs.

    Training takes one core (one torch thread); on a machine with more, a
    process of its own (:mod:`~sklandscapes.experiments._background`, one
    torch thread) spends another core on the diagrams of the snapshot files
    the training has written so far. They are stored like any others, so the
    diagram stage that follows finds them done: the results are those of a run
    without it (the snapshot files hold the very weights the training keeps,
    and the extraction runs on the same device). When the block ends, the
    process stops after the sample in hand and its seconds and work are added
    to ``timings`` and ``work`` (``work["during_training"]`` counts the samples
    it stored). A failure there is left for the diagram stage, which computes
    the same keys again; with ``verbose`` it is reported in one line. Where no
    process can be started, training runs alone.
    """
    import shutil
    import subprocess

    settings = dict(
        config=config, batches=batches, out=out, device=device, poll=_POLL_SECONDS
    )
    try:
        job, process = _start_background(settings)
    except Exception:  # noqa: BLE001 - no second process: training runs alone
        job = None
    if job is None:
        yield
        return
    interrupted = False
    try:
        yield
    except BaseException:
        interrupted = True
        raise
    finally:
        second = None
        try:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the child stops after the sample in hand
            process.wait(timeout=_BACKGROUND_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        except BaseException as exc:  # a second Ctrl-C: stop waiting, then raise
            second = exc
        if process.poll() is None:
            process.kill()
            process.wait()
        _collect_background(job, timings, work, verbose and not interrupted)
        shutil.rmtree(job, ignore_errors=True)
        if second is not None:
            raise second


def _start_background(settings):
    """Start :mod:`~sklandscapes.experiments._background` on ``settings``;
    return its job folder and process (removes the folder if it cannot)."""
    import pickle
    import shutil
    import subprocess
    import tempfile

    import sklandscapes
    from sklandscapes.experiments import _background

    # The child imports the sklandscapes this process runs: the one it finds
    # if that is the same, else the folder holding this one, put first.
    init = str(Path(sklandscapes.__file__).resolve())
    code = (
        "import importlib.util, os, sys; "
        "spec = importlib.util.find_spec('sklandscapes'); "
        "same = spec is not None and spec.origin is not None and "
        "os.path.realpath(spec.origin) == sys.argv[2]; "
        "same or sys.path.insert(0, sys.argv[1]); "
        "from sklandscapes.experiments._background import main; main(sys.argv[3])"
    )
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # Ctrl-C reaches this process only, which then stops the other after the
    # sample in hand (a second Ctrl-C kills it).
    group = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        if sys.platform == "win32"
        else {"start_new_session": True}
    )
    job = Path(tempfile.mkdtemp(prefix="sklandscapes-diagrams-"))
    try:
        with open(job / _background.JOB_FILE, "wb") as handle:
            pickle.dump(settings, handle)
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(Path(init).parents[1]), init, str(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment,
            **group,
        )
    except BaseException:
        shutil.rmtree(job, ignore_errors=True)
        raise
    return job, process


def _collect_background(job, timings, work, verbose):
    """Add the background process's seconds and work to this run's."""
    from sklandscapes.experiments import _background

    try:
        report = json.loads((job / _background.RESULT_FILE).read_text())
    except (OSError, ValueError):
        report = {"error": "it ended without a report"}
    for stage, seconds in (report.get("timings") or {}).items():
        timings[stage] = timings.get(stage, 0.0) + seconds
    done = report.get("work") or {}
    for name in WORK_COUNTS:
        work[name] = work.get(name, 0) + done.get(name, 0)
    work["during_training"] = work.get("during_training", 0) + done.get("samples", 0)
    if report.get("error") and verbose:
        print(
            f"diagrams during training stopped ({report['error']}); the diagram "
            "stage computes the rest",
            file=sys.stderr,
        )


def snapshots_so_far(config, out, cache):
    """The snapshot files written so far, as the parts of a training result
    that :func:`compute_diagrams` reads; ``None`` when there is none yet.

    ``cache`` maps a file to its network and epoch across calls.
    """
    from types import SimpleNamespace

    from sklandscapes.nets import load_snapshot, load_snapshot_metadata

    epochs = np.full((config.n_networks, len(config.thresholds)), -1)
    networks = [[None] * config.n_networks for _ in config.thresholds]
    root = out / _folder.TRAINING_DIR / "snapshots"
    for path in sorted(root.glob("group*/network*_threshold*.pt")):
        if path not in cache:
            try:
                cache[path] = (
                    load_snapshot(path),
                    load_snapshot_metadata(path)["epoch"],
                )
            except Exception:  # noqa: BLE001 - damaged or not written yet
                continue
        group = int(path.parent.name.removeprefix("group"))
        local, j = (int(part) for part in re.findall(r"\d+", path.stem))
        k = group * config.networks_per_group + local
        if k < config.n_networks and j < len(config.thresholds):
            networks[j][k], epochs[k, j] = cache[path][0], cache[path][1]
    if not (epochs >= 0).any():
        return None
    return SimpleNamespace(
        snapshots=networks, snapshot_epoch=epochs, reached=epochs >= 0
    )


def _extract(config, training, batches, part, device):
    """Activations of the keys in ``part``: one extraction per input subsample."""
    from sklandscapes.activations import ActivationExtractor

    clouds = [None] * len(part)
    for s in dict.fromkeys(s for _, _, s in part):
        where = [i for i, (_, _, t) in enumerate(part) if t == s]
        networks = [training.snapshots[part[i][0]][part[i][1]] for i in where]
        extractor = ActivationExtractor(inputs=batches[s], device=device)
        try:
            rows = extractor.transform(networks)
        except ValueError as exc:
            names = ", ".join(
                f"network {part[i][1]} at threshold {config.thresholds[part[i][0]]}"
                for i in where
            )
            raise ExperimentError(f"{names}: {exc}") from exc
        for i, row in zip(where, rows):
            clouds[i] = list(row)
    return clouds


def _layered(rows):
    """Rows of per-layer cells as a (n_samples, n_layers) object array."""
    layered = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for layer, cell in enumerate(row):
            layered[i, layer] = cell
    return layered


def layer_centering(config, training, batches):
    """The paper's centering rule: every layer that is not a ReLU output.

    Read from the networks themselves (all have the same architecture), so
    that the input layer of non-negative pixels is centered too, which a guess
    from the data would not do. Only local homology uses it; the global
    normalization always centers.
    """
    from sklandscapes.activations import paper_centering

    if config.method != "local":
        return "auto"
    network = next(net for nets in training.snapshots for net in nets if net)
    return paper_centering(network, batches[0], method=config.method)


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


# A threshold counts as reached when at least this share of the networks
# reached it; observations drawn from others are marked.
WELL_REACHED = 0.9
# Observation 1: an H1 bar of a globally normalized layer (diameter 1) longer
# than this is a hole. The nine holes of the input batch have bars of about
# 0.1; sampling noise on the lattice stays below 0.02.
HOLE_LENGTH = 0.05
HOLE_LAYERS = 4  # layers 0 (the input) to 3


def observations(config, diagrams, keys, training, norms, test, paper_test):
    """The paper's observations, checked with numbers from the report's tables.

    ``norms`` are the exact complexities (n_samples, n_layers). Every number
    returned is computed here from the diagrams, the norms and the tests.
    ``test`` has the network as the unit and gives the verdict of Table I;
    ``paper_test`` relabels single samples, as the paper did.
    """
    reached = training.reached.sum(axis=0) / config.n_networks
    well = [t for t, share in zip(config.thresholds, reached) if share >= WELL_REACHED]
    groups_of = np.asarray([config.thresholds[j] for j, _, _ in keys])
    networks = np.asarray([k for _, k, _ in keys])
    thresholds = np.unique(groups_of).tolist()
    means = {t: norms[groups_of == t].mean(axis=0) for t in thresholds}
    # 2. Complexity across layers, at every threshold.
    increases = {
        t: [int(i) + 1 for i in np.flatnonzero(np.diff(means[t]) > 0)]
        for t in thresholds
    }
    rises = {t: float(np.clip(np.diff(means[t]), 0, None).sum()) for t in thresholds}
    # 3. Complexity against training: totals per threshold and, network by
    # network, the first against the last well-reached threshold.
    totals = {t: float(norms[groups_of == t].sum(axis=1).mean()) for t in thresholds}
    first, last = (well[0], well[-1]) if len(well) >= 2 else (None, None)
    grows = None
    if first is not None:
        total = norms.sum(axis=1)
        by_net = {
            t: dict(zip(networks[groups_of == t], total[groups_of == t]))
            for t in (first, last)
        }
        common = sorted(set(by_net[first]) & set(by_net[last]))
        grows = float(np.mean([by_net[last][k] > by_net[first][k] for k in common]))
    result = {
        "well_reached_thresholds": [float(t) for t in well],
        "reached_share": dict(zip(map(str, config.thresholds), map(float, reached))),
        "mean_complexity": {str(t): [float(v) for v in means[t]] for t in thresholds},
        "layers_where_complexity_increases": {str(t): increases[t] for t in thresholds},
        "thresholds_not_monotone": [float(t) for t in thresholds if increases[t]],
        "total_rise": {str(t): rises[t] for t in thresholds},
        "mean_total_complexity": {str(t): totals[t] for t in thresholds},
        "grows_first_last": [first, last] if first is not None else None,
        "share_of_networks_growing": grows,
        "untested_thresholds": [
            float(t) for t in thresholds if t not in test.groups_.tolist()
        ],
        **_significance(test),
        **{f"paper_{k}": v for k, v in _significance(paper_test).items()},
    }
    if config.experiment == "synthetic":
        result["holes"] = hole_counts(config, diagrams, groups_of, well)
    return result


def _significance(test):
    """Share of significant pairs, raw and Holm-corrected, and the largest p."""
    upper = np.triu_indices(len(test.groups_), 1)
    holm = holm_adjust(test.pvalues_[upper])
    return {
        "share_of_significant_pairs": float((test.pvalues_[upper] < 0.05).mean()),
        "share_of_significant_pairs_holm": float((holm < 0.05).mean()),
        "largest_pvalue": float(test.pvalues_[upper].max()),
        "largest_pvalue_holm": float(holm.max()),
    }


def holm_adjust(pvalues):
    """Holm's step-down adjustment of a family of p-values (same order)."""
    pvalues = np.asarray(pvalues, dtype=float)
    order = np.argsort(pvalues)
    m = len(pvalues)
    steps = np.maximum.accumulate(pvalues[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def hole_counts(config, diagrams, groups_of, well):
    """H1 bars longer than HOLE_LENGTH in the first layers, per network.

    At the highest well-reached threshold (the last threshold when none is):
    the mean count per layer and the share of networks with exactly nine.
    """
    h1 = list(config.homology_dimensions).index(1)
    threshold = well[-1] if well else config.thresholds[-1]
    rows = [d for d, t in zip(diagrams, groups_of) if t == threshold]
    n_layers = min(HOLE_LAYERS, rows[0].shape[0]) if rows else 0
    counts = np.array(
        [
            [
                int((np.diff(d[layer, h1], axis=1) > HOLE_LENGTH).sum())
                for layer in range(n_layers)
            ]
            for d in rows
        ]
    ).reshape(len(rows), n_layers)
    return {
        "threshold": float(threshold),
        "n_networks": len(rows),
        "mean": [float(v) for v in counts.mean(axis=0)],
        "share_exactly_nine": [float(v) for v in (counts == 9).mean(axis=0)],
    }


def ray_alignment(activations, labels, seed):
    """How well each class lies on a ray from the origin, per layer.

    The mean cosine between a point and the mean direction of its class
    (1: every class on one ray), and the same with shuffled labels as a
    baseline. Observation 5 of the paper (digits, ending layers).
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(labels)

    def score(cloud, y):
        norms = np.linalg.norm(cloud, axis=1)
        units = cloud[norms > 0] / norms[norms > 0, None]
        y = y[norms > 0]
        total = 0.0
        for c in np.unique(y):
            mean = units[y == c].mean(axis=0)
            size = np.linalg.norm(mean)
            if size > 0:
                total += float((units[y == c] @ (mean / size)).sum())
        return total / max(len(y), 1)

    return (
        [score(cloud, labels) for cloud in activations],
        [score(cloud, shuffled) for cloud in activations],
    )
