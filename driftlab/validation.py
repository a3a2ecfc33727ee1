"""Validation of raw input, with messages that say what was expected."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.errors import DriftlabError

__all__ = ["RawInputError", "validate_raw", "validate_raw_batch"]


class RawInputError(DriftlabError, ValueError):
    """Raw data does not have the shape, parity, finiteness or range required."""

    exit_code = 2


def _check_values(values: np.ndarray | torch.Tensor, where: str, allow_out_of_range: bool) -> None:
    is_tensor = isinstance(values, torch.Tensor)
    finite = torch.isfinite(values) if is_tensor else np.isfinite(values)
    bad = int((~finite).sum())
    if bad:
        raise RawInputError(f"{where}: contains {bad} NaN or Inf value(s); expected finite numbers")
    if not allow_out_of_range:
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise RawInputError(
                f"{where}: values must lie in [0, 1] (raw divided by the white level, "
                f"2**bits - 1), got min {low:.6g}, max {high:.6g}; "
                "pass allow_out_of_range=True to opt in"
            )


def _check_hw(h: int, w: int, where: str) -> None:
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise RawInputError(
            f"{where}: height and width must be even and at least 2 (whole 2x2 CFA blocks), "
            f"got {h}x{w}"
        )


def validate_raw(
    raw: object, where: str = "raw", *, allow_out_of_range: bool = False
) -> np.ndarray:
    """Check a single Bayer mosaic and return it as float64.

    Parameters
    ----------
    raw : array_like
        ``(H, W)`` real numbers, H and W even, normally in [0, 1].
    where : str
        Name used in error messages (a file name or parameter name).
    allow_out_of_range : bool
        Accept values outside [0, 1] (e.g. after noise simulation).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 (a copy only when a conversion was needed).

    Raises
    ------
    RawInputError
        If ``raw`` is not 2-D, has odd sides, contains NaN/Inf, or has
        values outside [0, 1] without ``allow_out_of_range``.
    """
    array = np.asarray(raw)
    if array.ndim != 2:
        raise RawInputError(
            f"{where}: expected a 2-D (H, W) Bayer mosaic, got an array of shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise RawInputError(f"{where}: expected real numbers, got dtype {array.dtype}")
    _check_hw(*array.shape, where)
    array = array.astype(np.float64, copy=False)
    _check_values(array, where, allow_out_of_range)
    return array


def validate_raw_batch(
    raw: torch.Tensor, where: str = "raw", *, allow_out_of_range: bool = False
) -> torch.Tensor:
    """Check a batch of mosaics for the differentiable pipeline.

    Parameters
    ----------
    raw : torch.Tensor
        ``(B, 1, H, W)`` floating point, H and W even, normally in [0, 1].

    Returns
    -------
    torch.Tensor
        ``raw`` unchanged.

    Raises
    ------
    RawInputError
        Wrong rank, channel count, dtype, odd sides, NaN/Inf, or values
        outside [0, 1] without ``allow_out_of_range``.
    """
    if not isinstance(raw, torch.Tensor):
        raise RawInputError(f"{where}: expected a torch.Tensor, got {type(raw).__name__}")
    if raw.ndim != 4 or raw.shape[1] != 1:
        raise RawInputError(
            f"{where}: expected a (B, 1, H, W) batch of mosaics, got shape {tuple(raw.shape)}"
        )
    if not raw.is_floating_point():
        raise RawInputError(f"{where}: expected a floating-point tensor, got {raw.dtype}")
    _check_hw(raw.shape[-2], raw.shape[-1], where)
    with torch.no_grad():
        _check_values(raw.detach(), where, allow_out_of_range)
    return raw
