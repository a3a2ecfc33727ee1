"""One-sided confidence bounds on a task metric measured on a finite item set.

Forensic signatures accept a parameter box only when a lower bound on the
metric inside it, not the point estimate, clears the acceptance floor, and
the floor itself is a confidence statement (an upper bound on the clean
metric), not a point estimate:

* accuracy (a count of correct items out of ``n``): the exact Clopper-Pearson
  bounds (Clopper and Pearson, Biometrika 26(4), 1934): the lower bound is
  the ``1 - level`` quantile of ``Beta(k, n - k + 1)`` (0 when ``k = 0``),
  the upper bound the ``level`` quantile of ``Beta(k + 1, n - k)`` (1 when
  ``k = n``), computed with :func:`scipy.stats.beta.ppf`; each one-sided
  bound covers the true accuracy with probability at least ``level``;
* dataset-level IoU (``sum(I) / sum(U)`` over items): a seeded percentile
  bootstrap over items (Efron and Tibshirani, "An Introduction to the
  Bootstrap", 1993, ch. 13): ``resamples`` resamples of the items with
  replacement; the lower bound is the ``1 - level`` quantile of their IoU,
  the upper bound the ``level`` quantile. Its coverage is only approximate
  (asymptotic), and when ``resamples x (1 - level) < 10`` the bound is
  (close to) the most extreme resample, whose coverage is not controlled
  (:attr:`BoundSettings.extreme_resample`).

Error budget (:class:`BoundSettings`): the family-wise error ``alpha = 1 -
confidence`` is split in two halves. The floor is ``threshold x`` the
one-sided *upper* bound of the held-out clean metric at ``1 - alpha / 2``
(:attr:`BoundSettings.floor_level`); several boxes are tested on the same
held-out items while a signature's box is searched
(:func:`driftlab.forensics.crossfit.box_tests` counts them), so every lower
bound is taken at the Bonferroni-corrected level ``1 - alpha / (2 tests)``
(:attr:`BoundSettings.level`). When the upper bound covers the true clean
metric, the floor is at least the true floor (``threshold x`` the true clean
metric); so the probability that any examined box one of whose examined
points truly falls below the true floor is declared safe is at most
``alpha / 2 + tests x alpha / (2 tests) = alpha`` (union bound, Bonferroni
inequality; e.g. Dunn, JASA 56(293), 1961), whatever the dependence between
the clean metric and the box metrics measured on the same items.

A bound can only reach the acceptance floor with enough held-out items:
:func:`min_holdout_items` gives the least number with which a model correct
on every item could reach ``threshold``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from scipy import stats

__all__ = [
    "BoundSettings",
    "bootstrap_iou_lower",
    "bootstrap_iou_upper",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "level_text",
    "metric_of_scores",
    "min_holdout_items",
]

MAX_HOLDOUT = 100_000
"""Largest held-out count :func:`min_holdout_items` searches (the item cap of a signature)."""


def _counts(name: str, successes: int, trials: int, confidence: float) -> tuple[int, int]:
    """``(k, n)`` after checking the arguments of a Clopper-Pearson bound (ValueError)."""
    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n or k != successes or n != trials:
        raise ValueError(f"{name}: need integers 0 <= k <= n, n >= 1; got {successes}, {trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"{name}: confidence must be in (0, 1), got {confidence}")
    return k, n


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
    k, n = _counts("clopper_pearson_lower", successes, trials, confidence)
    if k == 0:
        return 0.0
    return float(stats.beta.ppf(1 - confidence, k, n - k + 1))


def clopper_pearson_upper(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound on a binomial proportion.

    Parameters
    ----------
    successes : int
        ``k``, in ``[0, trials]``.
    trials : int
        ``n >= 1``.
    confidence : float
        One-sided level in (0, 1), e.g. 0.975.

    Returns
    -------
    float
        ``p_U`` in [k / n, 1] with ``P(X <= k | p_U) = 1 - confidence`` for
        ``X ~ Binomial(n, p_U)`` (Clopper and Pearson, 1934): the
        ``confidence`` quantile of ``Beta(k + 1, n - k)``; 1.0 for ``k = n``.

    Raises
    ------
    ValueError
        Counts or level out of range.
    """
    k, n = _counts("clopper_pearson_upper", successes, trials, confidence)
    if k == n:
        return 1.0
    return float(stats.beta.ppf(confidence, k + 1, n - k))


def _iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """IoU along the last axis; 1.0 where the union is empty (as driftlab.train.metrics.iou)."""
    i, u = inter.sum(axis=-1), union.sum(axis=-1)
    return np.where(u > 0, i / np.maximum(u, 1), 1.0)


def _bootstrap_iou_quantile(
    counts: np.ndarray, quantile: float, confidence: float, resamples: int, seed: int, name: str
) -> float:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 2 or len(counts) == 0 or np.any(counts < 0):
        raise ValueError(f"{name}: expected (N, 2) non-negative counts, got shape {counts.shape}")
    if not 0 < confidence < 1 or int(resamples) < 1:
        raise ValueError(
            f"{name}: need confidence in (0, 1) and resamples >= 1, got {confidence}, {resamples}"
        )
    rng = np.random.default_rng(seed)
    n = len(counts)
    draws = rng.integers(0, n, size=(int(resamples), n))
    ious = _iou(counts[draws, 0].astype(np.float64), counts[draws, 1].astype(np.float64))
    return float(np.clip(np.quantile(ious, quantile), 0.0, 1.0))


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
        ``resamples`` item resamples drawn with replacement, in [0, 1]. When
        ``resamples x (1 - confidence) < 1`` this is (an interpolation
        between) the lowest resamples: its coverage is not controlled.

    Raises
    ------
    ValueError
        Bad shape, negative counts, or parameters out of range.
    """
    return _bootstrap_iou_quantile(
        counts, 1 - confidence, confidence, resamples, seed, "bootstrap_iou_lower"
    )


def bootstrap_iou_upper(
    counts: np.ndarray, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> float:
    """Percentile-bootstrap upper bound on dataset-level IoU.

    The same resamples as :func:`bootstrap_iou_lower` with equal ``seed``;
    the bound is their ``confidence`` quantile (linear interpolation), in
    [0, 1]. Parameters and errors as :func:`bootstrap_iou_lower`.
    """
    return _bootstrap_iou_quantile(
        counts, confidence, confidence, resamples, seed, "bootstrap_iou_upper"
    )


def metric_of_scores(task: str, scores: np.ndarray) -> float:
    """Accuracy (mean of ``(N,)`` 0/1 scores) or dataset IoU (of ``(N, 2)`` counts)."""
    scores = np.asarray(scores)
    if task == "classification":
        return float(scores.mean())
    return float(_iou(scores[:, 0].astype(np.float64), scores[:, 1].astype(np.float64)))


EXTREME_TAIL = 10
"""Least expected number of bootstrap resamples beyond a bound's quantile for the
percentile bootstrap to be more than its most extreme resamples
(:attr:`BoundSettings.extreme_resample`)."""


@attrs.frozen
class BoundSettings:
    """How a signature bounds a metric: the floor from above, every box from below.

    The family-wise error ``alpha = 1 - confidence`` is split in two halves
    (see the module docstring): ``alpha / 2`` for the floor's upper bound on
    the clean metric (:attr:`floor_level`), ``alpha / 2`` shared by the
    ``tests`` box tests (:attr:`level`).

    Parameters
    ----------
    confidence : float
        Family-wise one-sided level in (0, 1) (0.95: with 95 % confidence
        over the draw of the held-out items, no examined box one of whose
        examined points falls below ``threshold x`` the true clean metric is
        declared safe).
    resamples : int
        Bootstrap resamples (IoU only).
    seed : int
        Bootstrap seed (IoU only).
    tests : int
        Number of boxes that may be tested on the same held-out items
        (:func:`driftlab.forensics.crossfit.box_tests`); each lower bound is
        taken at the Bonferroni-corrected :attr:`level`.

    Raises
    ------
    ValueError
        A level outside (0, 1), ``resamples`` or ``tests`` not an integer
        >= 1, or a per-test level that rounds to 1 in float64.
    """

    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0
    tests: int = 1

    def __attrs_post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence: expected a level in (0, 1), got {self.confidence}")
        for name in ("resamples", "tests"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        if not self.level < 1:
            raise ValueError(
                f"tests: {self.tests} tests at confidence {self.confidence} give a per-test "
                "level that rounds to 1; use fewer shrink steps"
            )

    @property
    def floor_error(self) -> float:
        """Error spent on the floor's upper bound: ``(1 - confidence) / 2``."""
        return (1.0 - self.confidence) / 2

    @property
    def box_error(self) -> float:
        """Error shared by the box tests: ``(1 - confidence) / 2``."""
        return (1.0 - self.confidence) / 2

    @property
    def floor_level(self) -> float:
        """One-sided level of the clean metric's upper bound: ``1 - (1 - confidence) / 2``."""
        return 1.0 - self.floor_error

    @property
    def level(self) -> float:
        """Per-test one-sided level ``1 - (1 - confidence) / (2 tests)`` (Bonferroni)."""
        return 1.0 - self.box_error / int(self.tests)

    @property
    def extreme_resample(self) -> bool:
        """Whether a percentile-bootstrap lower bound rests on its most extreme resamples.

        True when ``resamples x (1 - level) <`` :data:`EXTREME_TAIL`: fewer
        than 10 resamples are expected below the bound, which is then (close
        to) the lowest resample and its coverage is not controlled. Only
        meaningful for IoU.
        """
        return int(self.resamples) * (1.0 - self.level) < EXTREME_TAIL - 1e-6  # float slack

    def lower(self, task: str, scores: np.ndarray) -> float:
        """One-sided lower bound at :attr:`level` on the metric of ``scores``.

        Parameters
        ----------
        task : {"classification", "segmentation"}
        scores : numpy.ndarray
            ``(N,)`` 0/1 outcomes or ``(N, 2)`` intersection/union counts, as
            :meth:`driftlab.attacks.problem.AttackProblem.scores` returns.

        Returns
        -------
        float
            In [0, 1] (see module docstring for the methods).
        """
        scores = np.asarray(scores)
        if task == "classification":
            return clopper_pearson_lower(int(np.rint(scores.sum())), len(scores), self.level)
        return bootstrap_iou_lower(scores, self.level, self.resamples, self.seed)

    def upper(self, task: str, scores: np.ndarray) -> float:
        """One-sided upper bound at :attr:`floor_level` on the metric of ``scores``.

        Clopper-Pearson for accuracy, the percentile bootstrap (same
        ``resamples`` and ``seed``) for IoU; shapes as :meth:`lower`.

        Returns
        -------
        float
            In [0, 1].
        """
        scores = np.asarray(scores)
        if task == "classification":
            return clopper_pearson_upper(int(np.rint(scores.sum())), len(scores), self.floor_level)
        return bootstrap_iou_upper(scores, self.floor_level, self.resamples, self.seed)

    def describe(self, task: str) -> dict[str, Any]:
        """JSON-ready description for a signature (methods, levels, error split, seed)."""
        alpha = 1.0 - self.confidence
        tests = int(self.tests)
        common = {
            "confidence": self.confidence,
            "error_split": {"floor": self.floor_error, "boxes": self.box_error},
            "floor_confidence": self.floor_level,
            "correction": "bonferroni",
            "tests": tests,
            "per_test_confidence": self.level,
        }
        family = (
            f"; the family-wise error 1 - confidence = {alpha:.4g} is split in halves: the "
            f"floor is threshold x the one-sided upper bound of the held-out clean metric at "
            f"1 - (1 - confidence) / 2, and every lower bound is Bonferroni-corrected over "
            f"{tests} box test(s) on the same held-out items, at 1 - (1 - confidence) / "
            f"(2 x {tests}); so P(any examined box with an examined point below threshold x "
            "the true clean metric is declared safe) <= 1 - confidence (union bound)"
        )
        if task == "classification":
            return {
                **common,
                "method": "clopper-pearson",
                "floor_method": "clopper-pearson-upper",
                "description": "exact one-sided Clopper-Pearson bounds on accuracy (Clopper "
                "and Pearson 1934) for k correct of n held-out items: lower bound the 1 - "
                "level quantile of Beta(k, n - k + 1), upper bound the level quantile of "
                "Beta(k + 1, n - k)" + family,
                "resamples": None,
                "seed": None,
                "extreme_resample": None,
            }
        extreme = self.extreme_resample
        caveat = "; coverage is approximate (bootstrap, asymptotic)" + (
            f"; resamples x (1 - per-test level) = "
            f"{int(self.resamples) * (1.0 - self.level):.3g} < {EXTREME_TAIL}: each lower "
            "bound is (close to) the most extreme resample and its coverage is not "
            "controlled (raise resamples)"
            if extreme
            else ""
        )
        return {
            **common,
            "method": "percentile-bootstrap",
            "floor_method": "percentile-bootstrap-upper",
            "description": "seeded percentile bootstrap over held-out items (Efron and "
            "Tibshirani 1993, ch. 13): lower bound the 1 - level quantile, upper bound the "
            "level quantile of dataset IoU over resamples drawn with replacement" + family + caveat,
            "resamples": int(self.resamples),
            "seed": int(self.seed),
            "extreme_resample": extreme,
        }


def level_text(settings: BoundSettings) -> str:
    """The per-test level of the lower bounds in words, for reasons and reports.

    ``"97.5%"`` for one test, ``"99.92% (Bonferroni, 32 tests, 95% family-wise)"``
    otherwise (half the family-wise error is spent on the floor).
    """
    per_test = f"{100 * settings.level:.4g}%"
    if int(settings.tests) == 1:
        return per_test
    return (
        f"{per_test} (Bonferroni, {int(settings.tests)} tests, "
        f"{100 * settings.confidence:.4g}% family-wise)"
    )


def _perfect(task: str, n: int) -> np.ndarray:
    """Scores of ``n`` items all scored perfectly: ones, or ``(n, 2)`` counts with I = U = 1."""
    return np.ones(n) if task == "classification" else np.ones((n, 2), dtype=np.int64)


def min_holdout_items(
    task: str, threshold: float, settings: BoundSettings, limit: int = MAX_HOLDOUT
) -> int | None:
    """Least number of held-out items with which any box can be declared safe.

    With ``n`` held-out items all scored perfectly, the clean metric's upper
    bound (:meth:`BoundSettings.upper`) is 1 and the floor is ``threshold``;
    a box is declared safe only when the lower bound
    (:meth:`BoundSettings.lower`, the verdict's own function, at its
    corrected level) at every examined point clears the floor. This returns
    the least ``n`` for which the bound of ``n`` perfect items reaches
    ``threshold x`` their upper bound. For accuracy the Clopper-Pearson
    lower bound of ``n`` of ``n`` is ``(1 - level) ** (1 / n)``, increasing
    in ``n``, and the bound of ``k < n`` correct items relative to ``k / n``
    is lower still while the floor ``threshold x`` the upper bound of ``k``
    of ``n`` is at least ``threshold x k / n``, so with fewer items no box
    can pass whatever the model does. The percentile
    bootstrap has no such minimum: every resample of perfect items has IoU 1,
    so one item suffices (the bootstrap says nothing about its own
    small-sample error).

    Parameters
    ----------
    task : {"classification", "segmentation"}
    threshold : float
        Accepted fraction of the clean metric, in (0, 1].
    settings : BoundSettings
        Bound method, family-wise confidence and number of tests.
    limit : int
        Largest count searched (>= 1).

    Returns
    -------
    int or None
        The least count in ``[1, limit]``, or None when even ``limit``
        perfect items do not reach ``threshold`` (e.g. threshold 1 for
        accuracy: the bound is below 1 for every ``n``).

    Raises
    ------
    ValueError
        Unknown task, threshold outside (0, 1] or ``limit < 1``.
    """
    if task not in ("classification", "segmentation"):
        raise ValueError(f"task: expected 'classification' or 'segmentation', got {task!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a fraction in (0, 1], got {threshold}")
    if isinstance(limit, bool) or int(limit) != limit or limit < 1:
        raise ValueError(f"limit: expected an integer >= 1, got {limit}")

    def reaches(n: int) -> bool:
        scores = _perfect(task, n)
        return settings.lower(task, scores) >= threshold * settings.upper(task, scores)

    if reaches(1):
        return 1
    if task != "classification" or not reaches(int(limit)):
        return None
    low, high = 1, int(limit)  # reaches(low) is False, reaches(high) is True; the bound grows
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high
