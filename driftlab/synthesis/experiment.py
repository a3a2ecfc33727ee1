"""Drift synthesis as a filling of the experiment skeleton: plan, views, cells, summary.

For each train pipeline and fold one task model is trained on that
pipeline's views of the fold's training items, then evaluated on every test
pipeline's views of the fold's test items (ISP drift) and on every
corruption x severity of its own pipeline's test views (common corruptions),
following Oala et al., TMLR 2023, Sec. 5. A (train pipeline, fold) cell is
the unit of work and of resumption.
"""

from __future__ import annotations

from typing import Any

from driftlab.engine.cell import Cell
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.naming import cell_key
from driftlab.registry import Registry
from driftlab.synthesis.cells import SynthesisJob, synthesis_cell
from driftlab.synthesis.config import SynthesisConfig
from driftlab.synthesis.plan import SynthesisPlan, plan_synthesis
from driftlab.verdicts.evidence import condition_label
from driftlab.verdicts.experiment import (
    DriftExperiment,
    DriftInputs,
    check_cell,
    data_manifest,
    drift_results,
)
from driftlab.verdicts.records import CellRecordError
from driftlab.verdicts.report import build_report

__all__ = ["SYNTHESIS", "SynthesisExperiment", "model_key"]


def model_key(train: str, fold: int) -> str:
    """Key of the cell (and stem of the weights file) of one train pipeline and fold."""
    return cell_key(train, f"fold{fold}")


class SynthesisExperiment(DriftExperiment):
    """See module docstring."""

    kind = "synthesis"
    config_class = SynthesisConfig

    def plan(self, config: SynthesisConfig, registry: Registry) -> SynthesisPlan:
        return plan_synthesis(config, registry)

    def manifest(self, plan: SynthesisPlan) -> dict[str, Any]:
        return data_manifest(plan, plan.config.training.seed)

    def keys(self, plan: SynthesisPlan) -> list[str]:
        return [model_key(t.name, f.index) for t in plan.train for f in plan.folds]

    def cells(self, plan: SynthesisPlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        inputs: DriftInputs = prepared.inputs
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

    def check(self, plan: SynthesisPlan, record: CellRecord) -> None:
        """Check a reused cell against its rows and the plan (its train pipeline, fold, test
        items and their classes, conditions); :class:`CellRecordError` when anything differs."""
        conditions = [condition_label("isp", t.name, 0) for t in plan.test]
        conditions += [condition_label("corruption", c.name, c.severity) for c in plan.conditions]
        for train in plan.train:
            for fold in plan.folds:
                if model_key(train.name, fold.index) == record.key:
                    check_cell(
                        plan,
                        record,
                        train_pipeline=train.name,
                        fold=fold.index,
                        conditions=conditions,
                        test_index=fold.test,
                    )
                    return
        raise CellRecordError(record.key, "not a cell of this run's plan")

    def summarize(
        self, plan: SynthesisPlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        """Results in the headline metric, the drift verdict with bootstrap intervals, report
        (:func:`driftlab.verdicts.experiment.drift_results`)."""
        results, verdict = drift_results(plan, records, progress)
        report = build_report(run.path, results, verdict.summary, plan, matrix=verdict.matrix)
        return Outcome(
            tables={"results": results, "matrix": verdict.matrix},
            summary=verdict.summary,
            report=report,
        )


SYNTHESIS = SynthesisExperiment()
