"""The processor of the paper's released code, for the ``paper`` and ``paper-frozen`` arms.

Oala et al. (TMLR 2023) learned the ISP with the ``ParametrizedProcessing``
module of their repository (github.com/aiaudit-org/raw2logit,
``processing/pipeline_torch.py``; training in ``train.py`` and ``model.py``).
Read from that code, it differs from driftlab's constrained ``learned`` arm in
five ways, all reproduced by :class:`PaperIsp` and the ``paper`` arm:

1. **Free parameters**: black level (4), white-balance gains (3), colour
   matrix (3x3) and gamma are plain parameters, never projected into a
   domain.
2. **Learnable demosaic convolution**: the mosaic is split into three sparse
   colour planes and convolved by a full 3 -> 3 channel, 3x3 convolution
   (81 weights, no bias) initialised with the bilinear kernels ``k_rb`` on R
   and B and ``k_g`` on G, zero across channels.
3. **Free sharpen and denoise kernels**: the 3x3 sharpening kernel and the
   5x5 Gaussian kernel (sigma 0.5) on the luma are free convolution weights
   (no fixed sum).
4. **Normalisation after the ISP**: ``BatchNorm2d(3, affine=False)`` on the
   view (batch statistics while training, running statistics at test).
5. **One learning rate**: one Adam over the processor and the task model
   (``LitModel.configure_optimizers``), here ``[training].lr``.

Its frozen arm (``--freeze_processor``) kept the processor in eval mode
(``LitModel.train``), so its batch norm never left its initial running
statistics (mean 0, variance 1): views reached the task model
unnormalised, while the learned arm's were batch-normalised. The
``paper-frozen`` arm reproduces that (normalisation = identity up to
``1/sqrt(1 + 1e-5)``); ``frozen-bn`` is the fair frozen counterpart.

Deliberate deviations, so that the processor starts exactly at the base
pipeline (``static == differentiable`` contract of DESIGN section 3): borders
follow driftlab's rules (phase-preserving mirror padding of the mosaic for
demosaicing, scipy ``reflect`` for the luma filters) where the paper's code
used torch ``reflect`` padding of the sparse planes and zero padding for the
sharpening filter; black levels are per CFA site in raster order for any
pattern (the paper's code assumed RGGB); driftlab's gamma stage with its own
lower clip instead of the paper's 1e-5. Initial values come from the resolved
base pipeline (camera profile, kernel, Gaussian sigma, gamma), which must have
the paper's structure (``bi,s,ga``: see :func:`check_paper_pipeline`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from driftlab.cfa import cfa_masks_torch
from driftlab.pipeline.resolve import ResolvedPipeline
from driftlab.stages.black_level import black_level_torch
from driftlab.stages.color import color_correction_torch, white_balance_torch
from driftlab.stages.demosaic import K_G, K_RB
from driftlab.stages.filters import (
    convolve2d,
    gaussian_kernel1d,
    gaussian_radius,
    pad_symmetric,
    rgb_to_yuv,
    yuv_to_rgb,
)
from driftlab.stages.gamma import gamma_torch
from driftlab.validation import validate_raw_batch

__all__ = ["PAPER_STRUCTURE", "PaperIsp", "check_paper_pipeline"]

PAPER_STRUCTURE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("black_level", ("subtract",)),
    ("demosaic", ("bilinear",)),
    ("white_balance", ("gains",)),
    ("color_correction", ("matrix", "white_preserving")),
    ("sharpen", ("sharpening_filter",)),
    ("denoise", ("gaussian",)),
    ("gamma", ("power",)),
)
"""Slots and accepted variants, in order, of a base pipeline the paper's processor starts from."""

# phase-preserving margin of the mosaic before demosaicing (even; wider than the 3x3 support)
_MARGIN = 2


def check_paper_pipeline(resolved: ResolvedPipeline) -> None:
    """Check that ``resolved`` has the structure of the paper's processor.

    Raises
    ------
    ValueError
        Another number, order or variant of stages, naming what is expected.
    """
    found = [(s.spec.slot, s.spec.variant) for s in resolved.stages]
    expected = " -> ".join(f"{slot}.{'|'.join(v)}" for slot, v in PAPER_STRUCTURE)
    ok = len(found) == len(PAPER_STRUCTURE) and all(
        slot == want and variant in variants
        for (slot, variant), (want, variants) in zip(found, PAPER_STRUCTURE, strict=True)
    )
    if not ok:
        raise ValueError(
            f"pipeline {resolved.name!r} has stages "
            f"{' -> '.join(f'{s}.{v}' for s, v in found)}; the paper's processor needs "
            f"{expected} (e.g. 'bi,s,ga')"
        )


def _bilinear_weight(dtype: torch.dtype) -> torch.Tensor:
    weight = torch.zeros(3, 3, 3, 3, dtype=dtype)
    for channel, kernel in enumerate((K_RB, K_G, K_RB)):
        # F.conv2d correlates: flip the (symmetric) convolution kernels anyway
        weight[channel, channel] = torch.as_tensor(kernel[::-1, ::-1].copy(), dtype=dtype)
    return weight


class PaperIsp(nn.Module):
    """The paper's learnable processor started at a ``bi,s,ga``-shaped pipeline.

    Parameters
    ----------
    resolved : ResolvedPipeline
        Base pipeline resolved for the camera (see :func:`check_paper_pipeline`).
    dtype : torch.dtype
        Parameter dtype.

    Raises
    ------
    ValueError
        A pipeline without the paper's structure.

    Notes
    -----
    Parameters, keyed ``"stage.param"`` with the base pipeline's stage names
    in :meth:`named_values`: ``black_level.levels`` (4,),
    ``demosaic.kernel`` (3, 3, 3, 3) correlation weights (output channel,
    input channel, row, column), ``white_balance.gains`` (3,),
    ``color_correction.matrix`` (3, 3), ``sharpen.kernel`` (3, 3),
    ``denoise.kernel`` (2r+1, 2r+1) with ``r = int(4 sigma + 0.5)``, and
    ``gamma.gamma`` ().
    """

    def __init__(self, resolved: ResolvedPipeline, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_paper_pipeline(resolved)
        stages = resolved.stages
        self.names = tuple(s.name for s in stages)
        self.context = resolved.context
        values = [s.values for s in stages]

        def param(value: object) -> nn.Parameter:
            return nn.Parameter(torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=dtype))

        self.levels = param(values[0]["levels"])
        self.demosaic = nn.Parameter(_bilinear_weight(dtype))
        self.gains = param(values[2]["gains"])
        self.matrix = param(values[3]["matrix"])
        self.sharpen = param(values[4]["kernel"])
        sigma = torch.as_tensor(float(values[5]["sigma"]), dtype=torch.float64)
        k1 = gaussian_kernel1d(sigma, gaussian_radius(float(sigma)))
        self.blur = nn.Parameter(torch.outer(k1, k1).to(dtype))
        self.gamma = param(values[6]["gamma"])

    def named_values(self) -> dict[str, torch.Tensor]:
        """``{"stage.param": tensor}`` of every parameter (see class notes)."""
        bl, dm, wb, cc, sh, dn, gc = self.names
        return {
            f"{bl}.levels": self.levels,
            f"{dm}.kernel": self.demosaic,
            f"{wb}.gains": self.gains,
            f"{cc}.matrix": self.matrix,
            f"{sh}.kernel": self.sharpen,
            f"{dn}.kernel": self.blur,
            f"{gc}.gamma": self.gamma,
        }

    def _luma(self, rgb: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        yuv = rgb_to_yuv(rgb)
        y = convolve2d(yuv[:, 0:1], kernel.to(rgb.dtype))
        return yuv_to_rgb(torch.cat([y, yuv[:, 1:]], dim=1))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mosaics in [0, 1] to ``(B, 3, H, W)`` views in [0, 1].

        Raises
        ------
        driftlab.validation.RawInputError
            Wrong shape, odd sides, NaN/Inf or values out of range.
        """
        validate_raw_batch(raw)
        ctx = self.context
        dtype = raw.dtype
        x = black_level_torch(raw, ctx, levels=self.levels.to(dtype))
        padded = pad_symmetric(x, _MARGIN, _MARGIN, mode="reflect")
        masks = cfa_masks_torch(tuple(padded.shape[-2:]), ctx.cfa, dtype=dtype, device=raw.device)
        rgb = F.conv2d(padded * masks, self.demosaic.to(dtype))  # valid: margin - 1 left
        inner = _MARGIN - 1
        rgb = rgb[..., inner:-inner, inner:-inner]
        rgb = white_balance_torch(rgb, ctx, gains=self.gains.to(dtype))
        rgb = color_correction_torch(rgb, ctx, matrix=self.matrix.to(dtype))
        rgb = self._luma(rgb, self.sharpen)
        rgb = self._luma(rgb, self.blur)
        return gamma_torch(rgb, ctx, gamma=self.gamma.to(dtype))
