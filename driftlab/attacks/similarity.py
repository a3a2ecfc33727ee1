"""View distances for attacks and reports: differentiable SSIM and mean squared error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SIMILARITIES", "gaussian_window", "mse", "ssim", "view_distance"]

SIMILARITIES = ("ssim", "l2")


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32) -> torch.Tensor:
    """Normalised 2-D Gaussian window of shape ``(size, size)`` summing to 1.

    Raises
    ------
    ValueError
        ``size`` not a positive odd integer or ``sigma`` not positive.
    """
    if size < 1 or size % 2 == 0 or sigma <= 0:
        raise ValueError(f"gaussian_window: need odd size >= 1 and sigma > 0, got {size}, {sigma}")
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Mean structural similarity per image (Wang et al., IEEE TIP 13(4), 2004).

    Local means, variances and covariance are computed with a Gaussian window
    (``window`` x ``window`` pixels, standard deviation ``sigma`` pixels; the
    paper's 11 x 11, sigma 1.5) per channel, with "valid" borders (no padding),
    and constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` for ``L = data_range``.
    The SSIM map is averaged over channels and pixels. Images smaller than the
    window use a window of their smaller side (rounded down to odd).

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, C, H, W)`` floating point images, values in ``[0, data_range]``.

    Returns
    -------
    torch.Tensor
        ``(B,)`` SSIM in [-1, 1] (1 for identical images); differentiable.

    Raises
    ------
    ValueError
        Shapes differ or are not 4-D.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"ssim: expected two (B, C, H, W) tensors of one shape, got {tuple(a.shape)}, "
            f"{tuple(b.shape)}"
        )
    side = min(window, a.shape[-1], a.shape[-2])
    side = side if side % 2 else side - 1
    channels = a.shape[1]
    g = gaussian_window(side, sigma, a.dtype).to(a.device).sum(dim=0)  # 1-D marginal
    wy = g.view(1, 1, side, 1).expand(channels, 1, side, 1)
    wx = g.view(1, 1, 1, side).expand(channels, 1, 1, side)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, "valid" borders
        return F.conv2d(F.conv2d(x, wy, groups=channels), wx, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean(dim=(1, 2, 3))


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image, ``(B, ...)`` to ``(B,)`` (squared view units)."""
    if a.shape != b.shape:
        raise ValueError(f"mse: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    return ((a - b) ** 2).flatten(1).mean(dim=1)


def view_distance(kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dissimilarity used by attacks: ``1 - SSIM`` (``"ssim"``) or MSE (``"l2"``), ``(B,)``.

    Raises
    ------
    ValueError
        Unknown ``kind``.
    """
    if kind == "ssim":
        return 1.0 - ssim(a, b)
    if kind == "l2":
        return mse(a, b)
    raise ValueError(f"similarity: expected one of {', '.join(SIMILARITIES)}, got {kind!r}")
