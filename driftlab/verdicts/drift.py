"""Headline numbers of a synthesis run, computed from its tidy results table.

Definitions (for each train pipeline ``t``; every mean is first taken over
folds, so each fold weighs the same):

- diagonal ``d(t)``: score on its own pipeline's test views;
- ISP mean ``m_isp(t)``: mean score over all test pipelines (the diagonal
  included, as in the paper's ranking);
- corruption mean ``m_c(t)``: mean over every corruption x severity cell,
  ``identity`` excluded;
- ISP drop ``d(t) - mean over test pipelines other than t``;
- corruption drop ``d(t) - m_c(t)``.

The run-level drops are means over train pipelines; their ratio says how
much more a model loses under corruptions than under ISP drift (the paper
reports about 13x for Raw-Microscopy and 4x for Raw-Drone).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RESULT_COLUMNS", "corruption_matrix", "isp_matrix", "summarize"]

RESULT_COLUMNS = (
    "train_pipeline",
    "fold",
    "test_kind",
    "test_condition",
    "severity",
    "metric",
    "value",
)


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


def _fold_mean(frame: pd.DataFrame) -> pd.Series:
    """Per train pipeline: mean over folds of the per-fold mean."""
    per_fold = frame.groupby(["train_pipeline", "fold"], sort=False)["value"].mean()
    return per_fold.groupby(level="train_pipeline", sort=False).mean()


def _mean(values: list[float | None]) -> float | None:
    """Mean of the finite values; None when there are none (e.g. a single test pipeline
    leaves no off-diagonal cell), so summary.json never holds NaN."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _ranking(scores: pd.Series) -> list[str]:
    # stable: ties keep the configuration order
    order = sorted(range(len(scores)), key=lambda i: (-scores.iloc[i], i))
    return [scores.index[i] for i in order]


def summarize(results: pd.DataFrame, top_k: int = 3) -> dict[str, Any]:
    """Per-pipeline means, rankings, drops, their ratio and top-k overlap.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with :data:`RESULT_COLUMNS`.
    top_k : int
        Size of the rankings compared for overlap (3 in the paper).

    Returns
    -------
    dict
        JSON-serialisable summary (see module docstring for definitions).

    Raises
    ------
    ValueError
        If the table lacks columns or ISP rows.
    """
    missing = set(RESULT_COLUMNS) - set(results.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}")
    isp = results[results["test_kind"] == "isp"]
    if isp.empty:
        raise ValueError("results table has no ISP rows")
    corr = results[
        (results["test_kind"] == "corruption") & (results["test_condition"] != "identity")
    ]
    metric = str(results["metric"].iloc[0])
    trains = list(dict.fromkeys(isp["train_pipeline"]))
    diag = _fold_mean(isp[isp["test_condition"] == isp["train_pipeline"]])
    off = _fold_mean(isp[isp["test_condition"] != isp["train_pipeline"]])
    isp_mean = _fold_mean(isp).reindex(trains)
    corr_mean = _fold_mean(corr).reindex(trains) if not corr.empty else None
    per_pipeline: dict[str, dict[str, float | None]] = {}
    for t in trains:
        d = float(diag.get(t, np.nan))
        values = {
            "diagonal": d,
            "isp_mean": float(isp_mean[t]),
            "isp_off_diagonal_mean": float(off.get(t, np.nan)),
            "isp_drop": d - float(off.get(t, np.nan)),
            "corruption_mean": None if corr_mean is None else float(corr_mean[t]),
            "corruption_drop": None if corr_mean is None else d - float(corr_mean[t]),
        }
        # undefined entries (no diagonal or no off-diagonal cell) become None, never NaN
        per_pipeline[t] = {
            k: (v if v is None or np.isfinite(v) else None) for k, v in values.items()
        }
    isp_drop = _mean([v["isp_drop"] for v in per_pipeline.values()])
    out: dict[str, Any] = {
        "metric": metric,
        "folds": int(results["fold"].nunique()),
        "train_pipelines": trains,
        "test_pipelines": list(dict.fromkeys(isp["test_condition"])),
        "per_train_pipeline": per_pipeline,
        "mean_diagonal": _mean([v["diagonal"] for v in per_pipeline.values()]),
        "mean_isp_drop": isp_drop,
        "ranking_isp": _ranking(isp_mean),
    }
    if corr_mean is not None:
        corr_drop = _mean([v["corruption_drop"] for v in per_pipeline.values()])
        top_isp = out["ranking_isp"][:top_k]
        top_corr = _ranking(corr_mean)[:top_k]
        out.update(
            {
                "mean_corruption_drop": corr_drop,
                "drop_ratio_corruption_over_isp": (
                    corr_drop / isp_drop if isp_drop and corr_drop is not None else None
                ),
                "ranking_corruption": _ranking(corr_mean),
                f"top{top_k}_isp": top_isp,
                f"top{top_k}_corruption": top_corr,
                f"top{top_k}_overlap": sorted(set(top_isp) & set(top_corr)),
            }
        )
    return out
