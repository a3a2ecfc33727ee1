"""Figures (learning curves, ISP trajectories) and the report of an optimisation run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from driftlab.atomic import atomic_path
from driftlab.engine.report import Figure, KeyValues, Paragraph, Report, Section, Table

__all__ = [
    "CITATION",
    "PAPER_CODE",
    "PAPER_TABLE4",
    "build_report",
    "curve_figure",
    "trajectory_figure",
]

CITATION = (
    'Oala, Aversa et al., "Data Models for Dataset Drift Controls in Machine Learning With '
    'Optical Images", TMLR 2023'
)

# Oala et al., TMLR 2023, Table 4 (mean over folds and steps), as quoted in DESIGN.md section 5
PAPER_TABLE4 = (
    "Paper (Oala et al., TMLR 2023, Table 4): Raw-Microscopy accuracy learned 0.75 ± 0.09 vs "
    "frozen 0.54 ± 0.21 at low intensity, 0.78 ± 0.08 vs 0.67 ± 0.14 at high; Raw-Drone IoU "
    "learned 0.59 vs frozen 0.59 (low), 0.74 vs 0.71 (high); trained directly on raw 0.75 "
    "(microscopy) and 0.60 (drone)."
)
PAPER_CODE = "github.com/aiaudit-org/raw2logit (processing/pipeline_torch.py, train.py, model.py)"
MODE_COLOURS = {
    "frozen": "tab:blue",
    "frozen-bn": "tab:cyan",
    "learned": "tab:orange",
    "paper": "tab:red",
    "paper-frozen": "tab:pink",
    "raw": "tab:green",
}


def curve_figure(curves: pd.DataFrame, path: Path, *, metric: str) -> Path:
    """One panel per intensity: mean learning curve per mode with a +-std band over folds.

    Parameters
    ----------
    curves : pandas.DataFrame
        Output of :func:`driftlab.optimize.summary.learning_curves`.
    path : Path
        PNG written atomically.
    metric : str
        Y-axis label.

    Returns
    -------
    Path
    """
    intensities = sorted(curves["intensity"].unique(), reverse=True)
    fig, axes = plt.subplots(
        1, len(intensities), figsize=(4.2 * len(intensities), 3.4), squeeze=False, sharey=True
    )
    for ax, intensity in zip(axes[0], intensities, strict=True):
        sub = curves[curves["intensity"] == intensity]
        for mode, group in sub.groupby("mode", sort=False):
            group = group.sort_values("epoch")
            colour = MODE_COLOURS.get(str(mode))
            ax.plot(group["epoch"], group["mean"], marker="o", ms=3, label=str(mode), color=colour)
            ax.fill_between(
                group["epoch"],
                group["mean"] - group["std"],
                group["mean"] + group["std"],
                alpha=0.2,
                color=colour,
            )
        ax.set_title(f"intensity {intensity:g}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"test {metric} (mean ± std over folds)")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _table_text(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "intensity": [f"{v:g}" for v in table["intensity"]],
            "mode": table["mode"],
            "mean ± std (folds × pooled epochs)": [
                f"{m:.3f} ± {s:.3f}"
                for m, s in zip(table["pooled_mean"], table["pooled_std"], strict=True)
            ],
            "final epoch mean ± std (folds)": [
                f"{m:.3f} ± {s:.3f}"
                for m, s in zip(table["final_mean"], table["final_std"], strict=True)
            ],
            "folds": table["folds"],
            "pooled epochs": table["pooled_epochs"],
        }
    )
    return out


def trajectory_figure(
    summary: pd.DataFrame, path: Path, *, column: str = "max_relative_change", ylabel: str = ""
) -> Path | None:
    """One panel per (learning arm, intensity): a line per ISP parameter over epochs.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`driftlab.optimize.summary.isp_change_summary`.
    path : Path
        PNG written atomically.
    column : str
        ``max_relative_change`` (|change| / domain width) or
        ``max_relative_error`` (|value - true value| / domain width).
    ylabel : str

    Returns
    -------
    Path or None
        None when no parameter has a finite value in ``column`` (nothing drawn).
    """
    data = summary[np.isfinite(summary[column].to_numpy(dtype=float))]
    if data.empty:
        return None
    modes = [m for m in MODE_COLOURS if m in set(data["mode"])]
    intensities = sorted(data["intensity"].unique(), reverse=True)
    fig, axes = plt.subplots(
        len(modes),
        len(intensities),
        figsize=(4.4 * len(intensities), 3.2 * len(modes)),
        squeeze=False,
        sharex=True,
    )
    params = list(dict.fromkeys(data["param"]))
    colours = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(params)}
    for row, mode in enumerate(modes):
        for col, intensity in enumerate(intensities):
            ax = axes[row, col]
            sub = data[(data["mode"] == mode) & (data["intensity"] == intensity)]
            for param, group in sub.groupby("param", sort=False):
                group = group.sort_values("epoch")
                ax.plot(
                    group["epoch"], group[column], marker="o", ms=3, label=str(param),
                    color=colours[param],
                )  # fmt: skip
            ax.set_title(f"{mode} @ intensity {intensity:g}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == len(modes) - 1:
                ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel(ylabel or column)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.ravel()[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=min(4, len(labels)))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.06 * ((len(labels) + 3) // 4) / len(modes)))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _difference_rows(differences: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in differences.itertuples(index=False):
        interval = f"[{_fmt(r.low)}, {_fmt(r.high)}]" if np.isfinite(r.low) else "n/a (one fold)"
        rows.append(
            [f"{r.intensity:g}", r.comparison, r.statistic, _fmt(r.mean), interval,
             str(r.folds), r.differences]
        )  # fmt: skip
    return rows


def _verdicts(differences: pd.DataFrame, confidence: float) -> list[str]:
    """One sentence per (intensity, comparison) on the final-epoch difference."""
    lines = []
    final = differences[differences["statistic"] == "final"]
    for r in final.itertuples(index=False):
        if not np.isfinite(r.low):
            verdict = "no interval with one fold"
        elif r.low > 0:
            verdict = f"{r.a} better: the {100 * confidence:g}% interval lies above 0"
        elif r.high < 0:
            verdict = f"{r.b} better: the {100 * confidence:g}% interval lies below 0"
        else:
            verdict = "no evidence of a difference: the interval contains 0"
        lines.append(
            f"intensity {r.intensity:g}, {r.comparison}: {_fmt(r.mean)} "
            f"[{_fmt(r.low)}, {_fmt(r.high)}] over {r.folds} folds, {verdict}."
        )
    return lines


def _change_rows(summary: pd.DataFrame) -> list[list[str]]:
    if summary.empty:
        return []
    last = summary[
        summary["epoch"] == summary.groupby(["intensity", "mode"])["epoch"].transform("max")
    ]
    rows = []
    for r in last.itertuples(index=False):
        rel = (
            "n/a (no domain)"
            if not np.isfinite(r.max_relative_change)
            else f"{r.max_relative_change:.3f}"
        )
        err = "" if not np.isfinite(r.max_relative_error) else f"{r.max_relative_error:.3f}"
        rows.append([f"{r.intensity:g}", r.mode, r.param, rel, f"{r.max_abs_change:.4g}", err])
    return rows


def build_report(
    run_dir: Path,
    *,
    table: pd.DataFrame,
    curves: pd.DataFrame,
    differences: pd.DataFrame,
    changes: pd.DataFrame,
    metric: str,
    header: dict[str, Any],
    interval: dict[str, Any],
    calibration: list[list[str]] | None = None,
) -> Report:
    """Write the figures and describe the report.

    Parameters
    ----------
    run_dir : Path
    table : pandas.DataFrame
        :func:`driftlab.optimize.summary.summary_table`.
    curves : pandas.DataFrame
        :func:`driftlab.optimize.summary.learning_curves`.
    differences : pandas.DataFrame
        :func:`driftlab.optimize.summary.paired_differences`.
    changes : pandas.DataFrame
        :func:`driftlab.optimize.summary.isp_change_summary`.
    metric : str
    header : dict
        Quantities listed at the top (dataset, model, pipeline, folds ...).
    interval : dict
        ``method`` (text with its source), ``confidence``, ``why`` (the
        choice explained).
    calibration : list of rows, optional
        Under mis-calibration: ``[param, profile, true, inside domain]`` rows.

    Returns
    -------
    Report
        Figures written: ``figures/learning_curves.png`` and, when ISP
        parameters learned, ``figures/isp_trajectory.png`` and, under
        mis-calibration, ``figures/isp_calibration_error.png``.
    """
    figures = run_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    curve_figure(curves, figures / "learning_curves.png", metric=metric)
    text = _table_text(table)
    sections = [
        Section(
            f"Test {metric}",
            [
                Table(
                    list(text.columns),
                    [[str(v) for v in row] for row in text.itertuples(index=False)],
                ),
                Paragraph(PAPER_TABLE4),
                Figure("figures/learning_curves.png", "Learning curves (mean ± std over folds)"),
            ],
        )
    ]
    confidence = float(interval["confidence"])
    if not differences.empty:
        blocks: list[Any] = [
            Paragraph(
                f"Per fold, arm A minus arm B on the same test items, from the same initial "
                f"task-model weights and batches; mean and {100 * confidence:g}% interval by "
                f"{interval['method']}. {interval['why']} `final`: the last epoch; `pooled`: "
                f"the mean over the pooled evaluation epochs of each fold; `curve`: the mean "
                f"over all its evaluation epochs (credits learning faster)."
            ),
            Table(
                [
                    "intensity",
                    "A − B",
                    "statistic",
                    "mean",
                    f"{100 * confidence:g}% interval",
                    "folds",
                    "per-fold differences",
                ],
                _difference_rows(differences),
            ),
        ]
        blocks += [Paragraph(line) for line in _verdicts(differences, confidence)]
        sections.append(Section("Paired differences between arms", blocks))
    rows = _change_rows(changes)
    if rows:
        blocks = [
            Paragraph(
                "How far each ISP parameter moved by the last epoch: for each fold the largest "
                "|final − initial| over the parameter's elements, divided by that element's "
                "domain width (the domains the learned arm is projected into), mean over folds; "
                "the paper arm is not projected and may leave them. `error / width`: distance "
                "to the value the true (mis-calibrated) camera calls for. Every element at "
                "every epoch is in `isp_trajectory.csv`."
            ),
            Table(
                ["intensity", "arm", "parameter", "|change| / width", "|change|", "error / width"],
                rows,
            ),
        ]
        if trajectory_figure(
            changes, figures / "isp_trajectory.png", ylabel="max |change| / domain width"
        ):
            blocks.append(
                Figure(
                    "figures/isp_trajectory.png",
                    "ISP parameters over epochs: largest |change| / domain width (mean over folds)",
                )
            )
        if calibration and trajectory_figure(
            changes,
            figures / "isp_calibration_error.png",
            column="max_relative_error",
            ylabel="max |value − true| / width",
        ):
            blocks.append(
                Figure(
                    "figures/isp_calibration_error.png",
                    "Distance to the true camera's values / domain width (mean over folds)",
                )
            )
        sections.append(Section("Learned ISP parameters", blocks))
    if calibration:
        sections.append(
            Section(
                "Mis-calibrated camera",
                [
                    Paragraph(
                        "Every mosaic (training and test items, every light level) is rendered "
                        "as the camera below would have captured it; the ISP starts from the "
                        "profile. A learned ISP can correct what lies inside its domains."
                    ),
                    Table(
                        ["parameter", "profile (ISP start)", "true camera", "inside domain"],
                        calibration,
                    ),
                ],
            )
        )
    intro = (
        "The task model is trained on raw mosaics through the base ISP kept frozen (fixed "
        "normalisation, or batch normalisation: `frozen-bn`), through the same ISP learned "
        "jointly (steps scaled to each parameter's domain width, projected into the domains "
        "after every step: `learned`), through the paper's processor (free parameters, learnable "
        "demosaic convolution, free kernels, batch normalisation: `paper`; frozen as the "
        f"paper's code ran it: `paper-frozen`; code read from {PAPER_CODE}), and directly on the "
        "packed raw planes (R, Gr, Gb, B). Pooled mean ± std runs over folds and the listed "
        "evaluation epochs; final is the last epoch only."
    )
    return Report(
        title="Optimisation report",
        intro=[Paragraph(intro), KeyValues([(k, str(v)) for k, v in header.items()])],
        sections=sections,
        files=[
            "results.csv",
            "table.csv",
            "curves.csv",
            "differences.csv",
            "isp_trajectory.csv",
            "summary.json",
            "config.toml",
        ],
        citation=CITATION,
    )
