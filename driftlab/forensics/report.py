"""Markdown/HTML report of a forensics run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from driftlab.forensics.markup import markdown_to_html
from driftlab.forensics.plan import ForensicsPlan
from driftlab.forensics.signature import signature_headline
from driftlab.io.images import atomic_path

__all__ = ["write_report"]


def write_report(
    run_dir: Path,
    plan: ForensicsPlan,
    results: pd.DataFrame,
    clean: dict[str, float],
    figures: dict[str, Path],
    signature: dict[str, Any] | None,
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``.

    Returns
    -------
    dict
        ``{"md": path, "html": path}``.
    """
    metric = plan.metric
    model = plan.model_info
    lines = [
        f"# Forensics report: {model['name']} on {plan.data_info['name']}",
        "",
        f"Model `{Path(model['weights']).name}` (sha256 `{model['sha256'][:16]}...`), "
        "base pipeline "
        f"`{plan.problem.resolved.name}`, {plan.data_info['items']} items "
        f"({plan.data_info['split']['part']} part of fold {plan.data_info['split']['fold']}).",
        "",
        f"Clean {metric}: {clean['metric']:.4f}. Attacks maximise task loss minus lambda x view "
        "distance (Oala et al., TMLR 2023) with every parameter kept in its declared domain.",
        "",
        "## Results",
        "",
        "| attack | lambda | targets | clean | attacked | view RMS diff | SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in results.iterrows():
        lines.append(
            f"| {r['attack']} | {r['lam']:g} | {r['targets']} | {r['clean_metric']:.4f} | "
            f"{r['attacked_metric']:.4f} | {r['l2']:.4f} | {r['ssim']:.4f} |"
        )
    lines.append("")
    for key, title in (
        ("metric_vs_lambda", "Metric vs lambda"),
        ("metric_vs_distance", "Metric vs view distance"),
        ("views", "Default (top) vs attacked (bottom) views, strongest attack"),
        ("gradient_maps", "Per-stage gradient magnitude of the task loss"),
    ):
        if key in figures:
            lines += [f"## {title}", "", f"![{title}](figures/{figures[key].name})", ""]
    if signature is not None:
        lines += [
            "## Forensic signature",
            "",
            *[f"* {line}" for line in signature_headline(signature)],
            "",
            "See `signature.md`.",
            "",
        ]
    lines += ["Files: `results.csv`, `config.toml`, `manifest.json`, `signature.json`.", ""]
    md = "\n".join(lines)
    out = {}
    for suffix, text in (("md", md), ("html", markdown_to_html(md, title="driftlab forensics"))):
        path = run_dir / f"report.{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        out[suffix] = path
    return out
