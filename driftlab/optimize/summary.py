"""The optimisation table (like Table 4 of Oala et al., TMLR 2023) and learning curves.

Definitions, for each (intensity, mode), on the task metric's rows only:

- **pooled** mean +- std: over every fold *and* every pooled evaluation
  epoch, one value per (fold, epoch); the pooled epochs are all evaluation
  epochs when ``last`` is 0, otherwise the last ``last`` of them (the paper
  reports "mean and std over folds and steps");
- **final** mean +- std: over folds at the last epoch only.

Standard deviations are population ones (``ddof=0``), as in the synthesis
tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("intensity", "mode", "fold", "epoch", "metric", "value")

__all__ = ["learning_curves", "pooled_epochs", "summary_table"]

TABLE_COLUMNS = (
    "intensity",
    "mode",
    "pooled_mean",
    "pooled_std",
    "final_mean",
    "final_std",
    "folds",
    "pooled_epochs",
)


def _check(results: pd.DataFrame) -> None:
    missing = set(REQUIRED_COLUMNS) - set(results.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}")


def pooled_epochs(epochs: list[int] | np.ndarray, last: int) -> list[int]:
    """Evaluation epochs pooled in the summary: all (``last == 0``) or the last ``last``.

    Raises
    ------
    ValueError
        Negative ``last``.
    """
    if last < 0:
        raise ValueError(f"summary_last: expected an integer >= 0, got {last}")
    ordered = sorted({int(e) for e in epochs})
    return ordered if last == 0 else ordered[-last:]


def summary_table(results: pd.DataFrame, metric: str, last: int = 0) -> pd.DataFrame:
    """Mean and std per (intensity, mode), pooled over folds and evaluation epochs.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with at least the columns :data:`REQUIRED_COLUMNS`.
    metric : str
        ``"accuracy"`` or ``"iou"``.
    last : int
        Pool the last ``last`` evaluation epochs (0: all of them).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`, rows in the order of appearance
        (intensity first, then mode); ``pooled_epochs`` is a string such as
        ``"1,2,3"``.

    Raises
    ------
    ValueError
        Missing columns or no rows for ``metric``.
    """
    _check(results)
    rows = results[results["metric"] == metric]
    if rows.empty:
        raise ValueError(f"results table has no {metric!r} rows")
    out = []
    for (intensity, mode), group in rows.groupby(["intensity", "mode"], sort=False):
        epochs = pooled_epochs(group["epoch"].to_numpy(), last)
        pooled = group[group["epoch"].isin(epochs)]["value"].to_numpy(dtype=float)
        final = group[group["epoch"] == group["epoch"].max()]["value"].to_numpy(dtype=float)
        out.append(
            (
                float(intensity),
                str(mode),
                float(pooled.mean()),
                float(pooled.std()),
                float(final.mean()),
                float(final.std()),
                int(group["fold"].nunique()),
                ",".join(map(str, epochs)),
            )
        )
    return pd.DataFrame(out, columns=list(TABLE_COLUMNS))


def learning_curves(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std over folds of ``metric`` at every evaluation epoch.

    Returns
    -------
    pandas.DataFrame
        Columns ``intensity, mode, epoch, mean, std, folds``.
    """
    _check(results)
    rows = results[results["metric"] == metric]
    grouped = rows.groupby(["intensity", "mode", "epoch"], sort=False)["value"]
    frame = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "std": grouped.std(ddof=0),
            "folds": grouped.count(),
        }
    ).reset_index()
    return frame.sort_values(["intensity", "mode", "epoch"], ascending=[False, True, True])
