"""Issue 9.6: forensic signatures with held-out evidence: the seeded split, the
lower bounds (Clopper-Pearson, bootstrap), box shrinking, sensitivity in
physical units, and schema validation of every signature written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from driftlab.forensics.confidence import (
    BoundSettings,
    bootstrap_iou_lower,
    clopper_pearson_lower,
    metric_of_scores,
)
from driftlab.forensics.crossfit import PER_AXIS, SAFE, split_items
from driftlab.forensics.envelope import (
    corner_patterns,
    element_sensitivity,
    most_sensitive,
    rank_stages,
)
from driftlab.forensics.signature import canonical_json, signature_headline, write_signature
from driftlab.forensics.validate import SignatureError, load_signature, validate_signature
from tests.signature_cases import BrightnessBand, Constant, constructed_signature

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "signature.schema.json"


@pytest.fixture(scope="module")
def band_signature():
    return constructed_signature(BrightnessBand())


@pytest.fixture(scope="module")
def constant_signature():
    return constructed_signature(Constant())


# -- the split --------------------------------------------------------------------------


def test_split_is_seeded_disjoint_and_complete():
    search, holdout = split_items(41, seed=3)
    assert len(search) == 20 and len(holdout) == 21
    assert not set(search) & set(holdout)
    assert sorted({*search, *holdout}) == list(range(41))
    again = split_items(41, seed=3)
    assert np.array_equal(again[0], search) and np.array_equal(again[1], holdout)
    assert not np.array_equal(split_items(41, seed=4)[0], search)
    with pytest.raises(ValueError, match="at least 2 examined items"):
        split_items(1, seed=0)


def test_cross_fit_signature_search_and_evaluation_ids_disjoint(band_signature):
    cross, data = band_signature["cross_fit"], band_signature["data"]
    search, holdout = cross["search_ids"], cross["holdout_ids"]
    assert search and holdout and not set(search) & set(holdout)
    assert sorted(search + holdout) == sorted(data["ids"])
    expected_search, expected_holdout = split_items(len(data["ids"]), cross["seed"])
    assert search == [data["ids"][i] for i in expected_search]
    assert holdout == [data["ids"][i] for i in expected_holdout]
    assert band_signature["sweep"]["items"] == "search"


def test_signature_with_another_seed_uses_another_split():
    a = constructed_signature(Constant(), n=12, seed=0, shrink_steps=0, steps=1, points=1, refine=0)
    b = constructed_signature(Constant(), n=12, seed=1, shrink_steps=0, steps=1, points=1, refine=0)
    assert a["cross_fit"]["holdout_ids"] != b["cross_fit"]["holdout_ids"]


# -- lower bounds -----------------------------------------------------------------------


def test_clopper_pearson_bound_against_known_values():
    # closed forms: k = n gives alpha^(1/n); k = 1 gives 1 - (1 - alpha)^(1/n)
    assert clopper_pearson_lower(10, 10) == pytest.approx(0.05 ** (1 / 10), rel=1e-12)
    assert clopper_pearson_lower(20, 20) == pytest.approx(0.8608916593317348, rel=1e-12)
    assert clopper_pearson_lower(1, 20) == pytest.approx(1 - 0.95 ** (1 / 20), rel=1e-10)
    assert clopper_pearson_lower(0, 30) == 0.0
    # 8 of 10: the exact two-sided 90% interval is [0.4931, 0.9632]; its lower end is
    # the one-sided 95% bound
    assert clopper_pearson_lower(8, 10) == pytest.approx(0.4931, abs=1e-4)
    # definition: P(X >= k | p_L) = 1 - confidence
    for k, n in ((3, 7), (15, 16), (37, 50)):
        p = clopper_pearson_lower(k, n, 0.95)
        assert stats.binom.sf(k - 1, n, p) == pytest.approx(0.05, rel=1e-8)
    assert clopper_pearson_lower(8, 10, 0.99) < clopper_pearson_lower(8, 10, 0.95)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson_lower(11, 10)


def test_clopper_pearson_exact_coverage_at_least_95_percent():
    n = 25
    coverage = [
        sum(stats.binom.pmf(k, n, p) for k in range(n + 1) if clopper_pearson_lower(k, n) <= p)
        for p in np.linspace(0.05, 0.95, 19)
    ]
    assert min(coverage) >= 0.95  # guaranteed for every true accuracy
    assert np.median(coverage) < 0.99  # and not trivially conservative


def test_bootstrap_iou_bound_coverage_close_to_95_percent():
    rng = np.random.default_rng(0)
    population = np.stack(
        [rng.integers(0, 60, 5000), rng.integers(0, 60, 5000)], axis=1
    )  # intersection, union per item
    population[:, 1] += population[:, 0]
    truth = population[:, 0].sum() / population[:, 1].sum()
    trials, covered = 300, 0
    for t in range(trials):
        sample = population[rng.integers(0, len(population), 40)]
        covered += bootstrap_iou_lower(sample, 0.95, resamples=400, seed=t) <= truth
    assert 0.89 <= covered / trials <= 0.99


def test_bootstrap_is_seeded_and_named():
    counts = np.array([[3, 5], [1, 4], [6, 6], [0, 2], [2, 9]])
    a = bootstrap_iou_lower(counts, seed=7)
    assert a == bootstrap_iou_lower(counts, seed=7)
    assert a <= metric_of_scores("segmentation", counts)
    settings = BoundSettings(resamples=200, seed=7)
    assert settings.describe("segmentation")["method"] == "percentile-bootstrap"
    assert settings.describe("classification")["method"] == "clopper-pearson"
    with pytest.raises(ValueError, match="resamples"):
        BoundSettings(resamples=0)


# -- the box ----------------------------------------------------------------------------


def test_shrinking_when_the_per_axis_box_fails_jointly(band_signature):
    box, acc = band_signature["box"], band_signature["acceptance"]
    first = box["checks"][0]
    # every element alone keeps the metric (the 1-D envelope) ...
    for entry in band_signature["envelope"].values():
        for e in entry["elements"]:
            assert e["high"] > e["default"] > e["low"]
            assert min(e["metric_low"], e["metric_high"]) >= acc["floor_search"]
    # ... but the whole per-axis box fails jointly on the held-out items
    assert first["scale"] == 1.0 and not first["passed"]
    assert first["worst_lower_bound"] < acc["floor"]
    # so the published box is shrunk by a common scale until it holds
    assert box["status"] == SAFE
    assert 0 < box["scale"] < 1
    assert box["scale"] == max(c["scale"] for c in box["checks"] if c["passed"])
    worst = band_signature["worst_case"]
    assert worst["accepted"] and worst["lower_bound"] >= acc["floor"]
    assert all(c["lower_bound"] >= acc["floor"] for c in box["corners"])
    assert len(box["corners"]) == 16  # 4 elements: every corner examined
    gains_high = np.asarray(box["high"]["white_balance.gains"])
    envelope_high = np.array(
        [e["high"] for e in band_signature["envelope"]["white_balance.gains"]["elements"]]
    )
    assert np.allclose(gains_high, 1 + box["scale"] * (envelope_high - 1))
    assert "safe box" in signature_headline(band_signature)[0]


def test_box_is_never_called_safe_without_enough_held_out_items():
    # 6 held-out items: the clean metric's bound (0.43 at the Bonferroni level
    # 1 - 0.05 / (2 x 4)) is below the floor (0.8); 23 held-out items would be needed
    sig = constructed_signature(BrightnessBand(), n=12, shrink_steps=2, steps=1)
    assert sig["box"]["status"] == PER_AXIS
    assert sig["box"]["scale"] == 1.0
    assert not sig["worst_case"]["accepted"]
    assert "too few items" in sig["box"]["reason"]
    assert "needs >= 23 held-out items" in sig["box"]["reason"]
    line = signature_headline(sig)[0]
    assert line.startswith("no safe box: per-axis tolerance only") and "safe box (" not in line


def test_corner_patterns_all_or_seeded_sample():
    assert corner_patterns(2, 16, 0) == ["ll", "hl", "lh", "hh"]
    many = corner_patterns(27, 16, 5)
    assert len(many) == len(set(many)) == 16
    assert many[:2] == ["l" * 27, "h" * 27]
    assert many == corner_patterns(27, 16, 5)


# -- sensitivity ------------------------------------------------------------------------


def test_sensitivity_is_loss_per_view_rms_and_ranks_stages(band_signature):
    assert band_signature["sensitivity"]["unit"].startswith("metric loss per unit of view RMS")
    acc = band_signature["acceptance"]
    for entry in band_signature["envelope"].values():
        for e in entry["elements"]:
            s = e["steepest"]
            assert s is not None and s["metric"] < acc["clean_search"]
            assert e["sensitivity"] == pytest.approx(
                (acc["clean_search"] - s["metric"]) / s["view_rms"]
            )
            assert e["slope"] == pytest.approx(
                (acc["clean_search"] - s["metric"]) / abs(s["value"] - e["default"])
            )
    stages = band_signature["stages"]
    assert [s["sensitivity"] for s in stages] == sorted(
        (s["sensitivity"] for s in stages), reverse=True
    )
    assert band_signature["sensitivity"]["most_sensitive"] == stages[0]["stage"]


def test_no_stage_is_most_sensitive_when_all_are_zero(constant_signature):
    stages = constant_signature["stages"]
    assert all(s["sensitivity"] == 0.0 and s["steepest"] is None for s in stages)
    assert all(np.signbit(s["sensitivity"]) == 0 for s in stages)  # no -0.0 / -2.2e-16
    assert constant_signature["sensitivity"]["most_sensitive"] is None
    assert "none" in signature_headline(constant_signature)[1]
    assert most_sensitive(stages) is None


def test_sensitivity_never_negative_from_rounding():
    # a metric a hair above the clean one (float residue) is no drop
    assert element_sensitivity(0.7, 0.7000000000000001, 0.1, 0.5) == (0.0, 0.0)
    assert element_sensitivity(0.7, 0.7 + 2.2e-16, 0.0, 0.0) == (0.0, 0.0)
    envelope = {
        "gamma.gamma": {
            "elements": [
                {"index": [], "relative_width": 1.0000000000000002, "sensitivity": 0.0},
            ]
        }
    }
    (ranked,) = rank_stages(envelope)
    assert ranked["sensitivity"] == 0.0 and most_sensitive([ranked]) is None


# -- schema ------------------------------------------------------------------------------


def test_written_signatures_validate_against_the_schema(
    band_signature, tmp_path, signatures_follow_the_schema
):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    paths = write_signature(band_signature, tmp_path)
    assert band_signature in signatures_follow_the_schema  # the session-wide check saw it
    on_disk = json.loads(paths["json"].read_text())
    jsonschema.validate(on_disk, schema)
    assert paths["json"].read_text() == canonical_json(band_signature)
    assert load_signature(paths["json"]) == on_disk
    for suffix in ("md", "html"):
        text = paths[suffix].read_text()
        assert "held-out" in text and band_signature["model"]["sha256"] in text


def test_schema_and_validator_refuse_the_old_negative_sensitivity(constant_signature):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    bad = json.loads(json.dumps(constant_signature))
    bad["stages"][0]["sensitivity"] = -2.2e-16
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(SignatureError, match=r"field 'stages\[0\]\.sensitivity'"):
        validate_signature(bad)


def test_write_signature_refuses_an_invalid_signature_and_writes_nothing(band_signature, tmp_path):
    bad = json.loads(json.dumps(band_signature))
    bad["box"]["status"] = "safe-ish"
    with pytest.raises(SignatureError, match=r"field 'box\.status'"):
        write_signature(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []
