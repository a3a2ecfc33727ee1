"""Gamma correction (display transfer curve)."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec

GAMMA = ParamSpec(
    name="gamma",
    shape=(),
    default=2.2,
    unit="exponent",
    domain=Domain(1.6, 2.8),
    doc="display gamma; the view is clip(v, 0, 1) ** (1 / gamma)",
)


def gamma_static(x: np.ndarray, ctx: StageContext, *, gamma: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and apply ``v ** (1 / gamma)``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 linear RGB, any range.
    gamma : numpy.ndarray
        Scalar exponent (default 2.2).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64 view in [0, 1].
    """
    return np.clip(x, 0.0, 1.0) ** (1.0 / float(gamma))


class _ClippedPower(torch.autograd.Function):
    """``clip(x, 0, 1) ** (1 / gamma)`` with a backward pass that reuses the output.

    ``d/dx = y / (gamma x)`` on (0, 1), 0 outside (the clip); ``d/dgamma =
    -sum(y log(x)) / gamma**2`` over (0, 1]. At x <= 0 the output is 0 with
    zero gradients, instead of the NaN that ``0 ** p`` gives with respect to
    the exponent. One power in the forward pass and none in the backward.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        clipped = x.clamp(0.0, 1.0)
        y = clipped.pow(1.0 / gamma)
        ctx.save_for_backward(clipped, y, gamma)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        clipped, y, gamma = ctx.saved_tensors
        grad_x = grad_gamma = None
        # the smallest normal number keeps 0 / 0 and log(0) out; y is 0 wherever x <= 0
        safe = clipped.clamp(min=torch.finfo(clipped.dtype).tiny)
        if ctx.needs_input_grad[0]:
            # dy/dx = y / (gamma x) below 1 (0 at and above 1, where the clip holds y at 1)
            slope = (clipped < 1).to(clipped.dtype).div_(gamma)
            grad_x = (y / safe).mul_(slope).mul_(grad)
        if ctx.needs_input_grad[1]:
            grad_gamma = -(grad * y).mul_(torch.log(safe)).sum() / gamma**2
            grad_gamma = grad_gamma.reshape(gamma.shape)
        return grad_x, grad_gamma


def gamma_torch(x: torch.Tensor, ctx: StageContext, *, gamma: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`gamma_static`, ``(B, 3, H, W)``.

    At exactly 0 the output is 0 with zero gradient (instead of the NaN that
    ``0 ** p`` produces in the backward pass with respect to ``gamma``); the
    backward pass reuses the output instead of computing a second power.
    """
    return _ClippedPower.apply(x, gamma)


STAGES = [
    StageSpec(
        slot="gamma",
        variant="power",
        doc="clip to [0, 1] then v ** (1 / gamma)",
        params=(GAMMA,),
        static=gamma_static,
        differentiable=gamma_torch,
        reference="Oala et al., TMLR 2023, Sec. 3 (GC)",
    )
]
