"""A run directory: resolved config, manifest, checked cell records, tables, figures, report.

Layout::

    RUN/
      .lock              held (flock) by the driver while it runs
      config.toml        resolved configuration (what ran; ``run.out`` is this folder)
      manifest.json      kind, versions, plugins, the run identity and its hash,
                         the output folder, one entry per session (start, host,
                         executor, device)
      arrays/            shared inputs (view stacks, mosaics, targets) + index.json
                         with their SHA-256
      cells/KEY.csv      tidy rows of one finished cell
      cells/KEY.npz      per-item arrays of the cell (optional, no pickle)
      cells/KEY.json     the cell record, written last: columns, row count,
                         SHA-256 of every file of the cell, device, timing
      models/KEY.NAME    artefacts of the cell (weights ...)
      results.csv, summary.json, figures/, report.md, report.html

Every file is written through :mod:`driftlab.atomic`. A cell counts as
finished only when its record exists and every file it lists has the
recorded checksum and the CSV has the experiment's columns and row count;
anything else (a truncated, edited, empty or binary file) is reported and
the cell is computed again. A run directory belongs to one *identity* (see
:meth:`driftlab.engine.config.ExperimentConfig.identity`): starting another
in it is refused with the list of differing settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import tomli_w

from driftlab.atomic import (
    TEMP_GLOB,
    atomic_path,
    bytes_sha256,
    file_sha256,
    write_bytes_atomic,
    write_json_atomic,
    write_npy_atomic,
    write_text_atomic,
)
from driftlab.engine.cell import ArrayRef, CellSuccess
from driftlab.engine.config import identity_differences
from driftlab.errors import RunDirError

__all__ = ["CellRecord", "RunDir", "write_csv_atomic"]

RECORD_VERSION = 1
MAX_RECORD_BYTES = 16 << 20
COLUMN_KINDS = ("str", "int", "float")


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV (no index, full float precision) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")
    return path


class BadCell(Exception):
    """A finished-looking cell failed its checks (the reason is the message)."""


@attrs.frozen
class CellRecord:
    """A checked finished cell.

    Attributes
    ----------
    key : str
    rows : pandas.DataFrame
        The cell's tidy rows, columns in schema order.
    arrays : dict of str to numpy.ndarray
        Per-item arrays (empty when the cell stored none).
    files : dict of str to Path
        Artefacts by name (``"pt"`` -> ``models/KEY.pt``).
    info : dict
        Details the cell stored (JSON).
    device : str
        Where it was computed.
    seconds : float
    reused : bool
        Found finished on disk (True) or computed in this session (False);
        set by the skeleton.
    """

    key: str
    rows: pd.DataFrame
    arrays: dict[str, np.ndarray]
    files: dict[str, Path]
    info: dict[str, Any]
    device: str
    seconds: float
    reused: bool = False


class RunDir:
    """One run's directory (see module docstring).

    Parameters
    ----------
    path : str or Path
        The directory; created by :meth:`lock`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.cells = self.path / "cells"
        self.models = self.path / "models"
        self.figures = self.path / "figures"
        self.arrays = self.path / "arrays"
        self._lock_fd: int | None = None

    # -- locking and identity ------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the directory's lock for the duration of a run.

        Raises
        ------
        RunDirError
            Another process holds it (its pid, host and start time are
            named), the directory cannot be created or written, or it is a
            non-empty folder that is not a run directory (refused before
            anything is written into it).
        """
        if (
            self.path.is_dir()
            and not (self.path / "manifest.json").exists()
            and not (self.path / ".lock").exists()
            and any(self.path.iterdir())
        ):
            raise RunDirError(
                f"{self.path} exists, is not empty and is not a driftlab run directory; "
                "choose another --out"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"{self.path}: cannot create the run directory ({exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.path} is in use by another driftlab run ({holder}); wait for it to "
                "finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {stamp}".encode(), 0)
        self._lock_fd = fd
        try:
            yield self
        finally:
            self._lock_fd = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def prepare(
        self,
        kind: str,
        identity: Mapping[str, Any],
        digest: str,
        manifest: Mapping[str, Any],
        config: Mapping[str, Any],
    ) -> bool:
        """Create or reopen the directory for a run of ``identity``.

        Returns
        -------
        bool
            True when an earlier run of the same identity is resumed.

        Raises
        ------
        RunDirError
            The directory holds a run of another identity (each differing
            setting is named with its old and new value), of another kind,
            an unreadable manifest, or is a non-empty folder that is not a
            run directory.
        """
        manifest_path = self.path / "manifest.json"
        sessions: list[Any] = []
        resumed = False
        if manifest_path.is_file():
            old = self._read_manifest(manifest_path)
            if old.get("kind") != kind:
                raise RunDirError(
                    f"{self.path} holds a {old.get('kind')!r} run, not a {kind!r} run; choose "
                    "another --out"
                )
            if old.get("identity_sha256") != digest:
                lines = identity_differences(old.get("identity") or {}, identity)
                detail = "; ".join(lines) if lines else "(recorded identity unreadable)"
                raise RunDirError(
                    f"{self.path} holds a run of a different configuration: {detail}. Choose "
                    "another --out, or restore those settings to resume it"
                )
            sessions = list(old.get("sessions") or [])
            resumed = True
        elif any(p.name != ".lock" for p in self.path.iterdir()):
            raise RunDirError(
                f"{self.path} exists, is not empty and is not a driftlab run directory"
            )
        for folder in (self.cells, self.models, self.figures, self.arrays):
            folder.mkdir(parents=True, exist_ok=True)
        self.remove_temporaries()
        sessions.append(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                **{k: manifest[k] for k in ("executor", "device") if k in manifest},
            }
        )
        data = {**config, "run": {**dict(config.get("run", {})), "out": str(self.path)}}
        write_text_atomic(tomli_w.dumps(_tomlable(data)), self.path / "config.toml")
        write_json_atomic(
            {
                **manifest,
                "kind": kind,
                "out": str(self.path),
                "identity": dict(identity),
                "identity_sha256": digest,
                "sessions": sessions,
            },
            manifest_path,
        )
        return resumed

    def read_manifest(self) -> dict[str, Any]:
        """The run's ``manifest.json`` (size-capped, checked to be a JSON object with an identity).

        Raises
        ------
        RunDirError
            Missing, unreadable, too large, or written without a run identity.
        """
        path = self.path / "manifest.json"
        if not path.is_file():
            raise RunDirError(f"{path}: missing; is {self.path} a driftlab run directory?")
        return self._read_manifest(path)

    def _read_manifest(self, path: Path) -> dict[str, Any]:
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                raise ValueError("larger than 16 MiB")
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RunDirError(
                f"{path}: unreadable manifest ({exc}); choose another --out"
            ) from None
        if "identity_sha256" not in data:
            raise RunDirError(
                f"{path}: written by an older driftlab (no run identity); choose another --out"
            )
        return data

    def remove_temporaries(self) -> int:
        """Delete hidden temporary files left by a killed run; return how many."""
        count = 0
        for tmp in self.path.rglob(TEMP_GLOB):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                count += 1
        return count

    # -- shared input arrays -------------------------------------------------------------------
    def _array_index(self) -> dict[str, Any]:
        path = self.arrays / "index.json"
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def reuse_array(self, name: str) -> ArrayRef | None:
        """The array ``name`` written earlier, if its file still has the recorded checksum.

        A missing, truncated or edited file gives None (the caller writes it again).
        """
        entry = self._array_index().get(name)
        path = self.arrays / f"{name}.npy"
        if not isinstance(entry, dict) or not path.is_file():
            return None
        try:
            if file_sha256(path) != entry.get("sha256"):
                return None
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        return ArrayRef(str(path), entry["sha256"], tuple(array.shape), str(array.dtype))

    def store_array(self, prefix: str, array: np.ndarray) -> ArrayRef:
        """Store ``array`` under a name made of ``prefix`` and its content's digest.

        An earlier file of that name is reused only when its bytes are exactly
        the ``.npy`` serialisation of ``array`` (the SHA-256 is computed from
        the array in memory, not taken from ``arrays/index.json``, so an
        edited file together with an edited index is still rewritten).
        """
        array = np.ascontiguousarray(array)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        sha = bytes_sha256(buffer.getvalue())
        name = f"{prefix}-{sha[:16]}"
        path = self.arrays / f"{name}.npy"
        try:
            if path.is_file() and file_sha256(path) == sha:
                entry = self._array_index().get(name)
                if not isinstance(entry, dict) or entry.get("sha256") != sha:
                    self._index_array(name, sha, array)
                return ArrayRef(str(path), sha, tuple(array.shape), str(array.dtype))
        except OSError:
            pass
        return self.write_array(name, array)

    def write_array(self, name: str, array: np.ndarray) -> ArrayRef:
        """Store a shared input array and record its checksum."""
        path = write_npy_atomic(array, self.arrays / f"{name}.npy")
        sha = file_sha256(path)
        self._index_array(name, sha, array)
        return ArrayRef(str(path), sha, tuple(array.shape), str(array.dtype))

    def _index_array(self, name: str, sha: str, array: np.ndarray) -> None:
        index = self._array_index()
        index[name] = {"sha256": sha, "shape": list(array.shape), "dtype": str(array.dtype)}
        write_json_atomic(index, self.arrays / "index.json")

    # -- cells ---------------------------------------------------------------------------------
    def cell_files(self, key: str) -> dict[str, Path]:
        """Every file a cell may own, by role."""
        return {
            "record": self.cells / f"{key}.json",
            "csv": self.cells / f"{key}.csv",
            "npz": self.cells / f"{key}.npz",
        }

    def write_cell(self, result: CellSuccess, columns: Mapping[str, str]) -> None:
        """Store a finished cell: artefacts, arrays and rows first, the record last.

        Raises
        ------
        ValueError
            The rows do not have exactly ``columns``.
        """
        key, output = result.key, result.output
        frame = pd.DataFrame(output.rows, columns=list(columns))
        extra = set().union(*(row.keys() for row in output.rows)) - set(columns)
        if extra:
            raise ValueError(f"cell {key}: rows have unexpected columns {sorted(extra)}")
        files: dict[str, str] = {}
        for name, data in sorted(output.files.items()):
            path = self.models / f"{key}.{name}"
            write_bytes_atomic(data, path)
            files[f"models/{path.name}"] = bytes_sha256(data)
        paths = self.cell_files(key)
        if output.arrays:
            with atomic_path(paths["npz"], suffix=".npz") as tmp:
                np.savez(tmp, **{k: np.asarray(v) for k, v in output.arrays.items()})
            files[f"cells/{key}.npz"] = file_sha256(paths["npz"])
        write_csv_atomic(frame, paths["csv"])
        files[f"cells/{key}.csv"] = file_sha256(paths["csv"])
        write_json_atomic(
            {
                "version": RECORD_VERSION,
                "key": key,
                "columns": dict(columns),
                "rows": len(frame),
                "files": files,
                "arrays": sorted(output.arrays),
                "info": output.info,
                "device": result.device,
                "seconds": round(result.seconds, 3),
                "host": result.host,
                "pid": result.pid,
            },
            paths["record"],
        )

    def discard_cell(self, key: str) -> None:
        """Remove every file of a cell (before it is computed again)."""
        for path in self.cell_files(key).values():
            path.unlink(missing_ok=True)
        for path in self.models.glob(f"{key}.*"):
            path.unlink(missing_ok=True)

    def read_cell(self, key: str, columns: Mapping[str, str]) -> CellRecord:
        """Read and check one finished cell (see module docstring).

        Raises
        ------
        BadCell
            Missing record, or any check failed; the message says which.
        """
        paths = self.cell_files(key)
        record_path = paths["record"]
        if not record_path.is_file():
            raise BadCell("no cell record")
        try:
            if record_path.stat().st_size > MAX_RECORD_BYTES:
                raise BadCell("cell record larger than 16 MiB")
            record = json.loads(record_path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise BadCell(f"unreadable cell record ({exc})") from None
        if not isinstance(record, dict) or record.get("key") != key:
            raise BadCell("cell record does not belong to this cell")
        if record.get("version") != RECORD_VERSION:
            raise BadCell(f"cell record version {record.get('version')!r} is not supported")
        if record.get("columns") != dict(columns):
            raise BadCell("cell columns differ from this driftlab's schema")
        files = record.get("files")
        if not isinstance(files, dict) or f"cells/{key}.csv" not in files:
            raise BadCell("cell record lists no rows file")
        for relative, sha in files.items():
            path = self.path / str(relative)
            if path.parent not in (self.cells, self.models) or not path.name.startswith(key):
                raise BadCell(f"cell record names a foreign file {relative!r}")
            if not path.is_file():
                raise BadCell(f"{relative} is missing")
            if file_sha256(path) != sha:
                raise BadCell(f"{relative} was changed after it was written (checksum mismatch)")
        rows = _read_rows(paths["csv"], columns, record.get("rows"))
        arrays: dict[str, np.ndarray] = {}
        if f"cells/{key}.npz" in files:
            try:
                with np.load(paths["npz"], allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
            except (OSError, ValueError) as exc:
                raise BadCell(f"cells/{key}.npz unreadable ({exc})") from None
        if sorted(arrays) != sorted(record.get("arrays") or []):
            raise BadCell("per-item arrays differ from the cell record")
        artefacts = {
            Path(rel).name[len(key) + 1 :]: self.path / rel
            for rel in files
            if str(rel).startswith("models/")
        }
        info = record.get("info") if isinstance(record.get("info"), dict) else {}
        return CellRecord(
            key=key,
            rows=rows,
            arrays=arrays,
            files=artefacts,
            info=info,
            device=str(record.get("device", "unknown")),
            seconds=float(record.get("seconds") or 0.0),
        )

    def scan_cells(
        self, keys: Sequence[str], columns: Mapping[str, str]
    ) -> tuple[dict[str, CellRecord], dict[str, str]]:
        """Split ``keys`` into checked finished cells and bad ones (key -> reason).

        Cells without any file are neither: they were never started.
        """
        good: dict[str, CellRecord] = {}
        bad: dict[str, str] = {}
        for key in keys:
            paths = self.cell_files(key)
            if not any(p.exists() for p in paths.values()):
                continue
            try:
                good[key] = self.read_cell(key, columns)
            except BadCell as exc:
                bad[key] = str(exc)
        return good, bad


def _read_rows(path: Path, columns: Mapping[str, str], expected_rows: Any) -> pd.DataFrame:
    try:
        dtypes = {n: ("string" if kind == "str" else "float64") for n, kind in columns.items()}
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=["", "nan"])
    except Exception as exc:  # any parse failure of a foreign file means "recompute"
        raise BadCell(f"{path.name} unreadable as CSV ({type(exc).__name__}: {exc})") from None
    if list(frame.columns) != list(columns):
        raise BadCell(f"{path.name} has columns {list(frame.columns)}, expected {list(columns)}")
    if expected_rows != len(frame):
        raise BadCell(f"{path.name} has {len(frame)} rows, the record says {expected_rows}")
    for name, kind in columns.items():
        if kind == "int":
            values = frame[name].to_numpy(dtype=float)
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise BadCell(f"{path.name}: column {name!r} holds non-integers")
            frame[name] = values.astype(np.int64)
        elif kind == "str":
            frame[name] = frame[name].astype(object)
    return frame


def _tomlable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_tomlable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
