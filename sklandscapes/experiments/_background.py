"""Diagrams of the snapshots written so far, computed in a process of its own.

:func:`~sklandscapes.experiments._compute.diagrams_during_training` starts
this module with the interpreter running the experiment, so that the diagrams
take the spare core without sharing the training process's GIL (a thread did,
and slowed training down by a third). The parent writes ``job.pkl`` into a job
folder (the configuration, the persistence batches, the run folder, the device
and the polling interval), which the child reads and deletes; the child writes
``result.json`` there as it ends, even when interrupted: the seconds it spent
(``timings``), the work it did (``work``, as
:func:`~sklandscapes.experiments._compute.compute_diagrams` counts it) and the
error that stopped it, if any.

The child stops, after the sample in hand, when its standard input ends: the
parent closes it when training ends, and the operating system does when the
parent dies, on every platform. Every diagram it stores is written
atomically, like any other, so the diagram stage that follows finds it done
or not there at all.
"""

import json
import pickle
import sys
import threading
from pathlib import Path

JOB_FILE = "job.pkl"
RESULT_FILE = "result.json"


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


def main(job, stop=None):
    """Compute diagrams until ``stop`` is set (default: standard input ends);
    report what was done in ``result.json``."""
    from sklandscapes._io import atomic_write
    from sklandscapes.experiments import _compute

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
            so_far = _compute.snapshots_so_far(
                settings["config"], settings["out"], cache
            )
            if so_far is not None:
                _compute.compute_diagrams(
                    settings["config"],
                    so_far,
                    settings["batches"],
                    settings["out"],
                    1,
                    settings["device"],
                    False,
                    timings,
                    work,
                    stop=stop,
                    stored=stored,
                    input_diagrams=inputs,
                    chunk=1,
                )
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - reported; the next stage recomputes
        error = f"{type(exc).__name__}: {exc}"
    finally:
        report = json.dumps({"timings": timings, "work": work, "error": error})
        atomic_write(job / RESULT_FILE, lambda handle: handle.write(report.encode()))
