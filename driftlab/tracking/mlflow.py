"""MLflow tracker (extra ``driftlab[mlflow]``).

Enabled by ``[tracking] mlflow_uri = "sqlite:///mlflow.db"`` (or any MLflow
tracking URI, e.g. ``"file:./mlruns"`` or ``"http://host:5000"``) or the
``--track mlflow`` option (which uses ``MLFLOW_TRACKING_URI`` or MLflow's
default). Logs the resolved config as parameters, each finished cell's
metrics (``cell key/condition``), the summary's numbers as metrics, and
``summary.json``, ``results.csv`` and the reports as artifacts. A resumed run
continues the same MLflow run (its id is kept in ``RUN/tracking.json``).

MLflow 3 refuses ``file:`` stores unless ``MLFLOW_ALLOW_FILE_STORE=true``;
naming a ``file:`` URI in the config is taken as that opt-in, and driftlab
sets the variable for this process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftlab.atomic import write_json_atomic
from driftlab.errors import require_extra
from driftlab.tracking import RunInfo, flatten_config, metric_name

__all__ = ["MlflowTracker"]

_PARAM_LIMIT = 500


def _numbers(data: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            out.update(_numbers(value, f"{prefix}{key}."))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        value = float(data)
        if value == value and abs(value) != float("inf"):
            out[prefix.rstrip(".")] = value
    return out


class MlflowTracker:
    """Mirror a run into MLflow (see module docstring).

    Parameters
    ----------
    settings : TrackingSection
        ``mlflow_uri`` and ``experiment``.
    run_dir : Path
    """

    def __init__(self, settings: Any, run_dir: Path) -> None:
        require_extra("mlflow", "mlflow", "the MLflow tracker")
        from mlflow.tracking import MlflowClient

        self.uri = getattr(settings, "mlflow_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")
        if self.uri and self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.experiment = getattr(settings, "experiment", None)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.state_path = Path(run_dir) / "tracking.json"
        self.run_id: str | None = None
        self.step = 0

    def start(self, run: RunInfo) -> None:
        name = self.experiment or f"driftlab-{run.kind}"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(name)
        )
        previous = self._previous_run(experiment_id, run.identity_sha256)
        if previous:
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
        else:
            created = self.client.create_run(
                experiment_id,
                run_name=run.run_dir.name,
                tags={
                    "driftlab.kind": run.kind,
                    "driftlab.identity": run.identity_sha256,
                    "driftlab.run_dir": str(run.run_dir),
                },
            )
            self.run_id = created.info.run_id
            params = flatten_config(run.config)
            for key, value in params.items():
                self.client.log_param(self.run_id, key, value[:_PARAM_LIMIT])
        write_json_atomic(
            {"mlflow": {"uri": self.uri, "experiment_id": experiment_id, "run_id": self.run_id,
                        "identity": run.identity_sha256}},
            self.state_path,
        )  # fmt: skip

    def _previous_run(self, experiment_id: str, identity: str) -> str | None:
        try:
            state = json.loads(self.state_path.read_text()).get("mlflow", {})
        except (OSError, ValueError, AttributeError):
            return None
        if state.get("experiment_id") != experiment_id or state.get("identity") != identity:
            return None
        run_id = state.get("run_id")
        try:
            self.client.get_run(run_id)
        except Exception:
            return None
        return run_id

    def log_cell(self, key: str, metrics: Mapping[str, float]) -> None:
        self.step += 1
        for name, value in metrics.items():
            self.client.log_metric(self.run_id, metric_name(key, name), float(value), step=0)

    def finish(self, summary: Mapping[str, Any], files: Mapping[str, Path]) -> None:
        for name, value in _numbers(summary).items():
            self.client.log_metric(self.run_id, metric_name("summary", name), value)
        self.client.log_dict(self.run_id, dict(summary), "summary.json")
        for path in files.values():
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status="FINISHED")

    def fail(self, message: str) -> None:
        if self.run_id is not None:
            self.client.set_tag(self.run_id, "driftlab.error", message[:_PARAM_LIMIT])
            self.client.set_terminated(self.run_id, status="FAILED")
