"""Drift synthesis as a filling of the experiment skeleton: plan, views, cells, summary.

For each train pipeline and fold one task model is trained on that
pipeline's views of the fold's training items, then evaluated on every test
pipeline's views of the fold's test items (ISP drift) and on every
corruption x severity of its own pipeline's test views (common corruptions),
following Oala et al., TMLR 2023, Sec. 5. A (train pipeline, fold) cell is
the unit of work and of resumption.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import numpy as np
import pandas as pd

from driftlab.engine.cell import Cell
from driftlab.engine.planning import held_out_manifest
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.engine.views import view_stacks
from driftlab.errors import ConfigError
from driftlab.naming import cell_key
from driftlab.registry import Registry
from driftlab.synthesis.cells import RESULT_COLUMNS, SynthesisJob, synthesis_cell
from driftlab.synthesis.config import SynthesisConfig
from driftlab.synthesis.plan import SynthesisPlan, plan_synthesis
from driftlab.verdicts.drift import DriftSettings, drift_verdict, rescore
from driftlab.verdicts.evidence import EvidenceMissing, evidence_from_records
from driftlab.verdicts.report import build_report

__all__ = ["SYNTHESIS", "SynthesisExperiment", "model_key"]


def model_key(train: str, fold: int) -> str:
    """Key of the cell (and stem of the weights file) of one train pipeline and fold."""
    return cell_key(train, f"fold{fold}")


def targets_array(plan: SynthesisPlan) -> np.ndarray:
    """``(N,)`` int64 class indices or ``(N, H, W)`` uint8 masks of every item."""
    if plan.task == "classification" and plan.dataset.labels is not None:
        return np.asarray(plan.dataset.labels, dtype=np.int64)
    items = [np.asarray(plan.dataset[i].target) for i in range(len(plan.dataset))]
    return np.stack(items)


@attrs.frozen
class SynthesisInputs:
    """Shared inputs: one view stack per pipeline and the targets."""

    views: dict[str, Any]
    targets: Any


class SynthesisExperiment:
    """See module docstring."""

    kind = "synthesis"
    config_class = SynthesisConfig
    columns = RESULT_COLUMNS

    def plan(self, config: SynthesisConfig, registry: Registry) -> SynthesisPlan:
        return plan_synthesis(config, registry)

    def identity(self, plan: SynthesisPlan) -> dict[str, Any]:
        out: dict[str, Any] = {"data.fingerprint": plan.fingerprint}
        for spec in plan.pipelines:
            out[f"pipeline.{spec.name}"] = spec.fingerprint()
        return out

    def manifest(self, plan: SynthesisPlan) -> dict[str, Any]:
        return {
            "seed": plan.config.training.seed,
            "dataset": {
                "name": plan.dataset_spec.name,
                "items": len(plan.dataset),
                "ids_sha256": hashlib.sha256("\n".join(plan.dataset.ids).encode()).hexdigest(),
                "fingerprint": plan.fingerprint,
                "camera": attrs.asdict(plan.camera),
            },
            "pipelines": {s.name: s.fingerprint() for s in plan.pipelines},
            **({"test_set": held_out_manifest(plan.held_out)} if plan.held_out else {}),
        }

    def prepare(self, plan: SynthesisPlan, run: RunDir, progress: Progress) -> Prepared:
        """Render every view once (content-addressed cache), stack each pipeline's views."""
        views = view_stacks(
            run,
            plan.dataset,
            list(plan.pipelines),
            registry=plan.registry,
            workers=plan.config.run.workers,
            device=plan.device,
            progress=progress,
        )
        targets_ref = run.store_array("targets", targets_array(plan))
        return Prepared(SynthesisInputs(views, targets_ref), arrays=(*views.values(), targets_ref))

    def keys(self, plan: SynthesisPlan) -> list[str]:
        return [model_key(t.name, f.index) for t in plan.train for f in plan.folds]

    def cells(self, plan: SynthesisPlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        inputs: SynthesisInputs = prepared.inputs
        tr = plan.config.training
        ids = plan.dataset.ids
        training = {
            "epochs": tr.epochs,
            "batch_size": tr.batch_size,
            "lr": tr.lr,
            "augment": tr.augment,
            "schedule": tr.schedule,
        }
        cells = []
        for train in plan.train:
            for fold in plan.folds:
                job = SynthesisJob(
                    train=train.name,
                    fold=fold.index,
                    train_index=fold.train,
                    test_index=fold.test,
                    test_ids=tuple(ids[i] for i in fold.test),
                    views=inputs.views,
                    targets=inputs.targets,
                    model_name=plan.model.name,
                    model_options=dict(plan.config.model.options),
                    weights=plan.config.model.weights,
                    weights_key=plan.config.model.key,
                    task=plan.task,
                    metric=plan.metric,
                    output_channels=plan.output_channels,
                    tests=tuple(t.name for t in plan.test),
                    conditions=tuple((c.name, c.severity) for c in plan.conditions),
                    family=plan.config.corruptions.family,
                    training=training,
                    seed=tr.seed,
                    registry=plan.registry,
                )
                cells.append(
                    Cell(
                        key=model_key(train.name, fold.index),
                        label=f"{train.name} fold {fold.index}",
                        function=synthesis_cell,
                        job=job,
                    )
                )
        return cells

    def metrics(self, record: CellRecord) -> dict[str, float]:
        out = {}
        for row in record.rows.itertuples(index=False):
            label = row.test_condition + (f"@{row.severity}" if row.severity else "")
            out[f"{row.test_kind}/{label}"] = float(row.value)
        return out

    def summarize(
        self, plan: SynthesisPlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        """Results in the headline metric, the drift verdict with bootstrap intervals, report.

        The headline metric (``[report].metric``) and every interval are
        computed from the per-item outcomes the cells keep; cells without
        them (written by an older driftlab) give the summary without
        intervals, with the reason.
        """
        results = pd.concat([r.rows for r in records], ignore_index=True)[list(RESULT_COLUMNS)]
        metric = plan.headline_metric
        try:
            evidence = evidence_from_records(records, plan.task)
            missing = ""
        except EvidenceMissing as exc:
            evidence, missing = None, f"{exc}; rerun into a new directory for intervals"
        if evidence is not None:
            results = rescore(results, evidence, metric)
        elif metric != plan.metric:
            raise ConfigError(f"[report].metric = {metric!r}: {missing}")
        rep = plan.config.report
        if evidence is not None and rep.bootstrap:
            progress.message(f"bootstrap: {rep.bootstrap} paired resamples of folds and items")
        verdict = drift_verdict(
            results,
            evidence,
            DriftSettings(bootstrap=rep.bootstrap, seed=rep.seed),
            missing_evidence=missing,
        )
        report = build_report(run.path, results, verdict.summary, plan, matrix=verdict.matrix)
        return Outcome(
            tables={"results": results, "matrix": verdict.matrix},
            summary=verdict.summary,
            report=report,
        )


SYNTHESIS = SynthesisExperiment()
