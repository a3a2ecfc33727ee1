"""Optimisation tables: Table 4 of Oala et al. (TMLR 2023), paired differences, ISP trajectories.

Definitions, for each (intensity, mode), on the task metric's rows only:

- **pooled** mean +- std: over every fold *and* every pooled evaluation
  epoch, one value per (fold, epoch); the pooled epochs are all evaluation
  epochs when ``last`` is 0, otherwise the last ``last`` of them (the paper
  reports "mean and std over folds and steps");
- **final** mean +- std: over folds at the last epoch only.

Standard deviations are population ones (``ddof=0``), as in the synthesis
tables. :func:`paired_differences` compares arms fold by fold (final epoch,
pooled epochs, whole learning curve) with a confidence interval from
:mod:`driftlab.stats.paired`; :func:`isp_trajectory_table` lists every ISP
parameter element of the learning arms at every epoch with its change
relative to its domain width, and :func:`isp_change_summary` condenses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from driftlab.stats.paired import paired_interval

REQUIRED_COLUMNS = ("intensity", "mode", "fold", "epoch", "metric", "value")

__all__ = [
    "COMPARISONS",
    "check_isp_record",
    "fold_scores",
    "isp_change_summary",
    "isp_trajectory_table",
    "learning_curves",
    "paired_differences",
    "pooled_epochs",
    "summary_table",
]

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


def _metric_rows(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of ``metric`` (ValueError: missing columns or no such rows)."""
    _check(results)
    rows = results[results["metric"] == metric]
    if rows.empty:
        raise ValueError(f"results table has no {metric!r} rows")
    return rows


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
    rows = _metric_rows(results, metric)
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


# -- paired differences between arms ------------------------------------------------------------

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("learned", "frozen", "learning the ISP, same fixed normalisation"),
    (
        "paper",
        "frozen-bn",
        "the paper's learned processor vs the frozen ISP, both batch-normalised",
    ),
    ("frozen-bn", "frozen", "batch normalisation alone, ISP frozen"),
    (
        "paper",
        "paper-frozen",
        "the paper's own comparison: learned + batch norm vs frozen, unnormalised",
    ),
)
"""``(A, B, what A - B measures)``; a comparison is made when both arms ran."""

DIFFERENCE_COLUMNS = (
    "intensity",
    "comparison",
    "a",
    "b",
    "statistic",
    "folds",
    "mean",
    "low",
    "high",
    "method",
    "confidence",
    "differences",
)


def fold_scores(results: pd.DataFrame, metric: str, last: int = 0) -> pd.DataFrame:
    """One score per (intensity, mode, fold): final epoch, pooled epochs, whole curve.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy table with at least the columns :data:`REQUIRED_COLUMNS`.
    metric : str
    last : int
        Pool the last ``last`` evaluation epochs of each fold (0: all).

    Returns
    -------
    pandas.DataFrame
        Columns ``intensity, mode, fold, final, pooled, curve``: the value at
        the last epoch, the mean over the pooled epochs and the mean over
        every evaluation epoch (the area under the learning curve, which
        also credits an arm that learns faster).

    Raises
    ------
    ValueError
        Missing columns or no rows for ``metric``.
    """
    rows = _metric_rows(results, metric)
    out = []
    for (intensity, mode, fold), group in rows.groupby(["intensity", "mode", "fold"], sort=False):
        epochs = pooled_epochs(group["epoch"].to_numpy(), last)
        final = group[group["epoch"] == group["epoch"].max()]["value"]
        pooled = group[group["epoch"].isin(epochs)]["value"]
        out.append(
            (
                float(intensity),
                str(mode),
                int(fold),
                float(final.mean()),
                float(pooled.mean()),
                float(group["value"].mean()),
            )
        )
    return pd.DataFrame(out, columns=["intensity", "mode", "fold", "final", "pooled", "curve"])


def paired_differences(
    results: pd.DataFrame,
    metric: str,
    *,
    last: int = 0,
    method: str = "t",
    confidence: float = 0.95,
    samples: int = 10000,
    seed: int = 0,
    comparisons: tuple[tuple[str, str, str], ...] = COMPARISONS,
) -> pd.DataFrame:
    """Per light level, paired per-fold differences A - B and their confidence interval.

    For every comparison whose two arms ran, the folds both arms finished
    are paired (same initial weights, batches and test items); the interval
    is :func:`driftlab.stats.paired.paired_interval` of the per-fold
    differences of the final-epoch score, of the pooled score and, when
    ``last`` pools fewer than all epochs, of the whole learning curve
    (:func:`fold_scores`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DIFFERENCE_COLUMNS`; ``comparison`` reads ``"A − B"``,
        ``statistic`` is ``"final"``, ``"pooled"`` or ``"curve"``,
        ``differences`` the per-fold values joined by ``","`` in fold order.
        Intensities in decreasing order.
    """
    scores = fold_scores(results, metric, last)
    statistics = ("final", "pooled") if last == 0 else ("final", "pooled", "curve")
    out = []
    for intensity in sorted(scores["intensity"].unique(), reverse=True):
        at = scores[scores["intensity"] == intensity]
        for a, b, _ in comparisons:
            left = at[at["mode"] == a].set_index("fold")
            right = at[at["mode"] == b].set_index("fold")
            folds = sorted(set(left.index) & set(right.index))
            if not folds:
                continue
            for statistic in statistics:
                d = left.loc[folds, statistic].to_numpy() - right.loc[folds, statistic].to_numpy()
                ci = paired_interval(
                    d, method=method, confidence=confidence, samples=samples, seed=seed
                )
                out.append(
                    (
                        float(intensity),
                        f"{a} − {b}",
                        a,
                        b,
                        statistic,
                        len(folds),
                        ci.mean,
                        ci.low,
                        ci.high,
                        method,
                        confidence,
                        ",".join(f"{v:.6g}" for v in d),
                    )
                )
    return pd.DataFrame(out, columns=list(DIFFERENCE_COLUMNS))


# -- ISP trajectories ---------------------------------------------------------------------------

TRAJECTORY_COLUMNS = (
    "intensity",
    "mode",
    "fold",
    "epoch",
    "param",
    "element",
    "value",
    "initial",
    "change",
    "width",
    "relative_change",
    "target",
    "relative_error",
)


def isp_trajectory_table(
    records: list[dict[str, Any]],
    widths: Mapping[float, Mapping[str, np.ndarray]],
    targets: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Every ISP parameter element of every learning cell at every epoch, as a tidy table.

    Parameters
    ----------
    records : list of dict
        Checked ``isp.json`` contents with a ``trajectory`` (see
        :func:`check_isp_record`).
    widths : mapping
        ``{intensity: {"stage.param": (shape) domain widths}}``; parameters
        without a domain (the paper's free convolutions) get NaN.
    targets : mapping, optional
        ``{"stage.param": value}`` that the true (mis-calibrated) camera
        calls for; others get NaN.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TRAJECTORY_COLUMNS`: ``change = value - initial``,
        ``relative_change = |change| / width`` and ``relative_error =
        |value - target| / width`` (NaN where the width is 0 or unknown);
        ``element`` is the flat (row-major) index within the parameter (0
        for scalars; element 5 of a 3x3 matrix is row 1, column 2).
    """
    targets = targets or {}
    frames = []
    for record in records:
        intensity = float(record["intensity"])
        initial = {k: np.asarray(v, np.float64) for k, v in record["initial"].items()}
        level = widths.get(intensity, {})
        for entry in record["trajectory"]:
            for key, start in initial.items():
                value = np.asarray(entry["values"][key], np.float64).ravel()
                start_flat = start.ravel()
                width = np.asarray(level.get(key, np.full(start.shape, np.nan)), np.float64)
                width = np.broadcast_to(width, start.shape).ravel()
                target = targets.get(key)
                target_flat = (
                    np.full(start_flat.shape, np.nan)
                    if target is None
                    else np.broadcast_to(np.asarray(target, np.float64), start.shape).ravel()
                )
                safe = np.where(width > 0, width, np.nan)
                change = value - start_flat
                frames.append(
                    pd.DataFrame(
                        {
                            "intensity": intensity,
                            "mode": str(record["mode"]),
                            "fold": int(record["fold"]),
                            "epoch": int(entry["epoch"]),
                            "param": key,
                            "element": np.arange(start_flat.size),
                            "value": value,
                            "initial": start_flat,
                            "change": change,
                            "width": width,
                            "relative_change": np.abs(change) / safe,
                            "target": target_flat,
                            "relative_error": np.abs(value - target_flat) / safe,
                        }
                    )
                )
    if not frames:
        return pd.DataFrame({c: [] for c in TRAJECTORY_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(TRAJECTORY_COLUMNS)]


def isp_change_summary(trajectory: pd.DataFrame) -> pd.DataFrame:
    """Per (intensity, mode, param, epoch): the largest element change, mean over folds.

    Returns
    -------
    pandas.DataFrame
        Columns ``intensity, mode, param, epoch, max_relative_change,
        max_abs_change, max_relative_error, folds``: for each fold the
        maximum over the parameter's elements, then the mean over folds
        (NaN where widths or targets are unknown).
    """
    columns = [
        "intensity",
        "mode",
        "param",
        "epoch",
        "max_relative_change",
        "max_abs_change",
        "max_relative_error",
        "folds",
    ]
    if trajectory.empty:
        return pd.DataFrame({c: [] for c in columns})
    frame = trajectory.assign(abs_change=trajectory["change"].abs())
    keys = ["intensity", "mode", "param", "epoch", "fold"]
    per_fold = frame.groupby(keys, sort=False).agg(
        rel=("relative_change", lambda s: s.max(skipna=False)),
        ab=("abs_change", "max"),
        err=("relative_error", lambda s: s.max(skipna=False)),
    )
    grouped = per_fold.reset_index().groupby(keys[:-1], sort=False)
    out = grouped.agg(
        max_relative_change=("rel", "mean"),
        max_abs_change=("ab", "mean"),
        max_relative_error=("err", "mean"),
        folds=("fold", "nunique"),
    ).reset_index()
    return out[columns]


def _is_number(value: object) -> bool:
    """A JSON number that float64 holds (an integer of 400 digits is refused, not an
    OverflowError later)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _numbers(value: object, where: str, depth: int = 0) -> None:
    """Refuse anything but a number or nested lists of numbers (JSON booleans included)."""
    if _is_number(value):
        return
    if isinstance(value, list) and depth < 8:
        for item in value:
            _numbers(item, where, depth + 1)
        return
    raise ValueError(f"{where} is not an array of numbers")


def check_isp_record(
    data: object,
    where: str,
    *,
    intensity: float,
    mode: str,
    fold: int,
    epochs: int,
    parameters: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, Any]:
    """Check the content of one ``isp.json`` before it is summarised.

    Parameters
    ----------
    data : object
        The parsed JSON.
    where : str
        Names the file in errors.
    intensity, mode, fold : the cell it must belong to.
    epochs : int
        Training epochs: a learning cell's trajectory holds epochs 0..epochs.
    parameters : mapping of str to tuple of int, optional
        The ``"stage.param"`` names and shapes the cell's ISP has (known for
        the arms built on the base pipeline); None accepts any names as long
        as they are the same everywhere in the record.

    Returns
    -------
    dict
        ``data``, known to hold finite values of consistent shapes.

    Raises
    ------
    ValueError
        Missing or extra keys, a field of the wrong type (``intensity`` not a
        number, ``mode`` not a string, ``fold`` or an epoch not an integer,
        a parameter that is not a number or nested lists of numbers),
        another cell's identity, a trajectory with missing epochs, parameters
        whose names or shapes change or differ from ``parameters``, or
        non-finite values; the message names ``where``.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object")
    for key in ("intensity", "mode", "fold", "initial", "final"):
        if key not in data:
            raise ValueError(f"{where}: missing {key!r}")
    extra = sorted(set(data) - {"intensity", "mode", "fold", "initial", "final", "trajectory"})
    if extra:
        raise ValueError(f"{where}: unexpected key(s) {', '.join(map(repr, extra))}")
    if not _is_number(data["intensity"]):
        raise ValueError(f"{where}: intensity must be a number, got {data['intensity']!r}")
    if not isinstance(data["mode"], str):
        raise ValueError(f"{where}: mode must be a string, got {data['mode']!r}")
    if not isinstance(data["fold"], int) or isinstance(data["fold"], bool):
        raise ValueError(f"{where}: fold must be an integer, got {data['fold']!r}")
    if (float(data["intensity"]), data["mode"], data["fold"]) != (intensity, mode, fold):
        raise ValueError(
            f"{where}: belongs to intensity {data['intensity']}, mode {data['mode']!r}, fold "
            f"{data['fold']}, not to ({intensity:g}, {mode!r}, {fold})"
        )

    def values(mapping: object, label: str) -> dict[str, np.ndarray]:
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(f"{where}: {label} must be a non-empty object of parameters")
        out = {}
        for name, value in mapping.items():
            _numbers(value, f"{where}: {label}[{name!r}]")
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):  # ragged nested lists
                raise ValueError(f"{where}: {label}[{name!r}] is not an array of numbers") from None
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{where}: {label}[{name!r}] holds NaN or Inf")
            out[name] = array
        return out

    initial = values(data["initial"], "initial")
    shapes = {k: v.shape for k, v in initial.items()}
    if parameters is not None and shapes != {k: tuple(v) for k, v in parameters.items()}:
        raise ValueError(
            f"{where}: initial holds parameters {_describe_shapes(shapes)}, but this cell's ISP "
            f"has {_describe_shapes(parameters)}"
        )

    def same(found: dict[str, np.ndarray], label: str) -> None:
        if {k: v.shape for k, v in found.items()} != shapes:
            raise ValueError(f"{where}: {label} holds other parameters or shapes than 'initial'")

    same(values(data["final"], "final"), "final")
    if "trajectory" in data:
        trajectory = data["trajectory"]
        if not isinstance(trajectory, list):
            raise ValueError(f"{where}: trajectory must be a list")
        for k, entry in enumerate(trajectory):
            if not isinstance(entry, dict) or set(entry) != {"epoch", "values"}:
                raise ValueError(
                    f"{where}: trajectory entry {k} must be an object with 'epoch' and 'values'"
                )
            epoch = entry["epoch"]
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ValueError(f"{where}: trajectory entry {k}: epoch must be an integer")
        found = [entry["epoch"] for entry in trajectory]
        if found != list(range(epochs + 1)):
            raise ValueError(f"{where}: trajectory epochs {found}, expected 0..{epochs}")
        for entry in trajectory:
            label = f"epoch {entry['epoch']}"
            same(values(entry["values"], label), label)
    return data


def _describe_shapes(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {tuple(v)}" for k, v in sorted(shapes.items())) or "none"
