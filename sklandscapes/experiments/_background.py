"""Diagrams of the snapshots written so far, computed in a process of its own.

Both sides of the protocol live here. The parent,
:func:`diagrams_during_training`, starts :func:`main` with the interpreter
running the experiment, so that the diagrams take the spare core without
sharing the training process's GIL. It writes ``job.pkl`` into a job folder
(the configuration, the persistence batches, the run folder, the device and
the polling interval), which the child reads and deletes; the child writes
``result.json`` there as it ends, even when interrupted: the seconds it spent
(``timings``), the work it did (``work``, as
:func:`~sklandscapes.experiments._diagrams.compute_diagrams` counts it) and the
error that stopped it, if any.

The child stops, after the sample in hand, when its standard input ends: the
parent closes it when training ends, and the operating system does when the
parent dies, on every platform. Every diagram it stores is written
atomically, like any other, so the diagram stage that follows finds it done
or not there at all.
"""

import contextlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import sklandscapes
from sklandscapes._io import atomic_write
from sklandscapes.experiments import _diagrams, _folder

JOB_FILE = "job.pkl"
RESULT_FILE = "result.json"

# How often the child looks for new snapshots.
_POLL_SECONDS = 2.0
# How long the end of training waits for the child to finish its sample;
# then it is killed (its sample, not stored yet, is computed again).
_BACKGROUND_WAIT_SECONDS = 120


# ---------------------------------------------------------------- the parent


@contextlib.contextmanager
def diagrams_during_training(config, batches, out, *, device, verbose):
    """Compute the diagrams of the snapshots already taken while training runs.

    Training takes one core (one torch thread); on a machine with more, a
    process of its own (:func:`main`, one torch thread) spends another core
    on the diagrams of the snapshot files the training has written so far.
    They are stored like any others, so the diagram stage that follows finds
    them done: the results are those of a run without it (the snapshot files
    hold the very weights the training keeps, and the extraction runs on the
    same device).

    Yields a :class:`~sklandscapes.experiments._diagrams.DiagramWork`, empty
    until the block ends; then the process stops after the sample in hand,
    and its seconds and work are put in it (``counts["during_training"]``
    counts the samples it stored). A failure there is left for the diagram
    stage, which computes the same keys again; with ``verbose`` it is
    reported in one line. Where no process can be started, training runs
    alone and the work stays empty.
    """
    work = _diagrams.DiagramWork()
    settings = dict(
        config=config, batches=batches, out=out, device=device, poll=_POLL_SECONDS
    )
    try:
        job, process = _start_background(settings)
    except Exception:  # noqa: BLE001 - no second process: training runs alone
        yield work
        return
    interrupted = False
    try:
        yield work
    except BaseException:
        interrupted = True
        raise
    finally:
        second = _stop(process)
        done = _collect_background(job, verbose and not interrupted)
        work.timings.update(done.timings)
        work.counts.update(done.counts)
        shutil.rmtree(job, ignore_errors=True)
        if second is not None:
            raise second


def _stop(process):
    """Stop the child after the sample in hand (kill it if it takes too long);
    return a second Ctrl-C that came while waiting, to be raised after."""
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
    return second


def _start_background(settings):
    """Start :func:`main` in a process of its own on ``settings``; return its
    job folder and process (removes the folder if it cannot)."""
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
        with open(job / JOB_FILE, "wb") as handle:
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


def _collect_background(job, verbose):
    """The child's seconds and work, as a
    :class:`~sklandscapes.experiments._diagrams.DiagramWork`."""
    try:
        report = json.loads((job / RESULT_FILE).read_text())
    except (OSError, ValueError):
        report = {"error": "it ended without a report"}
    done = report.get("work") or {}
    counts = {name: done.get(name, 0) for name in _diagrams.WORK_COUNTS}
    counts["during_training"] = done.get("samples", 0)
    if report.get("error") and verbose:
        print(
            f"diagrams during training stopped ({report['error']}); the diagram "
            "stage computes the rest",
            file=sys.stderr,
        )
    return _diagrams.DiagramWork(dict(report.get("timings") or {}), counts)


# ----------------------------------------------------------------- the child


def main(job, stop=None):
    """Compute diagrams until ``stop`` is set (default: standard input ends);
    report what was done in ``result.json``."""
    job = Path(job)
    stop = _watch_stdin() if stop is None else stop
    timings = {"extraction": 0.0, "persistence": 0.0}
    work, error = {}, None
    cache, stored, inputs = {}, set(), {}
    try:
        with open(job / JOB_FILE, "rb") as handle:
            settings = pickle.load(handle)
        # Only needed here: a parent that dies leaves no copy of the batches.
        (job / JOB_FILE).unlink(missing_ok=True)
        while not stop.wait(settings["poll"]):
            so_far = snapshots_so_far(settings["config"], settings["out"], cache)
            if so_far is not None:
                computed = _diagrams.compute_diagrams(
                    settings["config"],
                    so_far,
                    batches=settings["batches"],
                    out=settings["out"],
                    n_jobs=1,
                    device=settings["device"],
                    verbose=False,
                    stop=stop,
                    stored=stored,
                    input_diagrams=inputs,
                    chunk=1,
                )
                timings, work = _diagrams.add_work(timings, work, computed.work)
    except BaseException as exc:
        # The report says what an interrupted call did before it stopped.
        timings, work = _diagrams.add_work(timings, work, _diagrams.work_before(exc))
        if isinstance(exc, Exception):  # reported; the next stage recomputes
            error = f"{type(exc).__name__}: {exc}"
        elif not isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        report = json.dumps({"timings": timings, "work": work, "error": error})
        atomic_write(job / RESULT_FILE, lambda handle: handle.write(report.encode()))


def _watch_stdin():
    """An event set once standard input ends (or cannot be read)."""
    ended = threading.Event()

    def read():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError, AttributeError):
            pass
        ended.set()

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return ended


def snapshots_so_far(config, out, cache):
    """The snapshot files written so far, as the parts of a training result
    that :func:`compute_diagrams` reads; ``None`` when there is none yet.

    ``cache`` maps a file to its network and epoch across calls.
    """
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
