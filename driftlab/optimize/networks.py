"""Raw-to-prediction networks of the optimisation arms.

=============  =============================================================
frozen         base ISP (``requires_grad=False``) -> fixed per-channel
               normalisation -> task model; only the task model learns.
frozen-bn      base ISP frozen -> ``BatchNorm2d(3, affine=False)`` -> task
               model: separates what normalisation does from what learning
               the ISP does.
learned        the base ISP learned with the task model, steps scaled to
               each parameter element's domain width and parameters
               projected into their domains after every step
               (:class:`~driftlab.optimize.scaled.WidthScaledIsp`) -> fixed
               normalisation -> task model.
paper          the paper's processor (:class:`~driftlab.optimize.paper.PaperIsp`:
               free parameters, learnable demosaic convolution, free sharpen
               and denoise kernels) -> batch normalisation -> task model,
               everything learned at one rate.
paper-frozen   the paper's processor frozen with its batch normalisation left
               at its initial running statistics, as the paper's code ran its
               frozen arm (views reach the task model unnormalised).
raw            no ISP: the mosaic packed into R, Gr, Gb, B half-resolution
               planes (:func:`~driftlab.optimize.packing.pack_bayer`) ->
               normalisation -> task model built with ``in_channels=4``.
=============  =============================================================

Fixed normalisation statistics come from the training items of the fold,
through the *initial* ISP (frozen, learned) or the packing (raw), and stay
fixed while training, as the synthesis runner does with its views.

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
from driftlab.train import Normalized, channel_stats

__all__ = ["NORMALISATIONS", "IspTaskModel", "PackedTaskModel", "input_stats"]


NORMALISATIONS: tuple[str, ...] = ("fixed", "batch", "initial-batch")


class IspTaskModel(nn.Module):
    """Differentiable ISP followed by a normalisation and a task model.

    Parameters
    ----------
    isp : nn.Module
        Maps ``(B, 1, H, W)`` mosaics in [0, 1] to ``(B, 3, H, W)`` views
        (a :class:`~driftlab.pipeline.DifferentiablePipeline`,
        :class:`~driftlab.optimize.scaled.WidthScaledIsp` or
        :class:`~driftlab.optimize.paper.PaperIsp`).
    model : nn.Module
        Task model over ``(B, 3, H, W)`` normalised views.
    normalisation : {"fixed", "batch", "initial-batch"}
        ``fixed``: ``(v - mean) / std`` with the given statistics;
        ``batch``: ``BatchNorm2d(3, affine=False)`` (batch statistics while
        training, running ones in eval mode); ``initial-batch``: the same
        layer always in eval mode at its initial running statistics (mean 0,
        variance 1), i.e. ``v / sqrt(1 + 1e-5)`` (the paper's frozen arm).
    mean, std : numpy.ndarray, optional
        ``(3,)`` per-channel statistics of the training views (``fixed``).
    learn_isp : bool
        Whether the ISP's parameters receive gradients.

    Raises
    ------
    ValueError
        Unknown normalisation, or ``fixed`` without statistics.
    """

    def __init__(
        self,
        isp: nn.Module,
        model: nn.Module,
        *,
        normalisation: str = "fixed",
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        learn_isp: bool,
    ) -> None:
        super().__init__()
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation: expected one of {', '.join(NORMALISATIONS)}, got {normalisation!r}"
            )
        self.isp = isp
        self.normalisation = normalisation
        if normalisation == "fixed":
            if mean is None or std is None:
                raise ValueError("normalisation 'fixed' needs the mean and std of the views")
            self.norm: nn.Module = Normalized(nn.Identity(), mean, std)
        else:
            self.norm = nn.BatchNorm2d(3, affine=False)
        self.model = model
        self.learn_isp = learn_isp
        for p in self.isp.parameters():
            p.requires_grad_(False)
        if learn_isp:
            for p in self.isp_parameters():
                p.requires_grad_(True)
        self.train()  # puts an "initial-batch" normalisation in eval mode

    def isp_parameters(self) -> list[nn.Parameter]:
        """The ISP's learnable tensors (``isp.learnable_parameters()`` where defined)."""
        own = getattr(self.isp, "learnable_parameters", None)
        return list(own()) if own is not None else list(self.isp.parameters())

    def train(self, mode: bool = True) -> IspTaskModel:
        super().train(mode)
        if self.normalisation == "initial-batch":
            self.norm.train(False)
        return self

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mosaics in [0, 1] to the task model's logits."""
        if self.learn_isp:
            views = self.isp(raw)
        else:
            with torch.no_grad():
                views = self.isp(raw)
        return self.model(self.norm(views))


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
    transform : nn.Module or None
        The initial ISP (``(B, 1, H, W)`` to ``(B, 3, H, W)``); ``None`` for
        packed raw planes.
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
