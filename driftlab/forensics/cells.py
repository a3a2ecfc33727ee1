"""Forensics cells: one attack (attack, lambda, target set), and the signature.

Both rebuild the attack problem (frozen model, base pipeline, examined raw
items) from plain data in their job, so they run in any worker process.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from driftlab.attacks.base import AttackSettings, run_attack
from driftlab.attacks.problem import AttackProblem
from driftlab.camera import CameraParams
from driftlab.engine.cell import ArrayRef, CellContext, CellOutput
from driftlab.pipeline import PipelineSpec, resolve
from driftlab.registry import Registry

__all__ = [
    "RESULT_COLUMNS",
    "AttackJob",
    "ProblemSpec",
    "SignatureJob",
    "attack_cell",
    "signature_cell",
]

RESULT_COLUMNS: dict[str, str] = {
    "attack": "str",
    "lam": "float",
    "targets": "str",
    "similarity": "str",
    "metric": "str",
    "clean_metric": "float",
    "attacked_metric": "float",
    "l2": "float",
    "ssim": "float",
    "clean_loss": "float",
    "attacked_loss": "float",
    "values": "str",
    "device": "str",
}


@attrs.frozen
class ProblemSpec:
    """Plain-data description of an :class:`~driftlab.attacks.problem.AttackProblem`."""

    model_name: str | None
    model_options: dict[str, Any]
    model_path: str
    model_key: str | None
    output_channels: int
    base: PipelineSpec
    camera: CameraParams
    raw: ArrayRef
    targets: ArrayRef
    task: str
    registry: Registry

    def build(self, ctx: CellContext) -> AttackProblem:
        """Load the frozen model and the items; resolve the pipeline."""
        from driftlab.models.loading import load_model

        net = load_model(
            self.model_path,
            name=self.model_name,
            num_classes=self.output_channels if self.model_name else None,
            options=self.model_options if self.model_name else None,
            key=self.model_key,
            registry=self.registry,
        ).view_model()
        resolved = resolve(self.base, self.camera, self.registry)
        return AttackProblem(
            net, resolved, ctx.load_array(self.raw), ctx.load_array(self.targets), self.task
        )


@attrs.frozen
class AttackJob:
    """One attack cell."""

    problem: ProblemSpec
    attack: str
    lam: float
    targets: tuple[str, ...]
    settings: dict[str, Any]
    clean: dict[str, float]
    metric: str
    options: dict[str, Any] = attrs.field(factory=dict)


def attack_cell(job: AttackJob, ctx: CellContext) -> CellOutput:
    """Run one attack and return its row (final values as JSON)."""
    problem = job.problem.build(ctx)
    spec = job.problem.registry.get("attacks", job.attack)
    settings = AttackSettings(**{**job.settings, "lam": job.lam})
    result = run_attack(
        spec, problem, settings, targets=list(job.targets), clean=job.clean, options=job.options
    )
    row = {
        "attack": job.attack,
        "lam": job.lam,
        "targets": "+".join(job.targets),
        "similarity": settings.similarity,
        "metric": job.metric,
        "clean_metric": job.clean["metric"],
        "attacked_metric": result.attacked["metric"],
        "l2": result.attacked["l2"],
        "ssim": result.attacked["ssim"],
        "clean_loss": job.clean["loss"],
        "attacked_loss": result.attacked["loss"],
        "values": json.dumps(result.values_json(), sort_keys=True),
        "device": ctx.device,
    }
    return CellOutput(rows=[row])


@attrs.frozen
class SignatureInputs:
    """What :func:`driftlab.forensics.signature.build_signature` reads of a plan."""

    problem: AttackProblem
    metric: str
    model_info: dict[str, Any]
    data_info: dict[str, Any]


@attrs.frozen
class SignatureJob:
    """The signature cell."""

    problem: ProblemSpec
    metric: str
    model_info: dict[str, Any]
    data_info: dict[str, Any]
    clean: float
    settings: dict[str, Any]


def signature_cell(job: SignatureJob, ctx: CellContext) -> CellOutput:
    """Compute the forensic signature; returned as ``signature.json`` bytes (no rows)."""
    from driftlab.forensics.signature import build_signature, canonical_json

    problem = job.problem.build(ctx)
    inputs = SignatureInputs(problem, job.metric, job.model_info, job.data_info)
    signature = build_signature(inputs, job.clean, registry=job.problem.registry, **job.settings)
    return CellOutput(rows=[], files={"signature.json": canonical_json(signature).encode()})
