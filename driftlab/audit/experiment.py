"""The drift audit as a filling of the experiment skeleton: plan, views, cells, summary.

A frozen model, given by the user with its input contract, is evaluated on
the audited items under every test pipeline (ISP drift against the
reference pipeline it was trained on) and under every corruption x severity
of the reference views (Oala et al., TMLR 2023, Sec. 5, without the
training). The test conditions are spread over cells for parallelism: one
cell per test pipeline and one per corruption (all its severities). Every
cell's record follows the synthesis conventions (train pipeline = the
reference, fold 0), so the drift verdicts and report are the shared ones.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import numpy as np
import pandas as pd

from driftlab.audit.cells import RESULT_COLUMNS, AuditJob, audit_cell
from driftlab.audit.config import AuditConfig
from driftlab.audit.plan import AuditPlan, plan_audit
from driftlab.engine.cell import ArrayRef, Cell
from driftlab.engine.planning import held_out_manifest
from driftlab.engine.progress import Progress
from driftlab.engine.report import KeyValues, Paragraph, Report, Section
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.engine.views import view_stacks
from driftlab.errors import ConfigError
from driftlab.naming import cell_key
from driftlab.registry import Registry
from driftlab.verdicts.drift import DriftSettings, drift_verdict, rescore
from driftlab.verdicts.evidence import EvidenceMissing, evidence_from_records
from driftlab.verdicts.report import build_report

__all__ = ["AUDIT", "AuditExperiment", "audit_groups"]


def audit_groups(plan: AuditPlan) -> list[tuple[str, str, tuple[tuple[str, str, int], ...]]]:
    """The cells' condition groups: ``(key, label, conditions)`` in report order.

    One group per test pipeline (the reference first) and one per corruption
    (its severities in order). The grouping depends only on the
    configuration, so a resumed audit finds its cells whatever ``workers``.
    """
    groups = [
        (cell_key("isp", p.name), f"ISP {p.name}", (("isp", p.name, 0),)) for p in plan.pipelines
    ]
    by_corruption: dict[str, list[tuple[str, str, int]]] = {}
    for condition in plan.conditions:
        by_corruption.setdefault(condition.name, []).append(
            ("corruption", condition.name, condition.severity)
        )
    for name, conditions in by_corruption.items():
        groups.append((cell_key("corruption", name), f"corruption {name}", tuple(conditions)))
    return groups


@attrs.frozen
class AuditInputs:
    """Shared inputs: one view stack per pipeline and the targets."""

    views: dict[str, ArrayRef]
    targets: ArrayRef


def _targets(plan: AuditPlan) -> np.ndarray:
    if plan.task == "classification" and plan.dataset.labels is not None:
        return np.asarray(plan.dataset.labels, dtype=np.int64)
    items = [np.asarray(plan.dataset[i].target) for i in range(len(plan.dataset))]
    if plan.task == "classification":
        return np.asarray(items, dtype=np.int64)
    return np.stack(items)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class AuditExperiment:
    """See module docstring."""

    kind = "audit"
    config_class = AuditConfig
    columns = RESULT_COLUMNS

    def plan(self, config: AuditConfig, registry: Registry) -> AuditPlan:
        return plan_audit(config, registry)

    def identity(self, plan: AuditPlan) -> dict[str, Any]:
        out: dict[str, Any] = {"data.fingerprint": plan.fingerprint}
        for spec in plan.pipelines:
            out[f"pipeline.{spec.name}"] = spec.fingerprint()
        return out

    def manifest(self, plan: AuditPlan) -> dict[str, Any]:
        return {
            "seed": plan.config.corruptions.seed,
            "dataset": {
                "name": plan.dataset_spec.name,
                "items": len(plan.dataset),
                "ids_sha256": hashlib.sha256("\n".join(plan.dataset.ids).encode()).hexdigest(),
                "fingerprint": plan.fingerprint,
                "camera": attrs.asdict(plan.camera),
            },
            "model": {
                "description": plan.model.description,
                "format": plan.model.format,
                "contract": plan.contract.to_dict(),
            },
            "pipelines": {s.name: s.fingerprint() for s in plan.pipelines},
            **({"test_set": held_out_manifest(plan.held_out)} if plan.held_out else {}),
        }

    def prepare(self, plan: AuditPlan, run: RunDir, progress: Progress) -> Prepared:
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
        targets_ref = run.store_array("targets", _targets(plan))
        return Prepared(AuditInputs(views, targets_ref), arrays=(*views.values(), targets_ref))

    def keys(self, plan: AuditPlan) -> list[str]:
        return [key for key, _, _ in audit_groups(plan)]

    def cells(self, plan: AuditPlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        inputs: AuditInputs = prepared.inputs
        mo = plan.config.model
        cells = []
        for key, label, conditions in audit_groups(plan):
            job = AuditJob(
                reference=plan.reference.name,
                conditions=conditions,
                views=inputs.views,
                targets=inputs.targets,
                test_ids=tuple(plan.dataset.ids),
                weights=mo.weights,
                model_name=mo.name,
                model_options=dict(mo.options),
                weights_key=mo.key,
                output_channels=plan.output_channels,
                contract=plan.contract,
                task=plan.task,
                metric=plan.metric,
                family=plan.config.corruptions.family,
                seed=plan.config.corruptions.seed,
                registry=plan.registry,
            )
            cells.append(Cell(key=key, label=label, function=audit_cell, job=job))
        return cells

    def metrics(self, record: CellRecord) -> dict[str, float]:
        out = {}
        for row in record.rows.itertuples(index=False):
            label = row.test_condition + (f"@{row.severity}" if row.severity else "")
            out[f"{row.test_kind}/{label}"] = float(row.value)
        return out

    def summarize(
        self, plan: AuditPlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        """The shared drift verdict (intervals, guards) of the frozen model, and its report."""
        results = pd.concat([r.rows for r in records], ignore_index=True)[list(RESULT_COLUMNS)]
        metric = plan.config.report.metric or plan.metric
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
        verdict = drift_verdict(
            results,
            evidence,
            DriftSettings(bootstrap=rep.bootstrap, seed=rep.seed),
            missing_evidence=missing,
        )
        summary = verdict.summary
        isp = results[results["test_kind"] == "isp"]
        corr = results[
            (results["test_kind"] == "corruption") & (results["test_condition"] != "identity")
        ]
        worst_isp = isp.loc[isp["value"].idxmin()] if not isp.empty else None
        worst_corr = corr.loc[corr["value"].idxmin()] if not corr.empty else None
        audit = {
            "reference_pipeline": plan.reference.name,
            "reference_score": summary["per_train_pipeline"][plan.reference.name]["diagonal"],
            "items": len(plan.dataset),
            "model": plan.model.description,
            "contract": plan.contract.to_dict(),
            "test_set": plan.held_out.source if plan.held_out else None,
            "worst_isp": None
            if worst_isp is None
            else {"pipeline": worst_isp["test_condition"], "value": float(worst_isp["value"])},
            "worst_corruption": None
            if worst_corr is None
            else {
                "corruption": worst_corr["test_condition"],
                "severity": int(worst_corr["severity"]),
                "value": float(worst_corr["value"]),
            },
        }
        summary = {**summary, "audit": audit}
        report = build_report(
            run.path,
            results,
            summary,
            plan,
            matrix=verdict.matrix,
            title=f"Drift audit report: {plan.model.name} on {plan.dataset_spec.name}",
            protocol="A frozen task model is tested on the views of every ISP pipeline (ISP "
            "drift) and on common corruptions of the views of the pipeline it was trained on.",
        )
        return Outcome(
            tables={"results": results, "matrix": verdict.matrix},
            summary=summary,
            report=_audit_report(report, plan, audit),
        )


def _audit_report(report: Report, plan: AuditPlan, audit: dict[str, Any]) -> Report:
    """The shared drift report with a first section on the audited model."""
    metric = plan.metric
    worst_isp = audit["worst_isp"]
    worst_corr = audit["worst_corruption"]
    facts = [
        ("model", plan.model.description),
        ("input contract", ", ".join(f"{k} = {v}" for k, v in plan.contract.to_dict().items())),
        ("audited items", f"{len(plan.dataset)} of {plan.dataset_spec.name}"),
        ("test set", audit["test_set"] or "every item of [dataset]"),
        (f"{metric} on the reference {plan.reference.name}", _fmt(audit["reference_score"])),
        (
            "lowest score under ISP drift",
            "n/a" if worst_isp is None else f"{worst_isp['value']:.3f} ({worst_isp['pipeline']})",
        ),
        (
            "lowest score under corruptions",
            "n/a"
            if worst_corr is None
            else f"{worst_corr['value']:.3f} ({worst_corr['corruption']}@{worst_corr['severity']})",
        ),
    ]
    notes = list(plan.held_out.notes) if plan.held_out else []
    model_section = Section(
        "Audited model",
        [
            KeyValues(facts),
            Paragraph(
                "The model is evaluated as given, never trained: its reference pipeline is the "
                "one it was trained on (the diagonal of the tables below), every other pipeline "
                "is ISP drift, and corruptions are applied to the reference views."
            ),
            *(Paragraph(note) for note in notes),
        ],
    )
    return attrs.evolve(report, sections=[model_section, *report.sections])


AUDIT = AuditExperiment()
