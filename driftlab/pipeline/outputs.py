"""Checks of what a stage returns, with errors that name the stage and its plugin.

A stage's static form must return a float64 numpy array and its
differentiable form a tensor of the input's dtype, of the declared kind
(``(H, W)`` / ``(B, 1, H, W)`` for a mosaic, ``(3, H, W)`` / ``(B, 3, H, W)``
for RGB) and the input's height and width, with finite values. The builders
and the fast render path check every stage they run this way, so a broken
plugin stage stops the render with a message instead of writing NaN views.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from driftlab.errors import DriftlabError
from driftlab.pipeline.resolve import ResolvedStage

__all__ = ["StageOutputError", "check_stage_output", "expected_output_shape"]


class StageOutputError(DriftlabError, ValueError):
    """A stage returned the wrong type, shape or dtype, or NaN/Inf values."""


def expected_output_shape(
    stage: ResolvedStage, height: int, width: int, batch: int | None = None
) -> tuple[int, ...]:
    """Shape a stage must return: static ``(H, W)`` / ``(3, H, W)``; with ``batch``, 4-D."""
    channels = 1 if stage.spec.output_kind == "mosaic" else 3
    if batch is not None:
        return (batch, channels, height, width)
    return (height, width) if channels == 1 else (3, height, width)


def check_stage_output(
    stage: ResolvedStage,
    value: Any,
    form: str,
    shape: tuple[int, ...],
    dtype: np.dtype | torch.dtype | type,
    *,
    finite: bool = True,
) -> Any:
    """Return ``value`` if it is what ``stage``'s ``form`` must return, else raise.

    Parameters
    ----------
    stage : ResolvedStage
        The stage that produced ``value`` (named in errors with its plugin).
    value : numpy.ndarray or torch.Tensor
        The output.
    form : {"static", "differentiable"}
        Which implementation produced it.
    shape : tuple of int
        Expected shape.
    dtype : numpy or torch dtype
        Expected dtype.
    finite : bool
        Also require every value to be finite (one pass over the output).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``value`` itself.

    Raises
    ------
    StageOutputError
        Wrong type, shape or dtype, or NaN/Inf values; the message names
        the stage, its plugin and the form.
    """
    where = f"{stage.label}, {form} form"
    kind = "numpy array" if form == "static" else "torch tensor"
    expected_type = np.ndarray if form == "static" else torch.Tensor
    if not isinstance(value, expected_type):
        raise StageOutputError(
            f"{where}: returned {type(value).__name__}, expected a {kind} of shape {shape}"
        )
    if tuple(value.shape) != tuple(shape):
        raise StageOutputError(
            f"{where}: returned shape {tuple(value.shape)}, expected {tuple(shape)} "
            f"({stage.spec.output_kind} output of the input's height and width)"
        )
    wanted = np.dtype(dtype) if form == "static" else dtype
    if value.dtype != wanted:
        raise StageOutputError(f"{where}: returned dtype {value.dtype}, expected {wanted}")
    if finite:
        if form == "static":
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        else:
            with torch.no_grad():
                bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise StageOutputError(f"{where}: returned {bad} NaN or Inf value(s)")
    return value
