"""Headline numbers of a drift experiment, their intervals, ranking stability and guards.

Definitions (for each train pipeline ``t``; every score is first averaged
over folds, so each fold weighs the same):

- diagonal ``d(t)``: score on its own pipeline's test views;
- ISP mean ``m_isp(t)``: mean score over all test pipelines (the diagonal
  included, as in the paper's ranking);
- ISP drop ``d(t) - mean over test pipelines other than t``;
- corruption mean ``m_c(t)``: mean over the corruptions of its own test
  views at the headline severity (:attr:`DriftSettings.severity`, 3 as in
  the paper, when the run has it;
  otherwise every severity), ``identity`` excluded; the all-severity mean
  is reported beside it;
- corruption drop ``d(t) - m_c(t)``;
- worst pair: the (train, test) pipeline pair with the largest ISP drop
  ``d(t) - score(t, test)``.

The run-level numbers are means over train pipelines; the ratio of the
corruption drop to the ISP drop says how much more a model loses under
corruptions than under ISP drift (the paper reports about 13x for
Raw-Microscopy and 4x for Raw-Drone).

Uncertainty (when per-item evidence is given, see
:mod:`driftlab.verdicts.evidence`): every quantity gets a percentile interval
from the seeded paired two-level bootstrap of
:func:`driftlab.stats.two_level_bootstrap` (folds, then test items within
folds; one resample shared by every quantity) at :attr:`DriftSettings.level`
(95%). The bootstrap also gives, for the ISP and the corruption ranking of
train pipelines, the probability that each is in the top ``k``
(:attr:`DriftSettings.top_k`, 3); only pipelines with probability of at
least :attr:`DriftSettings.resolved` (0.8) are named. ``summary["settings"]``
records the values used, so the words (:mod:`driftlab.verdicts.headline`,
:mod:`driftlab.verdicts.report`) are written from them.

Guards: the ratio is left out (``null``) unless the ISP drop interval lies
above 0, and its own interval (:func:`ratio_interval`, from the same
replicates) has an unbounded upper end when too many replicates have no
positive ISP drop; ``chance_level`` is the score of the best constant prediction on
the same test items (majority class, best constant mask) and
``above_chance`` says whether the mean diagonal's interval lies above it;
when it does not, rankings and the worst pair are left out. Every ``null``
has its reason in ``summary["reasons"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd

from driftlab.stats.bootstrap import BOOTSTRAP_METHOD, percentile_interval, two_level_bootstrap
from driftlab.verdicts.evidence import CELL_COLUMNS, Evidence, EvidenceError, condition_label
from driftlab.verdicts.scores import FoldScorer, chance_level

__all__ = [
    "MATRIX_COLUMNS",
    "RESULT_COLUMNS",
    "DriftSettings",
    "DriftVerdict",
    "corruption_matrix",
    "drift_verdict",
    "isp_matrix",
    "ratio_interval",
    "rescore",
    "summarize",
]

RESULT_COLUMNS = tuple(c for c in CELL_COLUMNS if c != "device")
"""Columns a results table needs for a verdict: those of drift cells' rows but ``device``."""

MATRIX_COLUMNS = (
    "train_pipeline",
    "test_kind",
    "test_condition",
    "severity",
    "metric",
    "folds",
    "mean",
    "std",
    "low",
    "high",
)
"""Columns of :attr:`DriftVerdict.matrix`: one row per (train pipeline, test condition),
mean and std over folds, bootstrap interval (NaN without evidence)."""


@attrs.frozen(kw_only=True)
class DriftSettings:
    """How the verdict estimates its uncertainty.

    Attributes
    ----------
    bootstrap : int
        Bootstrap resamples (0: no intervals, no ranking probabilities).
    seed : int
        Seed of the bootstrap.
    level : float
        Interval coverage (0.95).
    top_k : int
        Size of the rankings' top (3 in the paper).
    resolved : float
        Top-k probability a pipeline needs to be named (0.8).
    severity : int
        Headline severity of corruption drops when the run has it (3).
    """

    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95
    top_k: int = 3
    resolved: float = 0.8
    severity: int = 3


@attrs.frozen
class DriftVerdict:
    """A drift summary and its matrix of scores with intervals.

    Attributes
    ----------
    summary : dict
        JSON-serialisable (``summary.json``); see module docstring.
    matrix : pandas.DataFrame
        :data:`MATRIX_COLUMNS`.
    """

    summary: dict[str, Any]
    matrix: pd.DataFrame


def isp_matrix(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train x test pipeline tables of the mean and std over folds."""
    isp = results[results["test_kind"] == "isp"]
    grouped = isp.groupby(["train_pipeline", "test_condition"], sort=False)["value"]
    mean = grouped.mean().unstack("test_condition")
    std = grouped.std(ddof=0).unstack("test_condition")
    order = list(dict.fromkeys(isp["train_pipeline"]))
    cols = list(dict.fromkeys(isp["test_condition"]))
    return mean.reindex(index=order, columns=cols), std.reindex(index=order, columns=cols)


def corruption_matrix(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train pipeline x ``corruption@severity`` tables of mean and std over folds."""
    corr = results[results["test_kind"] == "corruption"].copy()
    corr["condition"] = [
        name if sev == 0 else f"{name}@{sev}"
        for name, sev in zip(corr["test_condition"], corr["severity"], strict=True)
    ]
    grouped = corr.groupby(["train_pipeline", "condition"], sort=False)["value"]
    order = list(dict.fromkeys(corr["train_pipeline"]))
    cols = list(dict.fromkeys(corr["condition"]))
    mean = grouped.mean().unstack("condition").reindex(index=order, columns=cols)
    std = grouped.std(ddof=0).unstack("condition").reindex(index=order, columns=cols)
    return mean, std


# -- layout: which condition is which -----------------------------------------------------------


@attrs.frozen
class _Layout:
    trains: list[str]
    labels: list[str]  # condition labels, ISP first (test pipeline order), then corruptions
    kinds: list[str]
    names: list[str]
    severities: list[int]
    diagonal: np.ndarray  # (T,) index of each train pipeline's own ISP condition, -1 if none
    severity: int | None  # headline severity (None: all severities)

    @property
    def isp(self) -> np.ndarray:
        return np.array([k == "isp" for k in self.kinds])

    @property
    def corrupted(self) -> np.ndarray:
        """Corruption conditions other than identity."""
        return np.array(
            [
                k == "corruption" and n != "identity"
                for k, n in zip(self.kinds, self.names, strict=True)
            ]
        )

    @property
    def headline_corruptions(self) -> np.ndarray:
        sev = np.array(self.severities)
        return self.corrupted & (True if self.severity is None else sev == self.severity)

    def masks(self) -> dict[str, np.ndarray]:
        """``(T, C)`` boolean masks of the condition sets averaged per train pipeline."""
        t, c = len(self.trains), len(self.labels)
        isp = np.broadcast_to(self.isp, (t, c))
        own = np.zeros((t, c), dtype=bool)
        for i, j in enumerate(self.diagonal):
            if j >= 0:
                own[i, j] = True
        return {
            "isp_mean": isp,
            "isp_off_diagonal_mean": isp & ~own,
            "corruption_mean": np.broadcast_to(self.headline_corruptions, (t, c)),
            "corruption_mean_all_severities": np.broadcast_to(self.corrupted, (t, c)),
        }


def _layout(results: pd.DataFrame, severity: int) -> _Layout:
    isp = results[results["test_kind"] == "isp"]
    corr = results[results["test_kind"] == "corruption"]
    trains = list(dict.fromkeys(isp["train_pipeline"]))
    tests = list(dict.fromkeys(isp["test_condition"]))
    pairs = list(dict.fromkeys(zip(corr["test_condition"], corr["severity"], strict=True)))
    labels = [condition_label("isp", t, 0) for t in tests]
    labels += [condition_label("corruption", n, int(s)) for n, s in pairs]
    kinds = ["isp"] * len(tests) + ["corruption"] * len(pairs)
    names = tests + [n for n, _ in pairs]
    severities = [0] * len(tests) + [int(s) for _, s in pairs]
    has = any(s == severity and n != "identity" for n, s in pairs)
    diagonal = np.array([tests.index(t) if t in tests else -1 for t in trains])
    return _Layout(trains, labels, kinds, names, severities, diagonal, severity if has else None)


def _fold_tables(results: pd.DataFrame, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """``(T, C)`` mean and std (ddof 0) over folds; NaN where a cell has no row."""
    frame = results.assign(
        label=[
            condition_label(k, n, int(s))
            for k, n, s in zip(
                results["test_kind"], results["test_condition"], results["severity"], strict=True
            )
        ]
    )
    grouped = frame.groupby(["train_pipeline", "label"], sort=False)["value"]
    mean = grouped.mean().unstack("label").reindex(index=layout.trains, columns=layout.labels)
    std = grouped.std(ddof=0).unstack("label").reindex(index=layout.trains, columns=layout.labels)
    return mean.to_numpy(dtype=np.float64), std.to_numpy(dtype=np.float64)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the finite entries selected by ``mask``; NaN if none."""
    keep = mask & np.isfinite(values)
    total = np.where(keep, values, 0.0).sum(axis=-1)
    count = keep.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _quantities(matrix: np.ndarray, layout: _Layout) -> dict[str, np.ndarray]:
    """Per-train-pipeline quantities ``(..., T)`` of a fold-averaged ``(..., T, C)`` matrix."""
    t = len(layout.trains)
    rows = np.arange(t)
    cols = np.where(layout.diagonal >= 0, layout.diagonal, 0)
    diagonal = np.where(layout.diagonal >= 0, matrix[..., rows, cols], np.nan)
    out = {"diagonal": diagonal}
    for name, mask in layout.masks().items():
        out[name] = _masked_mean(matrix, mask)
    out["isp_drop"] = diagonal - out["isp_off_diagonal_mean"]
    out["corruption_drop"] = diagonal - out["corruption_mean"]
    out["corruption_drop_all_severities"] = diagonal - out["corruption_mean_all_severities"]
    return out


HEADLINE = {
    "mean_diagonal": "diagonal",
    "mean_isp_drop": "isp_drop",
    "mean_corruption_drop": "corruption_drop",
    "mean_corruption_drop_all_severities": "corruption_drop_all_severities",
}
PER_PIPELINE = (
    "diagonal",
    "isp_mean",
    "isp_off_diagonal_mean",
    "isp_drop",
    "corruption_mean",
    "corruption_drop",
    "corruption_mean_all_severities",
    "corruption_drop_all_severities",
)


def _headline(quantities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        key: _masked_mean(quantities[q], np.ones(quantities[q].shape[-1], dtype=bool))
        for key, q in HEADLINE.items()
    }


def _value(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def ratio_interval(
    corruption: np.ndarray, isp: np.ndarray, level: float
) -> list[float | None] | None:
    """Percentile interval of the ratio corruption drop / ISP drop over bootstrap replicates.

    A replicate whose ISP drop is 0 or below has no finite ratio: it counts as
    an unbounded ratio (+inf), so the upper end is ``None`` (unbounded) when
    more than ``(1 - level) / 2`` of the replicates have no positive ISP drop.
    Replicates with an undefined drop (NaN) are left out, as
    :func:`driftlab.stats.percentile_interval` does.

    Parameters
    ----------
    corruption, isp : numpy.ndarray
        ``(B,)`` replicates of the mean corruption and mean ISP drop (paired).
    level : float
        Coverage in (0, 1).

    Returns
    -------
    list or None
        ``[low, high]`` (``high`` None when unbounded); None when fewer than
        90% of the replicates are defined.
    """
    corruption, isp = np.asarray(corruption, float), np.asarray(isp, float)
    defined = np.isfinite(corruption) & np.isfinite(isp)
    if defined.sum() < 0.9 * len(defined):
        return None
    c, d = corruption[defined], isp[defined]
    big = np.finfo(np.float64).max / 4  # stands for +inf: quantiles interpolate between finite
    ratios = np.where(d > 0, c / np.where(d > 0, d, 1.0), big)
    low, high = np.quantile(np.minimum(ratios, big), [(1 - level) / 2, (1 + level) / 2])
    return [float(low) if low < big / 2 else None, float(high) if high < big / 2 else None]


def _interval(bounds: np.ndarray) -> list[float] | None:
    low, high = float(bounds[0]), float(bounds[1])
    return [low, high] if np.isfinite(low) and np.isfinite(high) else None


def _ranking(scores: np.ndarray, names: Sequence[str]) -> list[str]:
    # stable: ties (and undefined scores, last) keep the configuration order
    keyed = np.where(np.isfinite(scores), scores, -np.inf)
    return [names[i] for i in sorted(range(len(names)), key=lambda i: (-keyed[i], i))]


def _top_probability(
    replicates: np.ndarray, names: Sequence[str], k: int, seed: int
) -> dict[str, float]:
    """Fraction of replicates ``(B, T)`` in which each pipeline is among the ``k`` best.

    Ties within a replicate are broken at random (seeded), so pipelines that
    score the same share the top places instead of the first-listed one
    taking them.
    """
    keyed = np.where(np.isfinite(replicates), replicates, -np.inf)
    tiebreak = np.random.default_rng([seed, 7]).random(keyed.shape)
    order = np.lexsort((tiebreak, -keyed), axis=-1)[:, :k]
    counts = np.bincount(order.ravel(), minlength=len(names))
    return {name: float(counts[i] / len(replicates)) for i, name in enumerate(names)}


# -- evidence: point scores and bootstrap replicates ------------------------------------------


def _scorers(
    evidence: Evidence, layout: _Layout, metric: str
) -> dict[int, list[FoldScorer | None]]:
    missing = [c for c in layout.labels if c not in evidence.conditions]
    if missing:
        raise EvidenceError(f"results name conditions without per-item outcomes: {missing[:5]}")
    unknown = [t for t in layout.trains if t not in evidence.trains]
    if unknown:
        raise EvidenceError(f"results name train pipelines without per-item outcomes: {unknown}")
    n_classes = evidence.n_classes
    return {
        fold: [
            FoldScorer(evidence.unit(t, fold), layout.labels, metric, evidence.task, n_classes)
            for t in layout.trains
        ]
        for fold in evidence.folds
    }


def _fold_statistic(scorers: dict[int, list[FoldScorer]], folds: list[int]):
    def statistic(index: int, counts: np.ndarray) -> np.ndarray:
        return np.stack([s(counts) for s in scorers[folds[index]]], axis=1)  # (m, T, C)

    return statistic


def rescore(results: pd.DataFrame, evidence: Evidence, metric: str) -> pd.DataFrame:
    """The results table with ``value`` recomputed as ``metric`` from per-item outcomes.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with :data:`RESULT_COLUMNS` (other columns are kept).
    evidence : Evidence
        Per-item outcomes of the same cells.
    metric : str
        Any metric of the evidence's task (:data:`driftlab.train.metrics.METRICS`).

    Returns
    -------
    pandas.DataFrame
        A copy with ``metric`` and ``value`` replaced.

    Raises
    ------
    EvidenceError
        A row without per-item outcomes, or a metric of another task.
    """
    n_classes = evidence.n_classes
    scorers: dict[tuple[str, int], dict[str, float]] = {}
    values = []
    for row in results.itertuples(index=False):
        at = (str(row.train_pipeline), int(row.fold))
        if at not in scorers:
            try:
                unit = evidence.unit(*at)
            except KeyError:
                raise EvidenceError(
                    f"results row of train pipeline {at[0]!r}, fold {at[1]} has no per-item "
                    "outcomes"
                ) from None
            labels = list(unit.outcomes)
            point = FoldScorer(unit, labels, metric, evidence.task, n_classes).point()
            scorers[at] = dict(zip(labels, point.tolist(), strict=True))
        label = condition_label(str(row.test_kind), str(row.test_condition), int(row.severity))
        if label not in scorers[at]:
            raise EvidenceError(
                f"results row {label} of train pipeline {at[0]!r}, fold {at[1]} has no per-item "
                "outcomes"
            )
        values.append(scorers[at][label])
    return results.assign(metric=metric, value=np.asarray(values, dtype=np.float64))


# -- the verdict ------------------------------------------------------------------------------


def _check_results(results: pd.DataFrame) -> None:
    missing = set(RESULT_COLUMNS) - set(results.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}")
    if results[results["test_kind"] == "isp"].empty:
        raise ValueError("results table has no ISP rows")
    metrics = sorted(set(map(str, results["metric"])))
    if len(metrics) != 1:
        raise ValueError(f"results table mixes metrics {metrics}; expected one")


def drift_verdict(
    results: pd.DataFrame,
    evidence: Evidence | None = None,
    settings: DriftSettings = DriftSettings(),
    *,
    missing_evidence: str = "no per-item outcomes were given (a plain results table)",
) -> DriftVerdict:
    """The drift summary of a results table, with intervals when per-item evidence is given.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with :data:`RESULT_COLUMNS`, one metric (see
        :func:`rescore` for another metric than the cells recorded).
    evidence : Evidence, optional
        Per-item outcomes of the same cells
        (:func:`driftlab.verdicts.evidence.evidence_from_records`); without
        it, intervals, ranking probabilities and the chance level are
        ``null`` with the reason.
    settings : DriftSettings
    missing_evidence : str
        The reason given when ``evidence`` is None.

    Returns
    -------
    DriftVerdict

    Raises
    ------
    ValueError
        The table lacks columns or ISP rows, or mixes metrics.
    EvidenceError
        The evidence lacks a condition or train pipeline of the table, or
        its scores differ from the table's values.
    """
    _check_results(results)
    s = settings
    metric = str(results["metric"].iloc[0])
    layout = _layout(results, s.severity)
    trains = layout.trains
    mean, std = _fold_tables(results, layout)
    point = _quantities(mean, layout)
    head = _headline(point)
    reasons: dict[str, str] = {}

    replicates = chance = None
    fold_sizes: list[int] = []
    if evidence is None:
        reasons["intervals"] = missing_evidence
        reasons["chance_level"] = missing_evidence
    else:
        scorers = _scorers(evidence, layout, metric)
        folds = evidence.folds
        fold_sizes = [evidence.fold_size(f) for f in folds]
        statistic = _fold_statistic(scorers, folds)
        ones = np.mean([statistic(i, np.ones((1, n)))[0] for i, n in enumerate(fold_sizes)], 0)
        both = np.isfinite(ones) & np.isfinite(mean)
        if not np.array_equal(np.isfinite(ones), np.isfinite(mean)) or not np.allclose(
            ones[both], mean[both], rtol=0, atol=1e-9
        ):
            raise EvidenceError(
                "the results table's values differ from the scores of the per-item outcomes "
                f"({metric}); the cell records disagree with their rows"
            )
        chance = chance_level(evidence, metric)
        if chance is None:
            reasons["chance_level"] = "the cells did not store mask sizes ('fg', 'pixels')"
        if s.bootstrap > 0:
            replicates = two_level_bootstrap(
                fold_sizes,
                statistic,
                resamples=s.bootstrap,
                seed=s.seed,
                shared_items=evidence.shared_test_items,
            )
        else:
            reasons["intervals"] = "[report] bootstrap = 0"

    # intervals
    low = high = None
    intervals: dict[str, list[float] | None] = {}
    per_intervals: dict[str, dict[str, list[float] | None]] = {t: {} for t in trains}
    rep_q = rep_head = None
    if replicates is not None:
        bounds = percentile_interval(replicates, s.level)  # (2, T, C)
        low, high = bounds[0], bounds[1]
        rep_q = _quantities(replicates, layout)
        rep_head = _headline(rep_q)
        for key in HEADLINE:
            intervals[key] = _interval(percentile_interval(rep_head[key], s.level))
        for name in PER_PIPELINE:
            b = percentile_interval(rep_q[name], s.level)
            for i, t in enumerate(trains):
                per_intervals[t][name] = _interval(b[:, i])

    # chance guard
    above = None
    if chance is not None and intervals.get("mean_diagonal") is not None:
        above = bool(intervals["mean_diagonal"][0] > chance)
    elif chance is not None:
        reasons["above_chance"] = (
            "no interval for the mean diagonal (" + reasons.get("intervals", "undefined") + ")"
        )
    else:
        reasons["above_chance"] = "no chance level (" + reasons["chance_level"] + ")"

    per_pipeline: dict[str, dict[str, Any]] = {}
    for i, t in enumerate(trains):
        entry: dict[str, Any] = {name: _value(point[name][i]) for name in PER_PIPELINE}
        lo = per_intervals[t].get("diagonal")
        entry["above_chance"] = None if chance is None or lo is None else bool(lo[0] > chance)
        entry["intervals"] = per_intervals[t] or None
        per_pipeline[t] = entry

    has_corruptions = bool(layout.corrupted.any())
    summary: dict[str, Any] = {
        "metric": metric,
        "folds": int(results["fold"].nunique()),
        "test_items_per_fold": fold_sizes or None,
        "train_pipelines": trains,
        "test_pipelines": [
            n for n, k in zip(layout.names, layout.kinds, strict=True) if k == "isp"
        ],
        "corruption_severity": layout.severity,
        "per_train_pipeline": per_pipeline,
        "mean_diagonal": _value(head["mean_diagonal"]),
        "mean_isp_drop": _value(head["mean_isp_drop"]),
        "mean_corruption_drop": _value(head["mean_corruption_drop"]) if has_corruptions else None,
        "mean_corruption_drop_all_severities": (
            _value(head["mean_corruption_drop_all_severities"]) if has_corruptions else None
        ),
        "intervals": intervals or None,
        "chance_level": chance,
        "above_chance": above,
    }
    if not has_corruptions:
        reasons["mean_corruption_drop"] = "no corruption conditions other than identity"

    # ratio guard
    ratio = None
    isp_interval = intervals.get("mean_isp_drop")
    corr_drop = summary["mean_corruption_drop"]
    if corr_drop is None:
        reasons["drop_ratio_corruption_over_isp"] = "no corruption drop"
    elif isp_interval is None:
        reasons["drop_ratio_corruption_over_isp"] = (
            "no interval for the ISP drop (" + reasons.get("intervals", "undefined") + "), so "
            "it is not known to be above 0"
        )
    elif isp_interval[0] <= 0:
        reasons["drop_ratio_corruption_over_isp"] = (
            f"the ISP drop's {s.level * 100:g}% interval [{isp_interval[0]:.3f}, "
            f"{isp_interval[1]:.3f}] does not lie above 0: a ratio to a drop that may be 0 "
            "means nothing"
        )
    else:
        ratio = corr_drop / summary["mean_isp_drop"]
        if rep_head is not None:
            intervals["drop_ratio_corruption_over_isp"] = ratio_interval(
                rep_head["mean_corruption_drop"], rep_head["mean_isp_drop"], s.level
            )
    summary["drop_ratio_corruption_over_isp"] = ratio

    # rankings and their stability
    k = s.top_k
    summary["ranking_isp"] = _ranking(point["isp_mean"], trains)
    summary["ranking_corruption"] = (
        _ranking(point["corruption_mean"], trains) if has_corruptions else None
    )
    rankings = {"isp": "isp_mean"}
    if has_corruptions:
        rankings["corruption"] = "corruption_mean"
    probability = None
    if rep_q is not None:
        probability = {
            kind: _top_probability(rep_q[q], trains, k, s.seed) for kind, q in rankings.items()
        }
    summary[f"top{k}_probability"] = probability
    if probability is None:
        reasons[f"top{k}_probability"] = "no bootstrap (" + reasons.get("intervals", "") + ")"
    named: dict[str, list[str] | None] = {}
    for kind in ("isp", "corruption"):
        key = f"top{k}_{kind}"
        if kind not in rankings:
            named[kind] = None
            reasons[key] = "no corruption conditions"
        elif len(trains) <= k:
            named[kind] = None
            reasons[key] = f"only {len(trains)} train pipeline(s): a top {k} needs more"
        elif probability is None:
            named[kind] = None
            reasons[key] = f"no top-{k} probabilities (" + reasons.get("intervals", "") + ")"
        elif above is False:
            named[kind] = None
            reasons[key] = "the model is not above chance"
        else:
            order = summary["ranking_" + kind]
            named[kind] = [t for t in order if probability[kind][t] >= s.resolved]
            if len(named[kind]) < k:
                reasons[key] = (
                    f"{k - len(named[kind])} of the top {k} not resolved at this sample size "
                    f"(top-{k} probability below {s.resolved:g})"
                )
        summary[key] = named[kind]
    overlap = None
    isp_named, corr_named = named.get("isp"), named.get("corruption")
    if isp_named is not None and corr_named is not None:
        common = sorted(set(isp_named) & set(corr_named))
        if common or (len(isp_named) == k and len(corr_named) == k):
            overlap = common
        else:
            reasons[f"top{k}_overlap"] = (
                f"the two top-{k} lists are not both resolved, so their overlap is unknown"
            )
    else:
        reasons[f"top{k}_overlap"] = f"no resolved top-{k} lists"
    summary[f"top{k}_overlap"] = overlap

    # worst pair: largest drop from the training pipeline's own diagonal
    summary["worst_pair"] = None
    if above is False:
        reasons["worst_pair"] = "the model is not above chance"
    else:
        summary["worst_pair"] = _worst_pair(mean, layout, replicates, s.level)
        if summary["worst_pair"] is None:
            reasons["worst_pair"] = "no train pipeline has both a diagonal and an off-diagonal cell"

    summary["severity_drops"] = _severity_drops(mean, layout, replicates, s.level)
    shared = evidence is not None and evidence.shared_test_items
    summary["bootstrap"] = {
        "method": BOOTSTRAP_METHOD
        + (
            "; every fold scored the same test items: one item resample serves all"
            if shared
            else ""
        ),
        "resamples": int(s.bootstrap) if replicates is not None else 0,
        "seed": int(s.seed),
        "level": float(s.level),
    }
    summary["settings"] = {
        "level": float(s.level),
        "top_k": int(k),
        "named_at": float(s.resolved),
        "severity": int(s.severity),
    }
    summary["reasons"] = reasons
    matrix = _matrix_frame(mean, std, low, high, layout, metric, results)
    return DriftVerdict(summary=summary, matrix=matrix)


def _worst_pair(
    mean: np.ndarray, layout: _Layout, replicates: np.ndarray | None, level: float
) -> dict[str, Any] | None:
    best = None
    isp = layout.isp
    for i in range(len(layout.trains)):
        j0 = layout.diagonal[i]
        if j0 < 0 or not np.isfinite(mean[i, j0]):
            continue
        for j in np.flatnonzero(isp):
            if j == j0 or not np.isfinite(mean[i, j]):
                continue
            drop = mean[i, j0] - mean[i, j]
            if best is None or drop > best[2]:
                best = (i, j, drop)
    if best is None:
        return None
    i, j, drop = best
    interval = None
    if replicates is not None:
        j0 = layout.diagonal[i]
        interval = _interval(percentile_interval(replicates[:, i, j0] - replicates[:, i, j], level))
    return {
        "train": layout.trains[i],
        "test": layout.names[j],
        "score": float(mean[i, j]),
        "drop": float(drop),
        "drop_interval": interval,
    }


def _severity_drops(
    mean: np.ndarray, layout: _Layout, replicates: np.ndarray | None, level: float
) -> dict[str, dict[str, dict[str, Any]]]:
    """Mean over train pipelines of ``diagonal - score(corruption @ severity)``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    rows = np.arange(len(layout.trains))
    has = layout.diagonal >= 0
    cols = np.where(has, layout.diagonal, 0)
    for j in np.flatnonzero(layout.corrupted):
        drops = np.where(has, mean[rows, cols] - mean[:, j], np.nan)
        value = _value(np.nanmean(drops)) if np.isfinite(drops).any() else None
        interval = None
        if replicates is not None:
            rep = replicates[:, rows, cols] - replicates[:, :, j]
            rep = _masked_mean(rep, np.broadcast_to(has, rep.shape))
            interval = _interval(percentile_interval(rep, level))
        entry = {"drop": value, "interval": interval}
        out.setdefault(layout.names[j], {})[str(layout.severities[j])] = entry
    return out


def _matrix_frame(mean, std, low, high, layout: _Layout, metric: str, results) -> pd.DataFrame:
    folds = results.groupby(["train_pipeline"], sort=False)["fold"].nunique()
    rows = []
    for i, t in enumerate(layout.trains):
        for j, _ in enumerate(layout.labels):
            if not np.isfinite(mean[i, j]):
                continue
            rows.append(
                {
                    "train_pipeline": t,
                    "test_kind": layout.kinds[j],
                    "test_condition": layout.names[j],
                    "severity": layout.severities[j],
                    "metric": metric,
                    "folds": int(folds.get(t, 0)),
                    "mean": float(mean[i, j]),
                    "std": float(std[i, j]),
                    "low": float(low[i, j]) if low is not None else np.nan,
                    "high": float(high[i, j]) if high is not None else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(MATRIX_COLUMNS))


def summarize(
    results: pd.DataFrame,
    evidence: Evidence | None = None,
    settings: DriftSettings = DriftSettings(),
    *,
    top_k: int | None = None,
) -> dict[str, Any]:
    """The summary of :func:`drift_verdict` (``summary.json``).

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with :data:`RESULT_COLUMNS`.
    evidence : Evidence, optional
        Per-item outcomes; without it intervals, top-k probabilities,
        chance level and the ratio are ``null`` (reasons in ``"reasons"``).
    settings : DriftSettings
    top_k : int, optional
        Overrides ``settings.top_k``.

    Returns
    -------
    dict
        JSON-serialisable summary (see module docstring).
    """
    if top_k is not None:
        settings = attrs.evolve(settings, top_k=top_k)
    return drift_verdict(results, evidence, settings).summary
