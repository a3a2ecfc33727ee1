"""Command-line interface of forensics: ``driftlab forensics`` and ``driftlab signature``
(``verify``, ``sign``, ``keygen``)."""

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
        from driftlab.forensics.signature import signature_headline

        for line in signature_headline(result.signature):
            click.echo(f"signature: {line}")
    click.echo(f"report: {result.run_dir / 'report.html'}")


@click.group("signature")
def signature() -> None:
    """Forensic signatures of task models: verify, seal (Ed25519), make keys."""


@signature.command("verify")
@click.argument("signature_file", metavar="SIGNATURE", type=click.Path(dir_okay=False))
@click.option("--model", type=click.Path(dir_okay=False), help="Weights file (default: recorded).")
@click.option("--data", "data_root", type=click.Path(), help="Dataset folder (default: recorded).")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="Absolute tolerance of every re-measured value [default: 1e-06]; the file's "
    "recorded tolerance is shown, never used. Use e.g. 0.02 across hardware (CPU vs CUDA).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False),
    help="Ed25519 public key (PEM): require a valid seal (needs driftlab[sign]).",
)
@click.option("--seal", type=click.Path(dir_okay=False), help="Seal file (default: SIGNATURE.sig).")
@click.option(
    "--allow-wider-domains",
    is_flag=True,
    help="Accept a pipeline whose domains are wider than its stages declare.",
)
def verify(
    signature_file: str,
    model: str | None,
    data_root: str | None,
    tolerance: float | None,
    public_key: str | None,
    seal: str | None,
    allow_wider_domains: bool,
) -> None:
    """Re-measure SIGNATURE (signature.json) on its model and items; fail on any mismatch."""
    from driftlab.forensics import SignatureError, verify_signature
    from driftlab.forensics.validate import DEFAULT_TOLERANCE

    try:
        result = verify_signature(
            signature_file,
            model=model,
            data_root=data_root,
            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
            public_key=public_key,
            seal=seal,
            allow_wider_domains=allow_wider_domains,
        )
    except SignatureError as exc:
        raise click.ClickException(f"signature check failed: {exc}") from None
    if result.sealed_by:
        click.echo(f"seal OK: Ed25519, public key sha256 {result.sealed_by[:16]}...")
    if result.wider_domains:
        click.echo(
            f"note: wider than declared domains allowed for {', '.join(result.wider_domains)}"
        )
    click.echo(
        f"signature OK: fingerprints match; {result.values} recorded values re-measured within "
        f"{result.tolerance:g} (file's recorded tolerance {result.recorded_tolerance:g}, not "
        f"used); held-out clean {result.clean:.4f} (recorded {result.recorded_clean:.4f}), "
        f"worst case {result.worst:.4f} (recorded {result.recorded_worst:.4f}), lower bound "
        f"{result.lower_bound:.4f}; box: {result.status}"
    )


@signature.command("sign")
@click.argument("signature_file", metavar="SIGNATURE", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    required=True,
    type=click.Path(dir_okay=False),
    help="Ed25519 private key (unencrypted PKCS #8 PEM, e.g. from 'driftlab signature keygen').",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Seal file (default SIGNATURE.sig).")
def sign(signature_file: str, key: str, out: str | None) -> None:
    """Seal SIGNATURE with an Ed25519 key (needs the driftlab[sign] extra)."""
    from driftlab.forensics import SignatureError
    from driftlab.forensics.signing import sign_signature

    try:
        path = sign_signature(signature_file, key, out)
    except SignatureError as exc:
        raise click.ClickException(f"cannot sign: {exc}") from None
    click.echo(f"seal written: {path}")


@signature.command("keygen")
@click.argument("private_key", metavar="KEY", type=click.Path(dir_okay=False))
@click.option(
    "--public-key", type=click.Path(dir_okay=False), help="Public key file (default KEY.pub)."
)
def keygen(private_key: str, public_key: str | None) -> None:
    """Write a new Ed25519 key pair: KEY (private, mode 0600) and KEY.pub (public)."""
    from driftlab.forensics import SignatureError
    from driftlab.forensics.signing import generate_keypair

    try:
        private, public = generate_keypair(private_key, public_key)
    except SignatureError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"private key: {private} (keep it secret)\npublic key: {public} (give it out)")
