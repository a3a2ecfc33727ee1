"""Command-line interface of forensics: ``driftlab forensics`` and ``driftlab signature verify``."""

from __future__ import annotations

import logging

import click

from driftlab.configtools import ConfigError
from driftlab.errors import RunDirError

__all__ = ["forensics", "signature"]


@click.command("forensics")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default [run].out).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a config value.",
)
def forensics(config: str, out: str | None, overrides: tuple[str, ...]) -> None:
    """Attack a trained task model through its ISP parameters and write its signature.

    CONFIG is a forensics TOML file (see examples/forensics_quickstart.toml).
    Rerunning the same command resumes an interrupted run.
    """
    from driftlab.forensics import run_forensics

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_forensics(config, out=out, overrides=overrides)
    except (ConfigError, RunDirError) as exc:
        raise click.ClickException(str(exc)) from None
    rows = result.results
    worst = rows.sort_values("attacked_metric").iloc[0]
    click.echo(f"run directory: {result.run_dir}")
    click.echo(
        f"clean {worst['metric']}: {worst['clean_metric']:.4f}; strongest attack: "
        f"{worst['attack']} (lambda {worst['lam']:g}, targets {worst['targets']}) -> "
        f"{worst['attacked_metric']:.4f}"
    )
    if result.signature is not None:
        sig = result.signature
        tight = sig["tightest"]
        click.echo(
            f"signature: most sensitive stage {sig['stages'][0]['stage']}; tightest interval "
            f"{tight['parameter']} [{tight['low']:.4g}, {tight['high']:.4g}] {tight['unit']}; "
            f"worst case in envelope {sig['worst_case']['metric']:.4f}"
        )
    click.echo(f"report: {result.run_dir / 'report.html'}")


@click.group("signature")
def signature() -> None:
    """Forensic signatures of task models."""


@signature.command("verify")
@click.argument("signature_file", metavar="SIGNATURE", type=click.Path(dir_okay=False))
@click.option("--model", type=click.Path(dir_okay=False), help="Weights file (default: recorded).")
@click.option("--data", "data_root", type=click.Path(), help="Dataset folder (default: recorded).")
@click.option("--tolerance", type=float, help="Metric tolerance (default: recorded).")
def verify(
    signature_file: str, model: str | None, data_root: str | None, tolerance: float | None
) -> None:
    """Check that a model and data still match SIGNATURE (signature.json)."""
    from driftlab.forensics import SignatureError, verify_signature

    try:
        result = verify_signature(
            signature_file, model=model, data_root=data_root, tolerance=tolerance
        )
    except SignatureError as exc:
        raise click.ClickException(f"signature check failed: {exc}") from None
    click.echo(
        f"signature OK: fingerprints match; metric at default {result.clean:.4f} "
        f"(recorded {result.recorded_clean:.4f}), at worst case {result.worst:.4f} "
        f"(recorded {result.recorded_worst:.4f}), tolerance {result.tolerance}"
    )
