"""Balanced accuracy and macro-F1 for imbalanced classification, and metric lookup by name."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from driftlab.train.metrics import (
    METRICS,
    accuracy,
    balanced_accuracy,
    confusion_counts,
    get_metric,
    iou,
    macro_f1,
    metric_names,
)


def _logits(predicted, classes):
    out = np.zeros((len(predicted), classes))
    out[np.arange(len(predicted)), predicted] = 1.0
    return out


# targets 0,0,0,0,1,1,2 predicted 0,0,0,1,1,0,0 (worked by hand below)
TARGETS = np.array([0, 0, 0, 0, 1, 1, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 0, 0])


def test_hand_computed_three_class_case():
    logits = _logits(PREDICTED, 3)
    np.testing.assert_array_equal(
        confusion_counts(logits, TARGETS), [[3, 1, 0], [1, 1, 0], [1, 0, 0]]
    )
    # recalls 3/4, 1/2, 0/1
    assert balanced_accuracy(logits, TARGETS) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    # F1: class 0 2*3/(6+2+1), class 1 2*1/(2+1+1), class 2 0
    assert macro_f1(logits, TARGETS) == pytest.approx((6 / 9 + 2 / 4 + 0) / 3)
    assert accuracy(logits, TARGETS) == pytest.approx(4 / 7)


def test_majority_class_predictor_is_exposed():
    targets = np.array([0] * 90 + [1] * 10)
    logits = _logits(np.zeros(100, dtype=int), 2)
    assert accuracy(logits, targets) == pytest.approx(0.9)
    assert balanced_accuracy(logits, targets) == pytest.approx(0.5)
    assert macro_f1(logits, targets) == pytest.approx((180 / 190 + 0) / 2)


def test_classes_neither_true_nor_predicted_are_left_out():
    logits = _logits(PREDICTED, 5)  # classes 3 and 4 never occur
    assert balanced_accuracy(logits, TARGETS) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    assert macro_f1(logits, TARGETS) == pytest.approx((6 / 9 + 2 / 4 + 0) / 3)
    # a class that is predicted but never true counts with F1 = 0 (not in balanced accuracy)
    predicted = np.array([0, 0, 0, 3, 1, 1, 2])
    logits = _logits(predicted, 4)
    assert balanced_accuracy(logits, TARGETS) == pytest.approx((3 / 4 + 1 + 1) / 3)
    assert macro_f1(logits, TARGETS) == pytest.approx((6 / 7 + 1 + 1 + 0) / 4)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scikit_learn_on_random_imbalanced_cases(seed):
    rng = np.random.default_rng(seed)
    targets = rng.choice(6, size=200, p=[0.5, 0.2, 0.15, 0.1, 0.04, 0.01])
    logits = rng.normal(size=(200, 6)) + 1.5 * np.eye(6)[targets]
    predicted = logits.argmax(axis=1)
    assert balanced_accuracy(logits, targets) == pytest.approx(
        balanced_accuracy_score(targets, predicted)
    )
    assert macro_f1(logits, targets) == pytest.approx(
        f1_score(targets, predicted, average="macro", zero_division=0)
    )


def test_empty_and_bad_input():
    assert np.isnan(balanced_accuracy(np.zeros((0, 3)), np.zeros(0, int)))
    assert np.isnan(macro_f1(np.zeros((0, 3)), np.zeros(0, int)))
    with pytest.raises(ValueError, match=r"targets must be class indices in 0\.\.2"):
        balanced_accuracy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"logits \(N, C\) and targets \(N,\)"):
        macro_f1(np.zeros((2, 3)), np.zeros(3, int))


def test_headline_metric_selected_by_name():
    assert metric_names("classification") == ["accuracy", "balanced_accuracy", "macro_f1"]
    assert metric_names("segmentation") == ["iou"]
    assert get_metric("macro_f1").function is macro_f1
    assert get_metric("iou", "segmentation").function is iou
    logits = _logits(PREDICTED, 3)
    values = {
        name: METRICS[name].function(logits, TARGETS) for name in metric_names("classification")
    }
    assert values["balanced_accuracy"] < values["accuracy"]
    with pytest.raises(
        ValueError, match=r"unknown metric 'balanced_acc' \(did you mean 'balanced_accuracy'"
    ):
        get_metric("balanced_acc")
    with pytest.raises(
        ValueError, match="metric 'iou' is for segmentation but the task is classification"
    ):
        get_metric("iou", "classification")
