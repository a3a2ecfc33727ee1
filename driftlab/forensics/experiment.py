"""Drift forensics as a filling of the experiment skeleton.

One cell per (attack, lambda, target set) attacks the frozen task model
through its ISP pipeline's parameters; one more cell computes the forensic
signature. Cells run in parallel on any executor and resume like every
other experiment's; the signature is reused only when its cell record's
checksum holds.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pandas as pd

from driftlab.cache import render_identity
from driftlab.engine.cell import Cell, CellOutput, CellSuccess
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import Outcome, Prepared
from driftlab.forensics.cells import (
    RESULT_COLUMNS,
    AttackJob,
    ProblemSpec,
    SignatureJob,
    attack_cell,
    signature_cell,
)
from driftlab.forensics.config import ForensicsConfig
from driftlab.forensics.figures import write_figures
from driftlab.forensics.plan import ForensicsPlan, plan_forensics
from driftlab.forensics.report import build_report
from driftlab.naming import cell_key
from driftlab.registry import Registry

__all__ = ["FORENSICS", "ForensicsExperiment", "attack_key"]

SIGNATURE_KEY = "signature"
log = logging.getLogger("driftlab.forensics")


def signature_settings(plan: ForensicsPlan) -> dict[str, Any]:
    """The ``[signature]`` settings :func:`driftlab.forensics.signature.build_signature` takes."""
    sg = plan.config.signature
    return {
        "threshold": sg.threshold,
        "points": sg.points,
        "refine": sg.refine,
        "steps": sg.steps,
        "tolerance": sg.tolerance,
        "seed": sg.seed,
        "confidence": sg.confidence,
        "resamples": sg.resamples,
        "shrink_steps": sg.shrink_steps,
        "corners": sg.corners,
    }


def _json_bytes(signature: dict[str, Any]) -> bytes:
    from driftlab.forensics.signature import canonical_json

    return canonical_json(signature).encode()


def attack_key(attack: str, lam: float, targets: tuple[str, ...]) -> str:
    """Key of one attack cell (injective in attack, lambda and target set)."""
    return cell_key(attack, f"lam{lam!r}", "+".join(targets))


class ForensicsExperiment:
    """See module docstring."""

    kind = "forensics"
    config_class = ForensicsConfig
    columns = RESULT_COLUMNS

    def plan(self, config: ForensicsConfig, registry: Registry) -> ForensicsPlan:
        return plan_forensics(config, registry)

    def identity(self, plan: ForensicsPlan) -> dict[str, Any]:
        return {
            "model.sha256": plan.model_info["sha256"],
            "data.sha256": plan.data_info["sha256"],
            f"pipeline.{plan.base.name}": plan.base.fingerprint(),
            **render_identity(plan.camera, [plan.problem.resolved]),
        }

    def manifest(self, plan: ForensicsPlan) -> dict[str, Any]:
        return {
            "model": plan.model_info,
            "data": {k: v for k, v in plan.data_info.items() if k != "ids"},
            "pipeline": plan.base.fingerprint(),
        }

    def prepare(self, plan: ForensicsPlan, run: RunDir, progress: Progress) -> Prepared:
        problem = plan.problem
        raw = run.store_array("raw", problem.raw)
        targets = run.store_array("targets", problem.targets)
        progress.message("evaluating the model at the default ISP parameters")
        clean = problem.evaluate()
        spec = ProblemSpec(
            model_name=plan.model_name,
            model_options=dict(plan.model_options),
            model_path=str(plan.model_path),
            model_key=plan.model_key,
            output_channels=plan.output_channels,
            base=plan.base,
            camera=plan.camera,
            raw=raw,
            targets=targets,
            task=problem.task,
            registry=plan.registry,
        )
        return Prepared({"problem": spec, "clean": clean}, (raw, targets))

    def _attack_cells(self, plan: ForensicsPlan):
        for spec in plan.attacks:
            for lam in plan.config.attacks.lambdas:
                for targets in plan.target_sets:
                    yield spec.name, lam, targets

    def keys(self, plan: ForensicsPlan) -> list[str]:
        keys = [attack_key(a, lam, t) for a, lam, t in self._attack_cells(plan)]
        return keys + ([SIGNATURE_KEY] if plan.config.signature.enabled else [])

    def cells(self, plan: ForensicsPlan, prepared: Prepared, run: RunDir) -> list[Cell]:
        at = plan.config.attacks
        settings = {
            "steps": at.steps,
            "lr": at.lr,
            "similarity": at.similarity,
            "budget": at.budget,
            "method": at.method,
            "population": at.population,
            "seed": at.seed,
        }
        problem, clean = prepared.inputs["problem"], prepared.inputs["clean"]
        cells = []
        for attack, lam, targets in self._attack_cells(plan):
            job = AttackJob(
                problem, attack, lam, targets, settings, clean, plan.metric,
                options=plan.attack_options.get(attack, {}),
            )  # fmt: skip
            cells.append(
                Cell(
                    key=attack_key(attack, lam, targets),
                    label=f"{attack} lambda {lam:g} [{'+'.join(targets)}]",
                    function=attack_cell,
                    job=job,
                )
            )
        sg = plan.config.signature
        if sg.enabled:
            job = SignatureJob(
                problem=problem,
                metric=plan.metric,
                model_info=plan.model_info,
                data_info=plan.data_info,
                clean=clean["metric"],
                settings=signature_settings(plan),
            )
            cells.append(Cell(SIGNATURE_KEY, "signature", signature_cell, job))
        return cells

    def _signature(
        self, plan: ForensicsPlan, run: RunDir, record: CellRecord, progress: Progress
    ) -> dict[str, Any]:
        """The signature of the signature cell: validated, and re-measured when it was
        found on disk (a forged or stale file is computed again, never reused)."""
        from driftlab.forensics.signature import build_signature, write_signature
        from driftlab.forensics.validate import SignatureError, load_signature
        from driftlab.forensics.verify import reuse_signature

        settings = signature_settings(plan)
        path = record.files["signature.json"]
        signature, why = None, ""
        if record.reused:
            check = {k: v for k, v in settings.items() if k != "tolerance"}
            signature, why = reuse_signature(path, plan, **check)
        else:
            try:
                signature = load_signature(path)
            except SignatureError as exc:
                why = str(exc)
        if signature is None:
            log.warning(
                "not reusing the signature of cell %s: %s; computing it again", record.key, why
            )
            progress.message("computing the signature again")
            signature = build_signature(plan, registry=plan.registry, **settings)
            output = CellOutput(rows=[], files={"signature.json": _json_bytes(signature)})
            run.write_cell(
                CellSuccess(record.key, output, "cpu", 0.0, socket.gethostname(), os.getpid()),
                self.columns,
            )
        write_signature(signature, run.path)
        return signature

    def metrics(self, record: CellRecord) -> dict[str, float]:
        values = record.rows["attacked_metric"]
        return {f"attacked_metric/{i}": float(v) for i, v in enumerate(values)}

    def summarize(
        self, plan: ForensicsPlan, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        attacks = [r for r in records if r.key != SIGNATURE_KEY]
        results = pd.concat([r.rows for r in attacks], ignore_index=True)[list(RESULT_COLUMNS)]
        signature = None
        for record in records:
            if record.key == SIGNATURE_KEY:
                signature = self._signature(plan, run, record, progress)
        clean = {
            "metric": float(results["clean_metric"].iloc[0]),
            "loss": float(results["clean_loss"].iloc[0]),
        }
        figures = write_figures(
            plan.problem, results, run.figures, plan.metric, plan.config.attacks.samples
        )
        worst = results.sort_values("attacked_metric").iloc[0]
        summary = {
            "metric": plan.metric,
            "clean_metric": clean["metric"],
            "strongest_attack": {
                "attack": str(worst["attack"]),
                "lam": float(worst["lam"]),
                "targets": str(worst["targets"]),
                "attacked_metric": float(worst["attacked_metric"]),
            },
            "items": plan.data_info["items"],
            "signature": None if signature is None else "signature.json",
            "signature_reachability": (
                None if plan.reachability is None else plan.reachability.describe()
            ),
        }
        report = build_report(run.path, plan, results, clean, figures, signature)
        return Outcome(
            tables={"results": results},
            summary=summary,
            report=report,
            extra={"signature": signature},
        )


FORENSICS = ForensicsExperiment()
