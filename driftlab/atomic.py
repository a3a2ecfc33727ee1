"""The one atomic file writer of driftlab, and content checksums.

Every file driftlab writes into a run directory or cache goes through
:class:`atomic_path`: the content is written to a hidden temporary file in
the target's folder (same file system), flushed and fsynced, given the
usual permissions (``0o666`` minus the process umask, i.e. 0644 normally)
and renamed over the target with :func:`os.replace`. Readers therefore see
either the old file or the complete new one, never a half-written file; a
process killed mid-write leaves only a hidden ``.NAME.*.tmp*`` file that the
next run removes. The umask is read without changing it (``os.umask`` is
process-global state; driftlab never toggles it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TEMP_GLOB",
    "atomic_path",
    "bytes_sha256",
    "file_mode",
    "file_sha256",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_npy_atomic",
    "write_text_atomic",
]

TEMP_GLOB = ".*.tmp*"


def _process_umask() -> int:
    """The process umask, read from ``/proc/self/status`` (Linux) without changing it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def file_mode() -> int:
    """Permission bits of files driftlab creates: ``0o666 & ~umask`` (0644 by default)."""
    return 0o666 & ~_process_umask()


class atomic_path:
    """Context manager yielding a temporary path that replaces ``target`` on success.

    Parameters
    ----------
    target : str or Path
        Final file name; its folder is created if missing.
    suffix : str, optional
        Suffix of the temporary file (defaults to the target's), for writers
        that pick a format from it.

    Notes
    -----
    On an exception inside the block the temporary file is removed and
    ``target`` is left untouched. An ``OSError`` (read-only or full disk)
    propagates after the clean-up.
    """

    def __init__(self, target: str | Path, suffix: str = "") -> None:
        self.target = Path(target)
        self.suffix = suffix or self.target.suffix

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=f".tmp{self.suffix}", dir=self.target.parent
        )
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        try:
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(self.tmp, file_mode())
            os.replace(self.tmp, self.target)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """Write JSON (indented, keys sorted, NaN refused) atomically; return the path.

    Raises
    ------
    ValueError
        If ``data`` holds NaN or infinity (JSON has no such numbers).
    """
    text = json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False)
    return write_text_atomic(text + "\n", path)


def write_npy_atomic(array: np.ndarray, path: str | Path) -> Path:
    """Write ``array`` as ``.npy`` (no pickle) atomically; return the path."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return path


def bytes_sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
