"""The task model to examine: from a synthesis run directory or a weights file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from driftlab.atomic import file_sha256
from driftlab.errors import ConfigError
from driftlab.tomlio import read_toml

__all__ = [
    "file_sha256",
    "load_view_model",
    "read_run_config",
    "run_model_path",
]

_MAX_RECORD = 16 << 20


def read_run_config(run: str | Path, where: str = "[model].run") -> dict[str, Any]:
    """The resolved ``config.toml`` of a synthesis run directory.

    Raises
    ------
    ConfigError
        No such directory, no ``config.toml`` in it, or not a synthesis run.
    """
    path = Path(run) / "config.toml"
    if not path.is_file():
        raise ConfigError(f"{where}: {run} is not a synthesis run directory (no config.toml)")
    try:
        data = read_toml(path)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for section in ("dataset", "model", "training"):
        if not isinstance(data.get(section), dict):
            raise ConfigError(f"{where}: {path} has no [{section}] table; not a synthesis run")
    return data


def run_model_path(run: str | Path, train: str, fold: int, where: str = "[model]") -> Path:
    """Weights file of the cell (train pipeline, fold) of a synthesis run, checksum-verified.

    The file is found through the run's cell records (``cells/*.json``: the
    cell's train pipeline and fold, and the SHA-256 of its ``.pt`` file),
    never by rebuilding a file name.

    Raises
    ------
    ConfigError
        No finished cell for (train, fold) (the message lists those the run
        holds), or its weights file is missing or was changed after it was
        written.
    """
    cells = Path(run) / "cells"
    have: list[str] = []
    for record_path in sorted(cells.glob("*.json")):
        try:
            if record_path.stat().st_size > _MAX_RECORD:
                continue
            record = json.loads(record_path.read_text())
            info = record["info"]
            files = record["files"]
            pipeline, number = str(info["train_pipeline"]), int(info["fold"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        have.append(f"{pipeline} fold {number}")
        if pipeline != train or number != fold:
            continue
        weights = [rel for rel in files if str(rel).startswith("models/") and rel.endswith(".pt")]
        if len(weights) != 1:
            break
        path = Path(run) / weights[0]
        if not path.is_file() or file_sha256(path) != files[weights[0]]:
            raise ConfigError(
                f"{where}: {path} is missing or was changed after the synthesis run wrote it "
                "(checksum mismatch); rerun the synthesis to recompute it"
            )
        return path
    raise ConfigError(
        f"{where}: no finished model for train pipeline {train!r} fold {fold} in {run} "
        f"(has: {', '.join(have) or 'none'})"
    )


def load_view_model(
    name: str | None,
    options: dict[str, Any],
    path: str | Path,
    key: str | None,
    dataset_spec: Any,
    registry: Any,
) -> nn.Module:
    """The examined model, frozen, mapping ``(B, 3, H, W)`` views in [0, 1] to logits.

    Any format of :func:`driftlab.models.load_model` (a registered
    architecture's state dict or checkpoint, safetensors, TorchScript,
    torch.export); a stored normalisation (synthesis models) is applied.

    Raises
    ------
    ConfigError
        The file cannot be read or does not fit the architecture and the
        dataset's outputs (one line naming the ``[model]`` key to set).
    """
    from driftlab.engine.planning import output_channels
    from driftlab.models.check import check_weights

    try:
        loaded = check_weights(
            path,
            num_classes=output_channels(dataset_spec),
            task=dataset_spec.task,
            name=name,
            options=options if name is not None else None,
            key=key,
            registry=registry,
        )
    except (ValueError, FileNotFoundError, RuntimeError, LookupError) as exc:
        raise ConfigError(f"[model].weights: {str(exc).splitlines()[0]}") from None
    return loaded.view_model().eval()
