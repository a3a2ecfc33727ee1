"""Figures and the report of a synthesis run, made from its tables.

The report is a :class:`driftlab.engine.report.Report` (rendered to Markdown
and a self-contained HTML page by the engine's one report writer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from driftlab.atomic import atomic_path
from driftlab.engine.report import Figure, KeyValues, Notice, Paragraph, Report, Section, Table
from driftlab.io.images import view_to_uint8
from driftlab.pipeline import build_static
from driftlab.verdicts.drift import drift_verdict
from driftlab.verdicts.headline import (
    chance_warning,
    explanation,
    fmt_interval,
    fmt_value,
    level_text,
    overlap_text,
    ratio_text,
    top_text,
    verdict_settings,
)

__all__ = ["CITATION", "build_report", "heatmap", "severity_figure"]

CITATION = (
    'Oala, Aversa et al., "Data Models for Dataset Drift Controls in Machine Learning With '
    'Optical Images", TMLR 2023'
)


def heatmap(
    mean: pd.DataFrame,
    std: pd.DataFrame,
    path: Path,
    *,
    title: str,
    xlabel: str,
    metric: str,
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
) -> Path:
    """Annotated heatmap of ``mean`` (rows x columns) with its interval (or ``+-std``) per cell.

    Parameters
    ----------
    mean, std : pandas.DataFrame
        Same index and columns; values in [0, 1].
    path : Path
        PNG to write (atomically).
    low, high : pandas.DataFrame, optional
        Interval ends, same index and columns; printed instead of the std.
    """
    rows, cols = mean.shape
    fig, ax = plt.subplots(figsize=(max(6, 0.85 * cols + 2.5), max(4, 0.55 * rows + 1.8)))
    image = ax.imshow(mean.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(cols), labels=list(mean.columns), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), labels=list(mean.index), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("train pipeline")
    ax.set_title(title, fontsize=10)
    for i in range(rows):
        for j in range(cols):
            m, s = mean.iat[i, j], std.iat[i, j]
            if np.isfinite(m):
                colour = "black" if m > 0.6 else "white"
                text = f"{m:.2f}\n±{s:.2f}"
                if low is not None and high is not None and np.isfinite(low.iat[i, j]):
                    text = f"{m:.2f}\n[{low.iat[i, j]:.2f},{high.iat[i, j]:.2f}]"
                ax.text(j, i, text, ha="center", va="center", fontsize=5.5, color=colour)
    fig.colorbar(image, ax=ax, label=metric, fraction=0.03)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _pair_figure(plan, train: str, test: str, path: Path, n: int = 4) -> Path:
    specs = {s.name: s for s in plan.pipelines}
    pipes = [build_static(specs[name], plan.camera, plan.registry) for name in (train, test)]
    count = min(n, len(plan.dataset))
    fig, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.8), squeeze=False)
    for j in range(count):
        sample = plan.dataset[j]
        for i, pipe in enumerate(pipes):
            ax = axes[i, j]
            ax.imshow(view_to_uint8(pipe(sample.raw)))
            ax.axis("off")
            if j == 0:
                ax.set_title(
                    ("train: " if i == 0 else "test: ") + pipe.name, fontsize=8, loc="left"
                )
    fig.suptitle(f"Largest ISP drop: trained on {train}, tested on {test}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _pivot(matrix: pd.DataFrame, kind: str) -> dict[str, pd.DataFrame]:
    """Train x condition tables of ``mean``, ``std``, ``low``, ``high`` for one test kind."""
    part = matrix[matrix["test_kind"] == kind].copy()
    part["column"] = [
        name if kind == "isp" or sev == 0 else f"{name}@{sev}"
        for name, sev in zip(part["test_condition"], part["severity"], strict=True)
    ]
    rows = list(dict.fromkeys(part["train_pipeline"]))
    cols = list(dict.fromkeys(part["column"]))
    return {
        field: part.pivot(index="train_pipeline", columns="column", values=field).reindex(
            index=rows, columns=cols
        )
        for field in ("mean", "std", "low", "high")
    }


def _matrix_table(tables: dict[str, pd.DataFrame], corner: str) -> Table:
    mean, low, high = tables["mean"], tables["low"], tables["high"]
    rows = []
    for idx in mean.index:
        cells = []
        for col in mean.columns:
            m, lo, hi = mean.at[idx, col], low.at[idx, col], high.at[idx, col]
            interval = [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None
            cells.append(fmt_interval(m if np.isfinite(m) else None, interval, 2))
        rows.append([str(idx), *cells])
    return Table([corner, *map(str, mean.columns)], rows)


def severity_figure(summary: dict[str, Any], path: Path, *, metric: str) -> Path | None:
    """Drop vs severity, one panel per corruption, mean over train pipelines with intervals.

    Parameters
    ----------
    summary : dict
        With ``severity_drops`` (:func:`driftlab.verdicts.drift.summarize`).
    path : Path
        PNG to write (atomically).

    Returns
    -------
    Path or None
        None when no corruption has a severity.
    """
    drops = {
        name: sorted((int(sev), entry) for sev, entry in by_sev.items() if int(sev) > 0)
        for name, by_sev in (summary.get("severity_drops") or {}).items()
    }
    drops = {name: points for name, points in drops.items() if points}
    if not drops:
        return None
    n = len(drops)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols + 0.6, 2.3 * rows + 0.6), squeeze=False, sharey=True
    )
    for ax, (name, points) in zip(axes.ravel(), drops.items(), strict=False):
        sev = np.array([p[0] for p in points])
        value = np.array([np.nan if p[1]["drop"] is None else p[1]["drop"] for p in points])
        ax.plot(sev, value, "o-", color="tab:red")
        ivs = [p[1].get("interval") for p in points]
        if all(iv is not None for iv in ivs):
            lo = np.array([iv[0] for iv in ivs])
            hi = np.array([iv[1] for iv in ivs])
            ax.fill_between(sev, lo, hi, color="tab:red", alpha=0.2, linewidth=0)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(1, 6))
        ax.set_xlabel("severity", fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} drop", fontsize=8)
    fig.suptitle(
        "Drop from the diagonal vs corruption severity (mean over train pipelines)", fontsize=9
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


PER_PIPELINE = (
    ("diagonal", "diagonal"),
    ("ISP drop", "isp_drop"),
    ("corruption drop{at}", "corruption_drop"),
    ("corruption drop, all severities", "corruption_drop_all_severities"),
)


def _per_pipeline_table(summary: dict[str, Any], show_rankings: bool) -> Table:
    severity = summary.get("corruption_severity")
    at = f" (severity {severity})" if severity is not None else ""
    shown = [
        (label, key) for label, key in PER_PIPELINE if severity is not None or "all" not in key
    ]
    columns = ["train pipeline", *(label.format(at=at) for label, _ in shown)]
    k = verdict_settings(summary).top_k
    probability = summary.get(f"top{k}_probability") if show_rankings else None
    if probability:
        columns += [f"top-{k} P, {kind}" for kind in probability]
    rows = []
    for name, values in summary["per_train_pipeline"].items():
        ivs = values.get("intervals") or {}
        row = [name] + [fmt_interval(values.get(k), ivs.get(k)) for _, k in shown]
        if probability:
            row += [fmt_value(p.get(name), 2) for p in probability.values()]
        rows.append(row)
    return Table(columns, rows)


def _headline_items(summary: dict[str, Any], plan, at_chance: bool) -> list[tuple[str, str]]:
    iv = summary.get("intervals") or {}
    severity = summary.get("corruption_severity")
    items = [
        ("dataset", plan.dataset_spec.name),
        ("task model", plan.model.name),
        ("metric", summary["metric"]),
        ("folds", str(summary["folds"])),
        ("test items per fold", ", ".join(map(str, summary.get("test_items_per_fold") or []))
         or "n/a"),
        ("chance level (best constant prediction)", fmt_value(summary.get("chance_level"))),
        ("mean diagonal (train = test pipeline)",
         fmt_interval(summary["mean_diagonal"], iv.get("mean_diagonal"))),
        ("mean drop under ISP drift",
         fmt_interval(summary["mean_isp_drop"], iv.get("mean_isp_drop"))),
    ]  # fmt: skip
    if summary.get("mean_corruption_drop") is not None:
        label = f"at severity {severity}" if severity is not None else "all severities"
        items.append((
            f"mean drop under corruptions, {label}",
            fmt_interval(summary["mean_corruption_drop"], iv.get("mean_corruption_drop")),
        ))  # fmt: skip
        if severity is not None:
            items.append((
                "mean drop under corruptions, all severities",
                fmt_interval(summary.get("mean_corruption_drop_all_severities"),
                             iv.get("mean_corruption_drop_all_severities")),
            ))  # fmt: skip
        items.append(("ratio corruption drop / ISP drop", ratio_text(summary)))
    if not at_chance:
        k = verdict_settings(summary).top_k
        items.append((f"top-{k} train pipelines, ISP drift", top_text(summary, "isp")))
        if summary.get("mean_corruption_drop") is not None:
            items.append((f"top-{k} train pipelines, corruptions", top_text(summary, "corruption")))
            items.append((f"in both top-{k} lists", overlap_text(summary)))
    return items


def build_report(
    run_dir: Path,
    results: pd.DataFrame,
    summary: dict[str, Any],
    plan,
    *,
    matrix: pd.DataFrame | None = None,
    title: str | None = None,
    protocol: str | None = None,
) -> Report:
    """Write ``figures/*.png`` into ``run_dir`` and describe the report.

    The report opens with a warning when the model is not above chance (and
    then leaves out rankings and the worst pair), explains its terms in one
    paragraph, and prints every score with its interval: ``0.83 [0.80, 0.86]``.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    results : pandas.DataFrame
        Tidy results table (:data:`driftlab.verdicts.drift.RESULT_COLUMNS`).
    summary : dict
        :func:`driftlab.verdicts.drift.summarize` output.
    plan
        Has ``dataset_spec``, ``model``, ``dataset``, ``pipelines``,
        ``camera`` and ``registry`` (renders sample views of the worst pair).
    matrix : pandas.DataFrame, optional
        :attr:`driftlab.verdicts.drift.DriftVerdict.matrix`; computed from
        ``results`` without intervals when not given.
    title : str, optional
        Report title (default ``"Drift synthesis report: DATASET"``).
    protocol : str, optional
        The opening paragraph saying what was done (default: the synthesis
        protocol; an audit says the model was evaluated as given).

    Returns
    -------
    Report
    """
    if matrix is None:
        matrix = drift_verdict(results).matrix
    figures = run_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    metric = summary["metric"]
    level = level_text(verdict_settings(summary).level)
    warning = chance_warning(summary)
    at_chance = warning is not None
    isp = _pivot(matrix, "isp")
    heatmap(
        isp["mean"], isp["std"], figures / "isp_heatmap.png",
        title=f"ISP drift: {metric} over {summary['folds']} folds (mean [{level} interval])",
        xlabel="test pipeline", metric=metric, low=isp["low"], high=isp["high"],
    )  # fmt: skip
    corr = _pivot(matrix, "corruption")
    if not corr["mean"].empty:
        heatmap(
            corr["mean"], corr["std"], figures / "corruption_heatmap.png",
            title=f"Corruptions of the training view: {metric}",
            xlabel="corruption@severity", metric=metric, low=corr["low"], high=corr["high"],
        )  # fmt: skip
    severity = severity_figure(summary, figures / "severity_drops.png", metric=metric)
    pair = None if at_chance else summary.get("worst_pair")
    if pair:
        _pair_figure(plan, pair["train"], pair["test"], figures / "worst_pair.png")
    intro: list[Any] = []
    if warning:
        intro.append(Notice(warning))
    intro += [
        Paragraph(
            protocol
            or "A task model is trained on the views of one ISP pipeline and tested on the "
            "views of every pipeline (ISP drift) and on common corruptions of its own views."
        ),
        Paragraph(explanation(summary)),
    ]
    sections = [
        Section("Headline", [KeyValues(_headline_items(summary, plan, at_chance))]),
        Section("Per train pipeline", [_per_pipeline_table(summary, not at_chance)]),
        Section(
            f"ISP drift ({metric}, mean [{level} interval] over folds and test items)",
            [
                _matrix_table(isp, "train \\ test"),
                Figure("figures/isp_heatmap.png", "Train x test pipeline scores"),
            ],
        ),
    ]
    if not corr["mean"].empty:
        blocks: list[Any] = [
            _matrix_table(corr, "train \\ corruption@severity"),
            Figure("figures/corruption_heatmap.png", "Scores under corruptions"),
        ]
        if severity is not None:
            blocks.append(
                Figure(
                    "figures/severity_drops.png",
                    "Drop from the diagonal against severity, one panel per corruption "
                    f"(shaded: {level} interval)",
                )
            )
        sections.append(Section("Corruptions", blocks))
    if pair:
        sections.append(
            Section(
                "Largest ISP drop (worst pair)",
                [
                    Paragraph(
                        f"Trained on `{pair['train']}`, tested on `{pair['test']}`: {metric} "
                        f"{fmt_value(pair['score'])}, "
                        f"{fmt_interval(pair['drop'], pair.get('drop_interval'))} below its "
                        "diagonal."
                    ),
                    Figure("figures/worst_pair.png", "Training (top) and test (bottom) views"),
                ],
            )
        )
    boot = summary.get("bootstrap") or {}
    method = (
        f"Intervals: {boot.get('method', '')}; {boot.get('resamples', 0)} resamples, seed "
        f'{boot.get("seed", 0)}. Sources: Efron and Tibshirani, "An Introduction to the '
        'Bootstrap", 1993; Davison and Hinkley, "Bootstrap Methods and their Application", '
        "1997."
    )
    if not boot.get("resamples"):
        reason = (summary.get("reasons") or {}).get("intervals", "")
        method = f"No intervals: {reason}."
    sections.append(Section("Method", [Paragraph(method)]))
    return Report(
        title=title or f"Drift synthesis report: {plan.dataset_spec.name}",
        intro=intro,
        sections=sections,
        files=["results.csv", "matrix.csv", "summary.json", "config.toml", "manifest.json"],
        citation=CITATION,
    )
