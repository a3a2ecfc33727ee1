"""Forensic signature: schema, envelope, ranking, and verification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.forensics import SignatureError, run_forensics, verify_signature
from driftlab.pipeline import get_pipeline, resolve
from driftlab.registry import get_registry
from driftlab.synthesis import run_synthesis

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "signature.schema.json"
SYNTHESIS = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 32}},
    "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
    "corruptions": {"names": ["identity"]},
    "model": {"name": "small-cnn", "options": {"width": 8}},
    "training": {"epochs": 2, "folds": 2, "lr": 3e-3, "seed": 0},
    "run": {"workers": 1, "progress": False},
}


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A synthesis model copied to its own folder, then a forensics run with a signature."""
    base = tmp_path_factory.mktemp("signed")
    run_synthesis(SYNTHESIS, out=base / "synth")
    weights = base / "model.pt"
    shutil.copy(base / "synth" / "models" / "bi,s,ga__fold0.pt", weights)
    config = {
        "model": {"name": "small-cnn", "options": {"width": 8}, "weights": str(weights)},
        "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 32}},
        "split": {"part": "test", "folds": 2, "fold": 0, "max_items": 12},
        "pipeline": {"base": "bi,s,ga"},
        "attacks": {"names": ["projected"], "lambdas": [0.0], "steps": 1},
        "signature": {
            "threshold": 0.9,
            "points": 1,
            "refine": 1,
            "steps": 1,
            "tolerance": 1e-6,
        },
    }
    result = run_forensics(config, out=base / "forensics")
    return result, base / "forensics" / "signature.json", weights


def test_signature_files_and_schema(signed):
    jsonschema = pytest.importorskip("jsonschema")
    result, path, _ = signed
    sig = json.loads(path.read_text())
    jsonschema.validate(sig, json.loads(SCHEMA.read_text()))
    assert sig == result.signature
    for suffix in ("md", "html"):
        text = path.with_suffix(f".{suffix}").read_text()
        assert "most sensitive stage" in text
        assert sig["model"]["sha256"] in text and sig["data"]["sha256"] in text
    assert sig["acceptance"]["floor"] == pytest.approx(0.9 * sig["acceptance"]["clean"])


def test_envelope_inside_domains_and_ranking_consistent(signed):
    _, path, _ = signed
    sig = json.loads(path.read_text())
    camera = get_registry().get("datasets", "embedded-smear").camera
    resolved = resolve(get_pipeline("bi,s,ga"), camera)
    domains = {f"{s.name}.{k}": d for s in resolved.stages for k, d in s.domains.items()}
    assert set(sig["envelope"]) == {p["key"] for p in sig["pipeline"]["parameters"]}
    widths = {}
    for key, entry in sig["envelope"].items():
        d = domains[key]
        for e in entry["elements"]:
            assert d.low - 1e-9 <= e["low"] <= e["default"] <= e["high"] <= d.high + 1e-9, key
            assert e["metric_low"] >= sig["acceptance"]["floor"] - 1e-12
            widths.setdefault(key.split(".")[0], []).append(e["relative_width"])
    sens = [r["sensitivity"] for r in sig["stages"]]
    assert sens == sorted(sens, reverse=True)
    for r in sig["stages"]:
        assert r["sensitivity"] == pytest.approx(1 - np.mean(widths[r["stage"]]))
    assert sig["tightest"]["relative_width"] == min(min(w) for w in widths.values())
    for key, value in sig["worst_case"]["values"].items():
        assert domains[key].contains(np.asarray(value)), key
    assert sig["worst_case"]["metric"] <= sig["acceptance"]["clean"]


def test_verify_passes_on_unchanged_model_and_data(signed):
    _, path, _ = signed
    result = verify_signature(path)
    assert result.clean == pytest.approx(result.recorded_clean, abs=1e-6)
    assert result.worst == pytest.approx(result.recorded_worst, abs=1e-6)
    cli = CliRunner().invoke(main, ["signature", "verify", str(path)])
    assert cli.exit_code == 0, cli.output
    assert "signature OK" in cli.output


def test_verify_fails_when_model_file_changed(signed, tmp_path):
    _, path, weights = signed
    changed = tmp_path / "model.pt"
    shutil.copy(weights, changed)
    with changed.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(SignatureError, match="changed: sha256"):
        verify_signature(path, model=changed)
    cli = CliRunner().invoke(main, ["signature", "verify", str(path), "--model", str(changed)])
    assert cli.exit_code != 0
    assert "not the signed model" in cli.output


def test_verify_fails_when_recorded_metric_does_not_reproduce(signed, tmp_path):
    _, path, _ = signed
    sig = json.loads(path.read_text())
    sig["worst_case"]["metric"] = min(1.0, sig["worst_case"]["metric"] + 0.5)
    tampered = tmp_path / "signature.json"
    tampered.write_text(json.dumps(sig))
    with pytest.raises(SignatureError, match="recorded worst case"):
        verify_signature(tampered)


def test_verify_rejects_non_signature(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(SignatureError, match="not a driftlab signature"):
        verify_signature(bad)
    with pytest.raises(SignatureError, match="no such signature file"):
        verify_signature(tmp_path / "missing.json")
