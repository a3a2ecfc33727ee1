"""Split a Bayer mosaic into its four CFA site planes and merge them back.

A site plane holds every pixel of one position of the 2x2 CFA block (top-left,
top-right, bottom-left, bottom-right, the raster order used for black levels),
so it contains one colour only. Filters that must compare a pixel with
neighbours *of the same colour* run on site planes: a 3x3 neighbourhood in a
site plane is the 8 same-colour neighbours at distance 2 in the mosaic, and
border padding of a site plane never mixes colours (padding the mosaic itself
would).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "check_mosaic",
    "check_mosaic_batch",
    "merge_sites",
    "merge_sites_torch",
    "pad_mirror_torch",
    "split_sites",
    "split_sites_torch",
]


def check_mosaic(x: np.ndarray, where: str) -> None:
    """Raise unless ``x`` is a 2-D mosaic with even sides.

    Parameters
    ----------
    x : numpy.ndarray
        Candidate ``(H, W)`` mosaic.
    where : str
        Name of the stage, used in the message.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or a side is odd or zero (no whole 2x2 CFA blocks).
    """
    if x.ndim != 2:
        raise ValueError(f"{where}: expected an (H, W) mosaic, got an array of shape {x.shape}")
    h, w = x.shape
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
        Wrong number of dimensions or channels, or an odd or zero side.
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
    """``(H, W)`` mosaic to ``(4, H/2, W/2)`` site planes in raster order of the 2x2 block.

    Plane ``2 * dy + dx`` holds ``x[dy::2, dx::2]``. H and W must be even.
    """
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).transpose(1, 3, 0, 2).reshape(4, h // 2, w // 2)


def merge_sites(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_sites`: ``(4, h, w)`` planes to an ``(2h, 2w)`` mosaic."""
    _, h, w = planes.shape
    return planes.reshape(2, 2, h, w).transpose(2, 0, 3, 1).reshape(2 * h, 2 * w)


def split_sites_torch(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` to ``(B, 4, H/2, W/2)`` site planes (same order as :func:`split_sites`).

    Channel ``2 * dy + dx`` holds ``x[..., dy::2, dx::2]``; a reshape and a
    permutation (what :func:`torch.nn.functional.pixel_unshuffle` computes,
    which is much slower on CPU for small tensors).
    """
    b, _, h, w = x.shape
    blocks = x.reshape(b, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3)
    return blocks.reshape(b, 4, h // 2, w // 2)


def merge_sites_torch(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_sites_torch`: ``(B, 4, h, w)`` to ``(B, 1, 2h, 2w)``."""
    b, _, h, w = planes.shape
    blocks = planes.reshape(b, 2, 2, h, w).permute(0, 3, 1, 4, 2)
    return blocks.reshape(b, 1, 2 * h, 2 * w)


def pad_mirror_torch(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two axes by whole-sample symmetric reflection (mirror about the edge pixel).

    The same rule as scipy.ndimage's ``mode="mirror"`` and numpy's
    ``np.pad(mode="reflect")`` (``c b | a b c d | c b``): the edge pixel
    is not repeated, so a border pixel's padded neighbours are its real
    neighbours. Works for any pad width and any size (an axis of length 1 is
    repeated, as numpy and scipy do); it is a gather, hence differentiable.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``.
    pad : int
        Rows and columns added on each side, >= 0.

    Returns
    -------
    torch.Tensor
        ``(..., H + 2 pad, W + 2 pad)``.
    """
    h, w = x.shape[-2:]
    rows = torch.as_tensor(np.pad(np.arange(h), pad, mode="reflect"), device=x.device)
    cols = torch.as_tensor(np.pad(np.arange(w), pad, mode="reflect"), device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)
