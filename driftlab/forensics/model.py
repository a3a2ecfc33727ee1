"""Load the task model to examine: from a synthesis run directory or a weights file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from driftlab.configtools import ConfigError
from driftlab.models.weights import read_state_dict
from driftlab.render import pipeline_file_name
from driftlab.tomlio import read_toml
from driftlab.train.normalize import Normalized

__all__ = ["file_sha256", "load_normalized", "read_run_config", "run_model_path"]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_run_config(run: str | Path, where: str = "[model].run") -> dict[str, Any]:
    """The resolved ``config.toml`` of a synthesis run directory.

    Raises
    ------
    ConfigError
        No such directory, or no ``config.toml`` in it.
    """
    path = Path(run) / "config.toml"
    if not path.is_file():
        raise ConfigError(f"{where}: {run} is not a synthesis run directory (no config.toml)")
    return read_toml(path)


def run_model_path(run: str | Path, train: str, fold: int, where: str = "[model]") -> Path:
    """``RUN/models/<train>__fold<k>.pt``, checked to exist.

    Raises
    ------
    ConfigError
        The file is missing; the message lists the models the run holds.
    """
    path = Path(run) / "models" / f"{pipeline_file_name(train)}__fold{fold}.pt"
    if not path.is_file():
        have = sorted(p.stem for p in (Path(run) / "models").glob("*.pt"))
        raise ConfigError(
            f"{where}: no model for train pipeline {train!r} fold {fold} in {run} "
            f"(has: {', '.join(have) or 'none'})"
        )
    return path


def load_normalized(model: nn.Module, path: str | Path) -> nn.Module:
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
        Keys or shapes do not match the architecture.
    """
    state = read_state_dict(path)
    net = Normalized(model, np.zeros(3, np.float32), np.ones(3, np.float32))
    target = net if "mean" in state and "std" in state else model
    try:
        target.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    except RuntimeError as exc:
        raise ConfigError(f"[model]: weights {path} do not fit the model: {exc}") from None
    return net.eval()
