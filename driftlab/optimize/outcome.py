"""From the checked cell records of an optimisation run to its tables, summary and report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome
from driftlab.errors import RunDirError
from driftlab.optimize.config import LEARNING_MODES
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


ISP_RECORD_BASE_BYTES = 1 << 20
"""An ``isp.json`` may hold at most this many bytes plus :data:`ISP_RECORD_EPOCH_BYTES`
per recorded epoch."""
ISP_RECORD_EPOCH_BYTES = 256 << 10
"""Allowance per trajectory entry (room for several thousand numbers as written)."""
NO_ISP_MODES = ("raw",)
"""Arms without an ISP (and so without an ``isp.json``)."""
PIPELINE_MODES = ("frozen", "frozen-bn", "learned")
"""Arms whose ISP is the base pipeline: their ``isp.json`` holds its learnable parameters."""


def _redo(key: str) -> str:
    return f"delete {key}.json in the run's cells folder to compute the cell again"


def _check_rows(
    plan: OptimizePlan, record: CellRecord, identity: tuple[float, str, int] | None
) -> tuple[float, str, int]:
    """Refuse rows that are not what the cell ``record.key`` writes.

    The cell's rows must hold its own intensity, mode and fold, and exactly
    one row per recorded metric (the task metric and ``train_loss``) at every
    evaluation epoch (:meth:`OptimizePlan.evaluation_epochs`); an
    optimisation cell stores no per-item arrays.

    Returns
    -------
    (intensity, mode, fold)
        The cell's identity (``identity`` itself, known not to be None).

    Raises
    ------
    RunDirError
        Naming the cell, what differs and how to recompute it.
    """
    key = record.key
    if identity is None:
        raise RunDirError(f"cell {key}: not a cell of this run's plan; {_redo(key)}")
    intensity, mode, fold = identity
    rows = record.rows
    if record.arrays:
        raise RunDirError(
            f"cell {key}: holds per-item arrays {sorted(record.arrays)}, but an optimisation "
            f"cell stores none; {_redo(key)}"
        )
    epochs = plan.evaluation_epochs()
    expected = {(e, m) for e in epochs for m in (plan.metric, "train_loss")}
    problem = None
    if len(rows) != len(expected):
        problem = f"{len(rows)} rows, expected {len(expected)} (2 metrics x epochs {epochs})"
    elif not np.allclose(rows["intensity"].to_numpy(float), intensity, rtol=0, atol=1e-12):
        problem = f"rows of intensity {sorted(set(rows['intensity']))}, expected {intensity:g}"
    elif set(rows["mode"]) != {mode} or set(rows["fold"]) != {fold}:
        problem = (
            f"rows of mode(s) {sorted(set(rows['mode']))} and fold(s) "
            f"{sorted(set(rows['fold']))}, expected {mode!r} and {fold}"
        )
    elif {(int(e), str(m)) for e, m in zip(rows["epoch"], rows["metric"], strict=True)} != (
        expected
    ):
        problem = (
            f"rows for epochs {sorted(set(rows['epoch']))} and metrics "
            f"{sorted(set(rows['metric']))}, expected epochs {epochs} and metrics "
            f"{plan.metric!r}, 'train_loss', one row each"
        )
    if problem is not None:
        raise RunDirError(f"cell {key}: {problem}; {_redo(key)}")
    return identity


def _read_isp_json(path: Path, epochs: int) -> object:
    """Parse an ``isp.json`` after checking its size (see :data:`ISP_RECORD_BASE_BYTES`).

    Raises
    ------
    ValueError
        Larger than the limit, not UTF-8 or not JSON (the message names the file).
    OSError
        Unreadable.
    """
    limit = ISP_RECORD_BASE_BYTES + (epochs + 1) * ISP_RECORD_EPOCH_BYTES
    size = path.stat().st_size
    if size > limit:
        raise ValueError(
            f"{path}: {size} bytes, more than the {limit} bytes an ISP record of {epochs} "
            "epochs may hold"
        )
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None


def _isp_records(plan: OptimizePlan, records: list[CellRecord]) -> dict[str, dict[str, Any]]:
    """Every cell's rows (:func:`_check_rows`) and ``isp.json``, checked against the cell
    they belong to.

    Returns
    -------
    dict
        ``{cell key: checked isp.json content}`` of every cell with an ISP.

    Raises
    ------
    RunDirError
        Rows or an ``isp.json`` that do not belong to their cell, an
        ``isp.json`` missing from an ISP arm (or present for the raw arm), too
        large, unreadable or malformed (naming the cell, the file and the
        field).
    """
    identities = plan.cell_identities()
    epochs = plan.config.training.epochs
    parameters = {k: tuple(v.shape) for k, v in plan.isp.start.items()}
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        intensity, mode, fold = _check_rows(plan, record, identities.get(record.key))
        path = record.files.get("isp.json")
        if (path is None) != (mode in NO_ISP_MODES):
            state = "has no" if path is None else "has an"
            raise RunDirError(f"cell {record.key}: the {mode!r} arm {state} isp.json; "
                              f"{_redo(record.key)}")  # fmt: skip
        if path is None:
            continue
        try:
            data = check_isp_record(
                _read_isp_json(path, epochs),
                str(path),
                intensity=intensity,
                mode=mode,
                fold=fold,
                epochs=epochs,
                parameters=parameters if mode in PIPELINE_MODES else None,
            )
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cell {record.key}: {exc}; {_redo(record.key)}") from None
        if ("trajectory" in data) != (mode in LEARNING_MODES):
            state = "lacks" if mode in LEARNING_MODES else "has"
            raise RunDirError(
                f"cell {record.key}: {path} {state} the trajectory of the {mode!r} arm; "
                f"{_redo(record.key)}"
            )
        out[record.key] = data
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
        A cell's rows or ``isp.json`` that do not belong to it, or an
        ``isp.json`` that is too large, unreadable or malformed
        (:func:`_isp_records`); the message says how to recompute the cell.
    """
    tr = plan.config.training
    sm = plan.config.summary
    isp = _isp_records(plan, records)
    results = pd.concat([r.rows for r in records], ignore_index=True)[list(RESULT_COLUMNS)]
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
