"""Sharpening and denoising on the luma (Y of YUV) channel.

Both forms convert RGB to YUV with scikit-image's ``rgb2yuv`` matrix, filter
Y, and convert back with its inverse; U and V pass through unchanged. All
filters use scipy's ``reflect`` border rule in both forms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi
import torch
from skimage.filters import unsharp_mask

from driftlab.params import Domain, ParamSpec
from driftlab.stages._filters import (
    convolve2d,
    gaussian_blur,
    rgb_to_yuv,
    rgb_to_yuv_numpy,
    yuv_to_rgb,
    yuv_to_rgb_numpy,
)
from driftlab.stages.base import StageContext, StageSpec

SHARPEN_KERNEL = ((0.0, -1.0, 0.0), (-1.0, 5.0, -1.0), (0.0, -1.0, 0.0))

KERNEL = ParamSpec(
    name="kernel",
    shape=(3, 3),
    default=SHARPEN_KERNEL,
    unit="weight",
    domain=Domain(-2.0, 6.0, total=1.0),
    doc="3x3 convolution kernel on Y; weights sum to 1 so flat regions keep their brightness",
)
RADIUS = ParamSpec(
    name="radius",
    shape=(),
    default=1.0,
    unit="px (Gaussian sigma)",
    domain=Domain(0.5, 2.0),
    doc="standard deviation of the Gaussian blur subtracted by unsharp masking",
)
AMOUNT = ParamSpec(
    name="amount",
    shape=(),
    default=1.0,
    unit="gain (x)",
    domain=Domain(0.0, 3.0),
    doc="how much of the high-pass detail is added back",
)
SIGMA = ParamSpec(
    name="sigma",
    shape=(),
    default=0.5,
    unit="px",
    domain=Domain(0.3, 1.5),
    doc="std of the Gaussian denoising filter (kernel half-width int(4 sigma + 0.5))",
)


def _on_luma_static(x: np.ndarray, filt: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    yuv = rgb_to_yuv_numpy(x)
    yuv[0] = filt(yuv[0])
    return yuv_to_rgb_numpy(yuv)


def _on_luma_torch(x: torch.Tensor, filt: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    yuv = rgb_to_yuv(x)
    y = filt(yuv[:, 0:1])
    return yuv_to_rgb(torch.cat([y, yuv[:, 1:]], dim=1))


def sharpening_filter_static(x: np.ndarray, ctx: StageContext, *, kernel: np.ndarray) -> np.ndarray:
    """Convolve Y with a 3x3 sharpening kernel (scipy ``ndimage.convolve``, reflect).

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 RGB.
    kernel : numpy.ndarray
        ``(3, 3)`` kernel, default ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64, not clipped.
    """
    return _on_luma_static(x, lambda y: ndi.convolve(y, kernel, mode="reflect"))


def sharpening_filter_torch(
    x: torch.Tensor, ctx: StageContext, *, kernel: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`sharpening_filter_static`, ``(B, 3, H, W)``."""
    return _on_luma_torch(x, lambda y: convolve2d(y, kernel))


def unsharp_masking_static(
    x: np.ndarray, ctx: StageContext, *, radius: np.ndarray, amount: np.ndarray
) -> np.ndarray:
    """Unsharp masking of Y with scikit-image ``filters.unsharp_mask``.

    ``Y' = clip(Y + amount * (Y - G_radius * Y))``, where the clip range is
    [0, 1], or [-1, 1] when Y has negative values (scikit-image's rule).

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 RGB.
    radius : numpy.ndarray
        Scalar Gaussian sigma in pixels.
    amount : numpy.ndarray
        Scalar detail gain.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64.

    References
    ----------
    Maria Petrou and Costas Petrou, "Image Processing: The Fundamentals",
    2nd ed., 2010, p. 357.
    """
    return _on_luma_static(x, lambda y: unsharp_mask(y, radius=float(radius), amount=float(amount)))


def unsharp_masking_torch(
    x: torch.Tensor, ctx: StageContext, *, radius: torch.Tensor, amount: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`unsharp_masking_static`, ``(B, 3, H, W)``."""

    def filt(y: torch.Tensor) -> torch.Tensor:
        sharpened = y + (y - gaussian_blur(y, radius)) * amount
        negative = (y < 0).flatten(1).any(dim=1)[:, None, None, None]
        low = torch.where(negative, -1.0, 0.0).to(y.dtype)
        return torch.clamp(sharpened, min=low, max=torch.ones_like(low))

    return _on_luma_torch(x, filt)


def gaussian_static(x: np.ndarray, ctx: StageContext, *, sigma: np.ndarray) -> np.ndarray:
    """Gaussian denoising of Y (scipy ``ndimage.gaussian_filter``, reflect, truncate 4).

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 RGB.
    sigma : numpy.ndarray
        Scalar standard deviation in pixels (0.5 gives a 5x5 kernel).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64.
    """
    return _on_luma_static(x, lambda y: ndi.gaussian_filter(y, float(sigma), mode="reflect"))


def gaussian_torch(x: torch.Tensor, ctx: StageContext, *, sigma: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`gaussian_static`, ``(B, 3, H, W)``."""
    return _on_luma_torch(x, lambda y: gaussian_blur(y, sigma))


def median_static(x: np.ndarray, ctx: StageContext) -> np.ndarray:
    """3x3 median filter on Y (scipy ``ndimage.median_filter``, reflect); static only.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 RGB.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64.
    """
    return _on_luma_static(x, lambda y: ndi.median_filter(y, size=3, mode="reflect"))


STAGES = [
    StageSpec(
        slot="sharpen",
        variant="sharpening_filter",
        doc="3x3 sharpening convolution on Y",
        params=(KERNEL,),
        static=sharpening_filter_static,
        differentiable=sharpening_filter_torch,
        reference="Oala et al., TMLR 2023, Sec. 3 (SH)",
    ),
    StageSpec(
        slot="sharpen",
        variant="unsharp_masking",
        doc="unsharp masking on Y (scikit-image unsharp_mask)",
        params=(RADIUS, AMOUNT),
        static=unsharp_masking_static,
        differentiable=unsharp_masking_torch,
        reference="Petrou and Petrou 2010; scikit-image filters.unsharp_mask",
    ),
    StageSpec(
        slot="denoise",
        variant="gaussian",
        doc="Gaussian filter on Y",
        params=(SIGMA,),
        static=gaussian_static,
        differentiable=gaussian_torch,
        reference="scipy.ndimage.gaussian_filter",
    ),
    StageSpec(
        slot="denoise",
        variant="median",
        doc="3x3 median filter on Y (static only)",
        static=median_static,
        reference="scipy.ndimage.median_filter",
    ),
]
