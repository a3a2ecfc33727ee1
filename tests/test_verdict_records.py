"""A stored drift cell record is checked against its own rows and what the run expects of it:
tampered values, class indices out of range, truncated or stray arrays are refused by name."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from driftlab.errors import DriftlabError
from driftlab.verdicts.evidence import EvidenceError, evidence_from_records, target_evidence
from driftlab.verdicts.records import CellRecordError, check_record
from tests.verdict_cases import classification_records, conditions

CONDS = conditions(["a", "b"], [("identity", 0), ("noise", 3)])
CLASSES = 5


def _record(n=40, seed=0):
    (record,) = classification_records(
        ["a"], CONDS, lambda t, c, f: 0.7, folds=1, n=n, classes=CLASSES, seed=seed
    )
    return record


def _tampered(change):
    record = _record()
    record.arrays = dict(record.arrays)
    record.info = copy.deepcopy(record.info)
    record.rows = record.rows.copy()
    change(record)
    return record


def test_an_intact_record_passes_and_gives_its_checked_evidence():
    record = _record()
    unit = check_record(
        record,
        task="classification",
        n_classes=CLASSES,
        metric="accuracy",
        train_pipeline="a",
        fold=0,
        conditions=record.info["conditions"],
        test_ids=record.info["test_ids"],
        targets=record.arrays["targets"],
    )
    assert unit.train == "a" and unit.fold == 0 and unit.keys == (record.key,)
    assert list(unit.outcomes) == record.info["conditions"]


def _edit_accuracy(r):
    # one more correct item: a plausible, finite accuracy that the predictions do not give
    r.rows.loc[1, "value"] = r.rows.loc[1, "value"] + 1 / 40


def _label_out_of_range(r):
    pred = r.arrays["c2.pred"].copy()
    pred[7] = CLASSES
    r.arrays["c2.pred"] = pred


def _target_out_of_range(r):
    targets = r.arrays["targets"].copy()
    targets[3] = CLASSES + 4
    r.arrays["targets"] = targets


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_edit_accuracy, r"row 1 \(isp:b\): stored accuracy .* differs from .* recomputed"),
        (lambda r: r.rows.__setitem__("value", np.nan), r"row 0 .* value nan is not"),
        (lambda r: r.rows.loc.__setitem__((0, "value"), 1.5), r"value 1.5 is not .* \[0, 1\]"),
        (_label_out_of_range, r"'c2.pred'.*class indices in \[0, 5\).*got 5 at item 7"),
        (_target_out_of_range, r"'targets'.*class indices in \[0, 5\).*got 9 at item 3"),
        (lambda r: r.arrays.update({"c0.pred": r.arrays["c0.pred"][:-3]}), r"expected \(40,\)"),
        (lambda r: r.arrays.update({"targets": r.arrays["targets"][:20]}), r"'targets'.*\(40,\)"),
        (lambda r: r.info.update({"test_ids": r.info["test_ids"][:-1]}), r"expected \(39,\)"),
        (lambda r: r.arrays.update({"c9.pred": r.arrays["c0.pred"]}), r"'c9.pred'.*no condition"),
        (lambda r: r.arrays.pop("c1.pred"), r"'c1.pred' \(isp:b\) is missing"),
        (lambda r: r.__setattr__("rows", r.rows.drop(index=2)), r"corruption:identity.*no row"),
        (lambda r: r.rows.loc.__setitem__((0, "severity"), 2), r"row 0: condition isp:a@2"),
        (lambda r: r.rows.loc.__setitem__((3, "train_pipeline"), "b"), r"row 3: train pipeline"),
        (lambda r: r.rows.loc.__setitem__((0, "metric"), "macro_f1"), r"one metric"),
        (lambda r: r.__setattr__("arrays", {}), r"no per-item outcomes"),
    ],
    ids=["edited-accuracy", "nan", "above-1", "pred-range", "target-range", "short-pred",
         "short-targets", "short-ids", "stray-array", "missing-array", "missing-row",
         "other-condition", "other-train", "two-metrics", "no-arrays"],
)  # fmt: skip
def test_a_tampered_record_is_refused_naming_the_cell(change, message):
    record = _tampered(change)
    with pytest.raises(CellRecordError, match=message) as info:
        check_record(record, task="classification", n_classes=CLASSES)
    assert str(info.value).startswith(f"cell {record.key}: ")
    assert info.value.key == record.key
    assert isinstance(info.value, DriftlabError)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"metric": "balanced_accuracy"}, r"rows are in 'accuracy'; expected 'balanced_accuracy'"),
        ({"train_pipeline": "b"}, r"'train_pipeline' is 'a'; expected 'b'"),
        ({"fold": 2}, r"'fold' is 0; expected 2"),
        ({"conditions": ["isp:a", "isp:b"]}, r"info 'conditions' .* differ from the expected"),
        ({"test_ids": [f"x{i}" for i in range(40)]}, r"'test_ids' \(40 items\) differ"),
        ({"targets": np.zeros(40, np.int64)}, r"array 'targets' differs from the test items'"),
        ({"targets": np.zeros(12, np.int64)}, r"12 expected targets for 40 test items"),
    ],
)
def test_a_record_that_is_not_what_the_run_expects_is_refused(expected, message):
    with pytest.raises(CellRecordError, match=message):
        check_record(_record(), task="classification", n_classes=CLASSES, **expected)


def test_the_caller_must_give_a_class_count_for_classification():
    with pytest.raises(EvidenceError, match="n_classes: expected the number of classes") as info:
        check_record(_record(), task="classification", n_classes=None)
    assert not isinstance(info.value, CellRecordError)  # the caller's mistake, not the record's
    with pytest.raises(EvidenceError, match="n_classes"):
        evidence_from_records([_record()], "classification", n_classes=0)


def _segmentation_record(n=5, seed=0):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, 8, 8)) < 0.3
    pred = rng.random((2, n, 8, 8)) < 0.4
    inter = np.logical_and(pred, masks).sum(axis=(2, 3))
    union = np.logical_or(pred, masks).sum(axis=(2, 3))
    labels = ["isp:a", "corruption:noise@3"]
    rows = [
        ("a", 0, kind, name, sev, "iou", float(inter[i].sum() / union[i].sum()))
        for i, (kind, name, sev) in enumerate([("isp", "a", 0), ("corruption", "noise", 3)])
    ]
    return masks, SimpleNamespace(
        key="seg",
        arrays={
            **{f"c{i}.inter": inter[i] for i in range(2)},
            **{f"c{i}.union": union[i] for i in range(2)},
            **target_evidence(masks.astype(np.uint8), "segmentation"),
        },
        info={"train_pipeline": "a", "fold": 0, "conditions": labels,
              "test_ids": [str(i) for i in range(n)]},
        rows=pd.DataFrame(rows, columns=["train_pipeline", "fold", "test_kind", "test_condition",
                                         "severity", "metric", "value"]),
    )  # fmt: skip


def test_segmentation_records_are_checked_by_their_iou_and_masks():
    masks, record = _segmentation_record()
    check_record(record, task="segmentation", n_classes=None, metric="iou", targets=masks)
    record.rows.loc[0, "value"] = record.rows.loc[0, "value"] * 0.9
    with pytest.raises(CellRecordError, match=r"row 0 \(isp:a\): stored iou"):
        check_record(record, task="segmentation", n_classes=None)
    masks, record = _segmentation_record()
    record.arrays["c1.union"] = record.arrays["c1.union"] + 100  # above the pixels of a mask
    with pytest.raises(CellRecordError, match="pixel counts exceed the item's mask"):
        check_record(record, task="segmentation", n_classes=None)
    masks, record = _segmentation_record()
    with pytest.raises(CellRecordError, match="array 'fg' differs"):
        check_record(record, task="segmentation", n_classes=None, targets=~masks)
