"""A run directory: resolved config, manifest, finished cells, tables, figures, report.

Layout::

    RUN/
      config.toml        resolved configuration (what ran)
      manifest.json      versions, plugins, seeds, config hash
      cells/             one CSV per finished unit of work, written atomically
      models/            trained weights per cell
      results.csv        all cells, assembled at the end
      summary.json, figures/, report.md, report.html

Every file is written to a temporary name in the same folder and renamed into
place, so a run killed at any moment leaves only complete files (plus hidden
``.*.tmp*`` leftovers, removed on the next start). A run directory belongs to
one configuration: starting a different configuration in it is refused.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from driftlab.io.images import atomic_path

__all__ = ["RunDir", "RunDirError", "package_versions", "write_csv_atomic", "write_json_atomic"]

PACKAGES = (
    "driftlab",
    "numpy",
    "scipy",
    "scikit-image",
    "torch",
    "colour-demosaicing",
    "pandas",
    "imagecorruptions-imaug",
    "segmentation-models-pytorch",
    "scikit-learn",
)


class RunDirError(RuntimeError):
    """The run directory belongs to another configuration or is unusable."""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """Write JSON (indented, keys sorted) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV (no index, full float precision) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")
    return path


class RunDir:
    """One run's directory (see module docstring).

    Parameters
    ----------
    path : str or Path
        Directory; created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.cells = self.path / "cells"
        self.models = self.path / "models"
        self.figures = self.path / "figures"

    def prepare(self, config: Mapping[str, Any], digest: str, manifest: Mapping[str, Any]) -> bool:
        """Create or reopen the directory for ``config``.

        Returns
        -------
        bool
            True when an earlier run of the same configuration is resumed.

        Raises
        ------
        RunDirError
            If the directory holds a run of a different configuration, or
            exists and is not a run directory but is not empty.
        """
        manifest_path = self.path / "manifest.json"
        resumed = False
        if manifest_path.is_file():
            try:
                old = json.loads(manifest_path.read_text())
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{manifest_path}: unreadable manifest ({exc})") from exc
            if old.get("config_hash") != digest:
                raise RunDirError(
                    f"{self.path} holds a run of a different configuration (config hash "
                    f"{str(old.get('config_hash'))[:12]} vs {digest[:12]}); choose another --out "
                    "or delete that directory"
                )
            resumed = True
        elif self.path.exists() and any(self.path.iterdir()):
            raise RunDirError(
                f"{self.path} exists, is not empty and is not a driftlab run directory"
            )
        for folder in (self.path, self.cells, self.models, self.figures):
            folder.mkdir(parents=True, exist_ok=True)
        self.remove_temporaries()
        with atomic_path(self.path / "config.toml") as tmp:
            tmp.write_text(tomli_w.dumps(_tomlable(config)))
        write_json_atomic({**manifest, "config_hash": digest}, manifest_path)
        return resumed

    def remove_temporaries(self) -> int:
        """Delete hidden temporary files left by a killed run; return how many."""
        count = 0
        for tmp in self.path.rglob(".*.tmp*"):
            tmp.unlink(missing_ok=True)
            count += 1
        return count

    def cell_path(self, key: str) -> Path:
        """CSV file of one finished cell."""
        return self.cells / f"{key}.csv"

    def finished_cells(self) -> dict[str, pd.DataFrame]:
        """Finished cells by key (complete files only: they were renamed into place)."""
        return {p.stem: pd.read_csv(p) for p in sorted(self.cells.glob("*.csv"))}


def _tomlable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_tomlable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
