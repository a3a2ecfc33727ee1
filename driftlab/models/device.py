"""Choose the torch device a run uses (the ``--device`` option)."""

from __future__ import annotations

import re

import torch

from driftlab.errors import DriftlabError

__all__ = ["DeviceError", "resolve_device"]

_CUDA = re.compile(r"cuda(?::(\d+))?")


class DeviceError(DriftlabError, ValueError):
    """A device was named that does not exist or is not available here."""

    exit_code = 2


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a usable ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (the current CUDA device when a GPU is available, else
        the CPU), ``"cpu"``, ``"cuda"`` (the current CUDA device, normally
        ``cuda:0``) or ``"cuda:N"``.
        Case and surrounding spaces are ignored.

    Returns
    -------
    torch.device
        With an explicit index for CUDA.

    Raises
    ------
    DeviceError
        An unknown device string, or CUDA requested while torch sees no CUDA
        GPU (the message says what torch was built with), or a CUDA index
        beyond the number of GPUs.
    """
    text = str(device).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(text)
    if match is None:
        raise DeviceError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index), got {device!r}"
        )
    if not torch.cuda.is_available():
        built = (
            f"this torch {torch.__version__} is built with CUDA {torch.version.cuda} but sees "
            "no usable GPU"
            if torch.version.cuda
            else f"this torch {torch.__version__} is built without CUDA"
        )
        raise DeviceError(
            f"device {device!r} requested but CUDA is not available ({built}); "
            "use device 'cpu' or 'auto'"
        )
    if match.group(1) is None:
        return torch.device("cuda", torch.cuda.current_device())
    index = int(match.group(1))
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {device!r} requested but only {count} CUDA device(s) are visible "
            f"(valid: {', '.join(f'cuda:{i}' for i in range(count))})"
        )
    return torch.device("cuda", index)
