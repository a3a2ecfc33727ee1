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


def gamma_torch(x: torch.Tensor, ctx: StageContext, *, gamma: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`gamma_static`, ``(B, 3, H, W)``.

    At exactly 0 the output is 0 with zero gradient (instead of the NaN that
    ``0 ** p`` produces in the backward pass with respect to ``gamma``).
    """
    clipped = x.clamp(0.0, 1.0)
    positive = clipped > 0
    safe = torch.where(positive, clipped, torch.ones_like(clipped))
    return torch.where(positive, safe ** (1.0 / gamma), torch.zeros_like(clipped))


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
