"""The run commands (``audit``, ``synthesize``, ``forensics``, ``optimize``) made by one factory,
and ``report``, which re-renders any finished run.

Every run command has the same surface: ``CONFIG``, ``--out``, ``--set``,
``--device``, ``--executor``, ``--workers``, ``--track``, ``--quiet`` and
``--json`` (a machine-readable summary on stdout; logs and progress on
stderr). Interrupted runs (SIGINT, SIGTERM, SIGKILL) resume when the same
command is run again; ``--quiet``, ``--workers``, ``--executor``, ``--device``
and ``--out`` do not change a run's identity.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from driftlab.cli.common import fail, get_registry_for, setup_logging

__all__ = [
    "RUN_COMMANDS",
    "audit",
    "forensics",
    "optimize",
    "report",
    "run_command",
    "synthesize",
]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _synthesis_lines(result) -> list[str]:
    from driftlab.verdicts.headline import headline_lines

    s = result.summary
    cells = (
        f"cells: {result.cells_reused} reused, {result.cells_computed} computed "
        f"({s['folds']} folds x {len(s['train_pipelines'])} train pipelines)"
    )
    return headline_lines(s, lead=[cells])


def _audit_lines(result) -> list[str]:
    from driftlab.verdicts.headline import headline_lines

    s = result.summary
    audit = s["audit"]
    lead = [
        f"cells: {result.cells_reused} reused, {result.cells_computed} computed "
        f"({audit['items']} items, {len(s['test_pipelines'])} pipelines); reference pipeline "
        f"{audit['reference_pipeline']}"
    ]
    lines = headline_lines(s, lead=lead)
    if audit["worst_corruption"] is not None and s.get("above_chance", True):
        worst = audit["worst_corruption"]
        lines.append(
            f"lowest under corruptions: {worst['value']:.3f} "
            f"({worst['corruption']}@{worst['severity']})"
        )
    return lines


def _optimize_lines(result) -> list[str]:
    lines = [f"cells: {result.cells_reused} reused, {result.cells_computed} computed"]
    metric = str(result.results["metric"].iloc[0])
    lines.append(f"test {metric} (mean ± std):")
    header = ("intensity", "mode", "pooled mean ± std", "final mean ± std", "pooled epochs")
    rows = [
        (f"{r.intensity:g}", r.mode, f"{r.pooled_mean:.3f} ± {r.pooled_std:.3f}",
         f"{r.final_mean:.3f} ± {r.final_std:.3f}", r.pooled_epochs)
        for r in result.table.itertuples(index=False)
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for n, row in enumerate([header, *rows]):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    final = result.differences[result.differences["statistic"] == "final"]
    if not final.empty:
        lines.append("paired differences at the final epoch (mean [95% interval] over folds):")
        for r in final.itertuples(index=False):
            lines.append(
                f"  I={r.intensity:g} {r.comparison}: {r.mean:+.3f} [{r.low:+.3f}, {r.high:+.3f}]"
            )
    return lines


def _forensics_lines(result) -> list[str]:
    worst = result.results.sort_values("attacked_metric").iloc[0]
    lines = [
        f"cells: {result.cells_reused} reused, {result.cells_computed} computed",
        f"clean {worst['metric']}: {worst['clean_metric']:.4f}; strongest attack: "
        f"{worst['attack']} (lambda {worst['lam']:g}, targets {worst['targets']}) -> "
        f"{worst['attacked_metric']:.4f}",
    ]
    if result.signature is not None:
        from driftlab.forensics.signature import signature_headline

        lines += [f"signature: {line}" for line in signature_headline(result.signature)]
    return lines


def _load_runner(kind: str) -> Callable[..., Any]:
    if kind == "audit":
        from driftlab.audit import run_audit

        return run_audit
    if kind == "synthesis":
        from driftlab.synthesis import run_synthesis

        return run_synthesis
    if kind == "forensics":
        from driftlab.forensics import run_forensics

        return run_forensics
    from driftlab.optimize import run_optimization

    return run_optimization


def run_command(
    name: str, kind: str, doc: str, headline: Callable[[Any], list[str]]
) -> click.Command:
    """Build the click command ``name`` that runs experiment ``kind``."""

    @click.command(name, help=doc)
    @click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
        help="Run directory (default: [run].out).",
    )  # fmt: skip
    @click.option(
        "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
        help="Override a config value, e.g. --set training.epochs=2 (repeatable).",
    )  # fmt: skip
    @click.option("--device", help="Torch device: auto, cpu, cuda or cuda:N ([run].device).")
    @click.option(
        "--executor", type=click.Choice(["local", "ray"]),
        help="Where cells run ([executor].kind): local processes or Ray.",
    )  # fmt: skip
    @click.option(
        "--workers", type=click.IntRange(0, 512),
        help="Local worker processes ([run].workers; 0 or 1: in this process).",
    )  # fmt: skip
    @click.option(
        "--track", "track", multiple=True, metavar="TRACKER",
        help="Mirror the run into a tracker, e.g. --track mlflow (repeatable).",
    )  # fmt: skip
    @click.option("--quiet", is_flag=True, help="No progress display, warnings only.")
    @click.option(
        "--json", "as_json", is_flag=True,
        help="Print a machine-readable summary on stdout (logs stay on stderr).",
    )  # fmt: skip
    @click.pass_context
    def command(
        ctx: click.Context,
        config: Path,
        out_dir: Path | None,
        overrides: tuple[str, ...],
        device: str | None,
        executor: str | None,
        workers: int | None,
        track: tuple[str, ...],
        quiet: bool,
        as_json: bool,
    ) -> None:
        setup_logging(quiet)
        extra = list(overrides)
        if device:
            extra.append(f'run.device="{device}"')
        if executor:
            extra.append(f'executor.kind="{executor}"')
        if workers is not None:
            extra.append(f"run.workers={workers}")
        if quiet:
            extra.append("run.progress=false")
        runner = _load_runner(kind)
        try:
            registry = get_registry_for(ctx)
            result = runner(config, out=out_dir, overrides=extra, registry=registry, track=track)
        except KeyboardInterrupt as exc:
            click.echo(f"interrupted: {exc or 'rerun the same command to resume'}", err=True)
            sys.exit(130)
        except Exception as exc:
            from driftlab.errors import DriftlabError

            if isinstance(exc, (DriftlabError, OSError)):
                raise fail(exc) from None
            raise
        if as_json:
            data = {
                "kind": kind,
                "run_dir": str(result.run_dir),
                "report": str(result.report),
                "cells": {"reused": result.cells_reused, "computed": result.cells_computed},
                "summary": json.loads((result.run_dir / "summary.json").read_text()),
            }
            click.echo(json.dumps(data, indent=2, sort_keys=True))
            return
        click.echo(f"run directory: {result.run_dir}")
        click.echo(f"report: {result.report}")
        for line in headline(result):
            click.echo(line)

    return command


audit = run_command(
    "audit",
    "audit",
    """Evaluate a frozen model under every ISP pipeline and corruption (never trained).

    CONFIG is an audit TOML file (see examples/audit_quickstart.toml): the
    model file, its input contract (the pipeline it was trained on,
    normalisation, size, value range), the test data, pipelines and
    corruptions. Writes results.csv, summary.json, figures and
    report.md/html. Rerunning the same command resumes an interrupted run.
    """,
    _audit_lines,
)
synthesize = run_command(
    "synthesize",
    "synthesis",
    """Train under each ISP pipeline, test under all others and under corruptions.

    Writes results.csv, summary.json, figures and report.md/html to the run
    directory. Rerunning the same command resumes an interrupted run.
    """,
    _synthesis_lines,
)
forensics = run_command(
    "forensics",
    "forensics",
    """Attack a trained task model through its ISP parameters and write its signature.

    CONFIG is a forensics TOML file (see examples/forensics_quickstart.toml).
    Rerunning the same command resumes an interrupted run.
    """,
    _forensics_lines,
)
optimize = run_command(
    "optimize",
    "optimize",
    """Train the task model through a frozen ISP, a learned ISP and on packed raw.

    Arms ([training] modes): frozen, frozen-bn, learned, paper, paper-frozen,
    raw; per intensity level and fold the test metric is recorded every few
    epochs, and learned - frozen is reported as paired per-fold differences
    with 95% intervals. Writes results.csv, table.csv, curves.csv,
    differences.csv, isp_trajectory.csv, figures and report.md/html.
    Rerunning the same command resumes an interrupted run.
    """,
    _optimize_lines,
)
RUN_COMMANDS = (audit, synthesize, forensics, optimize)


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.pass_context
def report(ctx: click.Context, run_dir: Path) -> None:
    """Re-render the tables, figures and report of a finished run from its checked cells."""
    from driftlab.engine.skeleton import rebuild_report
    from driftlab.errors import DriftlabError

    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        kind = manifest["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        raise fail(
            FileNotFoundError(f"{run_dir}: no readable manifest.json; not a driftlab run directory")
        ) from None
    experiments = _experiments()
    if kind not in experiments:
        raise fail(ValueError(f"{run_dir}: unknown run kind {kind!r}"))
    try:
        written = rebuild_report(experiments[kind], run_dir, get_registry_for(ctx))
    except (DriftlabError, OSError, FileNotFoundError) as exc:
        raise fail(exc) from None
    for name, path in written.items():
        click.echo(f"{name}: {path}")


def _experiments() -> dict[str, Any]:
    from driftlab.audit.experiment import AUDIT
    from driftlab.forensics.experiment import FORENSICS
    from driftlab.optimize.experiment import OPTIMIZE
    from driftlab.synthesis.experiment import SYNTHESIS

    return {e.kind: e for e in (AUDIT, SYNTHESIS, FORENSICS, OPTIMIZE)}
