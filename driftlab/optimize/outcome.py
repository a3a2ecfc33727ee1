"""From the checked cell records of an optimisation run to its tables, summary and report."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome
from driftlab.errors import RunDirError
from driftlab.optimize.plan import OptimizePlan
from driftlab.optimize.report import build_report
from driftlab.optimize.summary import (
    check_isp_record,
    isp_change_summary,
    isp_trajectory_table,
    learning_curves,
    paired_differences,
    summary_table,
)
from driftlab.optimize.trainer import RESULT_COLUMNS
from driftlab.stats.paired import INTERVAL_METHODS

__all__ = ["INTERVAL_CHOICE", "optimization_outcome"]

INTERVAL_CHOICE = {
    "t": (
        "With few folds a bootstrap over folds has only a handful of distinct resamples and "
        "its percentile interval is too narrow (coverage about 0.75 at 3 folds, 0.85 at 5 for "
        "normal differences); the t-interval keeps its nominal coverage under normality and is "
        "wide when folds are few, as it should be."
    ),
    "bootstrap": (
        "The percentile bootstrap needs many folds (or repeated cross-validation): with 5 "
        "folds or fewer it is too narrow."
    ),
}


def _json_ready(value: Any) -> Any:
    """NaN and infinities to None, numpy scalars to Python (summary.json has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _isp_records(plan: OptimizePlan, records: list[CellRecord]) -> dict[str, dict[str, Any]]:
    """Every cell's ``isp.json``, checked against the cell it belongs to."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        path = record.files.get("isp.json")
        if path is None:
            continue
        first = record.rows.iloc[0]
        try:
            data = json.loads(path.read_text())
            out[record.key] = check_isp_record(
                data,
                str(path),
                intensity=float(first["intensity"]),
                mode=str(first["mode"]),
                fold=int(first["fold"]),
                epochs=plan.config.training.epochs,
            )
        except (OSError, ValueError) as exc:
            raise RunDirError(
                f"cell {record.key}: {exc}; delete {record.key}.json in the run's cells folder "
                "to compute the cell again"
            ) from None
    return out


def _calibration_rows(plan: OptimizePlan) -> list[list[str]]:
    setup = plan.isp
    rows = []
    for key, target in setup.targets.items():
        outside = [
            f"{i:g}"
            for i, bounds in setup.bounds.items()
            if key in bounds and not bounds[key].contains(target)
        ]
        rows.append(
            [
                key,
                np.array2string(setup.start[key], precision=4, separator=", "),
                np.array2string(target, precision=4, separator=", "),
                "yes" if not outside else f"no (at intensity {', '.join(outside)})",
            ]
        )
    return rows


def optimization_outcome(plan: OptimizePlan, run: RunDir, records: list[CellRecord]) -> Outcome:
    """Tables ``results``, ``table``, ``curves``, ``differences``, ``isp_trajectory``,
    ``summary.json`` and the report.

    Raises
    ------
    RunDirError
        An ``isp.json`` that is unreadable or does not belong to its cell.
    """
    tr = plan.config.training
    sm = plan.config.summary
    results = pd.concat([r.rows for r in records], ignore_index=True)[list(RESULT_COLUMNS)]
    isp = _isp_records(plan, records)
    table = summary_table(results, plan.metric, tr.summary_last)
    curves = learning_curves(results, plan.metric)
    differences = paired_differences(
        results,
        plan.metric,
        last=tr.summary_last,
        method=sm.interval,
        confidence=sm.confidence,
        samples=sm.bootstrap_samples,
        seed=sm.seed,
    )
    learning = [v for v in isp.values() if "trajectory" in v]
    widths = {i: plan.isp.widths(i) for i in plan.datasets}
    trajectory = isp_trajectory_table(learning, widths, plan.isp.targets)
    changes = isp_change_summary(trajectory)
    first = next(iter(plan.datasets.values()))
    pooled = (
        "all evaluation epochs"
        if tr.summary_last == 0
        else f"last {tr.summary_last} evaluation epochs"
    )
    mis = plan.config.miscalibration
    miscalibration = (
        {
            "white_balance": mis.white_balance,
            "color_matrix_delta": mis.color_matrix_delta,
            "black_level": mis.black_level,
            "true_camera": {
                "white_balance": list(plan.isp.true.white_balance),
                "color_matrix": [list(r) for r in plan.isp.true.color_matrix],
                "black_level": list(plan.isp.true.black_level),
            },
        }
        if plan.isp.miscalibrated
        else None
    )
    interval = {
        "method": INTERVAL_METHODS[sm.interval],
        "confidence": sm.confidence,
        "why": INTERVAL_CHOICE[sm.interval],
        "seed": sm.seed if sm.interval == "bootstrap" else None,
        "bootstrap_samples": sm.bootstrap_samples if sm.interval == "bootstrap" else None,
    }
    last_changes = (
        changes[
            changes["epoch"] == changes.groupby(["intensity", "mode"])["epoch"].transform("max")
        ]
        if not changes.empty
        else changes
    )
    summary = {
        "metric": plan.metric,
        "folds": len(plan.folds),
        "intensities": list(plan.datasets),
        "modes": plan.modes,
        "pooled": pooled,
        "table": table.to_dict(orient="records"),
        "differences": differences.to_dict(orient="records"),
        "interval": interval,
        "isp": {
            "domains": plan.isp.domains,
            "step_size": plan.isp.step_size,
            "isp_lr": tr.isp_lr,
            "final_change": last_changes.to_dict(orient="records"),
        },
        "miscalibration": miscalibration,
    }
    header = {
        "dataset": f"{plan.dataset_spec.name} ({len(first)} items)",
        "base pipeline": plan.pipeline.name,
        "task model": plan.model.name,
        "metric": plan.metric,
        "folds": len(plan.folds),
        "epochs": tr.epochs,
        "evaluated every": f"{tr.eval_every} epoch(s)",
        "pooled epochs": pooled,
        "lr / isp_lr": f"{tr.lr:g} / {tr.isp_lr:g}",
        "ISP domains / step size": f"{plan.isp.domains} / {plan.isp.step_size}",
        "camera": (
            f"{plan.camera.name} profile; data rendered for a mis-calibrated camera (below)"
            if plan.isp.miscalibrated
            else f"{plan.camera.name} profile (data rendered for it)"
        ),
    }
    report = build_report(
        run.path,
        table=table,
        curves=curves,
        differences=differences,
        changes=changes,
        metric=plan.metric,
        header=header,
        interval=interval,
        calibration=_calibration_rows(plan) if plan.isp.miscalibrated else None,
    )
    return Outcome(
        tables={
            "results": results,
            "table": table,
            "curves": curves,
            "differences": differences,
            "isp_trajectory": trajectory,
        },
        summary=_json_ready(summary),
        report=report,
        extra={"isp": isp},
    )
