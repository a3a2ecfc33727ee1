"""Fused differentiable forward pass of a pipeline of built-in stages.

:meth:`driftlab.pipeline.DifferentiablePipeline.forward` computes the same
views stage by stage; when no intermediate outputs are asked for, it uses this
fused form instead, with the same ``nn.Parameter`` tensors, so gradients
reach the same parameters:

* a black-level subtraction right before a linear demosaic (bilinear, Malvar
  2004) is applied to the four CFA site planes, and the demosaic, the white
  balance and colour correction that follow, and the luma row when a luma
  filter comes next, are *one* convolution of the site planes whose weights
  are a differentiable function of the gains and the colour matrix;
* after any other demosaic the colour stages are one 3x3 product;
* the luma filters act on Y alone and the change is added to RGB once before
  the gamma curve (``rgb + yuv2rgb[:, 0] * (Y' - Y)``, the same map as a YUV
  round trip per filter).

Any stage without a fused kernel (a plugin's) runs through its own
differentiable form at its place in the chain, so every pipeline works; the
equivalence with the stage-by-stage form is tested to float64 rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from driftlab.pipeline.batched import kernel_kind
from driftlab.stages import demosaic, gamma, luma
from driftlab.stages.filters import RGB_FROM_YUV, YUV_FROM_RGB, pad_symmetric, split_sites_torch

if TYPE_CHECKING:  # pragma: no cover
    from driftlab.pipeline.differentiable import DifferentiablePipeline

__all__ = ["fused_forward"]

_LINEAR = ("bilinear", "malvar2004")
_MATRIX = ("gains", "matrix")
_LUMA: Mapping[str, Callable[..., torch.Tensor]] = MappingProxyType(
    {
        "sharpening_filter": luma.sharpen_luma,
        "unsharp_masking": luma.unsharp_luma,
        "column_unsharp_masking": luma.column_unsharp_luma,
        "gaussian": luma.gaussian_luma,
        "median": luma.median_luma,
    }
)


def fused_forward(pipeline: DifferentiablePipeline, x: torch.Tensor) -> torch.Tensor:
    """Views of ``x`` ``(B, 1, H, W)`` through ``pipeline``; ``(B, 3, H, W)``, differentiable.

    ``x`` must already be validated (:func:`driftlab.validation.validate_raw_batch`).
    """
    stages = list(zip(pipeline.resolved.stages, pipeline.stages.values(), strict=True))
    kinds = [kernel_kind(resolved) for resolved, _ in stages]
    dtype = x.dtype

    def params(i: int) -> dict[str, torch.Tensor]:
        return {k: v.to(dtype) for k, v in stages[i][1].param_tensors().items()}

    rgb: torch.Tensor | None = None
    y0 = y = None
    matrix: torch.Tensor | None = None  # pending colour matrix on rgb
    i = 0
    while i < len(stages):
        kind = kinds[i]
        if rgb is None:  # still on the mosaic
            if kind == "black_level" and i + 1 < len(stages) and kinds[i + 1] in _LINEAR:
                levels = params(i)["levels"]
                i += 1
                rgb, y0, i = _linear_demosaic(x, kinds, stages, i, params, levels)
                y = y0
                continue
            if kind in _LINEAR:
                rgb, y0, i = _linear_demosaic(x, kinds, stages, i, params, None)
                y = y0
                continue
            x = pipeline.run_stage(i, x)
            if stages[i][0].spec.output_kind == "rgb":
                rgb = x
            i += 1
            continue
        if kind in _MATRIX:
            if y is not None and y is not y0:  # luma changed: bring it into RGB first
                rgb, y0, y, matrix = _flush(rgb, matrix, y0, y), None, None, None
            step = _matrix_of(kind, params(i))
            matrix = step if matrix is None else step @ matrix
            i += 1
            continue
        if kind in _LUMA:
            if y is None:
                if matrix is not None:
                    rgb, matrix = _apply(matrix, rgb), None
                y0 = y = _luma(rgb)
            y = _LUMA[kind](y, **params(i))
            i += 1
            continue
        rgb, y0, y, matrix = _flush(rgb, matrix, y0, y), None, None, None
        if kind == "gamma":
            rgb = gamma.gamma_torch(rgb, pipeline.resolved.context, **params(i))
        else:
            rgb = pipeline.run_stage(i, rgb)
        i += 1
    return _flush(rgb, matrix, y0, y)


def _matrix_of(kind: str, values: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.diag(values["gains"]) if kind == "gains" else values["matrix"]


def _apply(matrix: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, rgb)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    row = torch.tensor(YUV_FROM_RGB[0], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("c,bchw->bhw", row, rgb)[:, None]


def _flush(
    rgb: torch.Tensor,
    matrix: torch.Tensor | None,
    y0: torch.Tensor | None,
    y: torch.Tensor | None,
) -> torch.Tensor:
    if matrix is not None:
        rgb = _apply(matrix, rgb)
    if y is not None and y is not y0:
        back = torch.tensor(RGB_FROM_YUV[:, 0], dtype=rgb.dtype, device=rgb.device)
        rgb = torch.addcmul(rgb, back[None, :, None, None], y - y0)
    return rgb


def _linear_demosaic(x, kinds, stages, i, params, levels):
    """Demosaic at ``i`` with the colour matrices after it (and Y) as one site-plane conv."""
    variant = kinds[i]
    cfa = stages[i][1].context.cfa
    j = i + 1
    matrix = torch.eye(3, dtype=x.dtype, device=x.device)
    while j < len(stages) and kinds[j] in _MATRIX:
        matrix = _matrix_of(kinds[j], params(j)) @ matrix
        j += 1
    want_y = j < len(stages) and kinds[j] in _LUMA
    rows = matrix
    if want_y:
        luma_row = torch.tensor(YUV_FROM_RGB[0], dtype=x.dtype, device=x.device)
        rows = torch.cat([matrix, (luma_row @ matrix)[None]], dim=0)
    base = torch.tensor(
        demosaic.site_plane_weights(variant, cfa), dtype=x.dtype, device=x.device
    ).reshape(3, 4, 4, 3, 3)
    folded = torch.einsum("qc,csiuv->qsiuv", rows, base)
    # black level as a bias (the demosaic is linear): the raw planes need no gradient
    bias = None if levels is None else -torch.einsum("qsiuv,i->qs", folded, levels).reshape(-1)
    planes = split_sites_torch(pad_symmetric(x, 2, 2, mode="reflect"))
    quantities = rows.shape[0]
    out = F.conv2d(planes, folded.reshape(-1, 4, 3, 3), bias)
    out = demosaic.merge_site_channels(out, quantities)
    if not want_y:
        return out, None, j
    # split, not slicing: its backward concatenates instead of filling zeros per slice
    rgb, y0 = torch.split(out, [3, 1], dim=1)
    return rgb, y0, j
