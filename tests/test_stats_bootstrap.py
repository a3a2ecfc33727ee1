"""The seeded two-level paired bootstrap: coverage on cases with a known answer, seeding, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from driftlab.stats import percentile_interval, two_level_bootstrap


def _simulated_folds(rng, folds, n, mean, fold_sd):
    """Per-fold correctness of models whose true accuracy varies around ``mean`` between folds."""
    accuracies = np.clip(mean + rng.normal(0.0, fold_sd, folds), 0.0, 1.0)
    return [(rng.random(n) < p).astype(np.float64) for p in accuracies]


def _coverage(folds, n, mean, fold_sd, datasets=200, resamples=400):
    hits = 0
    for seed in range(datasets):
        rng = np.random.default_rng(10_000 + seed)
        data = _simulated_folds(rng, folds, n, mean, fold_sd)

        def statistic(fold, counts, data=data):
            return counts @ data[fold] / counts.sum(axis=1)

        replicates = two_level_bootstrap([n] * folds, statistic, resamples=resamples, seed=seed)
        low, high = percentile_interval(replicates, 0.95)
        hits += low <= mean <= high
    return hits / datasets


@pytest.mark.parametrize(
    ("folds", "n", "fold_sd"),
    [(5, 100, 0.03), (3, 150, 0.02)],
    ids=["5folds-100items", "3folds-150items"],
)
def test_interval_of_a_mean_over_folds_covers_the_true_accuracy_about_95_percent(folds, n, fold_sd):
    coverage = _coverage(folds, n, mean=0.8, fold_sd=fold_sd)
    assert 0.90 <= coverage <= 0.99, coverage


def test_interval_of_a_paired_drop_covers_the_true_drop_about_95_percent():
    # two conditions scored on the same items; a model right under drift is mostly right clean
    folds, n, datasets, hits = 5, 100, 200, 0
    true_drop = 0.8 - 0.8 * 0.85
    for seed in range(datasets):
        rng = np.random.default_rng(20_000 + seed)
        clean = _simulated_folds(rng, folds, n, 0.8, 0.03)
        drifted = [c * (rng.random(n) < 0.85) for c in clean]

        def statistic(fold, counts, clean=clean, drifted=drifted):
            total = counts.sum(axis=1)
            return (counts @ clean[fold] - counts @ drifted[fold]) / total

        replicates = two_level_bootstrap([n] * folds, statistic, resamples=400, seed=seed)
        low, high = percentile_interval(replicates)
        hits += low <= true_drop <= high
    assert 0.90 <= hits / datasets <= 0.99


def test_same_seed_same_replicates_and_another_seed_differs():
    data = [np.arange(7, dtype=float), np.arange(5, dtype=float)]

    def statistic(fold, counts):
        assert counts.shape[1] == len(data[fold])
        assert (counts.sum(axis=1) == len(data[fold])).all()
        return counts @ data[fold] / counts.sum(axis=1)

    a = two_level_bootstrap([7, 5], statistic, resamples=300, seed=3)
    b = two_level_bootstrap([7, 5], statistic, resamples=300, seed=3)
    c = two_level_bootstrap([7, 5], statistic, resamples=300, seed=4)
    assert a.shape == (300,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_replicates_keep_the_statistics_trailing_shape():
    def statistic(fold, counts):
        return np.stack([counts[:, :1] * 1.0, counts[:, :1] * 2.0], axis=1)[:, :, 0][:, :, None]

    out = two_level_bootstrap([4, 4], statistic, resamples=10, seed=0)
    assert out.shape == (10, 2, 1)
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0])


def test_percentile_interval_ends_and_undefined_replicates():
    values = np.arange(1001, dtype=float)
    low, high = percentile_interval(values, 0.95)
    assert low == pytest.approx(25.0) and high == pytest.approx(975.0)
    mostly_nan = np.full((100, 2), np.nan)
    mostly_nan[:, 0] = np.linspace(0, 1, 100)
    bounds = percentile_interval(mostly_nan)
    assert np.isfinite(bounds[:, 0]).all() and np.isnan(bounds[:, 1]).all()


@pytest.mark.parametrize(
    ("sizes", "resamples", "message"),
    [([], 10, "folds"), ([3, 0], 10, "folds"), ([3], 0, "resamples")],
)
def test_bad_arguments_are_refused(sizes, resamples, message):
    with pytest.raises(ValueError, match=message):
        two_level_bootstrap(sizes, lambda f, c: c.sum(axis=1), resamples=resamples, seed=0)
    with pytest.raises(ValueError, match="level"):
        percentile_interval(np.zeros(5), 1.5)


def test_shared_test_items_interval_covers_the_true_accuracy_about_95_percent():
    # every fold's model scores the same held-out items; items differ in difficulty
    folds, n, datasets, hits, true = 5, 150, 200, 0, 0.8
    for seed in range(datasets):
        rng = np.random.default_rng(30_000 + seed)
        ease = rng.beta(8, 2, n)  # mean 0.8: per-item chance of being right
        shift = rng.normal(0.0, 0.02, folds)
        data = [(rng.random(n) < np.clip(ease + s, 0, 1)).astype(float) for s in shift]

        def statistic(fold, counts, data=data):
            return counts @ data[fold] / counts.sum(axis=1)

        replicates = two_level_bootstrap(
            [n] * folds, statistic, resamples=400, seed=seed, shared_items=True
        )
        low, high = percentile_interval(replicates)
        hits += low <= true <= high
    assert 0.90 <= hits / datasets <= 0.99


def test_shared_items_use_one_item_draw_for_every_fold():
    data = [np.arange(6, dtype=float), np.arange(6, dtype=float)]
    seen = []

    def statistic(fold, counts):
        seen.append(counts.copy())
        return counts @ data[fold] / counts.sum(axis=1)

    out = two_level_bootstrap([6, 6], statistic, resamples=50, seed=0, shared_items=True)
    assert out.shape == (50,)
    np.testing.assert_array_equal(seen[0], seen[-1])  # the same draw for both folds
    with pytest.raises(ValueError, match="equal fold sizes"):
        two_level_bootstrap([6, 5], statistic, resamples=5, seed=0, shared_items=True)


@pytest.mark.parametrize("shared", [False, True])
def test_a_statistic_returning_the_wrong_number_of_rows_is_refused(shared):
    def statistic(fold, counts):
        return counts[:-1].sum(axis=1)  # one row short

    with pytest.raises(ValueError, match=r"statistic returned \d+ rows for \d+ replicates"):
        two_level_bootstrap([6, 6], statistic, resamples=20, seed=0, shared_items=shared)
