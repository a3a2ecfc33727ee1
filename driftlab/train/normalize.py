"""Per-channel normalisation from training-view statistics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Normalized", "channel_stats"]


def channel_stats(views: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a set of views.

    Parameters
    ----------
    views : numpy.ndarray
        ``(N, 3, H, W)`` float views in [0, 1].
    eps : float
        Lower bound of the returned standard deviation.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(3,)`` float32 mean and std (std >= eps).
    """
    views = np.asarray(views)
    if views.ndim != 4:
        raise ValueError(f"channel_stats: expected (N, C, H, W) views, got {views.shape}")
    mean = views.mean(axis=(0, 2, 3), dtype=np.float64)
    std = views.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, eps).astype(np.float32)


class Normalized(nn.Module):
    """Wrap a task model so that it standardises its input channels first.

    ``model((x - mean) / std)`` with ``mean`` and ``std`` stored as buffers,
    so a saved state dict carries the training statistics.

    Parameters
    ----------
    model : nn.Module
        Consumes ``(B, C, H, W)``.
    mean, std : array_like
        ``(C,)`` statistics of the training views.
    """

    def __init__(self, model: nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.register_buffer(
            "mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer(
            "std", torch.as_tensor(np.asarray(std), dtype=torch.float32).view(1, -1, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` views in [0, 1] to the wrapped model's output."""
        return self.model((x - self.mean) / self.std)
