"""Per-pixel colour stages: white balance and colour correction."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec

GAINS = ParamSpec(
    name="gains",
    shape=(3,),
    default=(1.0, 1.0, 1.0),
    unit="gain (x)",
    domain=Domain(0.25, 8.0),
    doc="multiplicative gain of the R, G and B channel",
    camera_field="white_balance",
)

IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

MATRIX = ParamSpec(
    name="matrix",
    shape=(3, 3),
    default=IDENTITY,
    unit="coefficient",
    domain=Domain(-4.0, 4.0),
    doc="3x3 matrix M applied as v = M @ v to every pixel",
    camera_field="color_matrix",
)

MATRIX_WHITE_PRESERVING = ParamSpec(
    name="matrix",
    shape=(3, 3),
    default=IDENTITY,
    unit="coefficient",
    domain=Domain(-4.0, 4.0, row_sum=1.0),
    doc="3x3 matrix M with rows summing to 1 (neutral grey stays grey)",
    camera_field="color_matrix",
)


def white_balance_static(x: np.ndarray, ctx: StageContext, *, gains: np.ndarray) -> np.ndarray:
    """Scale each channel: ``v_c = gains_c * v_c``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 linear RGB.
    gains : numpy.ndarray
        ``(3,)`` gains for R, G, B (dimensionless).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64, not clipped.
    """
    return x * gains[:, None, None]


def white_balance_torch(x: torch.Tensor, ctx: StageContext, *, gains: torch.Tensor) -> torch.Tensor:
    """Differentiable white balance, ``(B, 3, H, W)`` to ``(B, 3, H, W)``."""
    return x * gains[None, :, None, None]


def color_correction_static(x: np.ndarray, ctx: StageContext, *, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 colour matrix to every pixel: ``v = M @ v``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 linear RGB.
    matrix : numpy.ndarray
        ``(3, 3)`` colour matrix (camera RGB to output RGB).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64; may leave [0, 1].
    """
    return np.einsum("ij,jhw->ihw", matrix, x)


def color_correction_torch(
    x: torch.Tensor, ctx: StageContext, *, matrix: torch.Tensor
) -> torch.Tensor:
    """Differentiable colour correction, ``(B, 3, H, W)`` to ``(B, 3, H, W)``."""
    return torch.einsum("ij,bjhw->bihw", matrix, x)


STAGES = [
    StageSpec(
        slot="white_balance",
        variant="gains",
        doc="per-channel gains",
        params=(GAINS,),
        static=white_balance_static,
        differentiable=white_balance_torch,
        reference="Oala et al., TMLR 2023, Sec. 3 (WB)",
    ),
    StageSpec(
        slot="color_correction",
        variant="matrix",
        doc="free 3x3 colour matrix",
        params=(MATRIX,),
        static=color_correction_static,
        differentiable=color_correction_torch,
        reference="Oala et al., TMLR 2023, Sec. 3 (CC)",
    ),
    StageSpec(
        slot="color_correction",
        variant="white_preserving",
        doc="3x3 colour matrix whose rows sum to 1",
        params=(MATRIX_WHITE_PRESERVING,),
        static=color_correction_static,
        differentiable=color_correction_torch,
        reference="Karaimer and Brown, ECCV 2016 (white-preserving colour matrices)",
    ),
]
