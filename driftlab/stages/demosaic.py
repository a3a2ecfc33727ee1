"""Demosaicing: Bayer mosaic ``(H, W)`` to RGB ``(3, H, W)``.

Static forms call colour-demosaicing (Colour Developers). Its filters use
:func:`scipy.ndimage.convolve` with the default ``reflect`` border, which the
differentiable forms reproduce with :func:`driftlab.stages.filters.convolve2d`.

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

import functools

import numpy as np
import torch
import torch.nn.functional as F
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)

from driftlab.cfa import cfa_masks, cfa_masks_torch, check_cfa
from driftlab.stages.base import StageContext, StageSpec
from driftlab.stages.filters import convolve2d, pad_symmetric, split_sites_torch

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

    The linear map of colour-demosaicing's bilinear filters (R and B
    convolved with ``k_rb = [[1,2,1],[2,4,2],[1,2,1]]/4``, G with
    ``k_g = [[0,1,0],[1,4,1],[0,1,0]]/4`` on the sparse colour planes),
    evaluated as one convolution of the four CFA site planes
    (:func:`demosaic_site_planes`) after the phase-preserving mirror padding
    described in the module docstring.
    """
    return demosaic_site_planes(x, site_plane_weights("bilinear", ctx.cfa))


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
    forms agree; evaluated as one convolution of the four CFA site planes
    (:func:`demosaic_site_planes`).
    """
    return demosaic_site_planes(x, site_plane_weights("malvar2004", ctx.cfa))


LINEAR_VARIANTS: tuple[str, ...] = ("bilinear", "malvar2004")


@functools.lru_cache(maxsize=16)
def site_plane_weights(variant: str, cfa: str) -> np.ndarray:
    """Weights of a linear demosaic as a convolution of CFA site planes.

    A linear demosaic (bilinear, Malvar 2004) computes each colour at each
    CFA site as a fixed linear combination of the mosaic within 2 pixels,
    which is a 3x3 neighbourhood of the four site planes (see
    :func:`driftlab.stages.filters.split_sites`). The weights are read off
    the per-pixel reference implementation (sparse colour planes and 5x5
    kernels) by its response to unit impulses, in float64, so both describe
    the same map.

    Parameters
    ----------
    variant : {"bilinear", "malvar2004"}
    cfa : str
        CFA pattern.

    Returns
    -------
    numpy.ndarray
        ``(12, 4, 3, 3)`` float64, read-only: output channel ``4 * colour +
        site`` (colour 0..2 = R, G, B; site in raster order of the 2x2
        block), input channel = input site, then the plane offsets ``-1..1``
        in y and x (a correlation, as :func:`torch.nn.functional.conv2d`).
        Cached per ``(variant, cfa)`` (at most 16 entries).

    Raises
    ------
    ValueError
        Unknown variant or CFA pattern.
    """
    core = {"bilinear": _bilinear_core, "malvar2004": _malvar2004_core}.get(variant)
    if core is None:
        raise ValueError(f"site_plane_weights: not a linear demosaic: {variant!r}")
    ctx = StageContext(cfa=check_cfa(cfa))
    weights = np.zeros((3, 4, 4, 3, 3))  # colour, out site, in site, u, v
    for s_in in range(4):
        c, d = divmod(s_in, 2)
        impulse = torch.zeros((1, 1, 16, 16), dtype=torch.float64)
        impulse[0, 0, 8 + c, 8 + d] = 1.0
        response = core(impulse, ctx)[0].numpy()
        for s_out in range(4):
            a, b = divmod(s_out, 2)
            for u in (-1, 0, 1):
                for v in (-1, 0, 1):
                    weights[:, s_out, s_in, u + 1, v + 1] = response[
                        :, 2 * (4 - u) + a, 2 * (4 - v) + b
                    ]
    out = weights.reshape(12, 4, 3, 3)
    out.setflags(write=False)
    return out


def demosaic_site_planes(x: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    """Apply a linear demosaic given by :func:`site_plane_weights`.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, 1, H, W)`` mosaics, H and W even.
    weights : numpy.ndarray
        ``(3 * 4, 4, 3, 3)`` site-plane weights.

    Returns
    -------
    torch.Tensor
        ``(B, 3, H, W)``, same dtype and device; differentiable in ``x``.
    """
    planes = split_sites_torch(pad_symmetric(x, 2, 2, mode="reflect"))
    kernel = torch.tensor(weights, dtype=x.dtype, device=x.device)
    out = F.conv2d(planes, kernel)  # (B, 12, H/2, W/2)
    return merge_site_channels(out, 3)


def merge_site_channels(planes: torch.Tensor, quantities: int) -> torch.Tensor:
    """``(B, Q * 4, h, w)`` site planes (channel ``4 q + site``) to ``(B, Q, 2h, 2w)``.

    One permuted copy (what :func:`torch.nn.functional.pixel_shuffle` with
    factor 2 computes, about twice as fast forward and backward on the CPU as
    it or stacking); differentiable.
    """
    b, _, h, w = planes.shape
    sites = planes.reshape(b, quantities, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return sites.reshape(b, quantities, 2 * h, 2 * w)


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


def menon2007_torch(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    """Differentiable Menon (2007) demosaicing: ``(B, 1, H, W)`` to ``(B, 3, H, W)``.

    A transcription of colour-demosaicing's ``demosaicing_CFA_Bayer_Menon2007``
    (with its refining step) into batched torch operations, applied after the
    same phase-preserving padding as the static form, with the library's own
    border rules inside the padded mosaic (whole-sample mirror for the 1-D
    filters, zeros for the 5x5 classifier sums) and its order of floating-point
    operations, so that in float64 both forms give the same directional
    decisions and agree to rounding.

    The a posteriori decision (horizontal or vertical green estimate, per
    pixel, from the classifiers ``d_V >= d_H``) is a hard selection computed
    without gradient; gradients flow through the selected branch of every
    ``where``. The decision is piecewise constant in the input, so the form is
    differentiable except on the measure-zero set where a classifier tie flips.
    In float32 a near-tie may resolve differently from the float64 static
    form; the equivalence contract is checked in float64.
    """
    return _padded_torch(_menon2007_core, x, ctx, MARGIN["menon2007"])


# colour-demosaicing's Menon (2007) filters, centre tap first for the symmetric 1-D ones
_MENON_H0 = (0.0, 0.5, 0.0)  # [0, 0.5, 0, 0.5, 0]
_MENON_H1 = (0.5, 0.0, -0.25)  # [-0.25, 0, 0.5, 0, -0.25]
_MENON_KB = (0.0, 0.5)  # [0.5, 0, 0.5]
_MENON_FIR = (1.0 / 3.0, 1.0 / 3.0)  # ones(3) / 3
_MENON_K = np.array(
    [
        [0.0, 0.0, 1.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 3.0, 0.0, 3.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 1.0],
    ]
)


def _symmetric_taps_1d(x: torch.Tensor, taps: tuple[float, ...], dim: int) -> torch.Tensor:
    """``scipy.ndimage.convolve1d(x, w, mode="mirror")`` for a symmetric ``w``.

    ``taps`` are ``w``'s centre and right half. The sum is formed in scipy's
    order for symmetric filters: ``x * w0``, then ``(x[-k] + x[+k]) * wk`` for
    ``k`` from the outermost tap inwards, so float64 results are bit-identical.
    """
    radius = len(taps) - 1
    n = x.shape[dim]
    if dim == -1:
        padded = pad_symmetric(x, 0, radius, mode="reflect")
    else:
        padded = pad_symmetric(x, radius, 0, mode="reflect")
    out = x * taps[0]
    for k in range(radius, 0, -1):
        pair = padded.narrow(dim, radius - k, n) + padded.narrow(dim, radius + k, n)
        out = out + pair * taps[k]
    return out


def _correlate_zero(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """``scipy.ndimage.convolve(x, kernel, mode="constant")`` on ``(..., H, W)``.

    scipy flips the kernel and sums ``weight * value`` over the non-zero
    weights in raster order, starting from 0; this does the same.
    """
    flipped = kernel[::-1, ::-1]
    ry, rx = flipped.shape[0] // 2, flipped.shape[1] // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (rx, rx, ry, ry))
    out = torch.zeros_like(x)
    for a, b in zip(*np.nonzero(flipped), strict=True):
        out = out + padded[..., a : a + h, b : b + w] * float(flipped[a, b])
    return out


def _menon2007_core(cfa: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    shape = tuple(cfa.shape[-2:])
    masks = torch.as_tensor(cfa_masks(shape, ctx.cfa)[None], device=cfa.device)
    r_m, g_m, b_m = masks[:, 0:1], masks[:, 1:2], masks[:, 2:3]
    rc = {
        k: torch.as_tensor(v.copy(), device=cfa.device)
        for k, v in _row_col_masks(shape, ctx.cfa).items()
    }
    r_r, r_c, b_r, b_c = rc["red_rows"], rc["red_cols"], rc["blue_rows"], rc["blue_cols"]
    zero = torch.zeros((), dtype=cfa.dtype, device=cfa.device)

    def cnv_h(v: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
        return _symmetric_taps_1d(v, taps, -1)

    def cnv_v(v: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
        return _symmetric_taps_1d(v, taps, -2)

    r = torch.where(r_m, cfa, zero)
    g = torch.where(g_m, cfa, zero)
    b = torch.where(b_m, cfa, zero)
    g_h = torch.where(g_m, g, cnv_h(cfa, _MENON_H0) + cnv_h(cfa, _MENON_H1))
    g_v = torch.where(g_m, g, cnv_v(cfa, _MENON_H0) + cnv_v(cfa, _MENON_H1))

    with torch.no_grad():  # the a posteriori decision: a hard, gradient-free selection
        c_h = torch.where(b_m, b - g_h, torch.where(r_m, r - g_h, zero))
        c_v = torch.where(b_m, b - g_v, torch.where(r_m, r - g_v, zero))
        d_h = (c_h - pad_symmetric(c_h, 0, 2, mode="reflect")[..., 4:]).abs()
        d_v = (c_v - pad_symmetric(c_v, 2, 0, mode="reflect")[..., 4:, :]).abs()
        horizontal = _correlate_zero(d_v, _MENON_K.T) >= _correlate_zero(d_h, _MENON_K)
    g = torch.where(horizontal, g_h, g_v)

    kb = _MENON_KB
    r = torch.where(g_m & r_r, g + cnv_h(r, kb) - cnv_h(g, kb), r)
    r = torch.where(g_m & b_r, g + cnv_v(r, kb) - cnv_v(g, kb), r)
    b = torch.where(g_m & b_r, g + cnv_h(b, kb) - cnv_h(g, kb), b)
    b = torch.where(g_m & r_r, g + cnv_v(b, kb) - cnv_v(g, kb), b)
    r = torch.where(
        b_r & b_m,
        torch.where(horizontal, b + cnv_h(r, kb) - cnv_h(b, kb), b + cnv_v(r, kb) - cnv_v(b, kb)),
        r,
    )
    b = torch.where(
        r_r & r_m,
        torch.where(horizontal, r + cnv_h(b, kb) - cnv_h(r, kb), r + cnv_v(b, kb) - cnv_v(r, kb)),
        b,
    )

    # refining step (colour-demosaicing refining_step_Menon2007)
    def directional(v: torch.Tensor) -> torch.Tensor:
        return torch.where(horizontal, cnv_h(v, _MENON_FIR), cnv_v(v, _MENON_FIR))

    r_g, b_g = r - g, b - g
    b_g_m = torch.where(b_m, directional(b_g), zero)
    r_g_m = torch.where(r_m, directional(r_g), zero)
    g = torch.where(r_m, r - r_g_m, g)
    g = torch.where(b_m, b - b_g_m, g)
    r_g, b_g = r - g, b - g
    r_g_m = torch.where(g_m & b_r, cnv_v(r_g, kb), r_g_m)
    r = torch.where(g_m & b_r, g + r_g_m, r)
    r_g_m = torch.where(g_m & b_c, cnv_h(r_g, kb), r_g_m)
    r = torch.where(g_m & b_c, g + r_g_m, r)
    b_g_m = torch.where(g_m & r_r, cnv_v(b_g, kb), b_g_m)
    b = torch.where(g_m & r_r, g + b_g_m, b)
    b_g_m = torch.where(g_m & r_c, cnv_h(b_g, kb), b_g_m)
    b = torch.where(g_m & r_c, g + b_g_m, b)
    r_b = directional(r - b)
    r = torch.where(b_m, b + r_b, r)
    b = torch.where(r_m, r - r_b, b)
    return torch.cat([r, g, b], dim=1)


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
        doc="directional filtering with a posteriori decision and refining step",
        static=menon2007_static,
        differentiable=menon2007_torch,
        reference="Menon, Andriani and Calvagno, IEEE TIP 2007; colour-demosaicing",
        **_COMMON,
    ),
]
