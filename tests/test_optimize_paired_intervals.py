"""Paired per-fold differences between optimisation arms and their confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftlab.optimize.summary import fold_scores, paired_differences
from driftlab.stats.paired import paired_interval


def _coverage(k: int, method: str, sets: int, seed: int, samples: int = 1000) -> float:
    rng = np.random.default_rng(seed)
    true_mean = 0.03
    hits = 0
    for i in range(sets):
        d = rng.normal(true_mean, 0.05, size=k)
        ci = paired_interval(d, method=method, samples=samples, seed=i)
        hits += ci.low <= true_mean <= ci.high
    return hits / sets


@pytest.mark.parametrize("k", [2, 3, 5])
def test_t_interval_covers_the_true_mean_at_the_nominal_rate_with_few_folds(k):
    # normal differences with a known mean: coverage 0.95 +- 3 binomial standard errors
    coverage = _coverage(k, "t", sets=2000, seed=k)
    assert abs(coverage - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 2000), coverage


def test_bootstrap_covers_the_true_mean_with_many_folds():
    coverage = _coverage(40, "bootstrap", sets=600, seed=7)
    assert 0.90 < coverage < 0.98, coverage


def test_bootstrap_over_three_folds_is_too_narrow_which_is_why_t_is_the_default():
    coverage = _coverage(3, "bootstrap", sets=600, seed=3)
    assert coverage < 0.85, coverage


def test_t_interval_matches_the_textbook_formula():
    d = np.array([0.02, 0.05, -0.01, 0.04])
    ci = paired_interval(d, method="t", confidence=0.9)
    half = stats.t.ppf(0.95, 3) * d.std(ddof=1) / 2
    assert ci.mean == pytest.approx(d.mean())
    assert (ci.low, ci.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert (ci.n, ci.method, ci.confidence) == (4, "t", 0.9)


def test_bootstrap_is_reproducible_with_its_seed_and_changes_with_another():
    d = np.array([0.1, -0.02, 0.05, 0.07, 0.0, 0.03])
    a = paired_interval(d, method="bootstrap", samples=500, seed=1)
    b = paired_interval(d, method="bootstrap", samples=500, seed=1)
    c = paired_interval(d, method="bootstrap", samples=500, seed=2)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert d.min() <= a.low <= a.mean <= a.high <= d.max()


def test_one_fold_has_no_interval_and_equal_differences_a_point():
    one = paired_interval([0.04])
    assert one.mean == 0.04 and np.isnan(one.low) and np.isnan(one.high)
    assert not one.excludes_zero
    same = paired_interval([0.02, 0.02, 0.02])
    assert (same.low, same.high) == pytest.approx((0.02, 0.02))
    assert same.excludes_zero


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"differences": [], "method": "t"}, "finite values"),
        ({"differences": [0.1, float("nan")], "method": "t"}, "finite values"),
        ({"differences": [0.1, 0.2], "method": "wilcoxon"}, "expected one of t, bootstrap"),
        ({"differences": [0.1, 0.2], "confidence": 1.0}, r"in \(0, 1\)"),
        ({"differences": [0.1, 0.2], "method": "bootstrap", "samples": 0}, "positive integer"),
    ],
)
def test_paired_interval_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_interval(kwargs.pop("differences"), **kwargs)


def _results() -> pd.DataFrame:
    """Accuracy of three arms on 3 folds at 2 epochs, at two light levels."""
    values = {
        # (mode, fold): (epoch 1, epoch 2)
        ("frozen", 0): (0.50, 0.60),
        ("frozen", 1): (0.55, 0.65),
        ("frozen", 2): (0.45, 0.70),
        ("learned", 0): (0.60, 0.70),
        ("learned", 1): (0.55, 0.70),
        ("learned", 2): (0.50, 0.72),
        ("raw", 0): (0.9, 0.9),
    }
    rows = []
    for intensity in (1.0, 0.05):
        for (mode, fold), pair in values.items():
            for epoch, value in enumerate(pair, start=1):
                rows.append((intensity, mode, fold, epoch, "accuracy", value))
                rows.append((intensity, mode, fold, epoch, "train_loss", 1.0 / epoch))
    return pd.DataFrame(rows, columns=["intensity", "mode", "fold", "epoch", "metric", "value"])


def test_fold_scores_take_the_final_epoch_and_the_pooled_mean_of_each_fold():
    scores = fold_scores(_results(), "accuracy", last=0)
    row = scores[
        (scores["intensity"] == 1.0) & (scores["mode"] == "frozen") & (scores["fold"] == 2)
    ]
    assert float(row["final"].iloc[0]) == pytest.approx(0.70)
    assert float(row["pooled"].iloc[0]) == pytest.approx(0.575)
    last = fold_scores(_results(), "accuracy", last=1)
    assert np.allclose(last["final"], last["pooled"])


def test_paired_differences_pair_folds_of_the_two_arms_per_light_level():
    table = paired_differences(_results(), "accuracy", last=0, method="t")
    assert list(table["intensity"].unique()) == [1.0, 0.05]
    # only learned - frozen has both arms; frozen-bn and paper did not run
    assert set(table["comparison"]) == {"learned − frozen"}
    final = table[(table["intensity"] == 0.05) & (table["statistic"] == "final")].iloc[0]
    d = np.array([0.70 - 0.60, 0.70 - 0.65, 0.72 - 0.70])
    ci = paired_interval(d)
    assert final["folds"] == 3
    assert final["mean"] == pytest.approx(d.mean())
    assert (final["low"], final["high"]) == pytest.approx((ci.low, ci.high))
    assert final["differences"] == "0.1,0.05,0.02"
    pooled = table[(table["intensity"] == 1.0) & (table["statistic"] == "pooled")].iloc[0]
    assert pooled["mean"] == pytest.approx(np.mean([0.10, 0.025, 0.035]))


def test_a_partial_pool_adds_the_whole_learning_curve():
    table = paired_differences(_results(), "accuracy", last=1)
    assert set(table["statistic"]) == {"final", "pooled", "curve"}
    curve = table[(table["intensity"] == 1.0) & (table["statistic"] == "curve")].iloc[0]
    assert curve["mean"] == pytest.approx(np.mean([0.10, 0.025, 0.035]))


def test_paired_differences_use_only_folds_both_arms_finished():
    results = _results()
    results = results[~((results["mode"] == "learned") & (results["fold"] == 2))]
    table = paired_differences(results, "accuracy")
    assert set(table["folds"]) == {2}
