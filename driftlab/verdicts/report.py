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
from driftlab.engine.report import Definitions, Figure, KeyValues, Paragraph, Report, Section, Table
from driftlab.io.images import view_to_uint8
from driftlab.pipeline import build_static
from driftlab.verdicts.drift import corruption_matrix, isp_matrix

__all__ = ["CITATION", "build_report", "heatmap", "worst_pair"]

CITATION = (
    'Oala, Aversa et al., "Data Models for Dataset Drift Controls in Machine Learning With '
    'Optical Images", TMLR 2023'
)


def heatmap(
    mean: pd.DataFrame, std: pd.DataFrame, path: Path, *, title: str, xlabel: str, metric: str
) -> Path:
    """Annotated heatmap of ``mean`` (rows x columns) with ``+-std`` in each cell.

    Parameters
    ----------
    mean, std : pandas.DataFrame
        Same index and columns; values in [0, 1].
    path : Path
        PNG to write (atomically).
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
                ax.text(
                    j, i, f"{m:.2f}\n±{s:.2f}", ha="center", va="center", fontsize=6, color=colour
                )
    fig.colorbar(image, ax=ax, label=metric, fraction=0.03)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def worst_pair(results: pd.DataFrame) -> tuple[str, str, float, float] | None:
    """The off-diagonal (train, test) pipeline pair with the largest drop from its diagonal.

    Returns
    -------
    tuple or None
        ``(train, test, score, drop)`` where ``drop = diagonal(train) -
        score(train, test)`` (means over folds); None when no train pipeline
        has both a diagonal and an off-diagonal cell.
    """
    mean, _ = isp_matrix(results)
    best: tuple[str, str, float, float] | None = None
    for train in mean.index:
        if train not in mean.columns:
            continue
        diagonal = float(mean.at[train, train])
        for test in mean.columns:
            value = float(mean.at[train, test])
            if train == test or not (np.isfinite(value) and np.isfinite(diagonal)):
                continue
            drop = diagonal - value
            if best is None or drop > best[3]:
                best = (str(train), str(test), value, drop)
    return best


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


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if np.isfinite(value) else "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def _matrix_table(mean: pd.DataFrame, std: pd.DataFrame, corner: str) -> Table:
    rows = [
        [str(idx), *(f"{mean.at[idx, c]:.3f} ± {std.at[idx, c]:.3f}" for c in mean.columns)]
        for idx in mean.index
    ]
    return Table([corner, *map(str, mean.columns)], rows)


PER_PIPELINE_COLUMNS = (
    "train pipeline",
    "diagonal",
    "ISP mean",
    "ISP off-diagonal mean",
    "ISP drop",
    "corruption mean",
    "corruption drop",
)

DEFINITIONS = (
    ("diagonal", "score of a model tested on views of the pipeline it was trained on"),
    (
        "ISP drop",
        "diagonal minus the mean score over the other test pipelines (a positive drop is a loss)",
    ),
    (
        "corruption drop",
        "diagonal minus the mean score over every corruption x severity of the training "
        "pipeline's own test views (identity excluded)",
    ),
    ("ratio", "mean corruption drop divided by mean ISP drop"),
    (
        "largest ISP drop",
        "the (train, test) pipeline pair whose score falls furthest below the train "
        "pipeline's diagonal",
    ),
)


def build_report(run_dir: Path, results: pd.DataFrame, summary: dict[str, Any], plan) -> Report:
    """Write ``figures/*.png`` into ``run_dir`` and describe the report.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    results : pandas.DataFrame
        Tidy results table (columns of :data:`driftlab.synthesis.cells.RESULT_COLUMNS`).
    summary : dict
        Output of :func:`driftlab.verdicts.drift.summarize`.
    plan : SynthesisPlan
        Used to render sample views of the pair with the largest drop.

    Returns
    -------
    Report
    """
    figures = run_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    metric = summary["metric"]
    isp_mean, isp_std = isp_matrix(results)
    heatmap(
        isp_mean, isp_std, figures / "isp_heatmap.png",
        title=f"ISP drift: {metric} (mean ± std over {summary['folds']} folds)",
        xlabel="test pipeline", metric=metric,
    )  # fmt: skip
    corr_mean, corr_std = corruption_matrix(results)
    if not corr_mean.empty:
        heatmap(
            corr_mean, corr_std, figures / "corruption_heatmap.png",
            title=f"Corruptions of the training view: {metric}",
            xlabel="corruption@severity", metric=metric,
        )  # fmt: skip
    pair = worst_pair(results)
    if pair is not None:
        _pair_figure(plan, pair[0], pair[1], figures / "worst_pair.png")
    headline = [
        ("dataset", plan.dataset_spec.name),
        ("task model", plan.model.name),
        ("metric", metric),
        ("folds", str(summary["folds"])),
        ("mean diagonal (train = test pipeline)", _fmt(summary["mean_diagonal"])),
        ("mean drop under ISP drift", _fmt(summary["mean_isp_drop"])),
        ("mean drop under corruptions", _fmt(summary.get("mean_corruption_drop"))),
        ("ratio corruption drop / ISP drop", _fmt(summary.get("drop_ratio_corruption_over_isp"))),
        ("top-3 train pipelines, ISP drift", _fmt(summary["ranking_isp"][:3])),
        ("top-3 train pipelines, corruptions", _fmt(summary.get("top3_corruption"))),
        ("overlap of the two top-3", _fmt(summary.get("top3_overlap"))),
    ]
    per_rows = [
        [name, *(_fmt(values.get(k)) for k in (
            "diagonal", "isp_mean", "isp_off_diagonal_mean", "isp_drop",
            "corruption_mean", "corruption_drop",
        ))]
        for name, values in summary["per_train_pipeline"].items()
    ]  # fmt: skip
    sections = [
        Section("Headline", [KeyValues(headline), Definitions(DEFINITIONS)]),
        Section(
            "Per train pipeline",
            [Table(PER_PIPELINE_COLUMNS, per_rows)],
        ),
        Section(
            f"ISP drift ({metric}, mean ± std over folds)",
            [
                _matrix_table(isp_mean, isp_std, "train \\ test"),
                Figure("figures/isp_heatmap.png", "Train x test pipeline scores"),
            ],
        ),
    ]
    if not corr_mean.empty:
        sections.append(
            Section(
                "Corruptions",
                [
                    _matrix_table(corr_mean, corr_std, "train \\ corruption@severity"),
                    Figure("figures/corruption_heatmap.png", "Scores under corruptions"),
                ],
            )
        )
    if pair is not None:
        sections.append(
            Section(
                "Largest ISP drop",
                [
                    Paragraph(
                        f"Trained on `{pair[0]}`, tested on `{pair[1]}`: {metric} "
                        f"{pair[2]:.3f}, {pair[3]:.3f} below its diagonal."
                    ),
                    Figure("figures/worst_pair.png", "Training (top) and test (bottom) views"),
                ],
            )
        )
    return Report(
        title=f"Drift synthesis report: {plan.dataset_spec.name}",
        intro=[
            Paragraph(
                "A task model is trained on the views of one ISP pipeline and tested on the "
                "views of every pipeline (ISP drift) and on common corruptions of its own views."
            )
        ],
        sections=sections,
        files=["results.csv", "summary.json", "config.toml", "manifest.json"],
        citation=CITATION,
    )
