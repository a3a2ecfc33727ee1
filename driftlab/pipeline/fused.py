"""Fused differentiable forward pass of a pipeline of built-in stages.

:meth:`driftlab.pipeline.DifferentiablePipeline.forward` computes the same
views stage by stage; when no intermediate outputs are asked for, it uses this
fused form instead, with the same ``nn.Parameter`` tensors, so gradients
reach the same parameters:

* a black-level subtraction right before a linear demosaic (bilinear, Malvar
  2004) is applied to the four CFA site planes, and the demosaic, the white
  balance and colour correction that follow, and the luma row when a luma
  filter comes next, are one convolution of the site planes with the
  demosaic's fixed weights (no parameter, so no convolution backward) and a
  mix of its estimates by the colour matrices, with the black level as a
  constant per colour and site (differentiable in the levels, gains and
  colour matrix);
* after any other demosaic the colour stages are one 3x3 product;
* the luma filters act on Y alone and the change is added to RGB once before
  the gamma curve (``rgb + yuv2rgb[:, 0] * (Y' - Y)``, the same map as a YUV
  round trip per filter), with RGB carried as ``RGB - yuv2rgb[:, 0] * Y`` and
  ``Y`` so that nothing is subtracted at the end.

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

    # With luma y, rgb holds RGB without its luma part (RGB - back * Y), so a luma filter
    # changes y alone and RGB is rgb + back * y at the end: one add, nothing subtracted.
    rgb: torch.Tensor | None = None
    y: torch.Tensor | None = None
    matrix: torch.Tensor | None = None  # pending colour matrix on rgb (never with y)
    i = 0
    while i < len(stages):
        kind = kinds[i]
        if rgb is None:  # still on the mosaic
            if kind == "black_level" and i + 1 < len(stages) and kinds[i + 1] in _LINEAR:
                levels = params(i)["levels"]
                rgb, y, i = _linear_demosaic(x, kinds, stages, i + 1, params, levels)
                continue
            if kind in _LINEAR:
                rgb, y, i = _linear_demosaic(x, kinds, stages, i, params, None)
                continue
            x = pipeline.run_stage(i, x)
            if stages[i][0].spec.output_kind == "rgb":
                rgb = x
            i += 1
            continue
        if kind in _MATRIX:
            if y is not None:  # bring the luma back into RGB first
                rgb, y = _flush(rgb, None, y), None
            step = _matrix_of(kind, params(i))
            matrix = step if matrix is None else step @ matrix
            i += 1
            continue
        if kind in _LUMA:
            if y is None:
                if matrix is not None:
                    rgb, matrix = _apply(matrix, rgb), None
                y = _luma(rgb)
                rgb = rgb - _back(rgb) * y
            y = _LUMA[kind](y, **params(i))
            i += 1
            continue
        rgb, y, matrix = _flush(rgb, matrix, y), None, None
        if kind == "gamma":
            rgb = gamma.gamma_torch(rgb, pipeline.resolved.context, **params(i))
        else:
            rgb = pipeline.run_stage(i, rgb)
        i += 1
    return _flush(rgb, matrix, y)


def _matrix_of(kind: str, values: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.diag(values["gains"]) if kind == "gains" else values["matrix"]


def _apply(matrix: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, rgb)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    row = torch.tensor(YUV_FROM_RGB[0], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("c,bchw->bhw", row, rgb)[:, None]


def _back(like: torch.Tensor) -> torch.Tensor:
    """``d(R, G, B) / dY`` at fixed U, V as ``(1, 3, 1, 1)``."""
    return torch.tensor(RGB_FROM_YUV[:, 0], dtype=like.dtype, device=like.device)[
        None, :, None, None
    ]


def _flush(rgb: torch.Tensor, matrix: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor:
    """RGB from a pending colour matrix or the luma split (never both, see fused_forward)."""
    if matrix is not None:
        rgb = _apply(matrix, rgb)
    if y is not None:
        rgb = torch.addcmul(rgb, _back(rgb), y)
    return rgb


def _linear_demosaic(x, kinds, stages, i, params, levels):
    """Demosaic at ``i`` and the colour matrices after it: ``(rgb, y or None, next index)``.

    The site-plane estimates (one convolution with the demosaic's fixed
    weights) mixed by the colour matrices (and the luma row when a luma
    filter comes next) with ``bmm``, the black level as a bias.
    """
    variant = kinds[i]
    cfa = stages[i][1].context.cfa
    j = i + 1
    matrix = torch.eye(3, dtype=x.dtype, device=x.device)
    while j < len(stages) and kinds[j] in _MATRIX:
        matrix = _matrix_of(kinds[j], params(j)) @ matrix
        j += 1
    want_y = j < len(stages) and kinds[j] in _LUMA
    rows = matrix
    if want_y:  # RGB - back * Y and Y (see fused_forward)
        luma_row = torch.tensor(YUV_FROM_RGB[0], dtype=x.dtype, device=x.device) @ matrix
        rows = torch.cat([matrix - _back(x)[0, :, :, 0] * luma_row, luma_row[None]], dim=0)
    # The demosaic's site-plane estimates do not depend on any parameter: one convolution
    # whose backward (when the raw needs no gradient) is skipped. The colour matrices and
    # the luma row then mix the estimates, and the black level (the demosaic is linear)
    # is a constant per colour and site: their gradients are cheap reductions.
    weights = torch.tensor(
        demosaic.site_plane_weights(variant, cfa), dtype=x.dtype, device=x.device
    )  # (colour * site, source plane, 3, 3)
    planes = split_sites_torch(pad_symmetric(x, 2, 2, mode="reflect"))
    b, _, h, w = planes.shape
    estimates = F.conv2d(planes, weights).view(b, 3, -1)
    quantities = rows.shape[0]
    # bmm, not matmul: matmul folds the batch into one product through transposed copies
    mixed = torch.bmm(rows.expand(b, quantities, 3), estimates)  # (B, Q, 4 (h - 2) (w - 2))
    if levels is not None:
        offsets = torch.einsum("csi,i->cs", weights.view(3, 4, 4, 9).sum(-1), levels)
        # + (-bias), not - bias: the backward then needs no negated copy of the gradient
        bias = -(rows @ offsets)  # (Q, site)
        mixed = (mixed.view(b, quantities, 4, -1) + bias[None, :, :, None]).view_as(mixed)
    out = demosaic.merge_site_channels(mixed.view(b, quantities * 4, h - 2, w - 2), quantities)
    if not want_y:
        return out, None, j
    # split, not slicing: its backward concatenates instead of filling zeros per slice
    rgb, y = torch.split(out, [3, 1], dim=1)
    return rgb, y, j
