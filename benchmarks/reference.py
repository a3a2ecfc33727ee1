"""A straightforward per-image reference ISP, the yardstick of the benchmarks.

This is deliberately written the way research code usually is, not the way
driftlab is: one image at a time, channel-last ``(H, W, 3)`` arrays, a
colour-demosaicing call, scikit-image ``rgb2yuv``/``yuv2rgb`` around every
luma filter, scipy filters, and for the differentiable form a small
``nn.Module`` run on batches of one with ``nn.Conv2d`` layers whose borders
are padded the way the original research code pads them (torch ``reflect``
for demosaicing and blur, zeros for the sharpening kernel) and a gamma curve
computed as ``exp(log(clip(v, 1e-5, 1)) / gamma)``. Those border and clip
choices are what make the static and differentiable forms of the original
code disagree (Oala et al., TMLR 2023; see ``shared/DESIGN.md`` section 7),
and this module reproduces that on purpose so the benchmark can show it.

It covers the paper's twelve data models (demosaic ``bilinear``,
``malvar2004``, ``menon2007`` x sharpen ``sharpening_filter``,
``unsharp_masking`` x denoise ``median``, ``gaussian``) in the reference slot
order ``black_level -> demosaic -> white_balance -> color_correction ->
sharpen -> denoise -> gamma``; the differentiable form exists for the four
models with a bilinear or Malvar demosaic and a Gaussian denoiser.

Source of the algorithms: Oala, Aversa et al., "Data Models for Dataset
Drift Controls in Machine Learning With Optical Images", TMLR 2023;
colour-demosaicing (bilinear, Malvar 2004, Menon 2007); scikit-image
(``rgb2yuv``, ``yuv2rgb``, ``unsharp_mask``); scipy.ndimage.
"""

from __future__ import annotations

import numpy as np
import torch
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)
from scipy import ndimage
from scipy.signal import convolve2d
from skimage.color import rgb2yuv, yuv2rgb
from skimage.filters import unsharp_mask
from torch import nn

__all__ = [
    "DEMOSAIC_VARIANTS",
    "DENOISE_VARIANTS",
    "SHARPEN_VARIANTS",
    "ReferenceTorchISP",
    "has_differentiable_reference",
    "reference_static",
    "tile_views_max_abs",
]

DEMOSAIC_VARIANTS: tuple[str, ...] = ("bilinear", "malvar2004", "menon2007")
SHARPEN_VARIANTS: tuple[str, ...] = ("sharpening_filter", "unsharp_masking")
DENOISE_VARIANTS: tuple[str, ...] = ("median", "gaussian")

SHARPEN_KERNEL = np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
K_RB = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
K_G = np.array([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4
YUV_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)
RGB_FROM_YUV = np.linalg.inv(YUV_FROM_RGB)
GAMMA_FLOOR = 1e-5  # the original research code clips to [1e-5, 1] before log

# Malvar, He and Cutler (2004) 5x5 kernels: G at R/B sites, R/B at G sites in
# R/B rows, R/B at G sites in R/B columns, R at B sites (and B at R sites).
MALVAR_KERNELS = (
    np.array(
        [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]
    )
    / 8,
    np.array(
        [
            [0, 0, 0.5, 0, 0],
            [0, -1, 0, -1, 0],
            [-1, 4, 5, 4, -1],
            [0, -1, 0, -1, 0],
            [0, 0, 0.5, 0, 0],
        ]
    )
    / 8,
    np.array(
        [
            [0, 0, -1, 0, 0],
            [0, -1, 4, -1, 0],
            [0.5, 0, 5, 0, 0.5],
            [0, -1, 4, -1, 0],
            [0, 0, -1, 0, 0],
        ]
    )
    / 8,
    np.array(
        [
            [0, 0, -1.5, 0, 0],
            [0, 2, 0, 2, 0],
            [-1.5, 0, 6, 0, -1.5],
            [0, 2, 0, 2, 0],
            [0, 0, -1.5, 0, 0],
        ]
    )
    / 8,
)

_DEMOSAIC_FUNCTIONS = {
    "bilinear": demosaicing_CFA_Bayer_bilinear,
    "malvar2004": demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": demosaicing_CFA_Bayer_Menon2007,
}


def _check_variant(kind: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"reference ISP: unknown {kind} {value!r}; expected one of {valid}")


def has_differentiable_reference(demosaic: str, denoise: str) -> bool:
    """Whether :class:`ReferenceTorchISP` implements this configuration.

    Parameters
    ----------
    demosaic, denoise : str
        Variant names as in driftlab (``bilinear``, ``malvar2004``,
        ``menon2007``; ``median``, ``gaussian``).

    Returns
    -------
    bool
        True for a bilinear or Malvar demosaic with a Gaussian denoiser.
    """
    return demosaic in ("bilinear", "malvar2004") and denoise == "gaussian"


def reference_static(
    raw: np.ndarray,
    black_level: np.ndarray,
    white_balance: np.ndarray,
    colour_matrix: np.ndarray,
    *,
    cfa: str = "RGGB",
    demosaic: str = "bilinear",
    sharpen: str = "sharpening_filter",
    denoise: str = "gaussian",
    gamma: float = 2.2,
) -> np.ndarray:
    """Render one view the plain research-code way.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float Bayer mosaic in [0, 1] (raw / white level), H and W
        even. Not modified.
    black_level : numpy.ndarray
        ``(4,)`` black level of the 2x2 sites in raster order, same unit as
        ``raw``.
    white_balance : numpy.ndarray
        ``(3,)`` R, G, B gains (dimensionless).
    colour_matrix : numpy.ndarray
        ``(3, 3)`` colour matrix applied as ``v = M @ v``.
    cfa : str
        CFA pattern passed to colour-demosaicing (``RGGB`` ...).
    demosaic, sharpen, denoise : str
        Variants, see :data:`DEMOSAIC_VARIANTS`, :data:`SHARPEN_VARIANTS`,
        :data:`DENOISE_VARIANTS`.
    gamma : float
        Display gamma; the view is ``clip(v, 0, 1) ** (1 / gamma)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float64 view in [0, 1] (channel-last, as research code
        usually keeps it).

    Raises
    ------
    ValueError
        Unknown variant name or a raw array that is not 2-D.
    """
    _check_variant("demosaic", demosaic, DEMOSAIC_VARIANTS)
    _check_variant("sharpen", sharpen, SHARPEN_VARIANTS)
    _check_variant("denoise", denoise, DENOISE_VARIANTS)
    if np.ndim(raw) != 2:
        raise ValueError(f"reference ISP: raw must be a 2-D (H, W) mosaic, got {np.shape(raw)}")

    # black level, one CFA site at a time
    img = np.array(raw, dtype=np.float64)
    img[0::2, 0::2] -= black_level[0]
    img[0::2, 1::2] -= black_level[1]
    img[1::2, 0::2] -= black_level[2]
    img[1::2, 1::2] -= black_level[3]

    img = _DEMOSAIC_FUNCTIONS[demosaic](img, cfa)  # (H, W, 3)
    img = img * np.asarray(white_balance)
    img = np.einsum("ijk,lk->ijl", img, np.asarray(colour_matrix).reshape(3, 3))

    # sharpening on Y, then denoising on Y, each with its own YUV round trip
    yuv = rgb2yuv(img)
    if sharpen == "sharpening_filter":
        yuv[:, :, 0] = convolve2d(yuv[:, :, 0], SHARPEN_KERNEL, "same", boundary="fill")
    else:
        # range-preserving (no clip), as driftlab's sharpen.unsharp_masking
        yuv[:, :, 0] = unsharp_mask(yuv[:, :, 0], radius=1.0, amount=1.0, preserve_range=True)
    img = yuv2rgb(yuv)

    yuv = rgb2yuv(img)
    if denoise == "median":
        yuv[:, :, 0] = ndimage.median_filter(yuv[:, :, 0], size=3)
    else:
        yuv[:, :, 0] = ndimage.gaussian_filter(yuv[:, :, 0], sigma=0.5)
    img = yuv2rgb(yuv)

    img = np.clip(img, 0.0, 1.0)
    return img ** (1.0 / gamma)


def _gaussian_kernel_2d(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * x**2 / sigma**2)
    g /= g.sum()
    return np.outer(g, g)


class ReferenceTorchISP(nn.Module):
    """Per-image differentiable reference ISP in the style of the original code.

    Learnable: black level ``(4,)``, white-balance gains ``(3,)``, colour
    matrix ``(3, 3)``, gamma ``(1,)``, the sharpening kernel (a
    ``nn.Conv2d(1, 1, 3)`` with zero padding) or the unsharp-masking
    ``radius`` and ``amount``, and the 5x5 Gaussian denoising kernel (a
    ``nn.Conv2d(1, 1, 5)`` with torch ``reflect`` padding). Demosaicing is a
    fixed ``nn.Conv2d`` on the sparse colour planes (bilinear: 3 -> 3
    channels, 3x3; Malvar: 1 -> 4 channels, 5x5) with torch ``reflect``
    padding.

    Parameters
    ----------
    black_level : array_like
        ``(4,)`` per-site black level, fraction of the white level.
    white_balance : array_like
        ``(3,)`` R, G, B gains.
    colour_matrix : array_like
        ``(3, 3)`` colour matrix.
    cfa : str
        Only ``RGGB`` is implemented (as in the original code).
    demosaic : {"bilinear", "malvar2004"}
    sharpen : {"sharpening_filter", "unsharp_masking"}
    gamma : float
        Initial display gamma.

    Raises
    ------
    ValueError
        Another CFA pattern or an unsupported variant.
    """

    def __init__(
        self,
        black_level: np.ndarray,
        white_balance: np.ndarray,
        colour_matrix: np.ndarray,
        *,
        cfa: str = "RGGB",
        demosaic: str = "bilinear",
        sharpen: str = "sharpening_filter",
        gamma: float = 2.2,
    ) -> None:
        super().__init__()
        if cfa != "RGGB":
            raise ValueError(f"ReferenceTorchISP: only the RGGB CFA is implemented, got {cfa!r}")
        _check_variant("demosaic", demosaic, ("bilinear", "malvar2004"))
        _check_variant("sharpen", sharpen, SHARPEN_VARIANTS)
        self.demosaic = demosaic
        self.sharpen = sharpen
        f32 = torch.float32
        self.black_level = nn.Parameter(torch.tensor(np.asarray(black_level), dtype=f32))
        self.white_balance = nn.Parameter(torch.tensor(np.asarray(white_balance), dtype=f32))
        self.colour_matrix = nn.Parameter(
            torch.tensor(np.asarray(colour_matrix).reshape(3, 3), dtype=f32)
        )
        self.gamma = nn.Parameter(torch.tensor([gamma], dtype=f32))

        if demosaic == "bilinear":
            self.debayer = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect", bias=False)
            weight = torch.zeros(3, 3, 3, 3)
            weight[0, 0] = torch.tensor(K_RB)
            weight[1, 1] = torch.tensor(K_G)
            weight[2, 2] = torch.tensor(K_RB)
        else:
            self.debayer = nn.Conv2d(1, 4, 5, padding=2, padding_mode="reflect", bias=False)
            # conv2d correlates: flip so the kernels act as convolutions
            weight = torch.tensor(np.stack([k[::-1, ::-1].copy() for k in MALVAR_KERNELS]))[:, None]
        self.debayer.weight.data.copy_(weight)
        self.debayer.weight.requires_grad_(False)

        if sharpen == "sharpening_filter":
            self.sharpening_filter = nn.Conv2d(1, 1, 3, padding=1, bias=False)
            self.sharpening_filter.weight.data[0, 0] = torch.tensor(SHARPEN_KERNEL)
        else:
            self.radius = nn.Parameter(torch.tensor(1.0))
            self.amount = nn.Parameter(torch.tensor(1.0))

        self.gaussian_blur = nn.Conv2d(1, 1, 5, padding=2, padding_mode="reflect", bias=False)
        self.gaussian_blur.weight.data[0, 0] = torch.tensor(_gaussian_kernel_2d(0.5, 2))

        self.register_buffer("rgb_to_yuv", torch.tensor(YUV_FROM_RGB, dtype=f32))
        self.register_buffer("yuv_to_rgb", torch.tensor(RGB_FROM_YUV, dtype=f32))

    def _demosaic(self, raw: torch.Tensor) -> torch.Tensor:
        b, h, w = raw.shape
        r = raw[:, 0::2, 0::2] - self.black_level[0]
        g1 = raw[:, 0::2, 1::2] - self.black_level[1]
        g2 = raw[:, 1::2, 0::2] - self.black_level[2]
        bl = raw[:, 1::2, 1::2] - self.black_level[3]
        if self.demosaic == "bilinear":
            sparse = torch.zeros((b, 3, h, w), dtype=raw.dtype, device=raw.device)
            sparse[:, 0, 0::2, 0::2] = r
            sparse[:, 1, 0::2, 1::2] = g1
            sparse[:, 1, 1::2, 0::2] = g2
            sparse[:, 2, 1::2, 1::2] = bl
            return self.debayer(sparse)
        mosaic = torch.zeros((b, 1, h, w), dtype=raw.dtype, device=raw.device)
        mosaic[:, 0, 0::2, 0::2] = r
        mosaic[:, 0, 0::2, 1::2] = g1
        mosaic[:, 0, 1::2, 0::2] = g2
        mosaic[:, 0, 1::2, 1::2] = bl
        est = self.debayer(mosaic)  # G@RB, RB@G (row), RB@G (column), RB@BR
        rgb = torch.zeros((b, 3, h, w), dtype=raw.dtype, device=raw.device)
        # red sites
        rgb[:, 0, 0::2, 0::2] = mosaic[:, 0, 0::2, 0::2]
        rgb[:, 1, 0::2, 0::2] = est[:, 0, 0::2, 0::2]
        rgb[:, 2, 0::2, 0::2] = est[:, 3, 0::2, 0::2]
        # green sites in red rows
        rgb[:, 0, 0::2, 1::2] = est[:, 1, 0::2, 1::2]
        rgb[:, 1, 0::2, 1::2] = mosaic[:, 0, 0::2, 1::2]
        rgb[:, 2, 0::2, 1::2] = est[:, 2, 0::2, 1::2]
        # green sites in blue rows
        rgb[:, 0, 1::2, 0::2] = est[:, 2, 1::2, 0::2]
        rgb[:, 1, 1::2, 0::2] = mosaic[:, 0, 1::2, 0::2]
        rgb[:, 2, 1::2, 0::2] = est[:, 1, 1::2, 0::2]
        # blue sites
        rgb[:, 0, 1::2, 1::2] = est[:, 3, 1::2, 1::2]
        rgb[:, 1, 1::2, 1::2] = est[:, 0, 1::2, 1::2]
        rgb[:, 2, 1::2, 1::2] = mosaic[:, 0, 1::2, 1::2]
        return rgb

    def _unsharp(self, y: torch.Tensor) -> torch.Tensor:
        radius = int(4 * float(self.radius.detach()) + 0.5)
        x = torch.arange(-radius, radius + 1, dtype=y.dtype, device=y.device)
        g = torch.exp(-0.5 * x**2 / self.radius**2)
        g = g / g.sum()
        kernel = torch.outer(g, g)[None, None]
        blurred = nn.functional.conv2d(nn.functional.pad(y, (radius,) * 4, mode="reflect"), kernel)
        return y + self.amount * (y - blurred)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Render views.

        Parameters
        ----------
        raw : torch.Tensor
            ``(B, H, W)`` float32 mosaics in [0, 1] (the original code's
            layout); the benchmark passes ``B = 1``.

        Returns
        -------
        torch.Tensor
            ``(B, 3, H, W)`` float32 views in [``1e-5 ** (1 / gamma)``, 1].

        Raises
        ------
        ValueError
            If ``raw`` is not 3-D.
        """
        if raw.ndim != 3:
            raise ValueError(f"ReferenceTorchISP: expected (B, H, W) mosaics, got {raw.shape}")
        rgb = self._demosaic(raw)
        rgb = torch.einsum("bchw,c->bchw", rgb, self.white_balance)
        rgb = torch.einsum("bchw,kc->bkhw", rgb, self.colour_matrix)
        yuv = torch.einsum("bchw,kc->bkhw", rgb, self.rgb_to_yuv)
        y = yuv[:, 0:1]
        y = self.sharpening_filter(y) if self.sharpen == "sharpening_filter" else self._unsharp(y)
        y = self.gaussian_blur(y)
        rgb = torch.einsum("bchw,kc->bkhw", torch.cat([y, yuv[:, 1:]], dim=1), self.yuv_to_rgb)
        rgb = torch.clip(rgb, GAMMA_FLOOR, 1.0)
        return torch.exp(torch.log(rgb) / self.gamma)


def tile_views_max_abs(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Max abs difference of two ``(3, H, W)`` views, optionally ignoring a border.

    Parameters
    ----------
    a, b : numpy.ndarray
        ``(3, H, W)`` views of the same shape.
    border : int
        Pixels dropped on every side before comparing (0 keeps all).

    Returns
    -------
    float
        ``max |a - b|`` over the kept pixels.

    Raises
    ------
    ValueError
        Different shapes, or a border that leaves no pixel.
    """
    if a.shape != b.shape:
        raise ValueError(f"views differ in shape: {a.shape} vs {b.shape}")
    h, w = a.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves no pixel of a {h}x{w} view")
    if border:
        a = a[..., border:-border, border:-border]
        b = b[..., border:-border, border:-border]
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
