"""Seeded, stratified and grouped k-fold splits."""

from __future__ import annotations

import numpy as np
import pytest

from driftlab.datasets import DatasetError
from driftlab.datasets.splits import Fold, check_folds, kfold


def assert_partition(folds, n):
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(n))
    for fold in folds:
        assert not set(fold.train.tolist()) & set(fold.test.tolist())
        assert len(fold.train) + len(fold.test) == n


def test_stratified_folds_keep_class_proportions():
    labels = np.repeat([0, 1, 2], [20, 10, 5])
    folds = kfold(35, n_splits=5, seed=3, labels=labels)
    assert len(folds) == 5
    assert_partition(folds, 35)
    for fold in folds:
        assert np.bincount(labels[fold.test], minlength=3).tolist() == [4, 2, 1]
        assert fold.test.dtype == np.int64 and not fold.test.flags.writeable


def test_same_seed_same_folds_other_seed_other_folds():
    labels = np.repeat([0, 1], [15, 15])
    a = kfold(30, seed=11, labels=labels)
    b = kfold(30, seed=11, labels=labels)
    c = kfold(30, seed=12, labels=labels)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a, c, strict=True))


def test_unlabelled_items_are_shuffled_kfold():
    folds = kfold(11, n_splits=3, seed=0)
    assert sorted(len(f.test) for f in folds) == [3, 4, 4]
    assert_partition(folds, 11)
    assert not np.array_equal(np.concatenate([f.test for f in folds]), np.arange(11))


def test_groups_never_straddle_a_split():
    groups = [f"frame{i // 5}" for i in range(40)]  # 8 frames of 5 tiles
    folds = kfold(40, n_splits=4, seed=5, groups=groups, ids=[f"t{i}" for i in range(40)])
    assert_partition(folds, 40)
    arr = np.array(groups)
    for fold in folds:
        assert not set(arr[fold.train]) & set(arr[fold.test])
        assert len(set(arr[fold.test])) == 2
        assert fold.test_ids == tuple(f"t{i}" for i in fold.test)


def test_stratified_and_grouped():
    groups = np.repeat(np.arange(12), 3).astype(str)
    labels = np.repeat([0, 1], 18)  # frames 0-5 class 0, 6-11 class 1
    folds = kfold(36, n_splits=3, seed=2, labels=labels, groups=groups)
    for fold in folds:
        assert not set(groups[fold.train]) & set(groups[fold.test])
        assert np.bincount(labels[fold.test]).tolist() == [6, 6]


def test_class_with_fewer_members_than_folds_is_a_clear_error():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    with pytest.raises(DatasetError, match=r"fewer members than folds: LYT \(3\), MON \(2\)"):
        kfold(15, n_splits=5, labels=labels, class_names=["BAS", "LYT", "MON"])
    assert len(kfold(15, n_splits=2, labels=labels)) == 2


def test_class_in_too_few_groups():
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    with pytest.raises(DatasetError, match=r"fewer groups than folds: 1 \(1\)"):
        kfold(8, n_splits=2, labels=labels, groups=groups)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 4, "n_splits": 1}, "at least 2"),
        ({"n_items": 4, "n_splits": 2.5}, "must be an integer"),
        ({"n_items": 3, "n_splits": 5}, "cannot make 5 folds from 3 item"),
        ({"n_items": 6, "groups": ["a", "a", "a", "b", "b", "b"], "n_splits": 3}, "2 group"),
        ({"n_items": 6, "labels": [0, 1]}, "labels has 2 entries for 6 items"),
        ({"n_items": 6, "seed": -1}, "seed must be a non-negative integer"),
        ({"n_items": 6, "n_splits": 2, "labels": [0.5] * 6}, "1-D integer array"),
    ],
)
def test_bad_arguments(kwargs, message):
    n = kwargs.pop("n_items")
    with pytest.raises(DatasetError, match=message):
        kfold(n, **kwargs)


def test_check_folds_catches_a_split_group_and_missing_items():
    groups = ["a", "a", "b", "b"]
    bad = [Fold(0, [0, 2], [1, 3]), Fold(1, [1, 3], [0, 2])]
    with pytest.raises(DatasetError, match="group a is on both sides"):
        check_folds(bad, 4, groups)
    incomplete = [Fold(0, [2, 3], [0, 1])]
    with pytest.raises(DatasetError, match="item 2 is in 0 test folds"):
        check_folds(incomplete, 4, groups)
