"""torch's intra-op thread count while networks train: one rule for every path.

These networks are too small for threads to help, and on a machine whose cores
other work keeps busy torch's threads wait on each other and training gets many
times slower (``benchmarks/bench_threads.py``). So training uses one thread
unless the user chose a count; ``train_networks``, the skorch nets of
:func:`make_mlp_classifier` and the topology monitor all apply this rule.
"""

import contextlib
import os
import threading

import torch

from sklandscapes._validation import check_count

__all__ = ["torch_threads"]

# torch's intra-op thread count when this module was imported: a different
# count later means that the user chose one, which is then kept.
IMPORT_THREADS = torch.get_num_threads()
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# How many torch_threads blocks are open in each thread: inside one, the
# count was chosen (by its n_threads or by the rule), so a nested
# n_threads=None keeps it. Per thread, as torch's count is: a block open in
# another thread says nothing of this one's.
_blocks = threading.local()


def _open_blocks():
    return getattr(_blocks, "open", 0)


def check_n_threads(n_threads):
    """``n_threads`` if it is None or an int >= 1; raises ValueError otherwise."""
    if n_threads is None:
        return None
    return check_count(n_threads, "n_threads")


def threads_chosen_by_user():
    """Whether the user chose torch's thread count (see :func:`torch_threads`)."""
    return (
        _open_blocks() > 0
        or any(os.environ.get(name) for name in _THREAD_VARIABLES)
        or torch.get_num_threads() != IMPORT_THREADS
    )


@contextlib.contextmanager
def torch_threads(n_threads=None):
    """Run a block with torch's intra-op thread count set for small networks.

    ``n_threads`` threads while the block runs, and the count from before
    restored after it, also when it raises. ``None`` keeps the count the user
    chose, with ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``, a
    ``torch.set_num_threads`` call after ``sklandscapes.nets`` was imported or
    an enclosing ``torch_threads`` block, and otherwise uses **1 thread**:
    small networks gain nothing from threads, and on a machine whose cores
    other work keeps busy torch's threads wait on each other and training gets
    many times slower (``benchmarks/bench_threads.py`` measures it).

    :func:`train_networks` and the nets of :func:`make_mlp_classifier` train
    inside it; wrap the ``fit`` of a skorch net built otherwise.

    Parameters
    ----------
    n_threads : int or None, default=None
        The thread count inside the block; ``None`` applies the rule above.

    Examples
    --------
    >>> import torch
    >>> from sklandscapes.nets import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(2):
    ...     torch.get_num_threads()
    2
    >>> torch.get_num_threads() == before
    True
    """
    n_threads = check_n_threads(n_threads)
    if n_threads is None and not threads_chosen_by_user():
        n_threads = 1
    previous = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    _blocks.open = _open_blocks() + 1
    try:
        yield
    finally:
        _blocks.open -= 1
        if n_threads is not None:
            torch.set_num_threads(previous)
