"""Built-in plugin: the MLflow experiment tracker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftlab.hookspecs import hookimpl
from driftlab.tracking import TrackerSpec


def _mlflow(settings: Any, run_dir: Path):
    from driftlab.tracking.mlflow import MlflowTracker

    return MlflowTracker(settings, run_dir)


@hookimpl
def driftlab_trackers() -> list[TrackerSpec]:
    """``mlflow``."""
    return [
        TrackerSpec(
            name="mlflow",
            doc="MLflow: config as params, cell and summary metrics, report as artifacts",
            create=_mlflow,
            extra="mlflow",
        )
    ]
