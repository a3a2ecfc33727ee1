"""Colour filter array (CFA) patterns and masks.

A Bayer CFA repeats a 2x2 block; the pattern string lists its colours in
raster order (top-left, top-right, bottom-left, bottom-right), e.g. ``RGGB``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["CFA_PATTERNS", "cfa_masks", "cfa_masks_torch", "check_cfa", "site_index_map"]

CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")


def check_cfa(pattern: str, where: str = "cfa") -> str:
    """Return the upper-cased pattern or raise.

    Raises
    ------
    ValueError
        If ``pattern`` is not one of ``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``.
    """
    if not isinstance(pattern, str) or pattern.upper() not in CFA_PATTERNS:
        raise ValueError(
            f"{where}: unknown CFA pattern {pattern!r}; expected one of {', '.join(CFA_PATTERNS)}"
        )
    return pattern.upper()


def cfa_masks(shape: tuple[int, int], pattern: str) -> np.ndarray:
    """Boolean colour masks of a Bayer mosaic.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the mosaic.
    pattern : str
        CFA pattern, one of :data:`CFA_PATTERNS`.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` bool; channel 0 is true where the sensor sees red,
        1 green, 2 blue. Exactly one channel is true at every pixel.
    """
    pattern = check_cfa(pattern)
    h, w = shape
    masks = np.zeros((3, h, w), dtype=bool)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        masks["RGB".index(colour), dy::2, dx::2] = True
    return masks


def site_index_map(shape: tuple[int, int]) -> np.ndarray:
    """Index 0..3 of each pixel's CFA site in the 2x2 block (raster order).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int64 with values 0 (top-left), 1 (top-right),
        2 (bottom-left), 3 (bottom-right).
    """
    h, w = shape
    rows = (np.arange(h) % 2)[:, None]
    cols = (np.arange(w) % 2)[None, :]
    return (2 * rows + cols).astype(np.int64)


def cfa_masks_torch(
    shape: tuple[int, int], pattern: str, *, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """Float version of :func:`cfa_masks` for torch, shape ``(1, 3, H, W)``."""
    return torch.as_tensor(cfa_masks(shape, pattern)[None], dtype=dtype, device=device)
