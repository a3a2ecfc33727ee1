"""The report of a forensics run (a :class:`driftlab.engine.report.Report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from driftlab.engine.report import Figure, Paragraph, Report, Section, Table
from driftlab.forensics.plan import ForensicsPlan

__all__ = ["CITATION", "build_report"]

CITATION = (
    'Oala, Aversa et al., "Data Models for Dataset Drift Controls in Machine Learning With '
    'Optical Images", TMLR 2023'
)


def build_report(
    run_dir: Path,
    plan: ForensicsPlan,
    results: pd.DataFrame,
    clean: dict[str, float],
    figures: dict[str, Path],
    signature: dict[str, Any] | None,
) -> Report:
    """Describe the report of a forensics run (figures are already written).

    Returns
    -------
    Report
    """
    metric = plan.metric
    model = plan.model_info
    intro = [
        Paragraph(
            f"Model `{Path(model['weights']).name}` (sha256 `{model['sha256'][:16]}...`), base "
            f"pipeline `{plan.problem.resolved.name}`, {plan.data_info['items']} items "
            f"({plan.data_info['split']['part']} part of fold {plan.data_info['split']['fold']})."
        ),
        Paragraph(
            f"Clean {metric}: {clean['metric']:.4f}. Attacks maximise task loss minus lambda x "
            "view distance with every parameter kept in its declared domain."
        ),
    ]
    rows = [
        [str(r["attack"]), f"{r['lam']:g}", str(r["targets"]), f"{r['clean_metric']:.4f}",
         f"{r['attacked_metric']:.4f}", f"{r['l2']:.4f}", f"{r['ssim']:.4f}"]
        for _, r in results.iterrows()
    ]  # fmt: skip
    sections = [
        Section(
            "Results",
            [
                Table(
                    ["attack", "lambda", "targets", "clean", "attacked", "view RMS diff", "SSIM"],
                    rows,
                )
            ],
        )
    ]
    for key, title in (
        ("metric_vs_lambda", "Metric vs lambda"),
        ("metric_vs_distance", "Metric vs view distance"),
        ("views", "Default (top) vs attacked (bottom) views, strongest attack"),
        ("gradient_maps", "Per-stage gradient magnitude of the task loss"),
    ):
        if key in figures:
            sections.append(Section(title, [Figure(f"figures/{figures[key].name}", title)]))
    reach = plan.reachability
    if reach is not None and not reach.reachable:
        intro.append(Paragraph(f"**Warning**: {reach.message}."))
    if reach is not None and reach.bootstrap_warning:
        intro.append(Paragraph(f"**Warning**: {reach.bootstrap_warning}."))
    if signature is not None:
        from driftlab.forensics.signature import signature_headline

        sections.append(
            Section(
                "Forensic signature",
                [
                    *(Paragraph(line) for line in signature_headline(signature)),
                    Paragraph("See `signature.md` and `signature.json`."),
                ],
            )
        )
    return Report(
        title=f"Forensics report: {model['name']} on {plan.data_info['name']}",
        intro=intro,
        sections=sections,
        files=["results.csv", "config.toml", "manifest.json", "signature.json"],
        citation=CITATION,
    )
