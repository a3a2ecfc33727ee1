"""Experiment trackers: mirror a run's config, cell metrics, summary and report elsewhere.

Trackers are plugins (hook ``driftlab_trackers``); the built-in one is
MLflow (:mod:`driftlab.tracking.mlflow`, extra ``driftlab[mlflow]``). The run
directory remains the source of truth: a tracker only receives copies, and
a tracker that fails is reported without failing the run's results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

__all__ = ["RunInfo", "Tracker", "TrackerSpec", "flatten_config", "metric_name"]


@attrs.frozen
class RunInfo:
    """What a tracker learns when a run starts.

    Attributes
    ----------
    kind : str
        ``synthesis``, ``forensics``, ``optimize`` or ``audit``.
    run_dir : Path
    config : dict
        The resolved configuration.
    identity_sha256 : str
    resumed : bool
    """

    kind: str
    run_dir: Path
    config: dict[str, Any]
    identity_sha256: str
    resumed: bool


class Tracker(Protocol):
    """The interface a tracker implements."""

    def start(self, run: RunInfo) -> None:
        """A run (new or resumed) starts."""

    def log_cell(self, key: str, metrics: Mapping[str, float]) -> None:
        """A cell finished in this session, with its numeric results."""

    def finish(self, summary: Mapping[str, Any], files: Mapping[str, Path]) -> None:
        """The run finished: its summary and written files (report, tables)."""

    def fail(self, message: str) -> None:
        """The run stopped with an error."""


@attrs.frozen
class TrackerSpec:
    """Declaration of a tracker plugin.

    Attributes
    ----------
    name : str
        Selected by ``[tracking] trackers = [name]`` or ``--track name``.
    doc : str
    create : callable
        ``create(settings, run_dir) -> Tracker``; ``settings`` is the
        ``[tracking]`` section.
    extra : str
        The driftlab extra installing its dependencies ("" when none).
    """

    name: str
    doc: str
    create: Callable[[Any, Path], Tracker]
    extra: str = ""


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"training.epochs": "5", ...}``: nested tables flattened with dots, values as text."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def metric_name(*parts: str) -> str:
    """A tracker-safe metric name (letters, digits, ``_ - . /``) from labels."""
    import re

    return "/".join(re.sub(r"[^A-Za-z0-9_./\- ]", "_", p) for p in parts)
