"""Sharpening and denoising on the luma (Y of YUV) channel.

Both forms convert RGB to YUV with scikit-image's ``rgb2yuv`` matrix, filter
Y, and convert back with its inverse; U and V pass through unchanged. All
filters use scipy's ``reflect`` border rule (half-sample symmetric, the edge
pixel repeated) in both forms. None of them clips: the gamma stage does.

Border rule of the paper's code. The released code of Oala et al. (TMLR 2023)
convolved Y with the sharpening kernel zero-filled at the borders
(``scipy.signal.convolve2d(..., "same", boundary="fill")``), which darkens the
outermost rows and columns; driftlab reflects instead, in both forms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi
import torch
from skimage.filters import unsharp_mask

from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec
from driftlab.stages.filters import (
    RGB_FROM_YUV,
    YUV_FROM_RGB,
    convolve2d,
    gaussian_blur,
    gaussian_radius,
    median3x3,
    rgb_to_yuv_numpy,
    yuv_to_rgb_numpy,
)

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


def _check_sigma(ctx: StageContext, *, sigma: np.ndarray) -> None:
    gaussian_radius(float(sigma), name="sigma")


def _check_radius(ctx: StageContext, *, radius: np.ndarray, amount: np.ndarray) -> None:
    gaussian_radius(float(radius), name="radius")


# -- the filters on Y alone, ``(B, 1, H, W)`` to ``(B, 1, H, W)``, differentiable ----------
def sharpen_luma(y: torch.Tensor, *, kernel: torch.Tensor) -> torch.Tensor:
    """3x3 convolution of luma ``(B, 1, H, W)``, reflect borders."""
    return convolve2d(y, kernel)


def unsharp_luma(y: torch.Tensor, *, radius: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """``y + (y - G_radius * y) * amount`` on luma ``(B, 1, H, W)``, not clipped."""
    return y + (y - gaussian_blur(y, radius)) * amount


def column_unsharp_luma(
    y: torch.Tensor, *, radius: torch.Tensor, amount: torch.Tensor
) -> torch.Tensor:
    """As :func:`unsharp_luma` with a 1-D Gaussian down each column."""
    return y + (y - gaussian_blur(y, radius, axes="y")) * amount


def gaussian_luma(y: torch.Tensor, *, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian filter of luma ``(B, 1, H, W)``, reflect borders, truncate 4."""
    return gaussian_blur(y, sigma)


def median_luma(y: torch.Tensor) -> torch.Tensor:
    """3x3 median of luma ``(B, 1, H, W)``, reflect borders."""
    return median3x3(y)


def _on_luma_static(x: np.ndarray, filt: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    yuv = rgb_to_yuv_numpy(x)
    yuv[0] = filt(yuv[0])
    return yuv_to_rgb_numpy(yuv)


def _on_luma_torch(x: torch.Tensor, filt: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    # yuv2rgb(Y', U, V) = x + yuv2rgb[:, 0] * (Y' - Y): one luma reduction and one
    # broadcast add instead of two full colour conversions (the same map up to rounding)
    luma_row = torch.tensor(YUV_FROM_RGB[0], dtype=x.dtype, device=x.device)
    back = torch.tensor(RGB_FROM_YUV[:, 0], dtype=x.dtype, device=x.device)
    y = torch.einsum("c,bchw->bhw", luma_row, x)[:, None]
    return x + back[None, :, None, None] * (filt(y) - y)


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
    return _on_luma_torch(x, lambda y: sharpen_luma(y, kernel=kernel))


def unsharp_masking_static(
    x: np.ndarray, ctx: StageContext, *, radius: np.ndarray, amount: np.ndarray
) -> np.ndarray:
    """Range-preserving unsharp masking of Y (scikit-image ``filters.unsharp_mask``).

    ``Y' = Y + amount * (Y - G_radius * Y)``, with ``G_radius`` a 2-D
    Gaussian of standard deviation ``radius`` (scipy ``reflect`` borders,
    truncated at 4 sigma), computed by ``unsharp_mask(..., preserve_range=True)``.
    Not clipped: without ``preserve_range`` scikit-image clips the whole
    image to [0, 1], or to [-1, 1] when any luma value is negative, a switch
    that depends on every pixel; the gamma stage clips instead.

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
        ``(3, H, W)`` float64, not clipped.

    References
    ----------
    Maria Petrou and Costas Petrou, "Image Processing: The Fundamentals",
    2nd ed., 2010, p. 357; scikit-image ``filters.unsharp_mask``.
    """
    return _on_luma_static(
        x,
        lambda y: unsharp_mask(y, radius=float(radius), amount=float(amount), preserve_range=True),
    )


def unsharp_masking_torch(
    x: torch.Tensor, ctx: StageContext, *, radius: torch.Tensor, amount: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`unsharp_masking_static`, ``(B, 3, H, W)``, not clipped."""
    return _on_luma_torch(x, lambda y: unsharp_luma(y, radius=radius, amount=amount))


def column_unsharp_masking_static(
    x: np.ndarray, ctx: StageContext, *, radius: np.ndarray, amount: np.ndarray
) -> np.ndarray:
    """Unsharp masking of Y with a 1-D Gaussian down each column, unclipped (the paper's code).

    ``Y'[:, j] = Y[:, j] + amount * (Y[:, j] - g_radius * Y[:, j])`` for every
    column ``j``, ``g_radius`` a 1-D Gaussian (scipy ``reflect`` borders,
    truncated at 4 sigma). This is what the released code of Oala et al.
    (TMLR 2023) computed: it called scikit-image 0.18's
    ``unsharp_mask(Y, radius, amount, multichannel=True)`` on the 2-D luma,
    which takes the last axis for colour channels and so filters each column
    as a 1-D signal, without clipping: scikit-image's
    ``unsharp_mask(column, radius, amount, preserve_range=True)`` on every
    column.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 RGB.
    radius : numpy.ndarray
        Scalar Gaussian sigma in pixels, along the columns.
    amount : numpy.ndarray
        Scalar detail gain.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64, not clipped.
    """

    def filt(y: np.ndarray) -> np.ndarray:
        blurred = ndi.gaussian_filter1d(y, float(radius), axis=0, mode="reflect", truncate=4.0)
        return y + (y - blurred) * float(amount)

    return _on_luma_static(x, filt)


def column_unsharp_masking_torch(
    x: torch.Tensor, ctx: StageContext, *, radius: torch.Tensor, amount: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`column_unsharp_masking_static`, ``(B, 3, H, W)``, not clipped."""
    return _on_luma_torch(x, lambda y: column_unsharp_luma(y, radius=radius, amount=amount))


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
    return _on_luma_torch(x, lambda y: gaussian_luma(y, sigma=sigma))


def median_static(x: np.ndarray, ctx: StageContext) -> np.ndarray:
    """3x3 median filter on Y (scipy ``ndimage.median_filter(size=3)``, reflect).

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


def median_torch(x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
    """Differentiable :func:`median_static`, ``(B, 3, H, W)``.

    The 3x3 window of Y (reflect borders) is sorted and its fifth element
    taken (:func:`driftlab.stages.filters.median3x3`), so the gradient flows
    to the selected element of the sorted window.
    """
    return _on_luma_torch(x, median_luma)


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
        doc="range-preserving unsharp masking on Y (2-D Gaussian, not clipped)",
        params=(RADIUS, AMOUNT),
        static=unsharp_masking_static,
        differentiable=unsharp_masking_torch,
        check_params=_check_radius,
        reference="Petrou and Petrou 2010; scikit-image filters.unsharp_mask(preserve_range=True)",
    ),
    StageSpec(
        slot="sharpen",
        variant="column_unsharp_masking",
        doc="unsharp masking on Y with a 1-D Gaussian down each column, unclipped (paper's code)",
        params=(RADIUS, AMOUNT),
        static=column_unsharp_masking_static,
        differentiable=column_unsharp_masking_torch,
        check_params=_check_radius,
        reference=(
            "Oala et al., TMLR 2023, released code: scikit-image 0.18 "
            "unsharp_mask(multichannel=True) on the 2-D luma"
        ),
    ),
    StageSpec(
        slot="denoise",
        variant="gaussian",
        doc="Gaussian filter on Y",
        params=(SIGMA,),
        static=gaussian_static,
        differentiable=gaussian_torch,
        check_params=_check_sigma,
        reference="scipy.ndimage.gaussian_filter",
    ),
    StageSpec(
        slot="denoise",
        variant="median",
        doc="3x3 median filter on Y",
        static=median_static,
        differentiable=median_torch,
        reference="scipy.ndimage.median_filter",
    ),
]
