"""Optional Ed25519 seals for signatures (the ``driftlab[sign]`` extra, ``cryptography``).

A *seal* is a detached file ``signature.json.sig`` holding an Ed25519
signature (Bernstein et al., "High-speed high-security signatures", 2012;
RFC 8032) of the signature's canonical text
(:func:`driftlab.forensics.signature.canonical_json`: sorted keys, two-space
indent, ASCII, final newline), which is exactly how driftlab writes
``signature.json``. Checking a seal requires the file's bytes to *be* that
canonical text when sealing; a check verifies the file's raw bytes, so
editing any byte of ``signature.json`` (even whitespace) or of the seal
fails it.

Keys are PEM files: a PKCS #8 private key and a SubjectPublicKeyInfo public
key, as written by :func:`generate_keypair` (``driftlab signature keygen``)
or by OpenSSL (``openssl genpkey -algorithm ed25519 -out key.pem`` and
``openssl pkey -in key.pem -pubout -out key.pem.pub``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from driftlab.atomic import atomic_path
from driftlab.forensics.validate import SignatureError, load_signature

__all__ = [
    "SEAL_FORMAT",
    "SIGN_EXTRA",
    "check_seal",
    "generate_keypair",
    "seal_path",
    "sign_signature",
]

SIGN_EXTRA = "driftlab[sign]"
SEAL_FORMAT = "driftlab-seal/1"
_MAX_KEY_BYTES = 16 * 1024
_MAX_SEAL_BYTES = 16 * 1024


def _crypto() -> Any:
    """The ``cryptography`` primitives, or an error naming the extra."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SignatureError(
            f"Ed25519 signing needs the optional extra {SIGN_EXTRA} (the 'cryptography' "
            f"package): pip install '{SIGN_EXTRA}'"
        ) from None
    return serialization, ed25519, InvalidSignature


def seal_path(signature: str | Path) -> Path:
    """Default seal file of a signature: ``<signature>.sig``."""
    signature = Path(signature)
    return signature.with_name(signature.name + ".sig")


def _read_small(path: Path, limit: int, what: str) -> bytes:
    if not path.is_file():
        raise SignatureError(f"{path}: no such {what} file")
    if path.stat().st_size > limit:
        raise SignatureError(f"{path}: larger than {limit} bytes, not a {what} file")
    return path.read_bytes()


def _public_fingerprint(public: Any) -> str:
    serialization, _, _ = _crypto()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def generate_keypair(
    private_key: str | Path, public_key: str | Path | None = None
) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair.

    Parameters
    ----------
    private_key : path
        PKCS #8 PEM file for the private key, created with mode 0600
        (unencrypted: keep it private).
    public_key : path, optional
        SubjectPublicKeyInfo PEM file (default ``<private_key>.pub``).

    Returns
    -------
    (Path, Path)
        The two files.

    Raises
    ------
    SignatureError
        ``cryptography`` missing (naming the extra) or a file already exists
        (never overwritten).
    """
    serialization, ed25519, _ = _crypto()
    private_key = Path(private_key)
    public_key = (
        Path(public_key)
        if public_key is not None
        else private_key.with_name(private_key.name + ".pub")
    )
    for path in (private_key, public_key):
        if path.exists():
            raise SignatureError(f"{path}: already exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    with atomic_path(public_key) as tmp:
        tmp.write_bytes(public_pem)
    return private_key, public_key


def _load_private(path: Path) -> Any:
    serialization, ed25519, _ = _crypto()
    data = _read_small(path, _MAX_KEY_BYTES, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key ({type(key).__name__})")
    return key


def _load_public(path: Path) -> Any:
    serialization, ed25519, _ = _crypto()
    data = _read_small(path, _MAX_KEY_BYTES, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def _canonical_bytes(signature: Path) -> bytes:
    """The file's bytes, required to be the canonical text of a valid signature."""
    from driftlab.forensics.signature import canonical_json

    sig = load_signature(signature)
    data = signature.read_bytes()
    if data != canonical_json(sig).encode("ascii"):
        raise SignatureError(
            f"{signature}: not in the canonical form driftlab writes (edited after writing?); "
            "a sealed signature must be byte-for-byte as written"
        )
    return data


def sign_signature(signature: str | Path, key: str | Path, out: str | Path | None = None) -> Path:
    """Seal a signature with an Ed25519 private key.

    The signature is fully validated first
    (:func:`driftlab.forensics.validate.load_signature`) and must be in
    canonical form (as written by driftlab).

    Parameters
    ----------
    signature : path
        ``signature.json``.
    key : path
        Ed25519 private key, unencrypted PKCS #8 PEM.
    out : path, optional
        Seal file (default ``<signature>.sig``), written atomically.

    Returns
    -------
    Path
        The seal file: JSON with ``format``, ``algorithm`` (``"Ed25519"``),
        ``signed_sha256`` (of the signed bytes), ``public_key_sha256`` (of the
        raw 32-byte public key) and ``signature`` (base64).

    Raises
    ------
    SignatureError
        ``cryptography`` missing (naming the extra), an invalid or
        non-canonical signature, or an unusable key.
    """
    signature = Path(signature)
    private = _load_private(Path(key))
    data = _canonical_bytes(signature)
    seal = {
        "format": SEAL_FORMAT,
        "algorithm": "Ed25519",
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "public_key_sha256": _public_fingerprint(private.public_key()),
        "signature": base64.b64encode(private.sign(data)).decode("ascii"),
    }
    path = Path(out) if out is not None else seal_path(signature)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(seal, indent=2, sort_keys=True) + "\n", encoding="ascii")
    return path


def check_seal(
    signature: str | Path, public_key: str | Path, seal: str | Path | None = None
) -> str:
    """Check that ``signature`` is byte-for-byte what the key holder sealed.

    Parameters
    ----------
    signature : path
        ``signature.json``.
    public_key : path
        Ed25519 public key (PEM).
    seal : path, optional
        Seal file (default ``<signature>.sig``).

    Returns
    -------
    str
        SHA-256 (hex) of the raw public key that verified the seal.

    Raises
    ------
    SignatureError
        ``cryptography`` missing (naming the extra), a missing or malformed
        seal, a seal made with another key, or any edited byte in the
        signature or the seal.
    """
    _, _, invalid_signature = _crypto()
    signature = Path(signature)
    public = _load_public(Path(public_key))
    seal_file = Path(seal) if seal is not None else seal_path(signature)
    raw = _read_small(seal_file, _MAX_SEAL_BYTES, "seal")
    try:
        record = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(f"{seal_file}: not a driftlab seal ({exc})") from None
    expected = {"format", "algorithm", "signed_sha256", "public_key_sha256", "signature"}
    if not isinstance(record, dict) or set(record) != expected:
        raise SignatureError(
            f"{seal_file}: not a driftlab seal (expected fields {sorted(expected)})"
        )
    if record["format"] != SEAL_FORMAT or record["algorithm"] != "Ed25519":
        raise SignatureError(
            f"{seal_file}: field 'format'/'algorithm': expected {SEAL_FORMAT!r} and 'Ed25519'"
        )
    if raw != (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("ascii"):
        raise SignatureError(f"{seal_file}: edited after writing (not in the form driftlab writes)")
    fingerprint = _public_fingerprint(public)
    if record["public_key_sha256"] != fingerprint:
        raise SignatureError(
            f"{seal_file}: sealed with another key (public key sha256 "
            f"{str(record['public_key_sha256'])[:16]}..., given key {fingerprint[:16]}...)"
        )
    try:
        blob = base64.b64decode(str(record["signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{seal_file}: field 'signature': not base64") from None
    from driftlab.forensics.validate import MAX_FILE_BYTES

    # the sealed bytes were the canonical text of a validated signature: checking the
    # file's raw bytes against the seal refuses any edited byte, valid JSON or not
    data = _read_small(signature, MAX_FILE_BYTES, "signature")
    try:
        public.verify(blob, data)
    except invalid_signature:
        raise SignatureError(
            f"{signature}: the Ed25519 seal does not match: the signature or its seal was "
            "edited after sealing"
        ) from None
    if record["signed_sha256"] != hashlib.sha256(data).hexdigest():
        raise SignatureError(f"{seal_file}: field 'signed_sha256' does not match the signature")
    return fingerprint
