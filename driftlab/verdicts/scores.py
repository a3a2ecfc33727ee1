"""Task metrics computed from per-item outcomes under item weights (for the bootstrap).

Each metric of :data:`driftlab.train.metrics.METRICS` is a function of
per-item counts, so a bootstrap resample, which draws item ``j``
``w_j`` times, only changes the weights of sums over items:

- accuracy ``sum_j w_j [pred_j = y_j] / sum_j w_j``;
- balanced accuracy: mean over the classes present in the resample of
  ``sum_j w_j [pred_j = y_j = k] / sum_j w_j [y_j = k]`` (Brodersen et al.,
  ICPR 2010);
- macro-F1: mean over classes predicted or present of
  ``2 TP_k / (2 TP_k + FP_k + FN_k)`` with weighted counts;
- IoU (dataset level): ``sum_j w_j inter_j / sum_j w_j union_j``, 1.0 when
  the union is empty.

With every weight 1 these equal :mod:`driftlab.train.metrics` on the same
predictions (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftlab.train.metrics import get_metric
from driftlab.verdicts.evidence import Evidence, EvidenceError, FoldEvidence

__all__ = ["FoldScorer", "chance_level"]


class FoldScorer:
    """Scores of one (train pipeline, fold) unit under every condition, for any item weights.

    Parameters
    ----------
    unit : FoldEvidence
    conditions : sequence of str
        Condition labels, in output order.
    metric : str
        A metric name of the unit's task (``accuracy``, ``balanced_accuracy``,
        ``macro_f1``, ``iou``).
    task : {"classification", "segmentation"}
    n_classes : int
        Classes (classification): larger than every target and prediction.

    Raises
    ------
    EvidenceError
        A metric of another task or an unknown name.
    """

    def __init__(
        self,
        unit: FoldEvidence,
        conditions: Sequence[str],
        metric: str,
        task: str,
        n_classes: int = 0,
    ) -> None:
        try:
            get_metric(metric, task)
        except ValueError as exc:
            raise EvidenceError(str(exc)) from None
        self.metric = metric
        self.n = unit.size
        self.count = len(conditions)
        if task == "segmentation":
            inter = np.stack([unit.outcomes[c]["inter"] for c in conditions], axis=1)
            union = np.stack([unit.outcomes[c]["union"] for c in conditions], axis=1)
            self._design = np.concatenate([inter, union], axis=1).astype(np.float64)
            return
        y = unit.targets
        k = max(int(n_classes), 1)
        pred = np.stack([unit.outcomes[c]["pred"] for c in conditions], axis=1)  # (n, C)
        if metric == "accuracy":
            self._design = (pred == y[:, None]).astype(np.float64)
            return
        onehot_y = np.eye(k)[y]  # (n, K)
        onehot_p = np.eye(k)[pred]  # (n, C, K)
        tp = onehot_p * onehot_y[:, None, :]
        blocks = [onehot_y, tp.reshape(self.n, -1)]
        if metric == "macro_f1":
            blocks.append(onehot_p.reshape(self.n, -1))
        self._k = k
        self._design = np.concatenate(blocks, axis=1)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Scores under item weights.

        Parameters
        ----------
        counts : numpy.ndarray
            ``(m, n)`` non-negative weights of the unit's ``n`` test items.

        Returns
        -------
        numpy.ndarray
            ``(m, C)`` float64 scores in [0, 1]; NaN where undefined (no
            item drawn, or, for balanced accuracy and macro-F1, no class).
        """
        w = np.asarray(counts, dtype=np.float64)
        sums = w @ self._design
        c = self.count
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.metric == "iou":
                inter, union = sums[:, :c], sums[:, c:]
                return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)
            if self.metric == "accuracy":
                total = w.sum(axis=1, keepdims=True)
                return np.where(total > 0, sums / np.where(total > 0, total, 1.0), np.nan)
            k = self._k
            support = sums[:, :k]  # (m, K)
            tp = sums[:, k : k + c * k].reshape(-1, c, k)
            if self.metric == "balanced_accuracy":
                present = np.broadcast_to(support[:, None, :] > 0, tp.shape)
                recall = np.where(present, tp / np.where(present, support[:, None, :], 1.0), 0)
                n_present = present.sum(axis=2)
                return np.where(
                    n_present > 0, recall.sum(axis=2) / np.maximum(n_present, 1), np.nan
                )
            predicted = sums[:, k + c * k :].reshape(-1, c, k)
            denom = support[:, None, :] + predicted  # 2 TP + FP + FN
            used = denom > 0
            f1 = np.where(used, 2 * tp / np.where(used, denom, 1.0), 0.0)
            n_used = used.sum(axis=2)
            return np.where(n_used > 0, f1.sum(axis=2) / np.maximum(n_used, 1), np.nan)

    def point(self) -> np.ndarray:
        """``(C,)`` scores with every item counted once."""
        return self(np.ones((1, self.n)))[0]


def _constant_scores(unit: FoldEvidence, metric: str, task: str, n_classes: int) -> float | None:
    if task == "segmentation":
        if unit.foreground is None:
            return None
        fg, pixels = float(unit.foreground.sum()), float(unit.pixels.sum())
        all_foreground = fg / pixels if pixels > 0 else 1.0
        all_background = 1.0 if fg == 0 else 0.0
        return max(all_foreground, all_background)
    present = np.unique(unit.targets)
    labels = [f"constant:{k}" for k in present]
    fake = FoldEvidence(
        train=unit.train,
        fold=unit.fold,
        test_ids=unit.test_ids,
        outcomes={
            label: {"pred": np.full(unit.size, k, dtype=np.int64)}
            for label, k in zip(labels, present, strict=True)
        },
        targets=unit.targets,
    )
    return float(np.max(FoldScorer(fake, labels, metric, task, n_classes).point()))


def chance_level(evidence: Evidence, metric: str) -> float | None:
    """Score of the best constant prediction, as a mean over folds of each fold's test items.

    Classification: the best single class predicted for every item (for
    accuracy, the majority-class rate; for balanced accuracy ``1 / K``).
    Segmentation (IoU): the better of the all-foreground mask (IoU = the
    foreground fraction of all pixels) and the all-background mask (IoU 0,
    or 1 when no item has foreground).

    Returns
    -------
    float or None
        None when the cells did not store mask sizes (segmentation).
    """
    values = []
    for fold in evidence.folds:
        unit = next(u for u in evidence.units if u.fold == fold)
        value = _constant_scores(unit, metric, evidence.task, evidence.n_classes)
        if value is None:
            return None
        values.append(value)
    return float(np.mean(values))
