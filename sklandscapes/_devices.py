"""Torch devices: one check and one meaning of ``"auto"`` for the package.

``"auto"`` means CUDA when torch sees a GPU, the CPU otherwise; a module
already on a GPU stays there. Torch is imported inside the functions, so that
``import sklandscapes`` works without it.
"""

__all__ = ["check_device", "resolve_device"]


def check_device(device, name="device"):
    """Raise ``ValueError`` unless ``device`` is "auto" or usable here.

    The message names the parameter and says what to pass instead.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"unknown device {device!r}: `{name}` must be 'auto' or a torch device "
            "string such as 'cpu' or 'cuda:0'."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} needs CUDA, which torch {torch.__version__} "
                "does not see on this machine (CUDA is not available); use "
                f"`{name}`='auto' or 'cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: torch sees only {torch.cuda.device_count()} "
                "GPU(s), numbered from 0."
            )
    elif parsed.type != "cpu" and not (
        parsed.type == "mps" and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device {device!r} is not available here; use `{name}`='auto', 'cpu' "
            "or 'cuda'."
        )


def resolve_device(device, current=None):
    """The device that ``device`` means, for a module now on ``current``.

    ``"auto"``: ``current`` when it is a GPU or when torch sees none, else
    CUDA; without ``current``, CUDA when torch sees a GPU, else the CPU. Any
    other value is returned as given. ``"cuda"`` without an index is pinned
    to the current CUDA device, so that a module already there is not copied.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        if current is None:
            return "cuda" if torch.cuda.is_available() else "cpu"
        if current.type == "cuda" or not torch.cuda.is_available():
            return current
        device = "cuda"
    if current is None:
        return device
    target = torch.device(device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())
    return target
