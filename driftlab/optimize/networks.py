"""Raw-to-prediction networks of the three optimisation modes.

=========  ===================================================================
frozen     differentiable ISP with ``requires_grad=False`` -> per-channel
           normalisation -> task model; only the task model learns.
learned    the same ISP whose declared parameters learn jointly with the task
           model (their own Adam learning rate), projected into their
           domains after every step.
raw        no ISP: the mosaic packed into R, Gr, Gb, B half-resolution planes
           (:func:`~driftlab.optimize.packing.pack_bayer`) -> normalisation ->
           task model built with ``in_channels=4``.
=========  ===================================================================

Normalisation statistics come from the training items of the fold, through
the *initial* pipeline (frozen, learned) or the packing (raw), and stay fixed
while training, as the synthesis runner does with its views.

Segmentation in raw mode: the task model predicts at half resolution; its
logits are upsampled bilinearly to the mosaic's ``(H, W)`` before loss and
metric, so masks and IoU keep full resolution in every mode.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from driftlab.optimize.packing import pack_bayer
from driftlab.pipeline import DifferentiablePipeline
from driftlab.train import Normalized, channel_stats

__all__ = ["IspTaskModel", "PackedTaskModel", "input_stats"]


class IspTaskModel(nn.Module):
    """Differentiable ISP followed by a normalised task model.

    Parameters
    ----------
    pipeline : DifferentiablePipeline
        Maps ``(B, 1, H, W)`` mosaics in [0, 1] to ``(B, 3, H, W)`` views.
    model : nn.Module
        Task model over ``(B, 3, H, W)`` standardised views.
    mean, std : numpy.ndarray
        ``(3,)`` per-channel statistics of the training views.
    learn_isp : bool
        Whether the pipeline's parameters receive gradients.
    """

    def __init__(
        self,
        pipeline: DifferentiablePipeline,
        model: nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        learn_isp: bool,
    ) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.net = Normalized(model, mean, std)
        self.learn_isp = learn_isp
        for p in self.pipeline.parameters():
            p.requires_grad_(learn_isp)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mosaics in [0, 1] to the task model's logits."""
        if self.learn_isp:
            views = self.pipeline(raw)
        else:
            with torch.no_grad():
                views = self.pipeline(raw)
        return self.net(views)


class PackedTaskModel(nn.Module):
    """Packed raw planes followed by a normalised task model (no ISP).

    Parameters
    ----------
    pattern : str
        CFA pattern of the sensor.
    model : nn.Module
        Task model over ``(B, 4, H/2, W/2)`` standardised planes.
    mean, std : numpy.ndarray
        ``(4,)`` per-plane statistics of the training mosaics.
    segmentation : bool
        Upsample ``(B, C, H/2, W/2)`` logits bilinearly to ``(B, C, H, W)``.
    """

    def __init__(
        self,
        pattern: str,
        model: nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        segmentation: bool,
    ) -> None:
        super().__init__()
        self.pattern = pattern
        self.net = Normalized(model, mean, std)
        self.segmentation = segmentation

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mosaics to logits (full-resolution for segmentation)."""
        out = self.net(pack_bayer(raw, self.pattern))
        if self.segmentation:
            out = F.interpolate(out, size=raw.shape[-2:], mode="bilinear", align_corners=False)
        return out


@torch.no_grad()
def input_stats(
    transform: nn.Module | None, raws: np.ndarray, pattern: str, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of what the task model sees before normalisation.

    Parameters
    ----------
    transform : DifferentiablePipeline or None
        The initial pipeline; ``None`` for packed raw planes.
    raws : numpy.ndarray
        ``(N, 1, H, W)`` float32 training mosaics in [0, 1].
    pattern : str
        CFA pattern (used when ``transform`` is None).
    batch_size : int
        Mosaics rendered at once.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(C,)`` float32 mean and std, C = 3 (views) or 4 (packed planes).
    """
    parts = []
    for start in range(0, len(raws), batch_size):
        x = torch.as_tensor(raws[start : start + batch_size])
        y = pack_bayer(x, pattern) if transform is None else transform(x)
        parts.append(y.float().cpu().numpy())
    return channel_stats(np.concatenate(parts))
