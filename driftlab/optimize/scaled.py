"""The learned arm's ISP: steps scaled to each parameter element's domain width.

ISP parameters live on very different scales: a black level moves within a
few thousandths of the white level, a white-balance gain within a quarter of
itself, a sharpening-kernel weight within [-2, 6]. One Adam learning rate in
parameter units (what the paper's code and driftlab before this module did)
therefore moves the small ones across their whole domain and leaves the wide
ones where they started.

:class:`WidthScaledIsp` learns every element ``theta_e`` of a differentiable
pipeline through the reparameterisation

``theta_e = theta0_e + w_e * u_e``

with ``u_e`` the learned (unitless) tensor, starting at 0, and ``w_e`` the
width ``high_e - low_e`` of the element's domain (camera-calibrated or
generic, :func:`driftlab.domains.stage_domains`). Adam (Kingma and Ba, 2015)
is invariant to the scale of the gradient, so an Adam step of rate ``lr`` on
``u`` moves ``theta_e`` by about ``lr * w_e``: the rate is a fraction of each
element's domain width per step, the same convention as the attacks
(:func:`driftlab.attacks.gradient.penalty_attack`), but element-wise. This
is exactly Adam on ``theta`` with a per-element learning rate
``lr * w_e`` (up to Adam's epsilon), which torch's Adam cannot express
directly. After every optimiser step :meth:`WidthScaledIsp.project_` maps
``theta`` onto its box and the domain's equality constraints (row sums,
kernel totals; Dykstra's algorithm via :meth:`driftlab.attacks.space.Slot.project`)
and sets ``u`` back accordingly. An element of zero width stays fixed.

Parameters with an equality constraint (colour-matrix rows summing to 1,
sharpening kernels summing to 1) get their gradient projected onto the
constraint's tangent space first (a gradient hook on ``u``: for a row
``sum_j w_j u_j = const`` the component along ``w`` is removed). Without it
the gradient's component across the constraint (overall brightness, which the
constraint forbids) fills Adam's moments, Adam's sign-like steps move every
element of a row the same way, and the projection undoes nearly all of each
step: the constrained parameters would barely move.

With ``scale="absolute"`` every width is 1 (Adam on ``theta`` itself), the
behaviour before this module, kept for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from driftlab.attacks.space import ParameterSpace
from driftlab.domains import ParamBounds
from driftlab.pipeline import DifferentiablePipeline

__all__ = ["WidthScaledIsp", "learned_space", "tangent_gradient"]


def learned_space(
    pipeline: DifferentiablePipeline, bounds: Mapping[str, ParamBounds] | None
) -> ParameterSpace:
    """Learnable parameters of ``pipeline`` with the given element-wise domains.

    Parameters
    ----------
    pipeline : DifferentiablePipeline
    bounds : mapping of str to ParamBounds, optional
        Keyed ``"stage.param"`` (extra keys, e.g. of non-learnable
        parameters, are ignored); None keeps the declared domains.

    Returns
    -------
    ParameterSpace
        One slot per learnable parameter, in pipeline order.
    """
    space = ParameterSpace.from_resolved(pipeline.resolved)
    keys = set(pipeline.named_stage_parameters())
    if bounds:
        space = space.with_domains({k: b for k, b in bounds.items() if k in keys})
    return space.subset(keys)


def tangent_gradient(grad: torch.Tensor, width: torch.Tensor, *, rows: bool) -> torch.Tensor:
    """Project a gradient in ``u`` onto the tangent space of ``sum w * u = const``.

    Parameters
    ----------
    grad, width : torch.Tensor
        Same shape; ``width`` the element-wise domain widths.
    rows : bool
        One constraint per row (last axis), else one over all elements.

    Returns
    -------
    torch.Tensor
        ``grad - w * (w . grad) / (w . w)`` per constraint (unchanged where
        all widths are 0).
    """
    if rows:
        dot = (width * grad).sum(dim=-1, keepdim=True)
        norm = (width * width).sum(dim=-1, keepdim=True)
    else:
        dot = (width * grad).sum()
        norm = (width * width).sum()
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    return grad - width * torch.where(norm > 0, dot / safe, torch.zeros_like(dot))


def _tangent_hook(isp: WidthScaledIsp, index: int, *, rows: bool):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return tangent_gradient(grad, isp._width(index), rows=rows)

    return hook


class WidthScaledIsp(nn.Module):
    """A differentiable pipeline learned on ``theta0 + width * u`` (module docstring).

    Parameters
    ----------
    pipeline : DifferentiablePipeline
        The base ISP; its own parameters are frozen and only updated by
        :meth:`write_back_`.
    space : ParameterSpace
        Domains of the learnable parameters (:func:`learned_space`);
        defaults are the pipeline's current values.
    scale : {"domain-width", "absolute"}
        Widths from the domains, or 1 for every element.

    Raises
    ------
    ValueError
        Unknown ``scale``, a space that does not match the pipeline's
        learnable parameters, or a non-finite width.
    """

    def __init__(
        self,
        pipeline: DifferentiablePipeline,
        space: ParameterSpace,
        *,
        scale: str = "domain-width",
    ) -> None:
        super().__init__()
        if scale not in ("domain-width", "absolute"):
            raise ValueError(f"scale: expected 'domain-width' or 'absolute', got {scale!r}")
        params = pipeline.named_stage_parameters()
        if set(space.keys) != set(params):
            raise ValueError(
                f"space holds {sorted(space.keys)}, the pipeline learns {sorted(params)}"
            )
        self.pipeline = pipeline
        for p in pipeline.parameters():
            p.requires_grad_(False)
        self.space = space
        self.keys = tuple(space.keys)
        self._state_names = {
            f"{stage}.{param}": f"stages.{stage}.learnable.{param}"
            for stage, module in pipeline.stages.items()
            for param in module.learnable
        }
        self.scale = scale
        self.steps = nn.ParameterList()
        for i, slot in enumerate(space.slots):
            origin = params[slot.key].detach().clone()
            width = slot.width if scale == "domain-width" else np.ones(slot.default.shape)
            if not np.all(np.isfinite(width)) or np.any(width < 0):
                raise ValueError(f"{slot.key}: domain width must be finite and >= 0, got {width}")
            self.register_buffer(f"origin_{i}", origin)
            self.register_buffer(f"width_{i}", torch.as_tensor(width, dtype=origin.dtype))
            step = nn.Parameter(torch.zeros_like(origin))
            if slot.domain.row_sum is not None or slot.domain.total is not None:
                step.register_hook(_tangent_hook(self, i, rows=slot.domain.row_sum is not None))
            self.steps.append(step)

    def _origin(self, i: int) -> torch.Tensor:
        return getattr(self, f"origin_{i}")

    def _width(self, i: int) -> torch.Tensor:
        return getattr(self, f"width_{i}")

    def learnable_parameters(self) -> list[nn.Parameter]:
        """The unitless steps ``u`` (what the optimiser updates)."""
        return list(self.steps)

    def named_values(self) -> dict[str, torch.Tensor]:
        """``{"stage.param": theta}`` as differentiable tensors of the declared shapes."""
        return {
            key: self._origin(i) + self._width(i) * u
            for i, (key, u) in enumerate(zip(self.keys, self.steps, strict=True))
        }

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mosaics in [0, 1] to ``(B, 3, H, W)`` views: the pipeline's own
        forward pass (:func:`torch.func.functional_call`) with ``theta`` in place of its
        parameters, so gradients reach ``u``.

        Raises
        ------
        driftlab.validation.RawInputError
            Wrong shape, odd sides, NaN/Inf or values out of range.
        """
        values = {self._state_names[k]: v for k, v in self.named_values().items()}
        return functional_call(self.pipeline, values, (raw,))

    @torch.no_grad()
    def project_(self) -> None:
        """Project every ``theta`` into its domain and set ``u`` to match (after each step)."""
        for i, (slot, u) in enumerate(zip(self.space.slots, self.steps, strict=True)):
            origin, width = self._origin(i), self._width(i)
            theta = slot.project(origin + width * u)
            safe = torch.where(width > 0, width, torch.ones_like(width))
            u.copy_(torch.where(width > 0, (theta - origin) / safe, torch.zeros_like(u)))

    @torch.no_grad()
    def write_back_(self) -> None:
        """Copy the current ``theta`` into the pipeline's own parameters (for saving)."""
        params = self.pipeline.named_stage_parameters()
        for key, value in self.named_values().items():
            params[key].copy_(value)
