"""Forensic signature written by the runner: schema, envelope, ranking, verification,
and forged or malformed signatures (issue 13.3, 13.6, 13.8)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.forensics import SignatureError, load_signature, run_forensics, verify_signature
from driftlab.forensics.validate import DEFAULT_TOLERANCE, MAX_OPTION_INTEGER
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


def forensics_config(weights: Path) -> dict:
    return {
        "model": {"name": "small-cnn", "options": {"width": 8}, "weights": str(weights)},
        "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 32}},
        "split": {"part": "test", "folds": 2, "fold": 0, "max_items": 12},
        "pipeline": {"base": "bi,s,ga"},
        "attacks": {"names": ["projected"], "lambdas": [0.0], "steps": 1},
        "signature": {"threshold": 0.9, "points": 1, "refine": 1, "steps": 1, "tolerance": 1e-6},
    }


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A synthesis model copied to its own folder, then a forensics run with a signature."""
    base = tmp_path_factory.mktemp("signed")
    run_synthesis(SYNTHESIS, out=base / "synth")
    weights = base / "model.pt"
    shutil.copy(base / "synth" / "models" / "bi,s,ga__fold0.pt", weights)
    result = run_forensics(forensics_config(weights), out=base / "forensics")
    return result, base / "forensics" / "signature.json", weights


def _forge(path: Path, tmp_path: Path, edit) -> Path:
    sig = json.loads(path.read_text())
    edit(sig)
    forged = tmp_path / "signature.json"
    forged.write_text(json.dumps(sig, indent=2))
    return forged


def _verify_cli(*args: str):
    return CliRunner().invoke(main, ["signature", "verify", *args])


def test_signature_files_and_schema(signed):
    jsonschema = pytest.importorskip("jsonschema")
    result, path, _ = signed
    sig = json.loads(path.read_text())
    jsonschema.validate(sig, json.loads(SCHEMA.read_text()))
    assert load_signature(path) == sig == result.signature
    for suffix in ("md", "html"):
        text = path.with_suffix(f".{suffix}").read_text()
        assert "most sensitive stage" in text and "held-out" in text
        assert sig["model"]["sha256"] in text and sig["data"]["sha256"] in text
    acc = sig["acceptance"]
    # the floor is threshold x the held-out clean metric's upper bound, not its estimate
    assert acc["floor"] == pytest.approx(0.9 * acc["clean_holdout_upper_bound"])
    assert acc["clean_holdout_upper_bound"] >= acc["clean_holdout"]
    assert sig["statistics"]["floor_method"] == "clopper-pearson-upper"
    assert sig["statistics"]["method"] == "clopper-pearson"


def test_too_few_held_out_items_are_warned_about_before_any_work(signed, caplog, tmp_path):
    from driftlab.forensics import load_forensics_config
    from driftlab.forensics.plan import plan_forensics

    result, path, weights = signed
    # 12 examined items, 6 held out; threshold 0.9 at 99.92% per test needs 68
    expected = "no box can be declared safe"
    reach = result.summary["signature_reachability"]
    assert reach["reachable"] is False and (reach["needed"], reach["holdout_items"]) == (68, 6)
    assert expected in reach["message"] and ">= 68 held-out items" in reach["message"]
    assert "has 6" in reach["message"]
    report = (path.parent / "report.md").read_text()
    assert "**Warning**: no box can be declared safe" in report and "has 6" in report
    assert load_signature(path)["acceptance"]["min_holdout_items"] == 68
    with caplog.at_level("WARNING", logger="driftlab.forensics"):
        plan = plan_forensics(load_forensics_config(forensics_config(weights)), get_registry())
    assert plan.reachability is not None and not plan.reachability.reachable
    assert any(expected in r.getMessage() and "has 6" in r.getMessage() for r in caplog.records)
    caplog.clear()
    config = forensics_config(weights)
    config["split"]["max_items"] = 40  # 20 examined test items, 10 held out
    config["signature"].update(threshold=0.5, shrink_steps=0)  # needs 6 held-out items
    with caplog.at_level("WARNING", logger="driftlab.forensics"):
        plan = plan_forensics(load_forensics_config(config), get_registry())
    assert plan.reachability.reachable and plan.reachability.needed == 6
    assert not [r for r in caplog.records if expected in r.getMessage()]


def test_envelope_inside_domains_and_ranking_consistent(signed):
    _, path, _ = signed
    sig = json.loads(path.read_text())
    camera = get_registry().get("datasets", "embedded-smear").camera
    resolved = resolve(get_pipeline("bi,s,ga"), camera)
    domains = {f"{s.name}.{k}": d for s in resolved.stages for k, d in s.domains.items()}
    assert set(sig["envelope"]) == {p["key"] for p in sig["pipeline"]["parameters"]}
    for key, entry in sig["envelope"].items():
        d = domains[key]
        for e in entry["elements"]:
            assert d.low - 1e-9 <= e["low"] <= e["default"] <= e["high"] <= d.high + 1e-9, key
            assert e["metric_low"] >= sig["acceptance"]["floor_search"] - 1e-12
            assert e["sensitivity"] >= 0
    sens = [r["sensitivity"] for r in sig["stages"]]
    assert sens == sorted(sens, reverse=True)
    assert sig["tightest"]["relative_width"] == min(
        e["relative_width"] for entry in sig["envelope"].values() for e in entry["elements"]
    )
    for key, value in sig["worst_case"]["values"].items():
        assert domains[key].contains(np.asarray(value)), key
    assert sig["worst_case"]["metric"] <= sig["acceptance"]["clean_holdout"]


def test_verify_passes_on_unchanged_model_and_data(signed):
    _, path, _ = signed
    result = verify_signature(path)
    assert result.clean == pytest.approx(result.recorded_clean, abs=1e-6)
    assert result.worst == pytest.approx(result.recorded_worst, abs=1e-6)
    assert result.tolerance == DEFAULT_TOLERANCE and result.values > 20
    cli = _verify_cli(str(path))
    assert cli.exit_code == 0, cli.output
    assert "signature OK" in cli.output and "re-measured" in cli.output


def test_verify_fails_when_model_file_changed(signed, tmp_path):
    _, path, weights = signed
    changed = tmp_path / "model.pt"
    shutil.copy(weights, changed)
    with changed.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(SignatureError, match="changed: sha256"):
        verify_signature(path, model=changed)
    cli = _verify_cli(str(path), "--model", str(changed))
    assert cli.exit_code != 0
    assert "not the signed model" in cli.output


def test_verify_fails_when_recorded_metric_does_not_reproduce(signed, tmp_path):
    _, path, _ = signed

    def edit(sig):
        sig["acceptance"]["clean"] = min(1.0, sig["acceptance"]["clean"] + 0.5)

    with pytest.raises(SignatureError, match=r"acceptance\.clean: recorded"):
        verify_signature(_forge(path, tmp_path, edit))


def test_verify_rejects_non_signature(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(SignatureError, match="not a driftlab signature"):
        verify_signature(bad)
    with pytest.raises(SignatureError, match="no such signature file"):
        verify_signature(tmp_path / "missing.json")


# -- issue 13.3: forged signatures --------------------------------------------------------


def test_signature_verify_rejects_envelope_bounds_forged_to_999(signed, tmp_path):
    _, path, _ = signed

    def edit(sig):
        for entry in sig["envelope"].values():
            for e in entry["elements"]:
                e["low"], e["high"] = -999.0, 999.0

    forged = _forge(path, tmp_path, edit)
    with pytest.raises(SignatureError, match=r"field 'envelope\..*\.low': expected domain low"):
        verify_signature(forged)
    cli = _verify_cli(str(forged))
    assert cli.exit_code == 1 and "signature OK" not in cli.output
    assert "signature check failed" in cli.output


def test_signature_verify_ignores_the_tolerance_written_in_the_file(signed, tmp_path):
    _, path, _ = signed

    def edit(sig):
        sig["verification"]["tolerance"] = 1e9
        sig["acceptance"]["clean"] = 0.99

    forged = _forge(path, tmp_path, edit)
    with pytest.raises(SignatureError, match=r"acceptance\.clean: recorded 0\.99, re-measured"):
        verify_signature(forged)
    cli = _verify_cli(str(forged))
    assert cli.exit_code == 1 and "signature OK" not in cli.output
    assert f"(tolerance {DEFAULT_TOLERANCE})" in cli.output
    # the tolerance is the verifier's: a deliberately loose one is its own choice
    loose = _verify_cli(str(forged), "--tolerance", "1")
    assert loose.exit_code == 0, loose.output
    assert "recorded tolerance 1e+09, not used" in loose.output


def test_signature_verify_remeasures_the_box_corners_and_worst_case(signed, tmp_path):
    _, path, _ = signed
    sig = json.loads(path.read_text())
    worst = (sig["worst_case"]["lower_bound"], sig["worst_case"]["metric"])
    corner = (
        next(
            i
            for i, c in enumerate(sig["box"]["corners"])
            if (c["lower_bound"], c["metric"]) != worst
        )
        if any((c["lower_bound"], c["metric"]) != worst for c in sig["box"]["corners"])
        else None
    )
    if corner is not None:

        def edit_corner(s):
            s["box"]["corners"][corner]["metric"] = 1.0
            s["box"]["corners"][corner]["lower_bound"] = 1.0

        with pytest.raises(SignatureError, match=rf"box\.corners\[{corner}\]\.metric: recorded 1"):
            verify_signature(_forge(path, tmp_path, edit_corner))

    def edit_search_point(s):
        s["worst_case"]["search_point"]["metric_search"] = 1.0

    with pytest.raises(SignatureError, match=r"worst_case\.search_point\.metric_search"):
        verify_signature(_forge(path, tmp_path, edit_search_point))


def test_signature_verify_checks_values_against_the_declared_domain_constraints(signed, tmp_path):
    _, path, _ = signed
    sig = json.loads(path.read_text())
    constrained = {"sharpen.kernel"}  # elements sum to 1 (a declared equality constraint)
    point = sig["worst_case"]["search_point"]["values"]
    key = next(iter(constrained & set(point)))
    low = np.asarray(sig["box"]["low"][key])
    high = np.asarray(sig["box"]["high"][key])
    value = np.asarray(point[key], dtype=float)
    room = np.argwhere(high - value > 1e-3)
    if not len(room):
        pytest.skip("no element of the kernel has room inside the box")
    i = tuple(room[0])
    value[i] += min(1e-3, float(high[i] - value[i]))  # inside the box, off the sum constraint
    assert np.all(value >= low - 1e-12)

    def edit(s):
        s["worst_case"]["search_point"]["values"][key] = value.tolist()
        if s["worst_case"]["source"] == "search":
            s["worst_case"]["values"][key] = value.tolist()

    with pytest.raises(SignatureError, match=r"outside the declared domain.*elements must sum to"):
        verify_signature(_forge(path, tmp_path, edit))


def _forge_cell_copy(run: Path, edit) -> None:
    """Edit the signature the forensics run keeps in its cell, *and* update the cell
    record's checksum, as a deliberate forger would."""
    from driftlab.atomic import file_sha256

    stored = run / "models" / "signature.signature.json"
    sig = json.loads(stored.read_text())
    edit(sig)
    stored.write_text(json.dumps(sig))
    record_path = run / "cells" / "signature.json"
    record = json.loads(record_path.read_text())
    record["files"]["models/signature.signature.json"] = file_sha256(stored)
    record_path.write_text(json.dumps(record))


def test_forensics_resume_does_not_reuse_a_forged_signature(signed, tmp_path, caplog):
    result, path, weights = signed
    run = tmp_path / "run"
    shutil.copytree(path.parent, run)
    # the published copy is an output: a forged one is replaced by the checked cell's
    sig = json.loads((run / "signature.json").read_text())
    sig["acceptance"]["clean"] = 0.99
    (run / "signature.json").write_text(json.dumps(sig))
    first = run_forensics(forensics_config(weights), out=run)
    assert first.signature["acceptance"]["clean"] == result.signature["acceptance"]["clean"]
    assert load_signature(run / "signature.json")["acceptance"]["clean"] != 0.99

    # a consistent forgery of the cell's own copy is re-measured and not reused
    def clean_099(s):
        s["acceptance"]["clean"] = 0.99  # structurally valid, does not reproduce

    _forge_cell_copy(run, clean_099)
    with caplog.at_level("WARNING", logger="driftlab.forensics"):
        again = run_forensics(forensics_config(weights), out=run)
    assert again.cells_computed == 0  # the attack cells were reused ...
    assert again.signature["acceptance"]["clean"] == result.signature["acceptance"]["clean"]
    assert "not reusing" in caplog.text and "acceptance.clean" in caplog.text
    assert load_signature(run / "signature.json")["acceptance"]["clean"] != 0.99
    verify_signature(run / "signature.json")

    # a signature with bounds out of its domains is not reused either
    def wide(s):
        for entry in s["envelope"].values():
            for e in entry["elements"]:
                e["low"], e["high"] = -999.0, 999.0

    _forge_cell_copy(run, wide)
    caplog.clear()
    with caplog.at_level("WARNING", logger="driftlab.forensics"):
        third = run_forensics(forensics_config(weights), out=run)
    assert "field 'envelope." in caplog.text
    assert third.signature["envelope"] == result.signature["envelope"]


def test_signature_verify_refuses_a_pipeline_that_widens_a_declared_domain(signed, tmp_path):
    _, path, _ = signed

    def edit(sig):
        for stage in sig["pipeline"]["spec"]["stages"]:
            if stage["slot"] == "gamma":
                stage["domains"] = {"gamma": [0.1, 100.0]}

    with pytest.raises(SignatureError, match=r"domain of gamma\.gamma is wider than"):
        verify_signature(_forge(path, tmp_path, edit))


def test_signature_seal_through_the_cli(signed, tmp_path):
    pytest.importorskip("cryptography")
    _, path, _ = signed
    copy = tmp_path / "signature.json"
    shutil.copy(path, copy)
    key = tmp_path / "keys" / "lab.key"
    key.parent.mkdir()
    runner = CliRunner()
    made = runner.invoke(main, ["signature", "keygen", str(key)])
    assert made.exit_code == 0, made.output
    assert (key.stat().st_mode & 0o777) == 0o600
    sealed = runner.invoke(main, ["signature", "sign", str(copy), "--key", str(key)])
    assert sealed.exit_code == 0, sealed.output
    ok = _verify_cli(str(copy), "--public-key", f"{key}.pub")
    assert ok.exit_code == 0, ok.output
    assert "seal OK: Ed25519" in ok.output and "signature OK" in ok.output
    data = bytearray(copy.read_bytes())
    data[data.index(b'"created"') + 14] ^= 1  # one edited byte (inside the timestamp)
    copy.write_bytes(bytes(data))
    bad = _verify_cli(str(copy), "--public-key", f"{key}.pub")
    assert bad.exit_code == 1 and "seal does not match" in bad.output


# -- issue 13.6 and 13.8: sizes and malformed fields ---------------------------------------


def test_signature_with_a_huge_n_items_is_refused_before_allocating(signed, tmp_path):
    _, path, _ = signed

    def edit(sig):
        sig["data"]["options"]["n_items"] = 1_000_000_000

    forged = _forge(path, tmp_path, edit)
    with pytest.raises(
        SignatureError,
        match=rf"field 'data\.options\.n_items': integer 1000000000 exceeds the limit {MAX_OPTION_INTEGER}",
    ):
        verify_signature(forged)
    forged.write_text(forged.read_text().replace("1000000000", "1e9"))
    with pytest.raises(SignatureError, match=r"field 'data\.options\.n_items'"):
        load_signature(forged)


MALFORMED = [
    (lambda s: s.pop("envelope"), "envelope", "missing required field"),
    (lambda s: s.update(schema="driftlab-signature/1"), "schema", "no longer accepted"),
    (lambda s: s["data"].update(ids="abc"), "data.ids", "expected a list"),
    (lambda s: s["data"].update(items=10**9), "data.items", "expected an integer in"),
    (lambda s: s["model"].update(sha256="xyz"), "model.sha256", "matching"),
    (lambda s: s["acceptance"].update(threshold=True), "acceptance.threshold", "expected a number"),
    (lambda s: s.update(data=None), "data", "expected a table"),
    (
        lambda s: s["pipeline"]["parameters"][0].update(shape=[10**9]),
        "pipeline.parameters[0].shape[0]",
        "expected an integer in",
    ),
    (
        lambda s: s["cross_fit"].update(holdout_ids=s["cross_fit"]["search_ids"]),
        "cross_fit.holdout_ids",
        "seeded split",
    ),
    (
        lambda s: s["box"]["corners"][0].update(pattern="lhx"),
        "box.corners[0].pattern",
        "letters l/h",
    ),
    (
        lambda s: s["worst_case"]["values"].update({"gamma.gamma": [[[[[1.0]]]]]}),
        "worst_case.values.gamma.gamma[0][0][0][0]",
        "nested levels",
    ),
    (lambda s: s["envelope"].update(extra={}), "envelope key", "expected a string matching"),
    (lambda s: s.update(surprise=1), "surprise", "unknown field"),
    (lambda s: s["stages"][0].update(stage=7), "stages[0].stage", "expected a string"),
]


@pytest.mark.parametrize(("edit", "field", "message"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_signature_fields_give_one_error_naming_the_field(
    signed, tmp_path, edit, field, message
):
    _, path, _ = signed
    forged = _forge(path, tmp_path, edit)
    with pytest.raises(SignatureError) as info:
        load_signature(forged)
    text = str(info.value)
    assert text.startswith(str(forged)) and f"field '{field}'" in text and message in text
    cli = _verify_cli(str(forged))
    assert cli.exit_code == 1 and f"field '{field}'" in cli.output
    assert "Traceback" not in cli.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"schema": "driftlab-signature/3", ', "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"schema": "driftlab-signature/3", "x": NaN}', "not valid JSON"),
        (b"[]", "not a driftlab signature"),
    ],
    ids=["truncated", "binary", "deep", "nan", "list"],
)
def test_unreadable_signatures_give_one_error_class(tmp_path, content, message):
    bad = tmp_path / "signature.json"
    bad.write_bytes(content)
    with pytest.raises(SignatureError, match=message):
        load_signature(bad)


def test_oversized_signature_is_refused_before_reading(tmp_path, monkeypatch):
    import driftlab.forensics.validate as validate

    monkeypatch.setattr(validate, "MAX_FILE_BYTES", 100)
    big = tmp_path / "signature.json"
    big.write_text(" " * 101)
    with pytest.raises(SignatureError, match="101 bytes, more than the 100 a signature may have"):
        load_signature(big)


def test_cli_tolerance_default_is_documented():
    out = CliRunner().invoke(main, ["signature", "verify", "--help"]).output
    assert f"[default: {DEFAULT_TOLERANCE:g}]".replace("e-6", "e-06") in out.replace(
        "\n", " "
    ).replace("  ", " ")


def test_signature_of_a_torchscript_model_is_written_and_verifies(signed, tmp_path):
    """Every model format the docs promise works in forensics and signature verify."""
    from driftlab.models.loading import load_model
    from driftlab.registry import get_registry
    from tests.model_files import save_torchscript

    _, _, weights = signed
    view_model = load_model(
        weights, name="small-cnn", num_classes=5, options={"width": 8}, registry=get_registry()
    ).view_model()
    scripted = save_torchscript(view_model.eval(), tmp_path / "model.ts")
    config = forensics_config(scripted)
    config["model"] = {"weights": str(scripted)}  # the archive carries its architecture
    result = run_forensics(config, out=tmp_path / "run")
    assert result.signature["model"]["name"] is None
    checked = verify_signature(tmp_path / "run" / "signature.json")
    assert checked.status == result.signature["box"]["status"]
