"""Public helpers for writing stages: CFA site planes, border padding, filters, YUV.

Plugin authors use these so that a stage's static (numpy) and differentiable
(torch) forms apply the *same* boundary rule and the same arithmetic, which is
what makes them agree over the whole image, borders included (the equivalence
contract, see ``docs/concepts.md``).

Border rules, by numpy's names (:func:`numpy.pad`):

``"symmetric"``
    half-sample symmetric extension ``d c b a | a b c d | d c b a``: the edge
    sample is repeated. scipy.ndimage calls it ``"reflect"``; it is the rule of
    every built-in luma filter and of scikit-image's ``unsharp_mask``.
``"reflect"``
    whole-sample symmetric extension ``c b | a b c d | c b``: the edge sample is
    not repeated. scipy.ndimage calls it ``"mirror"``. On a Bayer mosaic it keeps
    the CFA phase (column -1 copies column 1, which has the same colour), which is
    why the demosaic stages pad the mosaic this way.

CFA site planes: a mosaic ``(H, W)`` (H and W even) splits into four planes
``(4, H/2, W/2)``, plane ``2 * dy + dx`` holding ``x[dy::2, dx::2]`` (the raster
order of the 2x2 block used for per-site parameters such as black levels). A
filter that compares a pixel with neighbours *of the same colour* runs on site
planes; padding a site plane never mixes colours.

Every torch helper works on any float dtype and device, is differentiable
(slices, flips, gathers and convolutions) and takes ``(B, C, H, W)`` batches
unless its docstring says otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

__all__ = [
    "MAX_KERNEL_RADIUS",
    "RGB_FROM_YUV",
    "YUV_FROM_RGB",
    "check_mosaic",
    "check_mosaic_batch",
    "convolve2d",
    "gaussian_blur",
    "gaussian_blur_numpy",
    "gaussian_kernel1d",
    "gaussian_radius",
    "median3x3",
    "merge_sites",
    "merge_sites_torch",
    "pad_symmetric",
    "rgb_to_yuv",
    "rgb_to_yuv_numpy",
    "split_sites",
    "split_sites_torch",
    "symmetric_indices",
    "yuv_to_rgb",
    "yuv_to_rgb_numpy",
]

# YUV matrices of scikit-image (skimage.color.colorconv.yuv_from_rgb and its inverse).
YUV_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)
RGB_FROM_YUV = np.linalg.inv(YUV_FROM_RGB)


# -- CFA site planes -----------------------------------------------------------------------
def check_mosaic(x: np.ndarray, where: str) -> None:
    """Raise unless ``x`` is a 2-D mosaic with even sides.

    Parameters
    ----------
    x : numpy.ndarray
        Candidate ``(H, W)`` mosaic.
    where : str
        Name of the caller (a stage key), used in the message.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or a side is odd or zero (no whole 2x2 CFA blocks).
    """
    if np.ndim(x) != 2:
        raise ValueError(f"{where}: expected an (H, W) mosaic, got an array of shape {np.shape(x)}")
    h, w = np.shape(x)
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise ValueError(
            f"{where}: mosaic height and width must be even and at least 2 "
            f"(whole 2x2 CFA blocks), got {h}x{w}"
        )


def check_mosaic_batch(x: torch.Tensor, where: str) -> None:
    """Raise unless ``x`` is a ``(B, 1, H, W)`` batch of mosaics with even sides.

    Raises
    ------
    ValueError
        Wrong number of dimensions or channels, or an odd or zero side; the
        message starts with ``where``.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(
            f"{where}: expected a (B, 1, H, W) batch of mosaics, got shape {tuple(x.shape)}"
        )
    h, w = x.shape[-2:]
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise ValueError(
            f"{where}: mosaic height and width must be even and at least 2 "
            f"(whole 2x2 CFA blocks), got {h}x{w}"
        )


def split_sites(x: np.ndarray) -> np.ndarray:
    """``(H, W)`` mosaic to ``(4, H/2, W/2)`` CFA site planes (H and W even).

    Plane ``2 * dy + dx`` holds ``x[dy::2, dx::2]``: top-left, top-right,
    bottom-left, bottom-right site of the 2x2 block. A copy, same dtype.
    """
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).transpose(1, 3, 0, 2).reshape(4, h // 2, w // 2)


def merge_sites(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_sites`: ``(4, h, w)`` planes to an ``(2h, 2w)`` mosaic."""
    _, h, w = planes.shape
    return planes.reshape(2, 2, h, w).transpose(2, 0, 3, 1).reshape(2 * h, 2 * w)


def split_sites_torch(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` to ``(B, 4, H/2, W/2)`` site planes, ordered as :func:`split_sites`.

    A reshape and a permutation (what :func:`torch.nn.functional.pixel_unshuffle`
    computes, faster on CPU for small tensors); differentiable.
    """
    b, _, h, w = x.shape
    blocks = x.reshape(b, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3)
    return blocks.reshape(b, 4, h // 2, w // 2)


def merge_sites_torch(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_sites_torch`: ``(B, 4, h, w)`` to ``(B, 1, 2h, 2w)``."""
    b, _, h, w = planes.shape
    blocks = planes.reshape(b, 2, 2, h, w).permute(0, 3, 1, 4, 2)
    return blocks.reshape(b, 1, 2 * h, 2 * w)


# -- padding -------------------------------------------------------------------------------
def symmetric_indices(n: int, pad: int, mode: str = "symmetric") -> np.ndarray:
    """Indices of a length-``n`` axis padded by ``pad`` with :func:`numpy.pad` ``mode``.

    ``"symmetric"`` is scipy.ndimage's ``reflect`` (edge sample repeated),
    ``"reflect"`` is scipy.ndimage's ``mirror`` (edge sample not repeated).

    Returns
    -------
    numpy.ndarray
        ``(n + 2 pad,)`` int64 indices into the axis.
    """
    return np.pad(np.arange(n), pad, mode=mode)


def pad_symmetric(x: torch.Tensor, pad_y: int, pad_x: int, mode: str = "symmetric") -> torch.Tensor:
    """Pad the last two axes like :func:`numpy.pad` with ``mode`` "symmetric" or "reflect".

    Works for any pad width (also wider than the image: numpy's repeated
    reflection), and is differentiable (slices and flips, or a gather).

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    pad_y, pad_x : int
        Rows added above and below, columns added left and right (>= 0).
    mode : {"symmetric", "reflect"}
        numpy's names; see the module docstring and :func:`symmetric_indices`.

    Returns
    -------
    torch.Tensor
        ``(..., H + 2 pad_y, W + 2 pad_x)``.

    Raises
    ------
    ValueError
        Unknown ``mode`` or a negative pad.
    """
    if mode not in ("symmetric", "reflect"):
        raise ValueError(f"pad_symmetric: mode must be 'symmetric' or 'reflect', got {mode!r}")
    if pad_y < 0 or pad_x < 0:
        raise ValueError(f"pad_symmetric: pads must be >= 0, got {pad_y}, {pad_x}")
    h, w = x.shape[-2:]
    shift = 0 if mode == "symmetric" else 1
    if pad_y + shift <= h and pad_x + shift <= w:
        # slices and flips are much faster than a gather on CPU
        if x.requires_grad and torch.is_grad_enabled():
            return _PadSymmetric.apply(x, pad_y, pad_x, shift)
        return _pad_into(x, pad_y, pad_x, shift)
    iy = torch.as_tensor(symmetric_indices(h, pad_y, mode), device=x.device)
    ix = torch.as_tensor(symmetric_indices(w, pad_x, mode), device=x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def _pad_into(x: torch.Tensor, pad_y: int, pad_x: int, shift: int) -> torch.Tensor:
    """:func:`pad_symmetric` without autograd: one allocation, the image copied once.

    The interior is copied into a new tensor, then the row borders are
    mirrored from the image and the column borders (corners included) from
    the padded rows; only border strips are copied twice.
    """
    h, w = x.shape[-2:]
    out = x.new_empty((*x.shape[:-2], h + 2 * pad_y, w + 2 * pad_x))
    out[..., pad_y : pad_y + h, pad_x : pad_x + w] = x
    if pad_y:
        inner = out[..., :, pad_x : pad_x + w]
        inner[..., :pad_y, :] = x[..., shift : shift + pad_y, :].flip(-2)
        inner[..., pad_y + h :, :] = x[..., h - pad_y - shift : h - shift, :].flip(-2)
    if pad_x:
        left = out[..., :, pad_x + shift : 2 * pad_x + shift].flip(-1)
        right = out[..., :, w - shift : w + pad_x - shift].flip(-1)
        out[..., :, :pad_x] = left
        out[..., :, pad_x + w :] = right
    return out


def _fold_pad(g: torch.Tensor, pad_y: int, pad_x: int, shift: int) -> torch.Tensor:
    """Adjoint of :func:`_pad_into`: fold the border gradients back onto the image.

    Columns first (the forward mirrored them from the padded rows), then rows.
    Made of differentiable operations, so higher derivatives work too.
    """
    h, w = g.shape[-2] - 2 * pad_y, g.shape[-1] - 2 * pad_x
    rows = g[..., :, pad_x : pad_x + w].clone()
    if pad_x:
        rows[..., :, shift : shift + pad_x] += g[..., :, :pad_x].flip(-1)
        rows[..., :, w - pad_x - shift : w - shift] += g[..., :, pad_x + w :].flip(-1)
    out = rows[..., pad_y : pad_y + h, :].clone()
    if pad_y:
        out[..., shift : shift + pad_y, :] += rows[..., :pad_y, :].flip(-2)
        out[..., h - pad_y - shift : h - shift, :] += rows[..., pad_y + h :, :].flip(-2)
    return out


class _PadSymmetric(torch.autograd.Function):
    """:func:`_pad_into` with its adjoint :func:`_fold_pad` as the backward: one
    allocation each way instead of two concatenations and their slicing backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pad_y: int, pad_x: int, shift: int) -> torch.Tensor:
        ctx.pads = (pad_y, pad_x, shift)
        return _pad_into(x, pad_y, pad_x, shift)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return _fold_pad(grad, *ctx.pads), None, None, None


# -- filters -------------------------------------------------------------------------------
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
    padded = pad_symmetric(x, kh // 2, kw // 2)
    flipped = kernel.flip(-1, -2)  # a convolution is a correlation with the flipped kernel
    if x.device.type == "cpu" and kh * kw <= MAX_TAPS:
        return _TapCorrelation.apply(padded, flipped)
    # one grouped convolution over all B*C planes (much faster than a batch of single-channel
    # convolutions; cuDNN on a GPU)
    planes = padded.reshape(1, b * c, h + kh - 1, w + kw - 1)
    weight = flipped[None, None].expand(b * c, 1, kh, kw)
    return F.conv2d(planes, weight, groups=b * c).reshape(b, c, h, w)


MAX_TAPS = 9
"""Largest kernel (in taps) that :func:`convolve2d` sums as shifted slices on the CPU (about
twice as fast, forward and backward, as a grouped convolution for 3x3 and 1-D kernels of up
to 9 taps); larger ones, and every kernel on a GPU, go through ``F.conv2d``."""


class _TapCorrelation(torch.autograd.Function):
    """``out[..., i, j] = sum_ab k[a, b] p[..., i + a, j + b]`` as a sum of shifted slices.

    ``p`` ``(..., h + kh - 1, w + kw - 1)``, ``k`` ``(kh, kw)``; out ``(..., h, w)``.
    Zero taps are skipped in the sums. The backward pass is written with this
    function and differentiable reductions, so it can be differentiated again.
    """

    @staticmethod
    def forward(ctx, padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        kh, kw = kernel.shape
        h, w = padded.shape[-2] - kh + 1, padded.shape[-1] - kw + 1
        ctx.save_for_backward(padded, kernel)
        out = None
        for (a, b), weight in np.ndenumerate(kernel.detach().cpu().numpy()):
            if weight == 0.0:
                continue
            window = padded[..., a : a + h, b : b + w]
            if out is None:
                out = torch.mul(window, float(weight))
            else:
                out.add_(window, alpha=float(weight))
        return out if out is not None else padded.new_zeros((*padded.shape[:-2], h, w))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        padded, kernel = ctx.saved_tensors
        kh, kw = kernel.shape
        h, w = grad.shape[-2:]
        grad_padded = grad_kernel = None
        if ctx.needs_input_grad[0]:  # a full correlation with the flipped kernel
            full = F.pad(grad, (kw - 1, kw - 1, kh - 1, kh - 1))
            grad_padded = _TapCorrelation.apply(full, kernel.flip(0, 1))
        if ctx.needs_input_grad[1]:
            grad_kernel = torch.stack(
                [
                    torch.mul(grad, padded[..., a : a + h, b : b + w]).sum()
                    for a in range(kh)
                    for b in range(kw)
                ]
            ).reshape(kh, kw)
        return grad_padded, grad_kernel


MAX_KERNEL_RADIUS = 256
"""Largest filter half-width in pixels the helpers build (a Gaussian sigma up to 63.9 px)."""


def gaussian_radius(sigma: float, truncate: float = 4.0, name: str = "sigma") -> int:
    """Kernel half-width of :func:`scipy.ndimage.gaussian_filter`: ``int(truncate sigma + 0.5)``.

    Raises
    ------
    ValueError
        ``sigma`` not a finite number > 0, or a half-width above
        :data:`MAX_KERNEL_RADIUS` (which would allocate kernels and padded
        copies of that size); the message names ``name``.
    """
    value = float(sigma)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 px, got {value!r}")
    radius = int(truncate * value + 0.5)
    if radius > MAX_KERNEL_RADIUS:
        raise ValueError(
            f"{name} = {value:g} px gives a Gaussian kernel half-width of {radius} px; at most "
            f"{MAX_KERNEL_RADIUS} px is supported ({name} <= {MAX_KERNEL_RADIUS / truncate:g} px)"
        )
    return radius


def gaussian_kernel1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian weights ``(2 radius + 1,)`` as in scipy, differentiable in sigma."""
    x = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    phi = torch.exp(-0.5 * x**2 / sigma**2)
    return phi / phi.sum()


def gaussian_blur(
    x: torch.Tensor, sigma: torch.Tensor, truncate: float = 4.0, axes: str = "yx"
) -> torch.Tensor:
    """Gaussian filter matching ``scipy.ndimage.gaussian_filter(mode="reflect")``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``.
    sigma : torch.Tensor
        Scalar standard deviation in pixels, > 0.
    truncate : float
        Kernel half-width in standard deviations (scipy's default 4.0).
    axes : {"yx", "y", "x"}
        Filter down the columns and along the rows (2-D, the default), or
        along one axis only (a 1-D Gaussian down each column for ``"y"``).

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``, same dtype.
    """
    radius = gaussian_radius(float(sigma.detach()), truncate)
    k1 = gaussian_kernel1d(sigma, radius)
    out = x
    if "y" in axes:  # separable, as scipy does it: a column pass then a row pass
        out = convolve2d(out, k1[:, None])
    if "x" in axes:
        out = convolve2d(out, k1[None, :])
    return out


def gaussian_blur_numpy(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Static counterpart of :func:`gaussian_blur` on a ``(H, W)`` array."""
    return ndi.gaussian_filter(x, float(sigma), mode="reflect", truncate=truncate)


def median3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 median filter with scipy ``reflect`` borders (``scipy.ndimage.median_filter(size=3)``).

    The nine shifted copies of each pixel's window are sorted; the output is
    the fifth, so the gradient flows to the selected element of the sorted
    window (to one of them when several are equal).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` float.

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``, same dtype.
    """
    h, w = x.shape[-2:]
    padded = pad_symmetric(x, 1, 1)
    window = torch.stack(
        [padded[..., dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=-1
    )
    return torch.sort(window, dim=-1).values[..., 4]


# -- colour --------------------------------------------------------------------------------
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
