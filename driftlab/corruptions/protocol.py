"""The corruption protocol of the drift-synthesis experiments (Oala et al., TMLR 2023).

Each trained task model is tested on these corruptions of its training view,
at these severities, next to the ISP-drift views (DESIGN section 5).
"""

from __future__ import annotations

__all__ = ["PAPER_CORRUPTIONS", "PAPER_SEVERITIES"]

PAPER_CORRUPTIONS: tuple[str, ...] = (
    "identity",
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "zoom_blur",
    "contrast",
    "brightness",
    "saturate",
    "elastic_transform",
)
"""Registry names of the corruptions in the paper's tables."""

PAPER_SEVERITIES: tuple[int, ...] = (1, 3, 5)
"""Severities reported in the paper."""
