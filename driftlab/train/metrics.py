"""Task metrics: accuracy for classification, IoU for segmentation."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "iou", "task_metric_name"]


def task_metric_name(task: str) -> str:
    """``"accuracy"`` for classification, ``"iou"`` for segmentation.

    Raises
    ------
    ValueError
        For another task name.
    """
    if task == "classification":
        return "accuracy"
    if task == "segmentation":
        return "iou"
    raise ValueError(f"task: expected 'classification' or 'segmentation', got {task!r}")


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of correct top-1 predictions.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, C)`` scores.
    targets : numpy.ndarray
        ``(N,)`` integer class indices.

    Returns
    -------
    float
        In [0, 1]; NaN for ``N == 0``.
    """
    logits, targets = np.asarray(logits), np.asarray(targets)
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(
            f"accuracy: logits (N, C) and targets (N,), got {logits.shape}, {targets.shape}"
        )
    if len(targets) == 0:
        return float("nan")
    return float((logits.argmax(axis=1) == targets).mean())


def iou(logits: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of the foreground class over a whole set.

    Pixels are foreground where ``sigmoid(logit) > threshold`` (one output
    channel) or where channel 1 wins the argmax (two or more channels).
    Intersections and unions are summed over all images before dividing
    (dataset-level IoU, as in segmentation-models-pytorch's "micro" mode), so
    images without objects do not produce undefined per-image ratios.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, 1, H, W)`` or ``(N, C, H, W)`` scores.
    masks : numpy.ndarray
        ``(N, H, W)`` with 1 on the foreground.

    Returns
    -------
    float
        In [0, 1]; 1.0 when neither prediction nor mask has foreground.
    """
    logits, masks = np.asarray(logits), np.asarray(masks)
    if logits.ndim != 4 or masks.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"iou: logits (N, C, H, W) and masks (N, H, W), got {logits.shape}, {masks.shape}"
        )
    if logits.shape[1] == 1:
        pred = logits[:, 0] > np.log(threshold / (1 - threshold))
    else:
        pred = logits.argmax(axis=1) == 1
    truth = masks > 0
    inter = np.logical_and(pred, truth).sum()
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(inter / union)
