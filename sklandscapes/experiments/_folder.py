"""The run folder: its layout, preparing it, and storing what a run computes.

Everything here is what ``--resume`` relies on: a file exists only once it is
complete (written atomically), and its name says which result it holds.
"""

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.exceptions import DamagedFileWarning
from sklandscapes.experiments._config import ExperimentError

CONFIG_FILE = "config.json"
TRAINING_DIR = "training"
DIAGRAMS_DIR = "diagrams"
# Held by the run using the folder (see locked); never deleted, so that two
# runs always lock the same file.
LOCK_FILE = "run.lock"


def check_out(out, resume=False):
    """Refuse, before anything is written, an ``out`` that cannot be a run folder.

    ``out`` must be a folder, or creatable as one: its nearest existing
    ancestor must be a folder where files can be created (tried with a
    temporary file that leaves nothing behind). With ``resume``, it must hold
    a run (its ``config.json``).
    """
    out = Path(out)
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        problem = (
            "is a file"
            if existing == out
            else f"cannot be created: {str(existing)!r} is a file"
        )
        raise ExperimentError(f"--out {str(out)!r} {problem}; choose another --out")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ExperimentError(
            f"--out {str(out)!r} cannot be written: creating a file in "
            f"{str(existing)!r} failed ({exc.strerror or exc}); choose another --out"
        ) from exc
    if resume and not (out / CONFIG_FILE).exists():
        where = f"no {CONFIG_FILE} there" if existing == out else "no such folder"
        raise ExperimentError(
            f"--resume: nothing to resume in {str(out)!r} ({where}); check --out, "
            "or leave out --resume to start a run"
        )


def check_folder(out, config, resume, force):
    """Refuse an ``out`` that holds another run, or files that are not a run's.

    Reads only; :func:`prepare_out` checks again with the folder locked.
    """
    out = Path(out)
    config_path = out / CONFIG_FILE
    if config_path.exists() and not force:
        stored = _read_config(config_path)
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
    elif (
        not force
        and out.is_dir()
        and any(path.name != LOCK_FILE for path in out.iterdir())
    ):
        raise ExperimentError(
            f"{str(out)!r} is not empty and holds no sklandscapes run; choose "
            "another --out or pass --force"
        )


def prepare_out(out, config, resume, force):
    """Check ``out`` again, then make it the run's folder (``config.json``).

    Called with the folder's lock held (:func:`locked`), so that what is
    checked still holds when ``force`` clears the folder.
    """
    check_folder(out, config, resume, force)
    out, config_path = Path(out), Path(out) / CONFIG_FILE
    if force:
        clear_run(out)
    text = json.dumps(config.to_dict(), indent=2).encode()
    atomic_write(config_path, lambda handle: handle.write(text))
    return out


@contextlib.contextmanager
def locked(out):
    """Hold ``out`` for this process: create it, and lock its ``run.lock``.

    A second run on the same folder, in any process, is refused with the
    process id of the first. The operating system releases the lock when its
    process ends, however it ends, so a killed run leaves nothing stuck. Where
    files cannot be locked (no ``fcntl``, no ``msvcrt``), runs are not
    guarded.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_FILE, "a+") as handle:
        if not _try_lock(handle):
            handle.seek(0)
            pid = handle.read().strip()
            raise ExperimentError(
                f"{str(out)!r} is in use by another run (process "
                f"{pid or 'unknown'}); wait for it to end, or choose another --out"
            )
        # Recorded for the message above; only the lock itself is trusted.
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield out


def _try_lock(handle):
    """Lock ``handle``'s file without waiting; False if another process has it."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt

            # A byte far past the pid, so that the pid stays readable.
            handle.seek(1 << 20)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except ImportError:  # pragma: no cover - neither module
        return True
    except OSError:
        return False
    return True


def _read_config(path):
    """The stored configuration; a damaged ``config.json`` is a user error.

    It is the only record of what the stored results were computed with, so it
    is never guessed or rewritten from the configuration asked for now: that
    could silently mix results of two configurations.
    """
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict):
            raise ValueError(f"expected a JSON object, got {type(stored).__name__}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExperimentError(
            f"{str(path)!r} is damaged ({describe(exc)}), so the configuration "
            "of the stored results is unknown; pass --force to start over there, "
            "or restore that file"
        ) from exc
    return stored


def describe(exc):
    """An exception as one short line: its class and the first line of its text."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def load_intact(path, load):
    """``load(path)``, or ``None`` when the file is missing or damaged.

    A damaged file (truncated, empty, flipped bytes: whatever makes ``load``
    raise) is reported as one :class:`DamagedFileWarning` line and deleted, so
    that the caller computes it again.
    """
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read means damaged
        report_damaged(path, exc)
        path.unlink(missing_ok=True)
        return None


def report_damaged(path, exc, action="deleted; computing it again"):
    warnings.warn(
        f"{os.fspath(path)!r} is damaged ({describe(exc)}); {action}",
        DamagedFileWarning,
        stacklevel=3,
    )


def write_checked(path, text):
    """Write ``text`` to ``path``; a file there that differs is reported first.

    For files that are only ever rewritten from results stored elsewhere (the
    training logs): their stored text must be exactly ``text``.
    """
    data = text.encode()
    if path.exists() and path.read_bytes() != data:
        report_damaged(
            path,
            ValueError("it differs from the stored training results"),
            action="written again",
        )
    atomic_write(path, lambda handle: handle.write(data))


def relative_path(out, path):
    """``path`` relative to the run folder ``out`` (stored), or ``None``."""
    if path is None:
        return None
    return Path(os.path.relpath(path, out)).as_posix()


def resolve_path(out, path):
    """Inverse of :func:`relative_path`: a stored relative path under ``out``."""
    return None if path is None else os.fspath(Path(out) / path)


def clear_run(out):
    """Remove what a previous run wrote (only our own files and folders)."""
    for name in (TRAINING_DIR, DIAGRAMS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    # landscapes.npy and its checksums, its partial file and record.
    patterns = ("*.png", "*.npz", "*.md", CONFIG_FILE, "timings.json", "landscapes.*")
    for pattern in patterns:
        for path in out.glob(pattern):
            remove_file(path)


def remove_file(path):
    """Delete ``path``; a file held open (Windows refuses) is an ExperimentError.

    On Windows a file cannot be deleted while it is open, and the landscapes
    of a result (``ExperimentResult.landscapes``, ``load_results``) are a
    memory map that keeps ``landscapes.npy`` open for as long as it lives.
    """
    try:
        path.unlink()
    except PermissionError as exc:
        raise ExperimentError(
            f"{os.fspath(path)!r} cannot be deleted ({exc.strerror or exc}): it is "
            "held open, most likely as the memory map of an earlier result's "
            "landscapes in this process (ExperimentResult.landscapes, or "
            'load_results(...)["landscapes"]); release it first (del result, or '
            "del result.landscapes, and any array taken from it), or close the "
            "program that has it open"
        ) from exc


# --------------------------------------------------------------------------
# Stages


def diagram_path(out, key):
    j, k, s = key
    return out / DIAGRAMS_DIR / f"threshold{j}_network{k:04d}_subsample{s}.npz"


def diagrams_intact(out, key):
    """Whether the diagrams of ``key`` are stored and readable (else deleted)."""
    return load_intact(diagram_path(out, key), load_diagrams) is not None


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


def record_timings(out, timings, n_computed, work=None):
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
    calls.append(
        {
            "timings": dict(timings),
            "diagrams_computed": int(n_computed),
            "work": {name: int(count) for name, count in (work or {}).items()},
        }
    )
    text = json.dumps({"calls": calls}, indent=1).encode()
    atomic_write(path, lambda handle: handle.write(text))
    return calls


def count_diagrams(out):
    """Samples whose diagrams are stored in the folder."""
    return len(list((Path(out) / DIAGRAMS_DIR).glob("*.npz")))
