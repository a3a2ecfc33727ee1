"""Demosaicing: Bayer mosaic ``(H, W)`` to RGB ``(3, H, W)``.

Static forms call colour-demosaicing (Colour Developers). Its filters use
:func:`scipy.ndimage.convolve` with the default ``reflect`` border, which the
differentiable forms reproduce with :func:`driftlab.stages._filters.convolve2d`.

Border rule. Padding a Bayer mosaic with scipy's ``reflect`` (the edge
sample repeated) flips the CFA phase at the border, so colour-demosaicing
alone mixes colours on the outermost rows and columns (a flat grey field
gets a coloured frame; a measured corner sample comes out 2.25 times too
bright with bilinear). driftlab therefore first extends the mosaic by an
even margin with *phase-preserving* mirror padding (numpy ``reflect``, the
edge sample not repeated: column -1 copies column 1, which has the same
colour), demosaics with the same algorithms, and crops the margin. The
margin is wider than each algorithm's support, so the cropped result does
not depend on the library's own border handling, and both forms do exactly
this. Inside the image the result equals colour-demosaicing's.
"""

from __future__ import annotations

import numpy as np
import torch
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)

from driftlab.cfa import cfa_masks, cfa_masks_torch
from driftlab.stages._filters import convolve2d, pad_symmetric
from driftlab.stages.base import StageContext, StageSpec

K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 4
K_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float64) / 4

# Malvar, He and Cutler (2004) gradient-corrected kernels, as in colour-demosaicing.
M_G_AT_RB = (
    np.array(
        [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],
        dtype=np.float64,
    )
    / 8
)
M_RB_AT_G_ROW = (
    np.array(
        [
            [0, 0, 0.5, 0, 0],
            [0, -1, 0, -1, 0],
            [-1, 4, 5, 4, -1],
            [0, -1, 0, -1, 0],
            [0, 0, 0.5, 0, 0],
        ],
        dtype=np.float64,
    )
    / 8
)
M_RB_AT_G_COL = M_RB_AT_G_ROW.T.copy()
M_RB_AT_BR = (
    np.array(
        [
            [0, 0, -1.5, 0, 0],
            [0, 2, 0, 2, 0],
            [-1.5, 0, 6, 0, -1.5],
            [0, 2, 0, 2, 0],
            [0, 0, -1.5, 0, 0],
        ],
        dtype=np.float64,
    )
    / 8
)


# Even margins wider than each algorithm's support (bilinear 1, Malvar 2, Menon's
# directional filters plus refining step 6 pixels).
MARGIN = {"bilinear": 2, "malvar2004": 2, "menon2007": 8}


def _hwc_to_chw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def _padded_static(fn, x: np.ndarray, cfa: str, margin: int) -> np.ndarray:
    """Demosaic a phase-preserving mirror-padded mosaic and crop the margin."""
    out = fn(np.pad(x, margin, mode="reflect"), cfa)
    return _hwc_to_chw(out[margin:-margin, margin:-margin])


def _padded_torch(fn, x: torch.Tensor, ctx: StageContext, margin: int) -> torch.Tensor:
    out = fn(pad_symmetric(x, margin, margin, mode="reflect"), ctx)
    return out[..., margin:-margin, margin:-margin]


def bilinear_static(x: np.ndarray, ctx: StageContext) -> np.ndarray:
    """Bilinear demosaicing (colour-demosaicing ``demosaicing_CFA_Bayer_bilinear``).

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic, H and W even.
    ctx : StageContext
        Supplies the CFA pattern.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64 RGB, not clipped.

    References
    ----------
    Losson, Macaire and Yang, "Comparison of color demosaicing methods",
    Advances in Imaging and Electron Physics 162, 2010.
    """
    return _padded_static(demosaicing_CFA_Bayer_bilinear, x, ctx.cfa, MARGIN["bilinear"])


def bilinear_torch(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    """Differentiable bilinear demosaicing: ``(B, 1, H, W)`` to ``(B, 3, H, W)``.

    Splits the mosaic into three sparse colour planes and convolves R and B
    with ``k_rb = [[1,2,1],[2,4,2],[1,2,1]]/4`` and G with
    ``k_g = [[0,1,0],[1,4,1],[0,1,0]]/4``, after the phase-preserving mirror
    padding described in the module docstring.
    """
    return _padded_torch(_bilinear_core, x, ctx, MARGIN["bilinear"])


def _bilinear_core(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    masks = cfa_masks_torch(tuple(x.shape[-2:]), ctx.cfa, dtype=x.dtype, device=x.device)
    sparse = x * masks
    k_rb = torch.as_tensor(K_RB, dtype=x.dtype, device=x.device)
    k_g = torch.as_tensor(K_G, dtype=x.dtype, device=x.device)
    r = convolve2d(sparse[:, 0:1], k_rb)
    g = convolve2d(sparse[:, 1:2], k_g)
    b = convolve2d(sparse[:, 2:3], k_rb)
    return torch.cat([r, g, b], dim=1)


def malvar2004_static(x: np.ndarray, ctx: StageContext) -> np.ndarray:
    """Malvar (2004) demosaicing (colour-demosaicing ``demosaicing_CFA_Bayer_Malvar2004``).

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic, H and W even.
    ctx : StageContext
        Supplies the CFA pattern.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64 RGB, not clipped.

    References
    ----------
    Malvar, He and Cutler, "High-quality linear interpolation for demosaicing
    of Bayer-patterned color images", ICASSP 2004.
    """
    return _padded_static(demosaicing_CFA_Bayer_Malvar2004, x, ctx.cfa, MARGIN["malvar2004"])


def _row_col_masks(shape: tuple[int, int], pattern: str) -> dict[str, np.ndarray]:
    masks = cfa_masks(shape, pattern)
    red, blue = masks[0], masks[2]
    return {
        "red_rows": np.broadcast_to(red.any(axis=1, keepdims=True), shape),
        "red_cols": np.broadcast_to(red.any(axis=0, keepdims=True), shape),
        "blue_rows": np.broadcast_to(blue.any(axis=1, keepdims=True), shape),
        "blue_cols": np.broadcast_to(blue.any(axis=0, keepdims=True), shape),
    }


def malvar2004_torch(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    """Differentiable Malvar (2004) demosaicing: ``(B, 1, H, W)`` to ``(B, 3, H, W)``.

    The same four 5x5 gradient-corrected filters and per-site selections as
    colour-demosaicing, after the same phase-preserving padding, so both
    forms agree.
    """
    return _padded_torch(_malvar2004_core, x, ctx, MARGIN["malvar2004"])


def _malvar2004_core(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    shape = tuple(x.shape[-2:])
    opts = {"dtype": x.dtype, "device": x.device}
    masks = cfa_masks_torch(shape, ctx.cfa, **opts)
    rc = {
        k: torch.as_tensor(v.copy(), device=x.device)
        for k, v in _row_col_masks(shape, ctx.cfa).items()
    }

    def conv(kernel: np.ndarray) -> torch.Tensor:
        return convolve2d(x, torch.as_tensor(kernel, **opts))

    is_rb = (masks[:, 0:1] + masks[:, 2:3]) > 0
    g = torch.where(is_rb, conv(M_G_AT_RB), x * masks[:, 1:2])
    rb_row = conv(M_RB_AT_G_ROW)
    rb_col = conv(M_RB_AT_G_COL)
    rb_diag = conv(M_RB_AT_BR)
    r = x * masks[:, 0:1]
    b = x * masks[:, 2:3]
    r = torch.where(rc["red_rows"] & rc["blue_cols"], rb_row, r)
    r = torch.where(rc["blue_rows"] & rc["red_cols"], rb_col, r)
    b = torch.where(rc["blue_rows"] & rc["red_cols"], rb_row, b)
    b = torch.where(rc["red_rows"] & rc["blue_cols"], rb_col, b)
    r = torch.where(rc["blue_rows"] & rc["blue_cols"], rb_diag, r)
    b = torch.where(rc["red_rows"] & rc["red_cols"], rb_diag, b)
    return torch.cat([r, g, b], dim=1)


def menon2007_static(x: np.ndarray, ctx: StageContext) -> np.ndarray:
    """DDFAPD demosaicing with refining step (colour-demosaicing ``Menon2007``).

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic, H and W even.
    ctx : StageContext
        Supplies the CFA pattern.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64 RGB, not clipped.

    References
    ----------
    Menon, Andriani and Calvagno, "Demosaicing with directional filtering and
    a posteriori decision", IEEE TIP 16(1), 2007.
    """
    return _padded_static(demosaicing_CFA_Bayer_Menon2007, x, ctx.cfa, MARGIN["menon2007"])


_COMMON = {"input_kind": "mosaic", "output_kind": "rgb"}

STAGES = [
    StageSpec(
        slot="demosaic",
        variant="bilinear",
        doc="bilinear interpolation of each colour plane",
        static=bilinear_static,
        differentiable=bilinear_torch,
        reference="Losson et al. 2010; colour-demosaicing",
        **_COMMON,
    ),
    StageSpec(
        slot="demosaic",
        variant="malvar2004",
        doc="gradient-corrected linear interpolation",
        static=malvar2004_static,
        differentiable=malvar2004_torch,
        reference="Malvar, He and Cutler, ICASSP 2004; colour-demosaicing",
        **_COMMON,
    ),
    StageSpec(
        slot="demosaic",
        variant="menon2007",
        doc="directional filtering with a posteriori decision (static only)",
        static=menon2007_static,
        reference="Menon, Andriani and Calvagno, IEEE TIP 2007; colour-demosaicing",
        **_COMMON,
    ),
]
