"""Differentiable (torch) pipelines: ``(B, 1, H, W)`` raw to ``(B, 3, H, W)`` views.

Functional core plus a thin module: every stage is a
:class:`~driftlab.stages.base.DifferentiableStage` holding the declared
parameters as ``nn.Parameter`` objects.
"""

from __future__ import annotations

import torch
from torch import nn

from driftlab.camera import CameraParams
from driftlab.params import Domain
from driftlab.pipeline.resolve import ResolvedPipeline, resolve
from driftlab.pipeline.spec import PipelineSpec, SpecError, StageConfig
from driftlab.registry import Registry
from driftlab.stages.base import DifferentiableStage
from driftlab.validation import validate_raw_batch

__all__ = ["DifferentiablePipeline", "build_differentiable"]


class DifferentiablePipeline(nn.Module):
    """A resolved pipeline whose declared parameters are ``nn.Parameter`` tensors.

    Parameters
    ----------
    resolved : ResolvedPipeline
        Every stage must have a differentiable form.
    dtype : torch.dtype
        Parameter dtype (``torch.float64`` for exact comparisons).

    Raises
    ------
    SpecError
        If a stage has no differentiable form.
    """

    def __init__(self, resolved: ResolvedPipeline, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        missing = [s.spec.key for s in resolved.stages if s.spec.differentiable is None]
        if missing:
            raise SpecError(
                f"pipeline {resolved.name!r}: no differentiable form for {', '.join(missing)} "
                "(static only); choose another variant or use build_static"
            )
        self.resolved = resolved
        self.name = resolved.name
        self.stages = nn.ModuleDict(
            {
                s.name: DifferentiableStage(s.spec, s.values, resolved.context, s.domains, dtype)
                for s in resolved.stages
            }
        )

    def forward(
        self,
        raw: torch.Tensor,
        *,
        allow_out_of_range: bool = False,
        intermediates: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Render a batch of views.

        Parameters
        ----------
        raw : torch.Tensor
            ``(B, 1, H, W)`` floating point mosaics in [0, 1], H and W even.
        allow_out_of_range : bool
            Accept raw values outside [0, 1].
        intermediates : bool
            Also return every stage's output (for figures and gradient maps).

        Returns
        -------
        torch.Tensor or (torch.Tensor, dict)
            ``(B, 3, H, W)`` views (in [0, 1] when the pipeline ends with
            gamma), and optionally ``{stage name: output}``.

        Raises
        ------
        driftlab.validation.RawInputError
            Wrong shape, odd sides, NaN/Inf or values out of range.
        """
        x = validate_raw_batch(raw, allow_out_of_range=allow_out_of_range)
        steps: dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if intermediates:
                steps[name] = x
        return (x, steps) if intermediates else x

    def named_stage_parameters(self) -> dict[str, nn.Parameter]:
        """Learnable parameters keyed ``"stage.param"`` (e.g. ``"gamma.gamma"``)."""
        return {
            f"{name}.{pname}": p
            for name, stage in self.stages.items()
            for pname, p in stage.learnable.items()
        }

    def domains(self) -> dict[str, Domain]:
        """Effective domain of every learnable parameter, keyed like
        :meth:`named_stage_parameters`."""
        return {
            f"{name}.{pname}": stage.domains[pname]
            for name, stage in self.stages.items()
            for pname in stage.learnable
        }

    @torch.no_grad()
    def project_(self) -> None:
        """Project every learnable parameter into its domain, in place."""
        domains = self.domains()
        for key, p in self.named_stage_parameters().items():
            p.copy_(domains[key].project(p))

    def to_spec(self, name: str | None = None) -> PipelineSpec:
        """Current parameter values as a :class:`PipelineSpec` (e.g. after an attack)."""
        stages = []
        for resolved, stage in zip(self.resolved.stages, self.stages.values(), strict=True):
            params = {
                k: v.detach().cpu().double().numpy().tolist()
                for k, v in stage.param_tensors().items()
            }
            stages.append(
                StageConfig(
                    slot=resolved.spec.slot,
                    variant=resolved.spec.variant,
                    params=params,
                    domains={
                        k: d
                        for k, d in resolved.domains.items()
                        if d != resolved.spec.param(k).domain
                    },
                )
            )
        return PipelineSpec(
            name=name or self.name, stages=stages, description=self.resolved.spec.description
        )


def build_differentiable(
    spec: PipelineSpec,
    camera: CameraParams,
    registry: Registry | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> DifferentiablePipeline:
    """Resolve ``spec`` for ``camera`` and build its differentiable form.

    ``seed`` is handed to stages that draw random numbers.

    Raises
    ------
    SpecError
        See :func:`driftlab.pipeline.resolve.resolve`; also when a stage has
        no differentiable form.
    """
    return DifferentiablePipeline(resolve(spec, camera, registry, seed=seed), dtype=dtype)
