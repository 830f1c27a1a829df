"""Snapshot files: a network's weights and where they were taken, on disk.

The format every part of the package reads and writes: ``torch.save`` of a
dict with tensors, numbers and strings only. It sits below the estimators
(``ActivationExtractor`` reads snapshot paths) and the ``nets`` package
(which writes them), so that neither imports the other for it.
"""

import os

import torch

from sklandscapes._io import atomic_write
from sklandscapes._mlp import ACTIVATIONS, MLP, mlp_from_state_dict

__all__ = ["load_snapshot", "load_snapshot_metadata", "save_snapshot"]

SNAPSHOT_FORMAT = "sklandscapes-snapshot"
SNAPSHOT_VERSION = 1


def _optional(value, kind):
    return None if value is None else kind(value)


def save_snapshot(module, path, *, threshold=None, accuracy=None, epoch=None):
    """Write ``module``'s weights atomically to ``path`` in the snapshot format.

    The file is ``torch.save`` of a dict with ``format="sklandscapes-snapshot"``,
    ``version=1``, ``module_class="MLP"``, ``module_kwargs`` (``widths`` and
    ``activation``), ``state_dict`` (CPU tensors), ``threshold``, ``accuracy``
    and ``epoch``. It holds tensors, numbers and strings only, so
    :func:`load_snapshot` reads it with ``weights_only=True``.

    Parameters
    ----------
    module : MLP
        The network. Only a named activation (a string) can be saved.
    path : str or path-like
        Destination; written to a temporary file in the same directory and
        renamed, so an interrupted write never leaves a truncated snapshot.
    threshold : float or None, default=None
        The training-accuracy threshold this snapshot was taken for.
    accuracy : float or None, default=None
        The training accuracy of the network when it was taken.
    epoch : int or None, default=None
        The (1-based) epoch after which it was taken.

    See Also
    --------
    load_snapshot : Read the network back.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_snapshot(MLP((2, 3, 2), random_state=0), path, threshold=0.9,
    ...               accuracy=0.93, epoch=4)
    >>> load_snapshot(path).widths
    (2, 3, 2)
    """
    if not isinstance(module, MLP):
        raise ValueError(
            f"save_snapshot saves sklandscapes.nets.MLP modules, got "
            f"{type(module).__name__}; for a skorch net pass net.module_."
        )
    if not isinstance(module.activation, str):
        raise ValueError(
            "only an MLP with a named activation can be saved as a snapshot "
            f"(one of {sorted(ACTIVATIONS)}), got activation={module.activation!r}."
        )
    state_dict = {
        key: value.detach().to("cpu", copy=True)
        for key, value in module.state_dict().items()
    }
    payload = dict(
        format=SNAPSHOT_FORMAT,
        version=SNAPSHOT_VERSION,
        module_class="MLP",
        module_kwargs={"widths": list(module.widths), "activation": module.activation},
        state_dict=state_dict,
        threshold=_optional(threshold, float),
        accuracy=_optional(accuracy, float),
        epoch=_optional(epoch, int),
    )
    atomic_write(path, lambda file: torch.save(payload, file))


def _read_snapshot(path, device):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No snapshot file at {path!r}.")
    expected = (
        f"expected a file written by sklandscapes.nets.save_snapshot (a dict with "
        f"format={SNAPSHOT_FORMAT!r})"
    )
    try:
        # weights_only: a snapshot holds tensors, numbers and strings, so nothing
        # in it needs arbitrary unpickling; map_location makes CUDA snapshots
        # load on a CPU-only machine.
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path!r} is not a sklandscapes snapshot: {expected}; torch.load "
            f"failed with {type(error).__name__}: {error}"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path!r} is not a sklandscapes snapshot: {expected}.")
    if payload.get("version") != SNAPSHOT_VERSION or payload.get("module_class") != (
        "MLP"
    ):
        raise ValueError(
            f"{path!r} is a snapshot of version {payload.get('version')!r} with "
            f"module_class={payload.get('module_class')!r}; this sklandscapes reads "
            f"version {SNAPSHOT_VERSION} with module_class='MLP'."
        )
    return payload


def load_snapshot(path, device="cpu"):
    """Read a snapshot written by :func:`save_snapshot` as an ``MLP`` module.

    Parameters
    ----------
    path : str or path-like
        The snapshot file.
    device : str or torch.device, default="cpu"
        Where the weights go; a snapshot taken on a GPU loads on a CPU-only
        machine.

    Returns
    -------
    module : MLP
        The network, in eval mode.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a snapshot.

    See Also
    --------
    load_snapshot_metadata : Threshold, accuracy and epoch of a snapshot.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> net = MLP((2, 4, 2), random_state=0)
    >>> save_snapshot(net, path)
    >>> bool(torch.equal(load_snapshot(path)(torch.ones(1, 2)),
    ...                  net(torch.ones(1, 2))))
    True
    """
    payload = _read_snapshot(path, device)
    kwargs = payload["module_kwargs"]
    return mlp_from_state_dict(
        kwargs["widths"], kwargs["activation"], payload["state_dict"]
    )


def load_snapshot_metadata(path):
    """Return a snapshot's ``threshold``, ``accuracy``, ``epoch`` and ``module_kwargs``.

    Parameters
    ----------
    path : str or path-like
        The snapshot file.

    Returns
    -------
    metadata : dict
        Keys ``"threshold"``, ``"accuracy"``, ``"epoch"`` (``None`` where the
        snapshot was saved without them) and ``"module_kwargs"``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklandscapes.nets import MLP, save_snapshot, load_snapshot_metadata
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_snapshot(MLP((2, 4, 2), random_state=0), path, threshold=0.5,
    ...               accuracy=0.75, epoch=2)
    >>> meta = load_snapshot_metadata(path)
    >>> meta["threshold"], meta["accuracy"], meta["epoch"]
    (0.5, 0.75, 2)
    """
    payload = _read_snapshot(path, "cpu")
    keys = ("threshold", "accuracy", "epoch", "module_kwargs")
    return {key: payload[key] for key in keys}
