"""The run folder: its layout, preparing it, and storing what a run computes.

Everything here is what ``--resume`` relies on: a file exists only once it is
complete (written atomically), and its name says which result it holds.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.experiments._config import ExperimentError

CONFIG_FILE = "config.json"
TRAINING_DIR = "training"
DIAGRAMS_DIR = "diagrams"


def prepare_out(out, config, resume, force):
    out = Path(out)
    config_path = out / CONFIG_FILE
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"--out {str(out)!r} exists and is not a folder")
    if config_path.exists() and not force:
        stored = json.loads(config_path.read_text())
        if stored != config.to_dict():
            changed = sorted(
                k
                for k in set(stored) | set(config.to_dict())
                if stored.get(k) != config.to_dict().get(k)
            )
            raise ExperimentError(
                f"{str(out)!r} holds a run with another configuration (differs in "
                f"{', '.join(changed)}); choose another --out, or pass --force to "
                "start over there"
            )
        if not resume:
            raise ExperimentError(
                f"{str(out)!r} already holds a run of this configuration; pass "
                "--resume to continue it or --force to start over"
            )
    elif out.exists() and any(out.iterdir()) and not force:
        if not config_path.exists():
            raise ExperimentError(
                f"{str(out)!r} is not empty and holds no sklandscapes run; choose "
                "another --out or pass --force"
            )
    if force and out.exists():
        clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_dict(), indent=2).encode()
    atomic_write(config_path, lambda handle: handle.write(text))
    return out


def clear_run(out):
    """Remove what a previous run wrote (only our own files and folders)."""
    for name in (TRAINING_DIR, DIAGRAMS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for pattern in ("*.png", "*.npz", "*.md", CONFIG_FILE, "timings.json"):
        for path in out.glob(pattern):
            path.unlink()


# --------------------------------------------------------------------------
# Stages


def diagram_path(out, key):
    j, k, s = key
    return out / DIAGRAMS_DIR / f"threshold{j}_network{k:04d}_subsample{s}.npz"


def save_diagrams(path, diagrams):
    arrays = {
        f"layer{layer}_dim{d}": diagrams[layer, d]
        for layer in range(diagrams.shape[0])
        for d in range(diagrams.shape[1])
    }
    arrays["shape"] = np.asarray(diagrams.shape)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_diagrams(path):
    with np.load(path) as stored:
        shape = tuple(stored["shape"])
        diagrams = np.empty(shape, dtype=object)
        for layer, d in np.ndindex(*shape):
            diagrams[layer, d] = stored[f"layer{layer}_dim{d}"]
    return diagrams


TIMINGS_FILE = "timings.json"


def record_timings(out, timings, n_computed):
    """Append this call's stage timings to the folder's history; return it all.

    A resumed run keeps the costs of the calls before it, so the report can
    show what each stage cost in total, not only what this call reloaded.
    """
    path = Path(out) / TIMINGS_FILE
    calls = []
    if path.exists():
        try:
            calls = json.loads(path.read_text())["calls"]
        except (ValueError, KeyError, TypeError):
            calls = []  # a damaged history is started afresh, not fatal
    calls.append({"timings": dict(timings), "diagrams_computed": int(n_computed)})
    text = json.dumps({"calls": calls}, indent=1).encode()
    atomic_write(path, lambda handle: handle.write(text))
    return calls


def count_diagrams(out):
    """Samples whose diagrams are stored in the folder."""
    return len(list((Path(out) / DIAGRAMS_DIR).glob("*.npz")))
