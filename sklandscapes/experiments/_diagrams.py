"""The diagram stage: the persistence diagrams of every sample, stored as they come.

Local runs compute them in threads of this process (GUDHI releases the GIL),
others through joblib's backend, e.g. a Dask cluster (:func:`backend`). The
process that computes diagrams while the networks train
(:mod:`~sklandscapes.experiments._background`) calls :func:`compute_diagrams`
too.
"""

import contextlib
import dataclasses
import time

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import clone

from sklandscapes.experiments import _folder
from sklandscapes.experiments._config import ExperimentError
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence

# How long to try reaching a Dask scheduler before giving up.
_SCHEDULER_TIMEOUT = "10s"

# What compute_diagrams counts (see there), kept per call in timings.json.
WORK_COUNTS = ("samples", "clouds", "input_reused", "snapshot_reused")


@dataclasses.dataclass
class DiagramWork:
    """What diagram computations did: seconds per stage and work counts.

    ``timings`` maps ``"extraction"`` and ``"persistence"`` to seconds;
    ``counts`` maps the :data:`WORK_COUNTS` (and, for the process during
    training, ``"during_training"``) to numbers. Empty: nothing was done.
    """

    timings: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ComputedDiagrams:
    """What :func:`compute_diagrams` returns.

    ``keys`` and their ``diagrams`` are None when it was called with a stop
    event; ``work`` is what the call did.
    """

    keys: list
    diagrams: list
    work: DiagramWork


def add_work(timings, counts, work):
    """Running totals with ``work`` (a :class:`DiagramWork`) added.

    Returns new ``(timings, counts)`` dicts; keys keep their order, new ones
    come last.
    """
    timings, counts = dict(timings), dict(counts)
    for stage, seconds in work.timings.items():
        timings[stage] = timings.get(stage, 0.0) + seconds
    for name, count in work.counts.items():
        counts[name] = counts.get(name, 0) + count
    return timings, counts


def work_before(exc):
    """The work an interrupted :func:`compute_diagrams` did before ``exc``."""
    return getattr(exc, "diagram_work", None) or DiagramWork()


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
    *,
    batches,
    out,
    n_jobs,
    device,
    verbose=0,
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

    Returns a :class:`ComputedDiagrams`: the keys and their diagrams, and the
    work done (:class:`DiagramWork`): the seconds spent on extraction and on
    normalization + persistence, and the counts ``samples`` stored,
    ``clouds`` that went through Rips, ``input_reused`` computed samples whose
    input-layer diagram is their subsample's, and ``snapshot_reused`` samples
    copied whole from an identical snapshot's. Computing every sample on its
    own would take ``clouds + input_reused + snapshot_reused * n_layers``
    clouds. An exception raised on the way carries the work done before it
    (:func:`work_before`), so that an interrupted run still records it.

    With a ``stop`` event (see
    :func:`~sklandscapes.experiments._background.diagrams_during_training`),
    it returns once that is set or the work is done, and loads nothing (keys
    and diagrams are None). ``stored``, a set of keys known to be stored and
    intact, spares reading those files again; the keys stored here are added
    to it. ``input_diagrams`` maps a subsample to its input layer's diagrams,
    across calls. ``chunk`` samples are computed and stored at a time: few
    enough to lose little on interruption, enough to keep every worker busy
    with (sample, layer) clouds; by default twice the workers of the joblib
    backend in use (at least 4), so that a Dask cluster of many workers gets
    whole rounds of work. With ``per_sample`` (local runs) and two jobs or
    more, chunks are not used: each of ``n_jobs`` threads takes the samples of
    one network after another, from extraction to the stored files, so that
    no core waits at the end of a chunk; the diagrams are the same.
    """
    from tqdm.auto import tqdm

    keys = sample_keys(config, training)
    stored = set() if stored is None else stored
    todo = [
        key
        for key in keys
        if key not in stored and not _folder.diagrams_intact(out, key)
    ]
    work = DiagramWork(
        timings={"extraction": 0.0, "persistence": 0.0},
        counts=dict.fromkeys(WORK_COUNTS, 0),
    )
    try:
        samples = _Samples(
            config,
            training,
            batches,
            out,
            device,
            owners=_owners(training, todo),
            stored=stored,
            input_diagrams={} if input_diagrams is None else input_diagrams,
            work=work,
        )
        samples.copy_ready(todo)
        samples.set_normalizers()
        with tqdm(
            total=len(keys),
            initial=len(keys) - len(todo) + work.counts["samples"],
            disable=not verbose,
            desc="Persistence",
            unit="sample",
        ) as bar:
            n_workers = effective_n_jobs(n_jobs)
            if per_sample and n_workers >= 2 and samples.owners:
                _per_sample(samples, n_jobs, n_workers, stop, bar)
            else:
                chunk = max(4, 2 * n_workers) if chunk is None else chunk
                _in_chunks(samples, n_jobs, chunk, stop, bar)
    except BaseException as exc:
        exc.diagram_work = work
        raise
    if stop is not None:
        return ComputedDiagrams(None, None, work)
    diagrams = [_folder.load_diagrams(_folder.diagram_path(out, key)) for key in keys]
    return ComputedDiagrams(keys, diagrams, work)


def _owners(training, todo):
    """Each key whose diagrams are computed, with the keys that share them:
    keys whose snapshot is the same as an earlier key's wait for its diagrams."""
    owners = {}
    for key in todo:
        owners.setdefault(shared_snapshot(training, key), []).append(key)
    return owners


def _normalizers(config, training, batches):
    """The normalizers of the deeper layers and of the input layer."""
    centering = layer_centering(config, training, batches)
    return tuple(
        ActivationNormalizer(method=config.method, center=center)
        for center in (
            (centering, centering)
            if isinstance(centering, str)
            else (centering[1:], centering[:1])
        )
    )


class _Samples:
    """The samples one :func:`compute_diagrams` call computes, and its work.

    ``owners`` maps each key to compute to the keys that share its diagrams;
    ``stored`` gets every key stored; ``input_diagrams`` every subsample's
    input-layer diagrams.
    """

    def __init__(
        self,
        config,
        training,
        batches,
        out,
        device,
        *,
        owners,
        stored,
        input_diagrams,
        work,
    ):
        self.config, self.training, self.batches = config, training, batches
        self.out, self.device = out, device
        self.owners, self.stored = owners, stored
        self.input_diagrams, self.work = input_diagrams, work
        self.normalizer = self.input_normalizer = None

    def copy_ready(self, todo):
        """Store the keys whose shared snapshot's diagrams are stored already."""
        ready = [
            o
            for o in self.owners
            if o not in todo
            and (o in self.stored or _folder.diagrams_intact(self.out, o))
        ]
        for owner in ready:
            copied = _folder.load_diagrams(_folder.diagram_path(self.out, owner))
            for key in self.owners.pop(owner):
                _folder.save_diagrams(_folder.diagram_path(self.out, key), copied)
                self.stored.add(key)
                self.work.counts["samples"] += 1
                self.work.counts["snapshot_reused"] += 1

    def set_normalizers(self):
        """The normalizers of the deeper layers and of the input layer."""
        self.normalizer, self.input_normalizer = _normalizers(
            self.config, self.training, self.batches
        )

    def rips(self, n_jobs):
        return RipsPersistence(
            homology_dimensions=self.config.homology_dimensions,
            local=self.config.method == "local",
            n_jobs=n_jobs,
        )

    def compute(self, part, rips):
        """Compute and store the samples of the owners in ``part``."""
        started = time.perf_counter()
        clouds = _extract(self.config, self.training, self.batches, part, self.device)
        # Layer 0 is the subsample itself: one diagram per subsample.
        new_inputs = {}
        for (_, _, s), row in zip(part, clouds):
            if s not in self.input_diagrams:
                new_inputs.setdefault(s, row[0])
        extracted = time.perf_counter()
        if new_inputs:
            computed = rips.fit_transform(
                clone(self.input_normalizer).fit_transform(
                    _layered([[c] for c in new_inputs.values()])
                )
            )
            self.input_diagrams.update(zip(new_inputs, computed[:, 0]))
        # Fitted in this call only (threads may run several at once).
        deeper = rips.fit_transform(
            clone(self.normalizer).fit_transform(_layered([row[1:] for row in clouds]))
        )
        for owner, layers in zip(part, deeper):
            sample = np.empty((len(layers) + 1, layers.shape[1]), dtype=object)
            sample[0] = self.input_diagrams[owner[2]]
            sample[1:] = layers
            for key in self.owners[owner]:
                _folder.save_diagrams(_folder.diagram_path(self.out, key), sample)
        clouds_computed = len(new_inputs) + deeper.shape[0] * deeper.shape[1]
        seconds = (extracted - started, time.perf_counter() - extracted)
        return part, len(new_inputs), clouds_computed, seconds

    def record(self, done, bar, timed=True):
        """Count the work of one :meth:`compute` and move the bar."""
        part, n_inputs, clouds_computed, (extraction, persistence) = done
        counts = self.work.counts
        if timed:  # the thread pool times its own wall time
            self.work.timings["extraction"] += extraction
            self.work.timings["persistence"] += persistence
        counts["clouds"] += clouds_computed
        counts["input_reused"] += len(part) - n_inputs
        for owner in part:
            for key in self.owners[owner]:
                self.stored.add(key)
                counts["samples"] += 1
                counts["snapshot_reused"] += key != owner
            bar.update(len(self.owners[owner]))


def _per_sample(samples, n_jobs, n_workers, stop, bar):
    """Each thread takes whole samples (extraction, normalization, Rips,
    storing), one network after another: no thread waits for another's last
    cloud or for the serial steps between two Rips calls. The input layers'
    diagrams come first, once per subsample."""
    pending = list(samples.owners)
    first = {}
    for owner in pending:
        if owner[2] not in samples.input_diagrams:
            first.setdefault(owner[2], owner)
    first = list(first.values())
    if first:
        samples.record(samples.compute(first, samples.rips(n_jobs)), bar)
        pending = [o for o in pending if o not in first]
    # A task holds every subsample of one network: extraction hooks the
    # network's modules, which two threads must not do at once.
    by_network = {}
    for owner in pending:
        by_network.setdefault(owner[:2], []).append(owner)
    _run_in_threads(
        list(by_network.values()),
        n_workers,
        stop,
        lambda part: samples.compute(part, samples.rips(1)),
        lambda done: samples.record(done, bar, timed=False),
        samples.work.timings,
    )


def _in_chunks(samples, n_jobs, chunk, stop, bar):
    """``chunk`` samples at a time, each through joblib's backend."""
    pending = list(samples.owners)
    rips = samples.rips(n_jobs)
    for start in range(0, len(pending), chunk):
        if stop is not None and stop.is_set():
            return
        samples.record(samples.compute(pending[start : start + chunk], rips), bar)


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
