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

from typing import Any

import attrs
import pandas as pd

from driftlab.audit.cells import AuditJob, audit_cell
from driftlab.audit.config import AuditConfig
from driftlab.audit.plan import AuditPlan, plan_audit
from driftlab.engine.cell import Cell
from driftlab.engine.progress import Progress
from driftlab.engine.report import KeyValues, Paragraph, Report, Section
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.naming import cell_key
from driftlab.registry import Registry
from driftlab.verdicts.evidence import condition_label
from driftlab.verdicts.experiment import (
    DriftExperiment,
    DriftInputs,
    check_cell,
    data_manifest,
    drift_results,
)
from driftlab.verdicts.headline import fmt_value
from driftlab.verdicts.records import CellRecordError
from driftlab.verdicts.report import build_report

__all__ = ["AUDIT", "AuditExperiment", "audit_facts", "audit_groups"]


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


def audit_facts(plan: AuditPlan, results: pd.DataFrame, summary: dict[str, Any]) -> dict[str, Any]:
    """The ``audit`` entry of ``summary.json``: the audited model and its lowest scores.

    Parameters
    ----------
    plan : AuditPlan
    results : pandas.DataFrame
        The audit's results (:data:`~driftlab.verdicts.evidence.CELL_COLUMNS`),
        values in the headline metric ``summary["metric"]``.
    summary : dict
        The drift verdict's summary of ``results``.

    Returns
    -------
    dict
        ``reference_pipeline``, ``reference_score`` (the diagonal),
        ``metric`` (the metric of every score here), ``items``, ``model``,
        ``contract``, ``test_set``; ``worst_isp`` (``pipeline``, ``value``:
        the lowest score on a test pipeline *other than* the reference, so a
        drift; None when the reference is the only test pipeline) and
        ``worst_corruption`` (``corruption``, ``severity``, ``value``: the
        lowest score under a corruption other than ``identity``; None
        without one).
    """
    reference = plan.reference.name
    isp = results[(results["test_kind"] == "isp") & (results["test_condition"] != reference)]
    corr = results[
        (results["test_kind"] == "corruption") & (results["test_condition"] != "identity")
    ]
    worst_isp = isp.loc[isp["value"].idxmin()] if not isp.empty else None
    worst_corr = corr.loc[corr["value"].idxmin()] if not corr.empty else None
    return {
        "reference_pipeline": reference,
        "reference_score": summary["per_train_pipeline"][reference]["diagonal"],
        "metric": summary["metric"],
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


class AuditExperiment(DriftExperiment):
    """See module docstring."""

    kind = "audit"
    config_class = AuditConfig

    def plan(self, config: AuditConfig, registry: Registry) -> AuditPlan:
        return plan_audit(config, registry)

    def manifest(self, plan: AuditPlan) -> dict[str, Any]:
        model = {
            "description": plan.model.description,
            "format": plan.model.format,
            "contract": plan.contract.to_dict(),
        }
        return {**data_manifest(plan, plan.config.corruptions.seed), "model": model}

    def keys(self, plan: AuditPlan) -> list[str]:
        return [key for key, _, _ in audit_groups(plan)]

    def cells(self, plan: AuditPlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        inputs: DriftInputs = prepared.inputs
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

    def check(self, plan: AuditPlan, record: CellRecord) -> None:
        """Check a reused cell against its rows and the plan (the reference pipeline, fold 0,
        every audited item and its class, the cell's conditions); :class:`CellRecordError`
        when anything differs."""
        for key, _, conditions in audit_groups(plan):
            if key == record.key:
                check_cell(
                    plan,
                    record,
                    train_pipeline=plan.reference.name,
                    fold=0,
                    conditions=[condition_label(*c) for c in conditions],
                    test_index=range(len(plan.dataset)),
                )
                return
        raise CellRecordError(record.key, "not a cell of this audit's plan")

    def summarize(
        self, plan: AuditPlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        """The shared drift verdict (intervals, guards) of the frozen model, and its report."""
        results, verdict = drift_results(plan, records, progress)
        audit = audit_facts(plan, results, verdict.summary)
        summary = {**verdict.summary, "audit": audit}
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
    """The shared drift report with a first section on the audited model.

    Every score is named with ``audit["metric"]``, the metric it was computed in.
    """
    metric = audit["metric"]
    worst_isp = audit["worst_isp"]
    worst_corr = audit["worst_corruption"]
    facts = [
        ("model", plan.model.description),
        ("input contract", ", ".join(f"{k} = {v}" for k, v in plan.contract.to_dict().items())),
        ("audited items", f"{len(plan.dataset)} of {plan.dataset_spec.name}"),
        ("test set", audit["test_set"] or "every item of [dataset]"),
        (f"{metric} on the reference {plan.reference.name}", fmt_value(audit["reference_score"])),
        (
            f"lowest {metric} under ISP drift (another pipeline)",
            "n/a (no test pipeline besides the reference)"
            if worst_isp is None
            else f"{fmt_value(worst_isp['value'])} ({worst_isp['pipeline']})",
        ),
        (
            f"lowest {metric} under corruptions",
            "n/a"
            if worst_corr is None
            else f"{fmt_value(worst_corr['value'])} "
            f"({worst_corr['corruption']}@{worst_corr['severity']})",
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
