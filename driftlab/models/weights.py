"""Read and load user-supplied weights safely (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from driftlab.models.formats import WeightsError, detect_model_format

__all__ = ["WeightsError", "load_weights", "read_state_dict", "save_weights"]

_PREVIEW = 8


def _preview(items: list[str]) -> str:
    shown = ", ".join(repr(k) for k in items[:_PREVIEW])
    return shown + (f" and {len(items) - _PREVIEW} more" if len(items) > _PREVIEW else "")


def read_state_dict(
    path: str | os.PathLike[str], *, key: str | None = None
) -> dict[str, torch.Tensor]:
    """Read a state dict without executing code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        File written by ``torch.save(model.state_dict(), path)`` (or a
        checkpoint dict holding one, see ``key``).
    key : str, optional
        Entry of a checkpoint dict that holds the state dict (e.g.
        ``"state_dict"`` for PyTorch Lightning, ``"model"`` for many scripts).

    Returns
    -------
    dict of str to torch.Tensor
        Tensors on the CPU, dtypes as stored.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        The file is a TorchScript or exported-program archive, is not a
        PyTorch file, holds pickled Python objects other than tensors and
        containers (refused by ``weights_only=True``), lacks ``key``, or is
        not a non-empty mapping of names to tensors (the message then names a
        checkpoint entry that looks like a state dict, if any).
    """
    kind = detect_model_format(path, "weights file")
    where = str(Path(path))
    if kind != "state_dict":
        label = "a TorchScript archive" if kind == "torchscript" else "a torch.export archive"
        raise WeightsError(
            f"{where!r} is {label}, not a state dict: it carries its own architecture; "
            "load it with driftlab.models.load_task_model(path) without an architecture"
        )
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        needs = f" (it needs {found.group(1)})" if found else ""
        raise WeightsError(
            f"{where!r} holds pickled Python objects other than tensors{needs}, for example a "
            "whole model saved with torch.save(model); they are not loaded because unpickling "
            "can run arbitrary code. Save model.state_dict() instead, or a TorchScript / "
            "torch.export file"
        ) from None
    except Exception as exc:
        raise WeightsError(
            f"{where!r} could not be read by torch.load: {type(exc).__name__}: {exc}"
        ) from None
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            entries = _preview([str(k) for k in obj]) if isinstance(obj, Mapping) else "none"
            raise WeightsError(f"{where!r} has no entry {key!r} (entries: {entries})")
        obj = obj[key]
        where = f"{where}[{key!r}]"
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"{where!r}: expected a state dict (a mapping of parameter names to tensors), "
            f"got {type(obj).__name__}"
        )
    if not obj:
        raise WeightsError(f"{where!r}: the state dict is empty")
    bad = [
        f"{k!r} ({type(v).__name__})"
        for k, v in obj.items()
        if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        nested = [
            str(k)
            for k, v in obj.items()
            if isinstance(v, Mapping) and v and all(isinstance(t, torch.Tensor) for t in v.values())
        ]
        hint = f"; entry {nested[0]!r} looks like one: pass key={nested[0]!r}" if nested else ""
        shown = ", ".join(bad[:_PREVIEW]) + (" ..." if len(bad) > _PREVIEW else "")
        raise WeightsError(
            f"{where!r} is not a state dict: entries {shown} are not tensors named by strings{hint}"
        )
    return dict(obj)


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], *, key: str | None = None
) -> nn.Module:
    """Load a state dict into ``model``, checking every key and shape first.

    Parameters
    ----------
    model : torch.nn.Module
        Model whose architecture the weights were trained with.
    path : str or os.PathLike
        State-dict file (see :func:`read_state_dict`).
    key : str, optional
        Checkpoint entry holding the state dict.

    Returns
    -------
    torch.nn.Module
        ``model`` itself, with the weights copied in (converted to the dtype
        and device of its parameters and buffers).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        As :func:`read_state_dict`; and when keys are missing from the file,
        the file has unexpected keys, or a tensor's shape differs (each is
        named with the file's and the model's shapes); up to 8 of each kind
        are listed. Nothing is loaded in that case.
    """
    state = read_state_dict(path, key=key)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
    mismatched = [
        f"shape mismatch for {k!r}: file has {tuple(state[k].shape)}, "
        f"model expects {tuple(want.shape)}"
        for k, want in expected.items()
        if k in state and tuple(state[k].shape) != tuple(want.shape)
    ]
    problems += mismatched[:_PREVIEW]
    if len(mismatched) > _PREVIEW:
        problems.append(f"and {len(mismatched) - _PREVIEW} more shape mismatches")
    if problems:
        hint = ""
        stripped = {k.removeprefix("module.") for k in state}
        if unexpected and all(k.startswith("module.") for k in state) and stripped == set(expected):
            hint = (
                "\n  (the file's keys carry the 'module.' prefix of DataParallel / "
                "DistributedDataParallel: save model.module.state_dict() instead)"
            )
        where = str(Path(path)) + (f"[{key!r}]" if key is not None else "")
        raise WeightsError(
            f"{where!r} does not fit {type(model).__name__}:\n  " + "\n  ".join(problems) + hint
        )
    model.load_state_dict(state, strict=True)
    return model


def save_weights(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model.state_dict()`` so that :func:`load_weights` can read it back.

    Parameters
    ----------
    model : torch.nn.Module
        Model to save.
    path : str or os.PathLike
        Destination file; its folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} for the weights file does not exist")
    torch.save(model.state_dict(), path)
    return path
