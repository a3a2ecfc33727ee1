"""Differentiable (torch) pipelines: ``(B, 1, H, W)`` raw to ``(B, 3, H, W)`` views.

Functional core plus a thin module: every stage is a
:class:`~driftlab.stages.base.DifferentiableStage` holding the declared
parameters as ``nn.Parameter`` objects.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from driftlab.camera import CameraParams
from driftlab.params import Domain
from driftlab.pipeline.outputs import check_stage_output, expected_output_shape
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
            gamma), and optionally ``{stage name: output}``. Without
            intermediates the built-in stages run fused
            (:mod:`driftlab.pipeline.fused`): the same views and gradients,
            fewer passes over memory.

        Raises
        ------
        driftlab.validation.RawInputError
            Wrong shape, odd sides, NaN/Inf or values out of range.
        driftlab.pipeline.outputs.StageOutputError
            A stage returned the wrong shape or dtype, or a plugin stage
            returned NaN/Inf values (naming the stage and its plugin).
        """
        x = validate_raw_batch(raw, allow_out_of_range=allow_out_of_range)
        if not intermediates:
            from driftlab.pipeline.fused import fused_forward

            return fused_forward(self, x)
        steps: dict[str, torch.Tensor] = {}
        for index, name in enumerate(self.stages):
            x = self.run_stage(index, x)
            steps[name] = x
        return x, steps

    def run_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply stage ``index`` to ``x`` and check its output.

        Raises
        ------
        driftlab.pipeline.outputs.StageOutputError
            Wrong shape or dtype, or NaN/Inf from a plugin stage (built-in
            stages are verified, so their outputs are not scanned).
        """
        resolved = self.resolved.stages[index]
        b, _, h, w = x.shape
        dtype = x.dtype
        out = list(self.stages.values())[index](x)
        return check_stage_output(
            resolved,
            out,
            "differentiable",
            expected_output_shape(resolved, h, w, batch=b),
            dtype,
            finite=not resolved.plugin.startswith("driftlab.builtin"),
        )

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

    def current_values(self) -> dict[str, dict[str, np.ndarray]]:
        """Every stage parameter's current value, ``{stage name: {param: float64 array}}``."""
        return {
            name: {k: v.detach().cpu().double().numpy() for k, v in stage.param_tensors().items()}
            for name, stage in self.stages.items()
        }

    def render_fast(
        self,
        raw: torch.Tensor | np.ndarray,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        linear_dtype: torch.dtype = torch.float64,
        allow_out_of_range: bool = False,
    ) -> torch.Tensor:
        """Views with the current parameter values, by the fast render path (no autograd).

        The same views as :meth:`forward` (within the fast path's agreement
        with the static reference, see :mod:`driftlab.pipeline.batched`),
        much faster, for evaluation during attacks and training.

        Parameters
        ----------
        raw : torch.Tensor or numpy.ndarray
            ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)`` mosaics in [0, 1].
        device : str or torch.device, optional
            Where to render; default the device of the pipeline's parameters.
        dtype, linear_dtype : torch.dtype
            Output dtype and dtype of the linear arithmetic (see
            :class:`~driftlab.pipeline.batched.FastRenderer`).

        Returns
        -------
        torch.Tensor
            ``(B, 3, H, W)`` views in ``dtype``, not attached to any graph.
        """
        from driftlab.pipeline.batched import FastRenderer

        if device is None:
            tensors = [*self.parameters(), *self.buffers()]
            device = tensors[0].device if tensors else torch.device("cpu")
        renderer = FastRenderer(
            self.resolved,
            device=device,
            dtype=dtype,
            linear_dtype=linear_dtype,
            values=self.current_values(),
        )
        return renderer(raw, allow_out_of_range=allow_out_of_range)

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
