"""Per-item evidence: checked, merged across cells of one model, scored by any metric."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from driftlab.train.metrics import METRICS
from driftlab.verdicts.drift import rescore
from driftlab.verdicts.evidence import (
    EvidenceError,
    EvidenceMissing,
    condition_label,
    evidence_from_records,
    parse_condition,
)
from driftlab.verdicts.scores import FoldScorer, chance_level
from tests.verdict_cases import classification_records, conditions, results_of

CONDS = conditions(["a", "b"], [("identity", 0), ("noise", 3)])


def _records(split=1, **kw):
    return classification_records(
        ["a", "b"], CONDS, lambda t, c, f: 0.7, folds=2, n=40, split=split, **kw
    )


def test_condition_labels_round_trip():
    for cond in [("isp", "bi,s,ga", 0), ("corruption", "identity", 0), ("corruption", "x@y", 3)]:
        assert parse_condition(condition_label(*cond)) == cond
    with pytest.raises(EvidenceError, match="expected 'isp:NAME'"):
        parse_condition("pipeline:a")


def test_conditions_split_over_several_cells_of_one_model_are_merged():
    whole = evidence_from_records(_records(seed=1), "classification", n_classes=5)
    split = evidence_from_records(_records(split=3, seed=1), "classification", n_classes=5)
    assert len(split.units) == len(whole.units) == 4
    assert split.conditions == whole.conditions
    unit = split.unit("b", 1)
    assert len(unit.keys) == 3
    assert set(unit.outcomes) == {condition_label(*c) for c in CONDS}


def test_records_of_one_model_that_disagree_are_refused():
    records = _records(split=2)
    records[1].info = {**records[1].info, "test_ids": list(reversed(records[1].info["test_ids"]))}
    with pytest.raises(EvidenceError, match="different test items"):
        evidence_from_records(records, "classification", n_classes=5)
    records = _records(split=2)
    records[1].info = {**records[1].info, "conditions": records[0].info["conditions"]}
    with pytest.raises(EvidenceError, match="both hold condition"):
        evidence_from_records(records, "classification", n_classes=5)


def test_models_of_one_fold_tested_on_other_items_are_refused():
    records = _records()
    other = next(r for r in records if r.info["train_pipeline"] == "b" and r.info["fold"] == 0)
    other.info = {**other.info, "test_ids": [f"x{i}" for i in range(40)]}
    with pytest.raises(EvidenceError, match="paired bootstrap needs the same test items"):
        evidence_from_records(records, "classification", n_classes=5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.arrays.update({"c0.pred": r.arrays["c0.pred"][:-1]}), r"expected \(40,\)"),
        (lambda r: r.arrays.update({"c1.pred": -r.arrays["c1.pred"] - 1}), "non-negative"),
        (lambda r: r.arrays.update({"c0.pred": r.arrays["c0.pred"] * 0.5}), "integers"),
        (lambda r: r.arrays.pop("c2.pred"), "'c2.pred'.*missing"),
        (lambda r: r.arrays.pop("targets"), "'targets'"),
        (lambda r: r.info.pop("fold"), "'fold'"),
        (lambda r: r.info.update({"conditions": ["isp:a", "isp:a"]}), "repeated condition"),
    ],
    ids=["short", "negative", "float", "missing-condition", "no-targets", "no-fold", "repeat"],
)
def test_malformed_arrays_are_refused_naming_the_cell(damage, message):
    records = _records()
    damage(records[0])
    with pytest.raises(EvidenceError, match=message) as info:
        evidence_from_records(records, "classification", n_classes=5)
    assert "a-fold0-part0" in str(info.value)


def test_cells_without_arrays_are_missing_evidence():
    records = _records()
    records[2].arrays = {}
    with pytest.raises(EvidenceMissing, match="no per-item outcomes"):
        evidence_from_records(records, "classification", n_classes=5)


def test_a_missing_condition_in_one_unit_is_refused():
    records = _records()
    r = records[0]
    r.info = {**r.info, "conditions": r.info["conditions"][:-1]}
    with pytest.raises(EvidenceError, match="lack condition"):
        evidence_from_records(records, "classification", n_classes=5)


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "macro_f1"])
def test_unit_weights_give_the_metrics_of_driftlab_train(metric):
    rng = np.random.default_rng(0)
    n, k = 60, 4
    targets = rng.choice(k, size=n, p=[0.55, 0.25, 0.15, 0.05]).astype(np.int64)
    logits = [rng.normal(size=(n, k)) + 2 * np.eye(k)[targets] * (rng.random((n, 1)) < p)
              for p in (0.2, 0.6, 0.95)]  # fmt: skip
    labels = [f"isp:p{i}" for i in range(3)]
    record = SimpleNamespace(
        key="cell",
        arrays={"targets": targets, **{f"c{i}.pred": lg.argmax(1) for i, lg in enumerate(logits)}},
        info={"train_pipeline": "a", "fold": 0, "conditions": labels,
              "test_ids": [str(i) for i in range(n)]},
    )  # fmt: skip
    evidence = evidence_from_records([record], "classification", n_classes=k)
    scores = FoldScorer(evidence.units[0], labels, metric, "classification", k).point()
    expected = [METRICS[metric].function(lg, targets) for lg in logits]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


def test_resample_weights_equal_repeating_items():
    records = _records(seed=2)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    unit = evidence.units[0]
    counts = np.random.default_rng(0).multinomial(unit.size, np.full(unit.size, 1 / unit.size))
    for metric in ("accuracy", "balanced_accuracy", "macro_f1"):
        scorer = FoldScorer(unit, evidence.conditions, metric, "classification", 5)
        weighted = scorer(counts[None])[0]
        idx = np.repeat(np.arange(unit.size), counts)
        for j, label in enumerate(evidence.conditions):
            pred = unit.outcomes[label]["pred"][idx]
            expected = METRICS[metric].function(np.eye(5)[pred], unit.targets[idx])
            assert weighted[j] == pytest.approx(expected, abs=1e-12)


def test_segmentation_iou_and_the_best_constant_mask():
    n = 6
    fg = np.array([10, 0, 30, 5, 0, 20])
    pixels = np.full(n, 100)
    inter = np.minimum(fg, [8, 0, 25, 1, 0, 18])
    union = fg + np.array([2, 3, 1, 0, 0, 4])
    record = SimpleNamespace(
        key="seg",
        arrays={"c0.inter": inter, "c0.union": union, "fg": fg, "pixels": pixels},
        info={"train_pipeline": "a", "fold": 0, "conditions": ["isp:a"],
              "test_ids": [str(i) for i in range(n)]},
    )  # fmt: skip
    evidence = evidence_from_records([record], "segmentation", n_classes=None)
    score = FoldScorer(evidence.units[0], ["isp:a"], "iou", "segmentation").point()[0]
    assert score == pytest.approx(inter.sum() / union.sum())
    # all-foreground mask: IoU = foreground pixels / all pixels
    assert chance_level(evidence, "iou") == pytest.approx(fg.sum() / pixels.sum())
    bad = SimpleNamespace(**{**record.__dict__, "arrays": {**record.arrays, "c0.inter": union + 1}})
    with pytest.raises(EvidenceError, match="intersection exceeds union"):
        evidence_from_records([bad], "segmentation", n_classes=None)


def test_chance_level_is_the_majority_class_rate_for_accuracy():
    records = _records()
    evidence = evidence_from_records(records, "classification", n_classes=5)
    # balanced targets (n % classes == 0): the majority rate is 1 / 5
    assert chance_level(evidence, "accuracy") == pytest.approx(0.2)
    assert chance_level(evidence, "balanced_accuracy") == pytest.approx(0.2)


def test_rescore_recomputes_values_in_another_metric():
    records = _records(seed=3)
    evidence = evidence_from_records(records, "classification", n_classes=5)
    results = results_of(records)
    same = rescore(results, evidence, "accuracy")
    np.testing.assert_allclose(same["value"], results["value"], rtol=0, atol=1e-12)
    balanced = rescore(results, evidence, "balanced_accuracy")
    assert set(balanced["metric"]) == {"balanced_accuracy"}
    # every class has 8 of the 40 items: balanced accuracy equals accuracy
    np.testing.assert_allclose(balanced["value"], results["value"], rtol=0, atol=1e-12)
    f1 = rescore(results, evidence, "macro_f1")
    assert set(f1["metric"]) == {"macro_f1"} and not np.allclose(f1["value"], results["value"])
    with pytest.raises(EvidenceError, match="segmentation"):
        rescore(results, evidence, "iou")


@pytest.mark.parametrize("array", ["c1.pred", "targets"])
def test_class_indices_outside_the_task_are_refused_naming_cell_and_array(array):
    records = _records()
    bad = records[3].arrays[array].copy()
    bad[5] = 5  # the cases have classes 0..4
    records[3].arrays = {**records[3].arrays, array: bad}
    with pytest.raises(EvidenceError, match=rf"cell b-fold1-part0: array '{array}'") as info:
        evidence_from_records(records, "classification", n_classes=5)
    assert "class indices in [0, 5)" in str(info.value) and "at item 5" in str(info.value)
    if array == "c1.pred":  # a task with more classes has that class: accepted, and it bounds
        evidence = evidence_from_records(records, "classification", n_classes=6)
        assert evidence.n_classes == 6
