"""Lens-shading (vignetting) correction by a radial gain polynomial.

Lenses pass less light to the corners of the sensor than to its centre
(natural cos^4 fall-off, mechanical vignetting, pixel-acceptance loss), often
slightly differently per colour. ISPs undo this with a gain that grows with
the distance from the optical centre (Goldman, "Vignette and exposure
calibration and compensation", IEEE TPAMI 32(12), 2010, uses the same even
polynomial in r). This stage multiplies every mosaic pixel by

    g(r) = 1 + k1[site] * r^2 + k2[site] * r^4,

where ``site`` is the pixel's position in the 2x2 CFA block (raster order, as
for black levels, so each colour may get its own curve) and ``r`` is the
distance of the pixel centre from the optical centre divided by the
half-diagonal of the image, ``0.5 * sqrt(H^2 + W^2)``. Pixel ``(i, j)`` has
its centre at ``(i, j)``; the optical centre is the image centre
``((H - 1) / 2, (W - 1) / 2)`` moved by ``center_offset * half-diagonal``
(x to the right, y down).

Run it on the mosaic after black-level subtraction (vignetting scales the
signal above black) and before demosaicing. The output is not clipped:
corrected values near saturation may exceed 1 and are clipped by the gamma
stage. Both forms evaluate the same float operations in the same order, so
they agree bit for bit in float64.

Default coefficients ``k1 = 0.21``, ``k2 = 0.07`` (all sites) were fitted on
the white paper of the real openISP test frame (see the plugin README): they
bring the mean of the paper at r > 0.55 to within 1 % of the paper at r < 0.2
along the horizontal middle band, from 7-8 % darker before.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from driftlab.cfa import site_index_map
from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec
from driftlab.stages.filters import check_mosaic, check_mosaic_batch

__all__ = ["STAGES", "radial_gain", "radial_gain_torch", "radial_static", "radial_torch"]

R_UNIT = "r = distance from the optical centre / half-diagonal"

K1 = ParamSpec(
    name="k1",
    shape=(4,),
    default=(0.21, 0.21, 0.21, 0.21),
    unit=f"gain per r^2 ({R_UNIT})",
    domain=Domain(-0.25, 3.0),
    doc=(
        "r^2 coefficient of the gain, per CFA site in raster order; 0.21 fitted on the "
        "openISP frame, about 2.2 for the Raspberry Pi Camera Module v2 lens"
    ),
)
K2 = ParamSpec(
    name="k2",
    shape=(4,),
    default=(0.07, 0.07, 0.07, 0.07),
    unit=f"gain per r^4 ({R_UNIT})",
    domain=Domain(-0.25, 1.5),
    doc="r^4 coefficient of the gain, per CFA site in raster order",
)
CENTER_OFFSET = ParamSpec(
    name="center_offset",
    shape=(2,),
    default=(0.0, 0.0),
    unit="fraction of the half-diagonal (x right, y down)",
    domain=Domain(-0.15, 0.15),
    doc="shift of the optical centre from the image centre",
)
# With these bounds the optical centre moves by at most 0.15 * sqrt(2) of the
# half-diagonal, so every pixel has r < 1.22, where the smallest possible gain,
# 1 - 0.25 r^2 - 0.25 r^4, is still above 0.09: the box domain cannot produce a
# zero or negative gain.


def radial_gain(
    shape: tuple[int, int], k1: np.ndarray, k2: np.ndarray, center_offset: np.ndarray
) -> np.ndarray:
    """Gain map ``g(r) = 1 + k1[site] r^2 + k2[site] r^4`` of an ``(H, W)`` mosaic.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the mosaic.
    k1, k2 : numpy.ndarray
        ``(4,)`` float64 coefficients per CFA site (raster order of the 2x2 block).
    center_offset : numpy.ndarray
        ``(2,)`` float64 ``(x, y)`` shift of the optical centre, fraction of
        the half-diagonal.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 gains (1 at the optical centre).
    """
    h, w = shape
    half_diagonal = 0.5 * math.hypot(h, w)
    yc = (h - 1) / 2 + center_offset[1] * half_diagonal
    xc = (w - 1) / 2 + center_offset[0] * half_diagonal
    dy = (np.arange(h, dtype=np.float64) - yc) / half_diagonal
    dx = (np.arange(w, dtype=np.float64) - xc) / half_diagonal
    r2 = dy[:, None] * dy[:, None] + dx[None, :] * dx[None, :]
    site = site_index_map((h, w))
    return 1.0 + k1[site] * r2 + k2[site] * (r2 * r2)


def radial_gain_torch(
    shape: tuple[int, int], k1: torch.Tensor, k2: torch.Tensor, center_offset: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`radial_gain`; ``(H, W)`` tensor, dtype and device of ``k1``."""
    h, w = shape
    half_diagonal = 0.5 * math.hypot(h, w)
    yc = (h - 1) / 2 + center_offset[1] * half_diagonal
    xc = (w - 1) / 2 + center_offset[0] * half_diagonal
    dy = (torch.arange(h, dtype=k1.dtype, device=k1.device) - yc) / half_diagonal
    dx = (torch.arange(w, dtype=k1.dtype, device=k1.device) - xc) / half_diagonal
    r2 = dy[:, None] * dy[:, None] + dx[None, :] * dx[None, :]
    site = torch.as_tensor(site_index_map((h, w)), device=k1.device)
    return 1.0 + k1[site] * r2 + k2[site] * (r2 * r2)


def radial_static(
    x: np.ndarray,
    ctx: StageContext,
    *,
    k1: np.ndarray,
    k2: np.ndarray,
    center_offset: np.ndarray,
) -> np.ndarray:
    """Multiply a mosaic by the radial lens-shading gain.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic, fraction of the white level, black level
        already subtracted; H and W even.
    ctx : StageContext
        Unused: coefficients are given per CFA site, whatever its colour.
    k1, k2 : numpy.ndarray
        ``(4,)`` gain coefficients per CFA site (defaults 0.21 and 0.07).
    center_offset : numpy.ndarray
        ``(2,)`` optical-centre shift, fraction of the half-diagonal.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64, ``x * g(r)``; not clipped.

    Raises
    ------
    ValueError
        If ``x`` is not an even-sized 2-D mosaic.
    """
    check_mosaic(x, "lens_shading.radial")
    return x * radial_gain(x.shape, k1, k2, center_offset)


def radial_torch(
    x: torch.Tensor,
    ctx: StageContext,
    *,
    k1: torch.Tensor,
    k2: torch.Tensor,
    center_offset: torch.Tensor,
) -> torch.Tensor:
    """Differentiable :func:`radial_static`: ``(B, 1, H, W)`` to ``(B, 1, H, W)``.

    Differentiable with respect to ``x``, ``k1``, ``k2`` and ``center_offset``.
    """
    check_mosaic_batch(x, "lens_shading.radial")
    return x * radial_gain_torch(tuple(x.shape[-2:]), k1, k2, center_offset)


STAGES = [
    StageSpec(
        slot="lens_shading",
        variant="radial",
        doc="vignetting correction: gain 1 + k1 r^2 + k2 r^4 per CFA site",
        params=(K1, K2, CENTER_OFFSET),
        static=radial_static,
        differentiable=radial_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference="even radial polynomial as in Goldman, IEEE TPAMI 32(12), 2010",
        tolerance=1e-12,
    )
]
