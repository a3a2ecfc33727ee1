"""Drift optimisation as a filling of the experiment skeleton.

For each intensity level, mode (the arms of :mod:`driftlab.optimize.networks`)
and fold one network is trained on the fold's training mosaics and evaluated on
its test mosaics every ``eval_every`` epochs (Oala et al., TMLR 2023,
Sec. 6 and Table 4). An (intensity, mode, fold) cell is the unit of work and
of resumption.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import numpy as np

from driftlab.cache import render_identity
from driftlab.engine.cell import Cell
from driftlab.engine.planning import data_fingerprint, held_out_manifest
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.optimize.config import OptimizeConfig
from driftlab.optimize.miscalibration import miscalibrate_mosaics
from driftlab.optimize.outcome import optimization_outcome
from driftlab.optimize.plan import OptimizePlan, optimize_key, plan_optimization
from driftlab.optimize.trainer import RESULT_COLUMNS, OptimizeJob, optimize_cell
from driftlab.pipeline.resolve import resolve
from driftlab.registry import Registry

__all__ = ["OPTIMIZE", "OptimizeExperiment", "optimize_key"]


class OptimizeExperiment:
    """See module docstring."""

    kind = "optimize"
    config_class = OptimizeConfig
    columns = RESULT_COLUMNS

    def plan(self, config: OptimizeConfig, registry: Registry) -> OptimizePlan:
        return plan_optimization(config, registry)

    def identity(self, plan: OptimizePlan) -> dict[str, Any]:
        out: dict[str, Any] = {f"pipeline.{plan.pipeline.name}": plan.pipeline.fingerprint()}
        for intensity, dataset in plan.datasets.items():
            out[f"data.fingerprint@{intensity:g}"] = data_fingerprint(dataset)
        resolved = resolve(plan.pipeline, plan.camera, plan.registry)
        out.update(render_identity(plan.camera, [resolved]))
        return out

    def manifest(self, plan: OptimizePlan) -> dict[str, Any]:
        first = next(iter(plan.datasets.values()))
        return {
            "seed": plan.config.training.seed,
            "dataset": {
                "name": plan.dataset_spec.name,
                "items": len(first),
                "ids_sha256": hashlib.sha256("\n".join(first.ids).encode()).hexdigest(),
                "camera": attrs.asdict(plan.camera),
            },
            "pipeline": {plan.pipeline.name: plan.pipeline.fingerprint()},
            **({"test_set": held_out_manifest(plan.held_out)} if plan.held_out else {}),
            "true_camera": attrs.asdict(plan.isp.true) if plan.isp.miscalibrated else None,
        }

    def prepare(self, plan: OptimizePlan, run: RunDir, progress: Progress) -> Prepared:
        """Stack the mosaics of every level (rendered for the mis-calibrated camera when
        ``[miscalibration]`` sets one) and the targets into checksummed arrays."""
        first = next(iter(plan.datasets.values()))
        raws = {}
        for n, (intensity, dataset) in enumerate(plan.datasets.items(), start=1):
            stack = np.stack(
                [np.asarray(dataset[i].raw, dtype=np.float32) for i in range(len(dataset))]
            )
            if plan.isp.miscalibrated:
                stack = miscalibrate_mosaics(stack, plan.camera, plan.isp.true)
            raws[intensity] = run.store_array(f"raw-i{intensity:g}", stack)
            progress.step("mosaics", n, len(plan.datasets))
        if plan.task == "classification" and first.labels is not None:
            targets = np.asarray(first.labels, dtype=np.int64)
        else:
            targets = np.stack([np.asarray(first[i].target) for i in range(len(first))])
        targets_ref = run.store_array("targets", targets)
        return Prepared({"raws": raws, "targets": targets_ref}, (*raws.values(), targets_ref))

    def keys(self, plan: OptimizePlan) -> list[str]:
        return [
            optimize_key(i, m, f.index)
            for i in plan.datasets
            for m in plan.modes
            for f in plan.folds
        ]

    def cells(self, plan: OptimizePlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        tr = plan.config.training
        training = {
            "epochs": tr.epochs,
            "batch_size": tr.batch_size,
            "lr": tr.lr,
            "isp_lr": tr.isp_lr,
            "eval_every": tr.eval_every,
            "step_size": plan.config.isp.step_size,
        }
        cells = []
        for intensity in plan.datasets:
            for mode in plan.modes:
                for fold in plan.folds:
                    job = OptimizeJob(
                        intensity=intensity,
                        mode=mode,
                        fold=fold.index,
                        train_index=fold.train,
                        test_index=fold.test,
                        raws=prepared.inputs["raws"][intensity],
                        targets=prepared.inputs["targets"],
                        pipeline=plan.pipeline,
                        camera=plan.camera,
                        model_name=plan.model.name,
                        model_options=dict(plan.config.model.options),
                        output_channels=plan.output_channels,
                        task=plan.task,
                        metric=plan.metric,
                        training=training,
                        seed=tr.seed,
                        registry=plan.registry,
                        bounds=plan.isp.bounds[intensity],
                    )
                    cells.append(
                        Cell(
                            key=optimize_key(intensity, mode, fold.index),
                            label=f"{mode} @ {intensity:g} fold {fold.index}",
                            function=optimize_cell,
                            job=job,
                        )
                    )
        return cells

    def metrics(self, record: CellRecord) -> dict[str, float]:
        rows = record.rows
        return {
            f"{m}/epoch{int(e)}": float(v)
            for m, e, v in zip(rows["metric"], rows["epoch"], rows["value"], strict=True)
        }

    def summarize(
        self, plan: OptimizePlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        return optimization_outcome(plan, run, records)


OPTIMIZE = OptimizeExperiment()
