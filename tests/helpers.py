"""Shared test helpers (paths to optional real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
OPENISP_RAW = SHARED_DATA / "openisp" / "test_1920x1080_rggb_10bit.raw"


def openisp_frame() -> np.ndarray:
    """The real 1080x1920 RGGB 10-bit frame in [0, 1]; skips the test when absent."""
    if not OPENISP_RAW.is_file():
        pytest.skip(f"real frame not available at {OPENISP_RAW}")
    return np.fromfile(OPENISP_RAW, dtype="<u2").reshape(1080, 1920) / 1023.0


def builtin_registry():
    """A registry of the built-in plugins only (cached; loading imports every plugin)."""
    global _BUILTIN_REGISTRY
    if _BUILTIN_REGISTRY is None:
        from driftlab.registry import Registry

        _BUILTIN_REGISTRY = Registry.load(entry_points=False)
    return _BUILTIN_REGISTRY


_BUILTIN_REGISTRY = None
