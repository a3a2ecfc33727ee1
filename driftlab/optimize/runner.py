"""Optimisation runner: frozen ISP vs jointly learned ISP vs training directly on raw.

For each intensity level, mode and fold one task model is trained on the
fold's training mosaics and evaluated on its test mosaics every
``eval_every`` epochs (Oala et al., TMLR 2023, Sec. 6 and Table 4).

An (intensity, mode, fold) *cell* is the unit of work and of resumption: its
rows (``cells/*.csv``), trained weights and ISP parameters (``models/``) are
written atomically when it finishes, so a run killed at any point and
started again with the same command recomputes nothing that was complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch

from driftlab import __version__
from driftlab.datasets.base import RawDataset
from driftlab.io.images import atomic_path
from driftlab.optimize.config import OptimizeConfig, load_optimize_config
from driftlab.optimize.plan import OptimizePlan, plan_optimization
from driftlab.optimize.report import write_report
from driftlab.optimize.summary import learning_curves, summary_table
from driftlab.optimize.trainer import RESULT_COLUMNS, CellJob, CellOutcome, run_cell
from driftlab.registry import Registry, get_registry
from driftlab.runs import RunDir, package_versions, write_csv_atomic, write_json_atomic
from driftlab.runs.cells import execute_cells, sigterm_as_interrupt

__all__ = ["OptimizationResult", "cell_key", "run_optimization"]

log = logging.getLogger("driftlab.optimize")


@attrs.frozen
class OptimizationResult:
    """What :func:`run_optimization` produced.

    Attributes
    ----------
    run_dir : Path
    results : pandas.DataFrame
        Tidy rows ``intensity, mode, fold, epoch, metric, value`` (the task
        metric on the test split and the epoch's mean ``train_loss``).
    table : pandas.DataFrame
        Per (intensity, mode): pooled and final-epoch mean and std (see
        :func:`driftlab.optimize.summary.summary_table`).
    curves : pandas.DataFrame
        Per (intensity, mode, epoch): mean and std over folds.
    isp : dict
        ``{cell key: {"initial": {...}, "final": {...}}}`` ISP parameters of
        the frozen and learned cells.
    cells_reused, cells_computed : int
    """

    run_dir: Path
    results: pd.DataFrame
    table: pd.DataFrame
    curves: pd.DataFrame
    isp: dict[str, dict[str, Any]]
    cells_reused: int
    cells_computed: int

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def cell_key(intensity: float, mode: str, fold: int) -> str:
    """File-name key of a cell, e.g. ``i0.05__learned__fold1``."""
    return f"i{intensity:g}__{mode}__fold{fold}"


def _raw_array(dataset: RawDataset, path: Path) -> Path:
    """Stack every mosaic of ``dataset`` into ``(N, H, W)`` float32 ``.npy`` (once)."""
    if path.is_file():
        return path
    stack = np.stack([np.asarray(dataset[i].raw, dtype=np.float32) for i in range(len(dataset))])
    with atomic_path(path) as tmp:
        np.save(tmp, stack)
    return path


def _targets(dataset: RawDataset) -> np.ndarray:
    if dataset.spec.task == "classification" and dataset.labels is not None:
        return np.asarray(dataset.labels, dtype=np.int64)
    return np.stack([np.asarray(dataset[i].target) for i in range(len(dataset))])


def _manifest(plan: OptimizePlan, registry: Registry) -> dict[str, Any]:
    first = next(iter(plan.datasets.values()))
    return {
        "kind": "optimize",
        "driftlab": __version__,
        "packages": package_versions(),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in registry.plugins
        ],
        "seed": plan.config.section("training")["seed"],
        "device": plan.device,
        "dataset": {
            "name": plan.dataset_spec.name,
            "items": len(first),
            "ids_sha256": hashlib.sha256("\n".join(first.ids).encode()).hexdigest(),
            "camera": attrs.asdict(plan.camera),
        },
        "pipeline": {plan.pipeline.name: plan.pipeline.fingerprint()},
    }


def _save_cell(run: RunDir, key: str, outcome: CellOutcome) -> None:
    """Weights and ISP parameters first, the cell CSV (the "finished" mark) last."""
    with atomic_path(run.models / f"{key}.pt") as tmp:
        torch.save(outcome.state, tmp)
    if outcome.isp:
        write_json_atomic(outcome.isp, run.models / f"{key}.isp.json")
    write_csv_atomic(outcome.rows, run.cell_path(key))


def run_optimization(
    config: str | Path | Mapping[str, Any] | OptimizeConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    progress: bool | None = None,
) -> OptimizationResult:
    """Run (or resume) an optimisation experiment.

    Parameters
    ----------
    config : path, dict or OptimizeConfig
        See :mod:`driftlab.optimize.config`.
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/optimize-<hash>``.
    overrides : sequence of str
        ``section.key=value`` overrides.
    registry : Registry, optional
        Installed plugins (default: :func:`driftlab.registry.get_registry`).
    progress : bool, optional
        Progress bars; defaults to ``[run].progress``.

    Returns
    -------
    OptimizationResult

    Raises
    ------
    driftlab.configtools.ConfigError
        Any configuration problem, raised before any training.
    driftlab.runs.RunDirError
        ``out`` holds a run of a different configuration.
    KeyboardInterrupt
        On SIGINT or SIGTERM; finished cells stay on disk for resumption.
    """
    registry = registry or get_registry()
    cfg = load_optimize_config(config, overrides)
    plan = plan_optimization(cfg, registry)
    progress = cfg.section("run")["progress"] if progress is None else progress
    run = RunDir(Path(out or cfg.section("run").get("out") or f"runs/optimize-{cfg.digest[:10]}"))
    resumed = run.prepare(cfg.data, cfg.digest, _manifest(plan, registry))
    log.info("run directory %s (%s)", run.path, "resumed" if resumed else "new")
    started = time.perf_counter()
    tr = cfg.section("training")
    first = next(iter(plan.datasets.values()))
    folds = plan.folds
    arrays = run.path / "arrays"
    arrays.mkdir(exist_ok=True)
    targets_path = arrays / "targets.npy"
    if not targets_path.is_file():
        with atomic_path(targets_path) as tmp:
            np.save(tmp, _targets(first))
    finished = run.finished_cells()
    keys = [
        (i, m, f.index) for i in plan.datasets for m in plan.modes for f in folds
    ]  # configuration order
    jobs: list[CellJob] = []
    for intensity, dataset in plan.datasets.items():
        pending = [
            (m, f)
            for m in plan.modes
            for f in folds
            if cell_key(intensity, m, f.index) not in finished
        ]
        if not pending:
            continue
        raws = _raw_array(dataset, arrays / f"raw_i{intensity:g}.npy")
        for mode, fold in pending:
            jobs.append(
                CellJob(
                    intensity=intensity,
                    mode=mode,
                    fold=fold.index,
                    train_index=fold.train,
                    test_index=fold.test,
                    raws=str(raws),
                    targets=str(targets_path),
                    pipeline=plan.pipeline,
                    camera=plan.camera,
                    model_name=plan.model.name,
                    model_options=dict(cfg.section("model")["options"]),
                    output_channels=plan.output_channels,
                    task=plan.task,
                    metric=plan.metric,
                    training=dict(tr),
                    device=plan.device,
                    progress=progress,
                )
            )
    reused, computed = len(keys) - len(jobs), 0
    if reused:
        log.info("resuming: %d of %d cells already finished", reused, len(keys))
    workers = int(cfg.section("run")["workers"]) if plan.device == "cpu" else 1
    restore = sigterm_as_interrupt()
    try:
        for job, outcome in execute_cells(run_cell, jobs, workers):
            key = cell_key(job.intensity, job.mode, job.fold)
            _save_cell(run, key, outcome)
            computed += 1
            log.info("cell %s done (%d/%d)", key, reused + computed, len(keys))
    finally:
        restore()
    finished = run.finished_cells()
    results = pd.concat([finished[cell_key(*k)] for k in keys], ignore_index=True)
    results = results[list(RESULT_COLUMNS)]
    isp: dict[str, dict[str, Any]] = {}
    for k in keys:
        path = run.models / f"{cell_key(*k)}.isp.json"
        if path.is_file():
            isp[cell_key(*k)] = json.loads(path.read_text())
    table = summary_table(results, plan.metric, tr["summary_last"])
    curves = learning_curves(results, plan.metric)
    write_csv_atomic(results, run.path / "results.csv")
    write_csv_atomic(table, run.path / "table.csv")
    write_csv_atomic(curves, run.path / "curves.csv")
    summary = {
        "metric": plan.metric,
        "folds": len(folds),
        "intensities": list(plan.datasets),
        "modes": plan.modes,
        "pooled": "all evaluation epochs"
        if tr["summary_last"] == 0
        else f"last {tr['summary_last']} evaluation epochs",
        "table": table.to_dict(orient="records"),
        "cells": {"reused": reused, "computed": computed, "total": len(keys)},
    }
    write_json_atomic(summary, run.path / "summary.json")
    header = {
        "dataset": f"{plan.dataset_spec.name} ({len(first)} items)",
        "base pipeline": plan.pipeline.name,
        "task model": plan.model.name,
        "metric": plan.metric,
        "folds": len(folds),
        "epochs": tr["epochs"],
        "evaluated every": f"{tr['eval_every']} epoch(s)",
        "pooled epochs": summary["pooled"],
        "lr / isp_lr": f"{tr['lr']:g} / {tr['isp_lr']:g}",
    }
    learned = {k: v for k, v in isp.items() if "__learned__" in k}
    write_report(run.path, table, curves, metric=plan.metric, header=header, isp=learned)
    log.info(
        "cells: %d reused, %d computed (%.1f s)", reused, computed, time.perf_counter() - started
    )
    return OptimizationResult(run.path, results, table, curves, isp, reused, computed)
