"""Black-level subtraction on the Bayer mosaic."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.cfa import site_index_map
from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec

LEVELS = ParamSpec(
    name="levels",
    shape=(4,),
    default=(0.0, 0.0, 0.0, 0.0),
    unit="fraction of white level",
    domain=Domain(0.0, 0.1),
    doc="black level of each CFA site, in raster order of the 2x2 block",
    camera_field="black_level",
)


def black_level_static(x: np.ndarray, ctx: StageContext, *, levels: np.ndarray) -> np.ndarray:
    """Subtract a per-site black level from a mosaic.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1] (fraction of the white level).
    ctx : StageContext
        Unused; sites are indexed by position, whatever the colours.
    levels : numpy.ndarray
        ``(4,)`` black level of the top-left, top-right, bottom-left and
        bottom-right site of each 2x2 block, same unit as ``x``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64; may be slightly negative (noise below black).
    """
    return x - levels[site_index_map(x.shape)]


def black_level_torch(x: torch.Tensor, ctx: StageContext, *, levels: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`black_level_static`: ``(B, 1, H, W)`` to ``(B, 1, H, W)``."""
    index = torch.as_tensor(site_index_map(tuple(x.shape[-2:])), device=x.device)
    return x - levels[index]


STAGES = [
    StageSpec(
        slot="black_level",
        variant="subtract",
        doc="subtract the black level of each CFA site",
        params=(LEVELS,),
        static=black_level_static,
        differentiable=black_level_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference="Oala et al., TMLR 2023, Sec. 3 (BL)",
    )
]
