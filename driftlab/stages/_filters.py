"""Shared filtering helpers with one boundary rule for both forms.

Every static stage in driftlab filters with :mod:`scipy.ndimage` in mode
``"reflect"`` (half-sample symmetric: ``d c b a | a b c d | d c b a``), which
is also what colour-demosaicing and scikit-image's ``unsharp_mask`` use. The
torch helpers here pad the same way, so the static and differentiable forms
agree at the image borders, not only inside.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

# YUV matrices of scikit-image (skimage.color.colorconv.yuv_from_rgb and its inverse).
YUV_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)
RGB_FROM_YUV = np.linalg.inv(YUV_FROM_RGB)


def symmetric_indices(n: int, pad: int, mode: str = "symmetric") -> np.ndarray:
    """Indices of a length-``n`` axis padded by ``pad`` with :func:`numpy.pad` ``mode``.

    ``"symmetric"`` is scipy.ndimage's ``reflect`` (edge sample repeated),
    ``"reflect"`` is scipy.ndimage's ``mirror`` (edge sample not repeated).
    """
    return np.pad(np.arange(n), pad, mode=mode)


def pad_symmetric(x: torch.Tensor, pad_y: int, pad_x: int, mode: str = "symmetric") -> torch.Tensor:
    """Pad the last two axes like :func:`numpy.pad` with ``mode`` "symmetric" or "reflect".

    Works for any pad width (also wider than the image), and is
    differentiable because it is a gather.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    pad_y, pad_x : int
        Rows added above and below, columns added left and right.
    mode : {"symmetric", "reflect"}
        numpy's names; see :func:`symmetric_indices`.

    Returns
    -------
    torch.Tensor
        ``(..., H + 2 pad_y, W + 2 pad_x)``.
    """
    h, w = x.shape[-2:]
    shift = 0 if mode == "symmetric" else 1
    if pad_y + shift <= h and pad_x + shift <= w:
        # slices and flips are much faster than a gather on CPU
        return _pad_axis(_pad_axis(x, pad_y, shift, -2), pad_x, shift, -1)
    iy = torch.as_tensor(symmetric_indices(h, pad_y, mode), device=x.device)
    ix = torch.as_tensor(symmetric_indices(w, pad_x, mode), device=x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def _pad_axis(x: torch.Tensor, pad: int, shift: int, dim: int) -> torch.Tensor:
    if pad == 0:
        return x
    n = x.shape[dim]
    before = x.narrow(dim, shift, pad).flip(dim)
    after = x.narrow(dim, n - pad - shift, pad).flip(dim)
    return torch.cat([before, x, after], dim=dim)


def convolve2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True 2-D convolution of each channel with one kernel, scipy ``reflect`` borders.

    Matches :func:`scipy.ndimage.convolve` (default mode) channel by channel.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` float.
    kernel : torch.Tensor
        ``(kh, kw)`` with odd sizes, same dtype as ``x``.

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``.
    """
    kh, kw = kernel.shape
    b, c, h, w = x.shape
    # One grouped convolution over all B*C planes: much faster on CPU than a batch of
    # single-channel convolutions. conv2d is a correlation, so flip the kernel.
    padded = pad_symmetric(x, kh // 2, kw // 2).reshape(1, b * c, h + kh - 1, w + kw - 1)
    weight = kernel.flip(-1, -2)[None, None].expand(b * c, 1, kh, kw)
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel half-width that :func:`scipy.ndimage.gaussian_filter` uses."""
    return int(truncate * float(sigma) + 0.5)


def gaussian_kernel1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian weights as in scipy, differentiable in ``sigma``."""
    x = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    phi = torch.exp(-0.5 * x**2 / sigma**2)
    return phi / phi.sum()


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, truncate: float = 4.0) -> torch.Tensor:
    """Gaussian filter matching ``scipy.ndimage.gaussian_filter(mode="reflect")``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    sigma : torch.Tensor
        Scalar standard deviation in pixels, > 0.
    truncate : float
        Kernel half-width in standard deviations (scipy's default 4.0).
    """
    radius = gaussian_radius(float(sigma.detach()), truncate)
    k1 = gaussian_kernel1d(sigma, radius)
    # separable, as scipy does it: a column pass then a row pass
    return convolve2d(convolve2d(x, k1[:, None]), k1[None, :])


def gaussian_blur_numpy(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Static counterpart of :func:`gaussian_blur` on a ``(H, W)`` array."""
    return ndi.gaussian_filter(x, float(sigma), mode="reflect", truncate=truncate)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB to YUV with scikit-image's matrix."""
    m = torch.as_tensor(YUV_FROM_RGB, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,bjhw->bihw", m, x)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` YUV to RGB with the inverse of scikit-image's matrix."""
    m = torch.as_tensor(RGB_FROM_YUV, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,bjhw->bihw", m, x)


def rgb_to_yuv_numpy(x: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` RGB to YUV (scikit-image ``rgb2yuv`` matrix, channel-first)."""
    return np.einsum("ij,jhw->ihw", YUV_FROM_RGB, x)


def yuv_to_rgb_numpy(x: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` YUV to RGB (scikit-image ``yuv2rgb`` matrix, channel-first)."""
    return np.einsum("ij,jhw->ihw", RGB_FROM_YUV, x)
