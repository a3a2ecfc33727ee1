"""The drift verdict on constructed evidence: intervals, ratio and chance guards, top-3 stability,
severity-3 headline, and the words of the command line and the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftlab.verdicts.drift import DriftSettings, drift_verdict, summarize
from driftlab.verdicts.evidence import EvidenceError, evidence_from_records
from driftlab.verdicts.headline import explanation, headline_lines
from tests.verdict_cases import classification_records, conditions, results_of

TRAINS = ["a", "b", "c", "d", "e"]
FAST = DriftSettings(bootstrap=300, seed=0)


def _verdict(trains, conds, p_correct, settings=FAST, **kw):
    records = classification_records(trains, conds, p_correct, **kw)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    return drift_verdict(results_of(records), evidence, settings)


def test_every_quantity_gets_an_interval_around_its_value():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 1), ("noise", 3), ("blur", 3)])
    v = _verdict(TRAINS, conds, lambda t, c, f: 0.9 if c[0] == "isp" else 0.6)
    s = v.summary
    json.dumps(s, allow_nan=False)
    for key in ("mean_diagonal", "mean_isp_drop", "mean_corruption_drop",
                "mean_corruption_drop_all_severities"):  # fmt: skip
        low, high = s["intervals"][key]
        assert low <= s[key] <= high, key
    for name, entry in s["per_train_pipeline"].items():
        for quantity, (low, high) in entry["intervals"].items():
            assert low <= entry[quantity] <= high, (name, quantity)
    matrix = v.matrix
    assert len(matrix) == len(TRAINS) * len(conds)
    assert ((matrix["low"] <= matrix["mean"]) & (matrix["mean"] <= matrix["high"])).all()
    assert s["bootstrap"]["resamples"] == 300 and "two-level" in s["bootstrap"]["method"]


def test_intervals_are_reproducible_from_the_seed():
    conds = conditions(TRAINS[:2], [("noise", 3)])
    records = classification_records(TRAINS[:2], conds, lambda t, c, f: 0.8, n=60)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    a = summarize(results_of(records), evidence, FAST)
    b = summarize(results_of(records), evidence, FAST)
    c = summarize(results_of(records), evidence, DriftSettings(bootstrap=300, seed=1))
    assert a["intervals"] == b["intervals"] and a["intervals"] != c["intervals"]


def test_ratio_is_null_with_the_reason_when_the_isp_drop_interval_includes_zero():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])
    # no ISP drift at all: the ISP drop is 0 up to sampling noise; corruptions hurt
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.5 if c[1] == "noise" else 0.9).summary
    low, high = s["intervals"]["mean_isp_drop"]
    assert low <= 0 <= high
    assert s["drop_ratio_corruption_over_isp"] is None
    assert "does not lie above 0" in s["reasons"]["drop_ratio_corruption_over_isp"]
    assert any("not given: the ISP drop" in line for line in headline_lines(s))


def test_ratio_is_given_when_the_isp_drop_interval_lies_above_zero():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])

    def p(train, cond, fold):
        if cond[0] == "isp":
            return 0.9 if cond[1] == train else 0.8
        return 0.4 if cond[1] == "noise" else 0.9

    s = _verdict(TRAINS, conds, p, n=200).summary
    assert s["intervals"]["mean_isp_drop"][0] > 0
    assert s["drop_ratio_corruption_over_isp"] == pytest.approx(
        s["mean_corruption_drop"] / s["mean_isp_drop"]
    )
    assert "drop_ratio_corruption_over_isp" not in s["reasons"]
    low, high = s["intervals"]["drop_ratio_corruption_over_isp"]
    assert low < s["drop_ratio_corruption_over_isp"] < high
    assert "ratio corruptions / ISP drift: " in "\n".join(headline_lines(s))
    assert any(f"[{low:.2f}, {high:.2f}]" in line for line in headline_lines(s))


def test_ratio_interval_covers_the_true_ratio_and_is_unbounded_for_a_drop_near_zero():
    """Known answer: items with corruption drop 0.3 and ISP drop 0.06 on average (true ratio
    5); a percentile bootstrap over items, then ratio_interval. Over 200 seeded repetitions
    the 95% interval covers 5 in about 95% of them (at least 0.90 here), and an ISP drop
    that is 0 in most replicates leaves the upper end unbounded."""
    from driftlab.verdicts.drift import ratio_interval

    rng = np.random.default_rng(0)
    n, resamples, covered, repetitions = 300, 400, 0, 200
    for _ in range(repetitions):
        corruption = rng.binomial(1, 0.3, n).astype(float)
        isp = rng.binomial(1, 0.06, n).astype(float)
        index = rng.integers(0, n, (resamples, n))
        low, high = ratio_interval(corruption[index].mean(1), isp[index].mean(1), 0.95)
        covered += low <= 5.0 <= (np.inf if high is None else high)
    assert 0.90 <= covered / repetitions <= 0.99
    replicates = np.linspace(-0.01, 0.002, 400)  # ISP drop <= 0 in most replicates
    low, high = ratio_interval(np.full(400, 0.3), replicates, 0.95)
    assert high is None and low > 0
    assert ratio_interval(np.full(400, np.nan), replicates, 0.95) is None


def test_at_chance_the_verdict_warns_and_leaves_out_rankings_and_the_worst_pair():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])
    # five balanced classes, predictions right only by luck: accuracy 0.2 = chance
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.0).summary
    assert s["chance_level"] == pytest.approx(0.2)
    assert s["above_chance"] is False
    assert s["top3_isp"] is None and s["top3_corruption"] is None and s["top3_overlap"] is None
    assert s["worst_pair"] is None
    assert s["reasons"]["worst_pair"] == "the model is not above chance"
    lines = headline_lines(s, lead=["cells: ..."])
    assert (
        lines[0].startswith("WARNING: the mean diagonal accuracy")
        and "not above chance" in lines[0]
    )
    assert lines[1] == "cells: ..."
    assert not any("top-3" in line or "largest ISP drop" in line for line in lines)


def test_above_chance_needs_the_diagonal_interval_above_the_chance_level():
    conds = conditions(TRAINS, [("noise", 3)])
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.7).summary
    assert s["above_chance"] is True
    assert s["intervals"]["mean_diagonal"][0] > s["chance_level"]
    assert all(e["above_chance"] for e in s["per_train_pipeline"].values())
    assert s["worst_pair"] is not None and not headline_lines(s)[0].startswith("WARNING")


def test_top3_probability_names_a_clear_winner_set():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])
    strong = {"a": 0.95, "c": 0.93, "e": 0.9, "b": 0.55, "d": 0.5}
    s = _verdict(TRAINS, conds, lambda t, c, f: strong[t], n=150).summary
    p = s["top3_probability"]
    for kind in ("isp", "corruption"):
        assert p[kind]["a"] >= 0.99 and p[kind]["c"] >= 0.99 and p[kind]["e"] >= 0.99
        assert p[kind]["b"] <= 0.01 and p[kind]["d"] <= 0.01
        assert sum(p[kind].values()) == pytest.approx(3.0)
    assert s["top3_isp"] == ["a", "c", "e"] and s["top3_corruption"] == ["a", "c", "e"]
    assert s["top3_overlap"] == ["a", "c", "e"]
    assert "top3_isp" not in s["reasons"]
    line = next(x for x in headline_lines(s) if "under ISP drift:" in x and "top-3" in x)
    assert "a (P = 1.00)" in line


def test_top3_probability_leaves_a_ranking_of_equals_unresolved():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])
    # every train pipeline made exactly the same predictions: nobody wins, ties share places
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.8, shared=True).summary
    for kind in ("isp", "corruption"):
        p = s["top3_probability"][kind]
        assert sum(p.values()) == pytest.approx(3.0)
        assert all(0.5 <= v <= 0.7 for v in p.values()), p  # 3 / 5 each
    assert s["top3_isp"] == [] and s["top3_corruption"] == []
    assert "not resolved at this sample size" in s["reasons"]["top3_isp"]
    assert s["top3_overlap"] is None  # neither list is resolved: no overlap claim
    lines = headline_lines(s)
    assert any("under ISP drift:" in x and "not resolved at this sample size" in x for x in lines)


def test_top3_of_equally_good_pipelines_with_sampling_noise_is_not_resolved():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3)])
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.8, seed=5).summary
    assert sum(s["top3_probability"]["isp"].values()) == pytest.approx(3.0)
    assert len(s["top3_isp"]) < 3 and len(s["top3_corruption"]) < 3


def test_headline_corruption_drop_is_at_severity_3_with_the_all_severity_mean_beside():
    conds = conditions(TRAINS, [("identity", 0), ("noise", 1), ("noise", 3), ("noise", 5)])
    severity_p = {0: 0.9, 1: 0.85, 3: 0.6, 5: 0.3}
    s = _verdict(
        TRAINS, conds, lambda t, c, f: 0.9 if c[0] == "isp" else severity_p[c[2]], n=200
    ).summary
    assert s["corruption_severity"] == 3
    assert s["mean_corruption_drop"] == pytest.approx(0.3, abs=0.05)
    assert s["mean_corruption_drop_all_severities"] == pytest.approx(0.3333, abs=0.05)
    drops = s["severity_drops"]["noise"]
    assert set(drops) == {"1", "3", "5"}
    assert drops["1"]["drop"] < drops["3"]["drop"] < drops["5"]["drop"]
    assert "identity" not in s["severity_drops"]
    line = next(x for x in headline_lines(s) if "corruptions at severity 3" in x)
    assert "(all severities" in line


def test_without_severity_3_the_headline_uses_every_severity():
    conds = conditions(TRAINS, [("noise", 1), ("noise", 5)])
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.8).summary
    assert s["corruption_severity"] is None
    assert s["mean_corruption_drop"] == s["mean_corruption_drop_all_severities"]


def test_worst_pair_is_the_largest_drop_from_the_own_diagonal_not_the_lowest_score():
    trains = ["good", "weak"]
    conds = conditions(trains)
    score = {
        ("good", "good"): 0.95,
        ("good", "weak"): 0.7,  # drop 0.25, score 0.7
        ("weak", "weak"): 0.6,
        ("weak", "good"): 0.55,
    }  # drop 0.05, lowest score
    s = _verdict(trains, conds, lambda t, c, f: score[(t, c[1])], n=300).summary
    pair = s["worst_pair"]
    assert (pair["train"], pair["test"]) == ("good", "weak")
    assert pair["drop"] == pytest.approx(0.25, abs=0.05)
    low, high = pair["drop_interval"]
    assert low <= pair["drop"] <= high


def test_a_plain_results_table_gives_null_intervals_with_the_reason():
    conds = conditions(TRAINS, [("noise", 3)])
    records = classification_records(TRAINS, conds, lambda t, c, f: 0.8, n=50)
    s = summarize(results_of(records))
    json.dumps(s, allow_nan=False)
    assert s["intervals"] is None and s["top3_probability"] is None
    assert s["chance_level"] is None and s["above_chance"] is None
    assert s["drop_ratio_corruption_over_isp"] is None
    assert "plain results table" in s["reasons"]["intervals"]
    assert "not known to be above 0" in s["reasons"]["drop_ratio_corruption_over_isp"]
    assert s["mean_diagonal"] == pytest.approx(
        results_of(records)
        .query("test_kind == 'isp' and train_pipeline == test_condition")["value"]
        .mean()
    )
    assert "[" not in headline_lines(s)[0]  # no interval printed


def test_bootstrap_zero_keeps_the_chance_level_but_no_intervals():
    conds = conditions(TRAINS, [("noise", 3)])
    s = _verdict(TRAINS, conds, lambda t, c, f: 0.8, DriftSettings(bootstrap=0)).summary
    assert s["intervals"] is None and s["reasons"]["intervals"] == "[report] bootstrap = 0"
    assert s["chance_level"] == pytest.approx(0.2) and s["above_chance"] is None


def test_evidence_that_contradicts_the_table_is_refused():
    conds = conditions(TRAINS[:2], [("noise", 3)])
    records = classification_records(TRAINS[:2], conds, lambda t, c, f: 0.8, n=50)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    results = results_of(records)
    results.loc[0, "value"] = 1.0 - results.loc[0, "value"]
    with pytest.raises(EvidenceError, match="differ from the scores"):
        drift_verdict(results, evidence, FAST)


def test_the_explanation_defines_every_term_once():
    conds = conditions(TRAINS, [("noise", 3)])
    text = explanation(_verdict(TRAINS, conds, lambda t, c, f: 0.8, n=40).summary)
    for term in ("**diagonal**", "**drop**", "**ratio**", "**interval**", "**top-3 probability**",
                 "**worst pair**"):  # fmt: skip
        assert text.count(term) == 1, term
    assert "largest drop from the training pipeline's own diagonal" in text
    assert "95% percentile interval" in text and "at least 0.8 are named" in text


def test_summary_of_a_table_without_corruptions():
    frame = pd.DataFrame(
        [("a", f, "isp", t, 0, "accuracy", 0.8 if t == "a" else 0.7) for f in (0, 1)
         for t in ("a", "b")],
        columns=["train_pipeline", "fold", "test_kind", "test_condition", "severity", "metric",
                 "value"],
    )  # fmt: skip
    s = summarize(frame)
    assert s["mean_isp_drop"] == pytest.approx(0.1)
    assert s["mean_corruption_drop"] is None and s["ranking_corruption"] is None
    assert s["severity_drops"] == {}
    json.dumps(s, allow_nan=False)
    assert np.isfinite(s["mean_diagonal"])


def test_a_held_out_test_set_shared_by_every_fold_is_resampled_once_per_replicate():
    conds = conditions(TRAINS[:2], [("noise", 3)])
    s = _verdict(TRAINS[:2], conds, lambda t, c, f: 0.8, held_out=True).summary
    assert "one item resample serves all" in s["bootstrap"]["method"]
    low, high = s["intervals"]["mean_diagonal"]
    assert low <= s["mean_diagonal"] <= high
    crossfit = _verdict(TRAINS[:2], conds, lambda t, c, f: 0.8).summary
    assert "one item resample" not in crossfit["bootstrap"]["method"]


def test_the_words_follow_non_default_settings_of_the_verdict(tmp_path):
    """top_k, the probability needed to name a pipeline, the interval level and the headline
    severity are read from the summary: the words cannot state the defaults instead."""
    from types import SimpleNamespace

    from driftlab.verdicts.report import build_report

    settings = DriftSettings(bootstrap=200, seed=0, level=0.9, top_k=2, resolved=0.6, severity=5)
    conds = conditions(TRAINS, [("identity", 0), ("noise", 3), ("noise", 5)])
    good = {"a": 0.95, "c": 0.9}
    records = classification_records(TRAINS, conds, lambda t, c, f: good.get(t, 0.5), n=200)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    v = drift_verdict(results_of(records), evidence, settings)
    s = v.summary
    assert s["settings"] == {"level": 0.9, "top_k": 2, "named_at": 0.6, "severity": 5}
    assert s["corruption_severity"] == 5 and "top3_isp" not in s
    assert s["top2_isp"] == ["a", "c"]
    lines = headline_lines(s)
    assert any(x.startswith("top-2 train pipelines under ISP drift:") for x in lines)
    assert any(x.startswith("in both top-2 lists: a, c") for x in lines)
    assert any("corruptions at severity 5" in x for x in lines)
    assert not any("top-3" in x for x in lines)
    text = explanation(s)
    assert "**top-2 probability**" in text and "among the 2 best" in text
    assert "at least 0.6 are named" in text and "90% percentile interval" in text
    assert "at severity 5 when the run has it" in text
    assert "0.8" not in text and "95%" not in text
    # an unresolved ranking names the threshold that was used
    equal = _verdict(TRAINS, conds, lambda t, c, f: 0.7, settings, n=30, shared=True).summary
    line = next(x for x in headline_lines(equal) if "under ISP drift:" in x and "top-2" in x)
    assert "top-2 probability >= 0.6" in line
    # the report: the same words, tables and figure titles
    plan = SimpleNamespace(dataset_spec=SimpleNamespace(name="cases"),
                           model=SimpleNamespace(name="m"))  # fmt: skip
    shown = {**s, "worst_pair": None}  # the worst-pair figure renders views of a real plan
    report = build_report(tmp_path, results_of(records), shown, plan, matrix=v.matrix)
    words = repr(report)
    assert "top-2 P, isp" in words and "top-2 train pipelines, ISP drift" in words
    assert "mean [90% interval]" in words and "top-3" not in words and "95%" not in words
