"""Packing a Bayer mosaic into four half-resolution colour planes (the "raw" input mode).

A task model trained "directly on raw" (Oala et al., TMLR 2023, Sec. 6) sees
the mosaic without any ISP. Each 2x2 CFA block becomes one pixel with four
channels, always in the canonical order **R, Gr, Gb, B** whatever the
sensor's pattern: ``Gr`` is the green site on the red row of the block and
``Gb`` the green site on the blue row. Channel meaning is therefore the same
for RGGB, BGGR, GRBG and GBRG sensors (a "packed RGGB" input), the usual
input layout of learned raw pipelines (e.g. Chen et al., "Learning to See in
the Dark", CVPR 2018).
"""

from __future__ import annotations

import torch

from driftlab.cfa import check_cfa

__all__ = ["PACKED_CHANNELS", "pack_bayer", "packed_offsets"]

PACKED_CHANNELS: tuple[str, ...] = ("R", "Gr", "Gb", "B")


def packed_offsets(pattern: str) -> tuple[tuple[int, int], ...]:
    """Row and column offset inside the 2x2 block of R, Gr, Gb and B for a CFA pattern.

    Parameters
    ----------
    pattern : str
        ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG`` (raster order of the block).

    Returns
    -------
    tuple of (int, int)
        Four ``(dy, dx)`` pairs with values in {0, 1}, in the order of
        :data:`PACKED_CHANNELS`.

    Raises
    ------
    ValueError
        Unknown pattern.
    """
    pattern = check_cfa(pattern)
    sites = [divmod(k, 2) for k in range(4)]  # raster order: (0,0), (0,1), (1,0), (1,1)
    red = sites[pattern.index("R")]
    blue = sites[pattern.index("B")]
    greens = [s for s, c in zip(sites, pattern, strict=True) if c == "G"]
    g_red_row = next(s for s in greens if s[0] == red[0])
    g_blue_row = next(s for s in greens if s[0] == blue[0])
    return red, g_red_row, g_blue_row, blue


def pack_bayer(raw: torch.Tensor, pattern: str) -> torch.Tensor:
    """Pack ``(B, 1, H, W)`` Bayer mosaics into ``(B, 4, H/2, W/2)`` R, Gr, Gb, B planes.

    Parameters
    ----------
    raw : torch.Tensor
        ``(B, 1, H, W)`` floating point mosaics (any range, e.g. [0, 1]),
        H and W even.
    pattern : str
        The sensor's CFA pattern.

    Returns
    -------
    torch.Tensor
        ``(B, 4, H/2, W/2)``, same dtype and device; values are copied, not
        scaled (no black-level subtraction or white balance).

    Raises
    ------
    ValueError
        Unknown pattern, wrong number of dimensions or channels, or odd sides.
    """
    if raw.ndim != 4 or raw.shape[1] != 1:
        raise ValueError(f"pack_bayer: expected (B, 1, H, W) mosaics, got {tuple(raw.shape)}")
    if raw.shape[2] % 2 or raw.shape[3] % 2:
        raise ValueError(
            f"pack_bayer: height and width must be even, got {raw.shape[2]}x{raw.shape[3]}"
        )
    planes = [raw[:, 0, dy::2, dx::2] for dy, dx in packed_offsets(pattern)]
    return torch.stack(planes, dim=1)
