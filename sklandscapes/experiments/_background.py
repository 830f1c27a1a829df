"""Diagrams of the snapshots written so far, computed in a process of its own.

:func:`~sklandscapes.experiments._compute.diagrams_during_training` starts
this module with the interpreter running the experiment, so that the diagrams
take the spare core without sharing the training process's GIL (a thread did,
and slowed training down by a third). The two talk through a job folder:

- ``job.pkl``: the configuration, the persistence batches, the run folder, the
  device and the polling interval, written by the parent;
- ``stop``: created by the parent when training ends; the child stops after
  the sample in hand;
- ``result.json``: written by the child as it ends, even when interrupted:
  the seconds it spent (``timings``), the work it did (``work``, as
  :func:`~sklandscapes.experiments._compute.compute_diagrams` counts it) and
  the error that stopped it, if any.

The child also stops when its parent is gone. Every diagram it stores is
written atomically, like any other, so the diagram stage that follows finds it
done or not there at all.
"""

import json
import os
import pickle
import time
from pathlib import Path

JOB_FILE = "job.pkl"
STOP_FILE = "stop"
RESULT_FILE = "result.json"


class _Stop:
    """``threading.Event``'s ``is_set`` and ``wait``, read from the job folder."""

    def __init__(self, path, parent):
        self.path = path
        self.parent = parent

    def is_set(self):
        return self.path.exists() or os.getppid() != self.parent

    def wait(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.1))
        return True


def main(job, parent):
    """Compute diagrams until told to stop; report what was done."""
    import torch

    from sklandscapes._io import atomic_write
    from sklandscapes.experiments import _compute

    job = Path(job)
    torch.set_num_threads(1)
    with open(job / JOB_FILE, "rb") as handle:
        settings = pickle.load(handle)
    stop = _Stop(job / STOP_FILE, parent)
    timings = {"extraction": 0.0, "persistence": 0.0}
    work, error = {}, None
    cache, stored, inputs = {}, set(), {}
    try:
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
