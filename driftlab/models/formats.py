"""Recognise the kind of model file a user hands in, without unpickling it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

__all__ = ["MODEL_FORMATS", "WeightsError", "detect_model_format"]

MODEL_FORMATS: tuple[str, ...] = ("state_dict", "torchscript", "exported")


class WeightsError(ValueError):
    """A weights or model file cannot be used as asked (wrong kind, content or shapes)."""


def _existing_file(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise WeightsError(f"{what} {str(path)!r} is not a regular file")
    return path


def detect_model_format(path: str | os.PathLike[str], what: str = "model file") -> str:
    """Tell what a model file holds from its archive layout.

    Parameters
    ----------
    path : str or os.PathLike
        File written by ``torch.save``, ``torch.jit.save`` or ``torch.export.save``.
    what : str
        How error messages call the file (e.g. ``"weights file"``).

    Returns
    -------
    str
        ``"exported"`` (a ``torch.export`` archive: it has ``archive_format``),
        ``"torchscript"`` (``constants.pkl`` and ``code/``), or
        ``"state_dict"`` for anything written by ``torch.save`` (zip with
        ``data.pkl``, or the legacy pickle format); whether a ``torch.save``
        file really holds a state dict is checked when it is read
        (:func:`driftlab.models.read_state_dict`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        If ``path`` is not a regular file or not any PyTorch file.
    """
    path = _existing_file(path, what)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        # every record sits under one top-level folder named after the file
        inner = {name.split("/", 1)[-1] for name in names}
        if "archive_format" in inner:
            return "exported"
        if "constants.pkl" in inner and any(name.startswith("code/") for name in inner):
            return "torchscript"
        if "data.pkl" in inner:
            return "state_dict"
        raise WeightsError(
            f"{str(path)!r} is a zip archive but was not written by torch.save, "
            "torch.jit.save or torch.export.save"
        )
    with path.open("rb") as handle:
        head = handle.read(1)
    if head == b"\x80":  # pickle protocol >= 2: the legacy torch.save format
        return "state_dict"
    raise WeightsError(
        f"{str(path)!r} is not a PyTorch file (expected a torch.save, torch.jit.save or "
        "torch.export.save file)"
    )
