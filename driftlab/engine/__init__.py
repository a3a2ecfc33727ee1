"""The experiment engine: one skeleton for synthesis, forensics, optimisation and audit.

plan -> cells -> executor -> cell records -> summary -> report; see
:mod:`driftlab.engine.skeleton` for the steps and ``docs/engine.md`` for a
walk-through. Modules, in the order data flows:

* :mod:`~driftlab.engine.config`: typed, validated config sections and the run identity;
* :mod:`~driftlab.engine.planning`: resolving datasets, models, pipelines, devices;
* :mod:`~driftlab.engine.cell`: cells, their context and isolation;
* :mod:`~driftlab.engine.executors` / :mod:`~driftlab.engine.ray_executor`: where cells run;
* :mod:`~driftlab.engine.rundir`: the run directory and checked cell records;
* :mod:`~driftlab.engine.progress`: the live progress display;
* :mod:`~driftlab.engine.report`: the one report writer (Jinja2).
"""

from driftlab.engine.cell import ArrayRef, Cell, CellContext, CellOutput
from driftlab.engine.config import ExperimentConfig, setting
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import (
    Experiment,
    ExperimentRun,
    Outcome,
    Prepared,
    rebuild_report,
    run_experiment,
)

__all__ = [
    "ArrayRef",
    "Cell",
    "CellContext",
    "CellOutput",
    "CellRecord",
    "Experiment",
    "ExperimentConfig",
    "ExperimentRun",
    "Outcome",
    "Prepared",
    "RunDir",
    "rebuild_report",
    "run_experiment",
    "setting",
]
