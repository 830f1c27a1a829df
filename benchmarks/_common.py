"""Helpers shared by the benchmark scripts: versions, machine, timing, tables."""

import datetime
import os
import platform
import time
from importlib import metadata


def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(packages):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    lines = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.platform()}, {platform.processor() or 'cpu ?'}, "
        f"{os.cpu_count()} logical cores ({cores} usable), load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"python {platform.python_version()}; "
        + ", ".join(f"{p} {version(p)}" for p in packages),
    ]
    return "\n".join(lines)


def best_of(repeats, fn, *args, **kwargs):
    """Best wall time of ``repeats`` calls and the first call's result."""
    times, result = [], None
    for i in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
        if i == 0:
            result = out
    return min(times), result


def print_table(title, rows, width=44):
    """rows: (name, seconds or None, reference seconds or None, note)."""
    print(f"\n{title}")
    print(f"  {'method':<{width}} {'seconds':>9} {'ratio':>8}  note")
    for name, seconds, reference, note in rows:
        if seconds is None:
            print(f"  {name:<{width}} {'-':>9} {'-':>8}  {note}")
            continue
        ratio = f"{seconds / reference:.2f}" if reference else "-"
        print(f"  {name:<{width}} {seconds:9.3f} {ratio:>8}  {note}")


def peak_rss_bytes():
    """This process's resident-set high-water mark, in bytes.

    Linux's ``VmHWM`` belongs to the process image, whereas ``ru_maxrss``
    survives ``fork`` + ``exec``: a child started by a parent that once held
    more memory would report the parent's peak. ``ru_maxrss`` is the fallback.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
