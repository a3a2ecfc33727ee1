"""The task model to examine: from a synthesis run directory or a weights file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from driftlab.atomic import file_sha256
from driftlab.errors import ConfigError
from driftlab.models.weights import read_state_dict
from driftlab.tomlio import read_toml
from driftlab.train.normalize import Normalized

__all__ = ["file_sha256", "load_normalized", "read_run_config", "run_model_path"]

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


def load_normalized(model: nn.Module, path: str | Path, key: str | None = None) -> nn.Module:
    """Load weights into ``Normalized(model, mean, std)``.

    A state dict with ``mean``/``std`` buffers (as saved by the synthesis
    runner) is loaded as a whole; a bare model state dict is loaded into
    ``model`` with identity normalisation (mean 0, std 1).

    Returns
    -------
    nn.Module
        The wrapped model in eval mode.

    Raises
    ------
    ConfigError
        Unreadable weights, or keys or shapes that do not match the architecture.
    """
    try:
        state = read_state_dict(path, key=key)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"[model].weights: {str(exc).splitlines()[0]}") from None
    net = Normalized(model, np.zeros(3, np.float32), np.ones(3, np.float32))
    target = net if "mean" in state and "std" in state else model
    try:
        target.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            f"[model]: weights {path} do not fit the model ({first}); check [model].name and "
            "[model].options"
        ) from None
    return net.eval()
