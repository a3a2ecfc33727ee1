"""Issue 13.3: optional Ed25519 seals of signatures (the driftlab[sign] extra)."""

from __future__ import annotations

import builtins
import json

import pytest

from driftlab.forensics.signature import write_signature
from driftlab.forensics.signing import (
    SIGN_EXTRA,
    check_seal,
    generate_keypair,
    seal_path,
    sign_signature,
)
from driftlab.forensics.validate import SignatureError
from tests.signature_cases import Constant, constructed_signature

pytest.importorskip("cryptography")


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sealed")
    sig = constructed_signature(Constant(), n=12, shrink_steps=0, steps=1, points=1, refine=0)
    path = write_signature(sig, folder)["json"]
    private, public = generate_keypair(folder / "lab.key")
    seal = sign_signature(path, private)
    return path, private, public, seal


def test_keygen_sign_and_check(sealed):
    path, private, public, seal = sealed
    assert seal == seal_path(path) and seal.name == "signature.json.sig"
    assert (private.stat().st_mode & 0o777) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    record = json.loads(seal.read_text())
    assert record["algorithm"] == "Ed25519" and record["format"] == "driftlab-seal/1"
    fingerprint = check_seal(path, public)
    assert fingerprint == record["public_key_sha256"] and len(fingerprint) == 64


def test_keygen_never_overwrites_a_key(sealed):
    _, private, _, _ = sealed
    before = private.read_bytes()
    with pytest.raises(SignatureError, match="already exists; refusing to overwrite"):
        generate_keypair(private)
    assert private.read_bytes() == before


def test_verify_with_public_key_rejects_any_edited_byte(sealed, tmp_path):
    path, _, public, seal = sealed
    data = path.read_bytes()
    # every 97th byte, plus the first and last: each single-byte edit is refused
    positions = sorted({0, len(data) - 1, *range(0, len(data), 97)})
    copy, copy_seal = tmp_path / "signature.json", tmp_path / "signature.json.sig"
    copy_seal.write_bytes(seal.read_bytes())
    for i in positions:
        edited = bytearray(data)
        edited[i] = (edited[i] + 1) % 256
        copy.write_bytes(bytes(edited))
        with pytest.raises(SignatureError):
            check_seal(copy, public)
    copy.write_bytes(data)
    assert check_seal(copy, public)  # the untouched copy passes
    copy.write_bytes(data + b"\n")  # an appended newline is an edited byte too
    with pytest.raises(SignatureError, match="seal does not match"):
        check_seal(copy, public)


def test_edited_seal_or_other_key_is_rejected(sealed, tmp_path):
    path, _, public, seal = sealed
    record = json.loads(seal.read_text())
    blob = bytearray(record["signature"].encode())
    blob[5] = ord("A") if blob[5] != ord("A") else ord("B")
    record["signature"] = blob.decode()
    forged = tmp_path / "forged.sig"
    forged.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    with pytest.raises(SignatureError):
        check_seal(path, public, forged)
    _, other_public = generate_keypair(tmp_path / "other.key")
    with pytest.raises(SignatureError, match="sealed with another key"):
        check_seal(path, other_public)
    with pytest.raises(SignatureError, match="no such seal file"):
        check_seal(path, public, tmp_path / "missing.sig")


def test_sign_refuses_a_signature_not_in_canonical_form(sealed, tmp_path):
    path, private, _, _ = sealed
    reformatted = tmp_path / "signature.json"
    reformatted.write_text(json.dumps(json.loads(path.read_text())))  # same content, one line
    with pytest.raises(SignatureError, match="not in the canonical form"):
        sign_signature(reformatted, private)
    invalid = tmp_path / "invalid.json"
    invalid.write_text("{}")
    with pytest.raises(SignatureError, match="not a driftlab signature"):
        sign_signature(invalid, private)


def test_missing_cryptography_names_the_extra(sealed, monkeypatch):
    path, private, public, _ = sealed
    real_import = builtins.__import__

    def no_cryptography(name, *args, **kwargs):
        if name.startswith("cryptography"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cryptography)
    for call in (
        lambda: sign_signature(path, private),
        lambda: check_seal(path, public),
        lambda: generate_keypair(path.parent / "new.key"),
    ):
        with pytest.raises(SignatureError, match=r"optional extra driftlab\[sign\]"):
            call()
    assert SIGN_EXTRA == "driftlab[sign]"
