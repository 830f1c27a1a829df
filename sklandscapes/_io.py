"""Writing files so that an interrupted run never leaves half of one."""

import contextlib
import os
import tempfile
import threading

__all__ = ["atomic_write"]

_UMASK_LOCK = threading.Lock()


def _umask():
    """The process's umask, read without changing it where the OS says it.

    Elsewhere it is set and put back under a lock: the umask belongs to the
    whole process, and two threads doing that at once could leave it at 0.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        umask = os.umask(0)
        os.umask(umask)
    return umask


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it.

    ``os.replace`` within one folder is atomic, so a reader (or a run that was
    killed mid-write) sees either the old file or the complete new one, never
    a truncated file. The folder is created when missing; the file gets the
    mode of an ordinary new file.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode of an ordinary file.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
