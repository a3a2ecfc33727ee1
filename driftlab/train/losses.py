"""Losses of the paper's protocol: cross-entropy, and Dice plus binary cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dice_bce_loss", "task_loss"]


def dice_bce_loss(logits: torch.Tensor, masks: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss plus binary cross-entropy for one foreground class.

    ``L = BCE(logits, m) + 1 - (2 sum(p m) + eps) / (sum(p) + sum(m) + eps)``
    with ``p = sigmoid(logits)``, sums over the whole batch (Milletari et al.,
    "V-Net", 3DV 2016, for the Dice term).

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, 1, H, W)`` raw scores.
    masks : torch.Tensor
        ``(B, H, W)`` with values in {0, 1}.
    eps : float
        Smoothing term of the Dice ratio.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"dice_bce_loss: expected (B, 1, H, W) logits, got {tuple(logits.shape)}")
    target = masks.to(logits.dtype)[:, None]
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dice = (2 * (prob * target).sum() + eps) / (prob.sum() + target.sum() + eps)
    return bce + 1 - dice


def task_loss(task: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (classification, ``(B, C)`` vs ``(B,)``) or Dice + BCE (segmentation).

    Segmenters with more than one output channel use cross-entropy per pixel.
    """
    if task == "classification":
        return F.cross_entropy(outputs, targets)
    if outputs.shape[1] == 1:
        return dice_bce_loss(outputs, targets)
    return F.cross_entropy(outputs, targets.long())
