"""Figures and the Markdown/HTML report of a synthesis run, made from its tables."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from driftlab.io.images import atomic_path, view_to_uint8
from driftlab.pipeline import build_static
from driftlab.synthesis.summary import corruption_matrix, isp_matrix

__all__ = ["heatmap", "worst_pair", "write_figures_and_report"]

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


def worst_pair(results: pd.DataFrame) -> tuple[str, str, float] | None:
    """Off-diagonal (train, test) pipeline pair with the lowest mean score."""
    mean, _ = isp_matrix(results)
    best: tuple[str, str, float] | None = None
    for train in mean.index:
        for test in mean.columns:
            value = float(mean.at[train, test])
            if train != test and np.isfinite(value) and (best is None or value < best[2]):
                best = (str(train), str(test), value)
    return best


def _pair_figure(plan, train: str, test: str, path: Path, n: int = 4) -> Path:
    specs = {s.name: s for s in plan.pipelines}
    pipes = [build_static(specs[name], plan.camera) for name in (train, test)]
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
    fig.suptitle(f"Worst ISP pair: trained on {train}, tested on {test}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _md_table(frame: pd.DataFrame, fmt: str = "{:.3f}") -> str:
    header = "| " + " | ".join([str(frame.index.name or ""), *map(str, frame.columns)]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    lines = [header, rule]
    for idx, row in frame.iterrows():
        cells = [fmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def _mean_std(mean: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    out = mean.copy().astype(object)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            out.iat[i, j] = f"{mean.iat[i, j]:.3f} ± {std.iat[i, j]:.3f}"
    out.index.name = "train \\ test"
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def write_figures_and_report(
    run_dir: Path, results: pd.DataFrame, summary: dict[str, Any], plan
) -> dict[str, Path]:
    """Write ``figures/*.png``, ``report.md`` and ``report.html`` into ``run_dir``.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    results : pandas.DataFrame
        Tidy results table.
    summary : dict
        Output of :func:`driftlab.synthesis.summary.summarize`.
    plan : SynthesisPlan
        Used to render sample views of the worst pair.

    Returns
    -------
    dict of str to Path
        The written files.
    """
    figures = run_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    metric = summary["metric"]
    written: dict[str, Path] = {}
    isp_mean, isp_std = isp_matrix(results)
    written["isp_heatmap"] = heatmap(
        isp_mean, isp_std, figures / "isp_heatmap.png",
        title=f"ISP drift: {metric} (mean ± std over {summary['folds']} folds)",
        xlabel="test pipeline", metric=metric,
    )  # fmt: skip
    corr_mean, corr_std = corruption_matrix(results)
    if not corr_mean.empty:
        written["corruption_heatmap"] = heatmap(
            corr_mean, corr_std, figures / "corruption_heatmap.png",
            title=f"Corruptions of the training view: {metric}",
            xlabel="corruption@severity", metric=metric,
        )  # fmt: skip
    pair = worst_pair(results)
    if pair is not None:
        written["worst_pair"] = _pair_figure(plan, pair[0], pair[1], figures / "worst_pair.png")

    headline = [
        ("dataset", plan.dataset_spec.name),
        ("task model", plan.model.name),
        ("metric", metric),
        ("folds", summary["folds"]),
        ("mean diagonal (train = test pipeline)", summary["mean_diagonal"]),
        ("mean drop under ISP drift", summary["mean_isp_drop"]),
        ("mean drop under corruptions", summary.get("mean_corruption_drop")),
        ("ratio corruption drop / ISP drop", summary.get("drop_ratio_corruption_over_isp")),
        ("top-3 train pipelines, ISP drift", summary["ranking_isp"][:3]),
        ("top-3 train pipelines, corruptions", summary.get("top3_corruption")),
        ("overlap of the two top-3", summary.get("top3_overlap")),
    ]
    per = pd.DataFrame(summary["per_train_pipeline"]).T
    per.index.name = "train pipeline"
    isp_table = _mean_std(isp_mean, isp_std)
    md = [
        f"# Drift synthesis report: {plan.dataset_spec.name}",
        "",
        f"Protocol after {CITATION}: a task model is trained on the views of one ISP "
        "pipeline and tested on the views of every pipeline (ISP drift) and on common "
        "corruptions of its own views.",
        "",
        "## Headline",
        "",
        "| quantity | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in headline],
        "",
        "## Per train pipeline",
        "",
        _md_table(per),
        "",
        f"## ISP drift ({metric}, mean ± std over folds)",
        "",
        _md_table(isp_table),
        "",
        "![ISP heatmap](figures/isp_heatmap.png)",
        "",
    ]
    if "corruption_heatmap" in written:
        md += [
            "## Corruptions",
            "",
            _md_table(_mean_std(corr_mean, corr_std)),
            "",
            "![Corruption heatmap](figures/corruption_heatmap.png)",
            "",
        ]
    if pair is not None:
        md += [
            "## Worst ISP pair",
            "",
            f"Trained on `{pair[0]}`, tested on `{pair[1]}`: {metric} {pair[2]:.3f}.",
            "",
            "![Worst pair](figures/worst_pair.png)",
            "",
        ]
    md += ["Files: `results.csv`, `summary.json`, `config.toml`, `manifest.json`.", ""]
    with atomic_path(run_dir / "report.md") as tmp:
        tmp.write_text("\n".join(md))
    written["report_md"] = run_dir / "report.md"

    def section(title: str, body: str) -> str:
        return f"<h2>{html.escape(title)}</h2>\n{body}\n"

    head_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in headline
    )
    parts = [
        f"<h1>Drift synthesis report: {html.escape(plan.dataset_spec.name)}</h1>",
        f"<p>Protocol after {html.escape(CITATION)}.</p>",
        section("Headline", f"<table>{head_rows}</table>"),
        section("Per train pipeline", per.to_html(float_format="%.3f")),
        section(
            f"ISP drift ({metric})", isp_table.to_html() + '<img src="figures/isp_heatmap.png">'
        ),
    ]
    if "corruption_heatmap" in written:
        parts.append(
            section(
                "Corruptions",
                _mean_std(corr_mean, corr_std).to_html()
                + '<img src="figures/corruption_heatmap.png">',
            )
        )
    if pair is not None:
        parts.append(
            section(
                "Worst ISP pair",
                f"<p>Trained on <code>{html.escape(pair[0])}</code>, tested on "
                f"<code>{html.escape(pair[1])}</code>: {metric} {pair[2]:.3f}.</p>"
                '<img src="figures/worst_pair.png">',
            )
        )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "img{max-width:100%}"
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>driftlab report</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    with atomic_path(run_dir / "report.html") as tmp:
        tmp.write_text(page)
    written["report_html"] = run_dir / "report.html"
    return written
