"""The one atomic file writer of driftlab, and content checksums.

Every file driftlab writes into a run directory or cache goes through
:class:`atomic_path`: the content is written to a hidden temporary file in
the target's folder (same file system), created with the usual permissions
(``0o666`` minus the process umask, applied by the kernel, i.e. 0644
normally), flushed and fsynced (unless the writer checks what it reads back,
see ``durable``) and renamed over the target with :func:`os.replace`.
Readers therefore see either the old file or the complete new one, never a
half-written file; a process killed mid-write leaves only a hidden
``.NAME.<pid>@<host>.*.tmp*`` file, which :func:`remove_stale_temporaries`
deletes once its writer is gone (a run directory, locked by its driver,
removes all of them at start). The umask is never read or changed
(``os.umask`` is process-global state).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TEMP_GLOB",
    "atomic_path",
    "bytes_sha256",
    "file_sha256",
    "remove_stale_temporaries",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_npy_atomic",
    "write_text_atomic",
]

TEMP_GLOB = ".*.tmp*"
_HOST = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:40] or "host"
_WRITER = re.compile(r"\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.")


class atomic_path:
    """Context manager yielding a temporary path that replaces ``target`` on success.

    Parameters
    ----------
    target : str or Path
        Final file name; its folder is created if missing.
    suffix : str, optional
        Suffix of the temporary file (defaults to the target's), for writers
        that pick a format from it.
    durable : bool
        fsync the file before the rename (default). ``False`` skips it, for
        files whose reader verifies a checksum and recomputes a damaged one
        (the view cache): after a power loss such a file may be empty or
        stale, never accepted.

    Notes
    -----
    On an exception inside the block the temporary file is removed and
    ``target`` is left untouched. An ``OSError`` (read-only or full disk)
    propagates after the clean-up.
    """

    def __init__(self, target: str | Path, suffix: str = "", *, durable: bool = True) -> None:
        self.target = Path(target)
        self.suffix = suffix or self.target.suffix
        self.durable = durable

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.target.name}.{os.getpid()}@{_HOST}."
        for _ in range(100):
            tmp = self.target.parent / f"{prefix}{secrets.token_hex(6)}.tmp{self.suffix}"
            try:
                # mode 0o666: the kernel applies the umask (mkstemp would create 0o600)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self.tmp = tmp
            return tmp
        raise FileExistsError(f"{self.target.parent}: no free temporary name for {prefix}*")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        try:
            if self.durable:
                with open(self.tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.replace(self.tmp, self.target)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise


def write_bytes_atomic(data: bytes, path: str | Path, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; return the path (``durable``: see
    :class:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path, durable=durable) as tmp:
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


def _writer_gone(name: str) -> bool:
    """Whether the writer recorded in a temporary file's name has ended on this host."""
    match = _WRITER.search(name)
    if match is None or match.group("host") != _HOST:
        return False
    pid = int(match.group("pid"))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_stale_temporaries(folder: str | Path, older_than: float = 3600.0) -> int:
    """Delete temporary files of :class:`atomic_path` below ``folder`` whose writer is gone.

    A file is deleted when its writer (process id and host in its name) no
    longer runs on this host, or when it has not changed for ``older_than``
    seconds (a writer on another host of a shared folder). A live writer's
    recent file is never touched.

    Returns
    -------
    int
        Number of files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in folder.rglob(TEMP_GLOB):
        try:
            if _writer_gone(path.name) or now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed += 1
        except (FileNotFoundError, IsADirectoryError):
            continue
    return removed
