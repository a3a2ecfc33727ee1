"""``driftlab signature``: verify a forensic signature, seal it (Ed25519), make keys."""

from __future__ import annotations

import click

from driftlab.cli.common import DriftlabClickError, get_registry_for

__all__ = ["signature"]


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
@click.pass_context
def verify(
    ctx: click.Context,
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
            registry=get_registry_for(ctx),
        )
    except SignatureError as exc:
        raise DriftlabClickError(f"signature check failed: {exc}", 1) from None
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
        raise DriftlabClickError(f"cannot sign: {exc}", exc.exit_code) from None
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
        raise DriftlabClickError(str(exc), exc.exit_code) from None
    click.echo(f"private key: {private} (keep it secret)\npublic key: {public} (give it out)")
