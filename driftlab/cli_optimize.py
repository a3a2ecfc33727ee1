"""``driftlab optimize CONFIG``: frozen vs learned ISP vs raw input, over folds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["optimize"]


def _print_table(result) -> None:
    table = result.table
    header = ("intensity", "mode", "pooled mean ± std", "final mean ± std", "pooled epochs")
    rows = [
        (
            f"{r.intensity:g}",
            r.mode,
            f"{r.pooled_mean:.3f} ± {r.pooled_std:.3f}",
            f"{r.final_mean:.3f} ± {r.final_std:.3f}",
            r.pooled_epochs,
        )
        for r in table.itertuples(index=False)
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for n, row in enumerate([header, *rows]):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Run directory."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set training.epochs=2 (repeatable).",
)
@click.option("--device", help="Torch device (auto, cpu, cuda, cuda:N); overrides the config.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def optimize(
    config: Path, out_dir: Path | None, overrides: tuple[str, ...], device: str | None, quiet: bool
) -> None:
    """Train the task model through a frozen ISP, a jointly learned ISP and on packed raw.

    For every intensity level in the config and every fold, the test metric
    is recorded every few epochs; writes results.csv, table.csv,
    curves.csv, a learning-curve figure and report.md/html to the run
    directory. Rerunning the same command resumes an interrupted run.
    """
    import logging

    from driftlab.configtools import ConfigError
    from driftlab.optimize import run_optimization
    from driftlab.runs import RunDirError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = list(overrides) + ([f"training.device={device}"] if device else [])
    if quiet:
        extra.append("run.progress=false")
    try:
        result = run_optimization(config, out=out_dir, overrides=extra)
    except (ConfigError, RunDirError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    click.echo(f"run directory: {result.run_dir}")
    click.echo(f"report: {result.report}")
    click.echo(f"cells: {result.cells_reused} reused, {result.cells_computed} computed")
    metric = str(result.results["metric"].iloc[0])
    click.echo(f"test {metric} (mean ± std):")
    _print_table(result)
