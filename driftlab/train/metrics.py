"""Task metrics: accuracy, balanced accuracy and macro-F1 for classification, IoU for segmentation.

Every metric takes ``(logits, targets)`` and returns a float; :data:`METRICS`
maps a name to its :class:`Metric` so that a headline metric can be chosen by
name (:func:`get_metric`). Balanced accuracy and macro-F1 weigh every class
equally, so a majority class (RBC in BCCD, NGS in Raw-Microscopy) cannot hide
a model that never finds a rare one.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

__all__ = [
    "METRICS",
    "Metric",
    "accuracy",
    "balanced_accuracy",
    "confusion_counts",
    "get_metric",
    "iou",
    "macro_f1",
    "metric_names",
    "task_metric_name",
]


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


def _predictions(
    logits: np.ndarray, targets: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    logits, targets = np.asarray(logits), np.asarray(targets)
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(
            f"{name}: logits (N, C) and targets (N,), got {logits.shape}, {targets.shape}"
        )
    if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(
            f"{name}: targets must be class indices in 0..{logits.shape[1] - 1}, got "
            f"{targets.min()}..{targets.max()}"
        )
    return logits.argmax(axis=1), targets.astype(np.int64)


def confusion_counts(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Confusion matrix of top-1 predictions.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, C)`` scores.
    targets : numpy.ndarray
        ``(N,)`` integer class indices in ``0..C-1``.

    Returns
    -------
    numpy.ndarray
        ``(C, C)`` int64, row = true class, column = predicted class.

    Raises
    ------
    ValueError
        Wrong shapes or targets outside ``0..C-1``.
    """
    predicted, truth = _predictions(logits, targets, "confusion_counts")
    c = np.asarray(logits).shape[1]
    return np.bincount(truth * c + predicted, minlength=c * c).reshape(c, c).astype(np.int64)


def balanced_accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``targets``.

    ``(1 / K) * sum_k TP_k / (TP_k + FN_k)`` over the ``K`` classes with at
    least one true sample (Brodersen et al., "The balanced accuracy and its
    posterior distribution", ICPR 2010; scikit-learn's
    ``balanced_accuracy_score``). Equals accuracy on balanced data; a model
    that always answers the majority class scores ``1 / K``.

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

    Raises
    ------
    ValueError
        Wrong shapes or targets outside ``0..C-1``.
    """
    counts = confusion_counts(logits, targets)
    support = counts.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(counts)[present] / support[present]))


def macro_f1(logits: np.ndarray, targets: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes in ``targets`` or the predictions.

    ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)``; a class that is predicted but
    never true (or true but never predicted) has F1 0 and counts; classes
    neither true nor predicted are left out (scikit-learn's
    ``f1_score(average="macro")`` with its default labels and
    ``zero_division=0``).

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

    Raises
    ------
    ValueError
        Wrong shapes or targets outside ``0..C-1``.
    """
    counts = confusion_counts(logits, targets)
    tp = np.diag(counts).astype(np.float64)
    fp = counts.sum(axis=0) - tp
    fn = counts.sum(axis=1) - tp
    used = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    if not used.any():
        return float("nan")
    return float(np.mean(2 * tp[used] / (2 * tp[used] + fp[used] + fn[used])))


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


@attrs.frozen
class Metric:
    """A task metric selectable by name.

    Attributes
    ----------
    name : str
        Registry key (``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``iou``).
    task : str
        ``"classification"`` or ``"segmentation"``.
    function : callable
        ``function(logits, targets) -> float``, higher is better, in [0, 1].
    doc : str
        One line for reports.
    """

    name: str
    task: str
    function: Callable[[np.ndarray, np.ndarray], float] = attrs.field(eq=False)
    doc: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", accuracy, "fraction of correct top-1 predictions"),
        Metric(
            "balanced_accuracy",
            "classification",
            balanced_accuracy,
            "mean per-class recall (every class weighs the same)",
        ),
        Metric("macro_f1", "classification", macro_f1, "unweighted mean of per-class F1"),
        Metric("iou", "segmentation", iou, "foreground intersection over union, whole set"),
    )
}
"""Metric name -> :class:`Metric`; the first of each task is its default headline."""


def metric_names(task: str | None = None) -> list[str]:
    """Names of the metrics (of one task when given), in :data:`METRICS` order."""
    return [name for name, m in METRICS.items() if task is None or m.task == task]


def get_metric(name: str, task: str | None = None) -> Metric:
    """Look a metric up by name, optionally checking that it fits a task.

    Raises
    ------
    ValueError
        Unknown name (with the closest one and the valid names), or a
        metric of another task.
    """
    from driftlab.registry import suggest

    metric = METRICS.get(name)
    if metric is None:
        valid = metric_names(task)
        raise ValueError(
            f"unknown metric {name!r}{suggest(name, valid)}; metrics: {', '.join(valid)}"
        )
    if task is not None and metric.task != task:
        raise ValueError(
            f"metric {name!r} is for {metric.task} but the task is {task}; metrics: "
            + ", ".join(metric_names(task))
        )
    return metric
