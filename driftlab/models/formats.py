"""Recognise the kind of model file a user hands in, without unpickling it.

Formats (:data:`MODEL_FORMATS`):

``torch``
    written by ``torch.save`` (the zip format of torch >= 1.6, or the legacy
    pickle format): a state dict or a checkpoint dict holding one;
``safetensors``
    a safetensors file (Hugging Face ``safetensors``): one flat state dict;
``torchscript``
    a TorchScript archive (``torch.jit.save``);
``exported``
    a ``torch.export`` archive (``torch.export.save``, usually ``.pt2``).

Sizes are checked before anything is read into memory: a zip archive whose
compressed records would expand past :data:`MAX_COMPRESSED_BYTES` (the
writers above store tensors uncompressed) and a legacy file whose tensors
declare more bytes than the file holds are refused.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError

__all__ = [
    "MAX_COMPRESSED_BYTES",
    "MODEL_FORMATS",
    "WeightsError",
    "check_legacy_sizes",
    "detect_model_format",
    "format_label",
]

MODEL_FORMATS: tuple[str, ...] = ("torch", "safetensors", "torchscript", "exported")

MAX_COMPRESSED_BYTES = 256 * 2**20
"""Most bytes the compressed records of a model archive may expand to (256 MiB).

``torch.save``, ``torch.jit.save`` and ``torch.export.save`` store tensors
uncompressed; only TorchScript's code records are compressed (kilobytes).
"""

_LABELS = {
    "torch": "a torch.save file",
    "safetensors": "a safetensors file",
    "torchscript": "a TorchScript archive",
    "exported": "a torch.export archive",
}

# safetensors: 8-byte little-endian header length, then a JSON object
_SAFETENSORS_MAX_HEADER = 100 * 2**20


class WeightsError(DriftlabError, ValueError):
    """A weights or model file cannot be used as asked (wrong kind, content or shapes)."""

    exit_code = 2


def format_label(kind: str) -> str:
    """``"a TorchScript archive"`` etc. for a format of :data:`MODEL_FORMATS`."""
    return _LABELS[kind]


def _existing_file(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise WeightsError(f"{what} {str(path)!r} is not a regular file")
    return path


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(f"{str(path)!r} is a damaged zip archive: {exc}") from None
    expanded = sum(i.file_size for i in infos if i.compress_type != zipfile.ZIP_STORED)
    if expanded > MAX_COMPRESSED_BYTES:
        raise WeightsError(
            f"{str(path)!r}: its compressed records would expand to {expanded} bytes (limit "
            f"{MAX_COMPRESSED_BYTES}); torch writes tensors uncompressed, so this file was "
            "re-packed or forged and is refused"
        )
    # every record sits under one top-level folder named after the file
    inner = {info.filename.split("/", 1)[-1] for info in infos}
    if "archive_format" in inner:
        return "exported"
    if "constants.pkl" in inner and any(name.startswith("code/") for name in inner):
        return "torchscript"
    if "data.pkl" in inner:
        return "torch"
    raise WeightsError(
        f"{str(path)!r} is a zip archive but was not written by torch.save, "
        "torch.jit.save or torch.export.save"
    )


def _is_safetensors(path: Path, size: int) -> bool:
    if size < 10:
        return False
    with path.open("rb") as handle:
        head = handle.read(9)
    (length,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 2 <= length <= min(size - 8, _SAFETENSORS_MAX_HEADER)


def _check_safetensors_header(path: Path, size: int) -> None:
    """Check the JSON header: every tensor's extent lies inside the file."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{str(path)!r}: damaged safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{str(path)!r}: damaged safetensors header (not a JSON object)")
    data = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data
        ):
            raise WeightsError(
                f"{str(path)!r}: tensor {name!r} lies outside the file's {data} data bytes "
                "(truncated or forged safetensors file)"
            )


def detect_model_format(path: str | os.PathLike[str], what: str = "model file") -> str:
    """Tell what a model file holds from its layout, reading no tensors.

    Parameters
    ----------
    path : str or os.PathLike
        File written by ``torch.save``, ``safetensors``, ``torch.jit.save``
        or ``torch.export.save``.
    what : str
        How error messages call the file (e.g. ``"weights file"``).

    Returns
    -------
    str
        One of :data:`MODEL_FORMATS`: ``"exported"`` (a zip with
        ``archive_format``), ``"torchscript"`` (``constants.pkl`` and
        ``code/``), ``"torch"`` (a zip with ``data.pkl``, or the legacy
        pickle format), ``"safetensors"`` (8-byte header length and a JSON
        header whose tensors lie inside the file). Whether a ``torch`` file
        really holds a state dict is checked when it is read
        (:func:`driftlab.models.read_state_dict`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        If ``path`` is not a regular file, not any of these formats, a
        damaged zip, a zip whose compressed records expand past
        :data:`MAX_COMPRESSED_BYTES`, or a safetensors file whose header
        points outside the file.
    """
    path = _existing_file(path, what)
    size = path.stat().st_size
    if zipfile.is_zipfile(path):
        return _zip_format(path)
    if _is_safetensors(path, size):
        _check_safetensors_header(path, size)
        return "safetensors"
    with path.open("rb") as handle:
        head = handle.read(1)
    if head == b"\x80":  # pickle protocol >= 2: the legacy torch.save format
        return "torch"
    raise WeightsError(
        f"{str(path)!r} is not a model file driftlab reads (a torch.save, safetensors, "
        "torch.jit.save or torch.export.save file): point [model] weights at one"
    )


# -- legacy torch.save files: bound the declared tensor sizes before torch allocates them ------
class _Inert:
    """Stands in for every class a pickle names: accepts anything, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class _DryUnpickler(pickle.Unpickler):
    """Walk a pickle without importing or calling anything it names.

    ``find_class`` returns an inert class tagged with the name; persistent
    ids (how torch refers to tensor storages) are recorded.
    """

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.persistent_ids: list[Any] = []

    def find_class(self, module: str, name: str) -> type:
        return type("Inert", (_Inert,), {"qualname": f"{module}.{name}"})

    def persistent_load(self, pid: Any) -> Any:
        self.persistent_ids.append(pid)
        return _Inert()


_STORAGE_BYTES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
}


def _element_size(storage_type: Any) -> int:
    """Bytes per element of a legacy storage class (the largest, 16, when unknown)."""
    module, _, name = getattr(storage_type, "qualname", "").rpartition(".")
    return _STORAGE_BYTES.get(name, 16) if module == "torch" else 16


def check_legacy_sizes(path: str | os.PathLike[str]) -> None:
    """Refuse a legacy ``torch.save`` file whose tensors declare more bytes than it holds.

    ``torch.load`` allocates a legacy file's storages at their declared size
    before reading them, so a few forged bytes could ask for gigabytes. The
    pickles are walked with an unpickler that imports and calls nothing.

    Parameters
    ----------
    path : str or os.PathLike
        A legacy-format ``torch.save`` file (see :func:`detect_model_format`).

    Raises
    ------
    WeightsError
        The declared storages exceed the file size, or the pickles are damaged.
    """
    path = Path(path)
    size = path.stat().st_size
    declared = 0
    try:
        with path.open("rb") as handle:
            for _ in range(4):  # magic number, protocol version, system info, the object
                unpickler = _DryUnpickler(handle)
                unpickler.load()
            for pid in unpickler.persistent_ids:
                if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
                    numel = pid[4]
                    if not isinstance(numel, int) or numel < 0:
                        raise WeightsError(f"{str(path)!r}: a storage declares size {numel!r}")
                    declared += numel * _element_size(pid[1])
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(
            f"{str(path)!r} could not be read as a torch.save file: {type(exc).__name__}: {exc}"
        ) from None
    if declared > size:
        raise WeightsError(
            f"{str(path)!r}: its tensors declare {declared} bytes but the file has {size}; "
            "truncated or forged, refused"
        )
