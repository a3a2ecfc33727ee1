"""One-sided lower confidence bounds on a task metric measured on a finite item set.

Forensic signatures accept a parameter box only when a lower bound on the
metric inside it, not the point estimate, clears the acceptance floor:

* accuracy (a count of correct items out of ``n``): the exact Clopper-Pearson
  bound (Clopper and Pearson, Biometrika 26(4), 1934), the
  ``1 - confidence`` quantile of ``Beta(k, n - k + 1)`` (0 when ``k = 0``),
  computed with :func:`scipy.stats.beta.ppf`; its coverage is at least
  ``confidence`` for every true accuracy;
* dataset-level IoU (``sum(I) / sum(U)`` over items): a seeded percentile
  bootstrap over items (Efron and Tibshirani, "An Introduction to the
  Bootstrap", 1993, ch. 13): ``resamples`` resamples of the items with
  replacement, the bound is the ``1 - confidence`` quantile of their IoU.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from scipy import stats

__all__ = [
    "BoundSettings",
    "bootstrap_iou_lower",
    "clopper_pearson_lower",
    "metric_of_scores",
]


def clopper_pearson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Exact one-sided lower confidence bound on a binomial proportion.

    Parameters
    ----------
    successes : int
        ``k``, in ``[0, trials]``.
    trials : int
        ``n >= 1``.
    confidence : float
        One-sided level in (0, 1), e.g. 0.95.

    Returns
    -------
    float
        ``p_L`` in [0, k / n] with ``P(X >= k | p_L) = 1 - confidence`` for
        ``X ~ Binomial(n, p_L)`` (Clopper and Pearson, 1934); 0.0 for ``k = 0``.

    Raises
    ------
    ValueError
        Counts or level out of range.
    """
    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n or k != successes or n != trials:
        raise ValueError(
            f"clopper_pearson_lower: need integers 0 <= k <= n, n >= 1; got {successes}, {trials}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"clopper_pearson_lower: confidence must be in (0, 1), got {confidence}")
    if k == 0:
        return 0.0
    return float(stats.beta.ppf(1 - confidence, k, n - k + 1))


def _iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """IoU along the last axis; 1.0 where the union is empty (as driftlab.train.metrics.iou)."""
    i, u = inter.sum(axis=-1), union.sum(axis=-1)
    return np.where(u > 0, i / np.maximum(u, 1), 1.0)


def bootstrap_iou_lower(
    counts: np.ndarray, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> float:
    """Percentile-bootstrap lower bound on dataset-level IoU.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(N, 2)`` per-item foreground intersection and union pixel counts.
    confidence : float
        One-sided level in (0, 1).
    resamples : int
        Bootstrap resamples (>= 1).
    seed : int
        Seed of :func:`numpy.random.default_rng`; equal inputs and seed give
        an equal bound.

    Returns
    -------
    float
        The ``1 - confidence`` quantile (linear interpolation) of the IoU of
        ``resamples`` item resamples drawn with replacement, in [0, 1].

    Raises
    ------
    ValueError
        Bad shape, negative counts, or parameters out of range.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 2 or len(counts) == 0 or np.any(counts < 0):
        raise ValueError(
            f"bootstrap_iou_lower: expected (N, 2) non-negative counts, got shape {counts.shape}"
        )
    if not 0 < confidence < 1 or int(resamples) < 1:
        raise ValueError(
            f"bootstrap_iou_lower: need confidence in (0, 1) and resamples >= 1, got "
            f"{confidence}, {resamples}"
        )
    rng = np.random.default_rng(seed)
    n = len(counts)
    draws = rng.integers(0, n, size=(int(resamples), n))
    ious = _iou(counts[draws, 0].astype(np.float64), counts[draws, 1].astype(np.float64))
    return float(np.clip(np.quantile(ious, 1 - confidence), 0.0, 1.0))


def metric_of_scores(task: str, scores: np.ndarray) -> float:
    """Accuracy (mean of ``(N,)`` 0/1 scores) or dataset IoU (of ``(N, 2)`` counts)."""
    scores = np.asarray(scores)
    if task == "classification":
        return float(scores.mean())
    return float(_iou(scores[:, 0].astype(np.float64), scores[:, 1].astype(np.float64)))


@attrs.frozen
class BoundSettings:
    """How a signature bounds a metric from below.

    Parameters
    ----------
    confidence : float
        One-sided level in (0, 1) (0.95: the bound holds with 95 %
        confidence over the draw of the held-out items).
    resamples : int
        Bootstrap resamples (IoU only).
    seed : int
        Bootstrap seed (IoU only).
    """

    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence: expected a level in (0, 1), got {self.confidence}")
        if (
            isinstance(self.resamples, bool)
            or int(self.resamples) != self.resamples
            or self.resamples < 1
        ):
            raise ValueError(f"resamples: expected an integer >= 1, got {self.resamples}")

    def lower(self, task: str, scores: np.ndarray) -> float:
        """One-sided lower bound on the metric of ``scores`` (see module docstring).

        Parameters
        ----------
        task : {"classification", "segmentation"}
        scores : numpy.ndarray
            ``(N,)`` 0/1 outcomes or ``(N, 2)`` intersection/union counts, as
            :meth:`driftlab.attacks.problem.AttackProblem.scores` returns.
        """
        scores = np.asarray(scores)
        if task == "classification":
            return clopper_pearson_lower(int(np.rint(scores.sum())), len(scores), self.confidence)
        return bootstrap_iou_lower(scores, self.confidence, self.resamples, self.seed)

    def describe(self, task: str) -> dict[str, Any]:
        """JSON-ready description for a signature (method named, seed given)."""
        if task == "classification":
            return {
                "confidence": self.confidence,
                "method": "clopper-pearson",
                "description": "exact one-sided Clopper-Pearson lower bound on accuracy "
                "(Clopper and Pearson 1934): the 1 - confidence quantile of Beta(k, n - k + 1) "
                "for k correct of n held-out items",
                "resamples": None,
                "seed": None,
            }
        return {
            "confidence": self.confidence,
            "method": "percentile-bootstrap",
            "description": "seeded percentile bootstrap over held-out items (Efron and "
            "Tibshirani 1993, ch. 13): the 1 - confidence quantile of dataset IoU over "
            "resamples drawn with replacement",
            "resamples": int(self.resamples),
            "seed": int(self.seed),
        }
