"""Per-item evidence of a drift experiment: what each (train pipeline, fold) model did per item.

Cells of drift experiments (synthesis, audit) store one tidy row per test
condition (columns :data:`CELL_COLUMNS`) and per-item outcomes beside them,
with these conventions (``CellOutput.arrays`` / ``CellOutput.info``; written
by :class:`driftlab.verdicts.cells.ConditionRecorder`):

=====================  ==========================================================
``info``               ``train_pipeline`` (str), ``fold`` (int), ``conditions``
                       (condition labels in array order, see
                       :func:`condition_label`), ``test_ids`` (ids of the test
                       items in array order)
``c{i}.pred``          classification: ``(n,)`` int64 predicted class of each
                       test item under condition ``i``
``c{i}.inter``,        segmentation: ``(n,)`` int64 foreground pixels in the
``c{i}.union``         intersection and the union of prediction and mask
``targets``            classification: ``(n,)`` int64 true class of each item,
                       every class index (true or predicted) in ``[0, n_classes)``
``fg``, ``pixels``     segmentation: ``(n,)`` int64 foreground pixels of each
                       item's mask and pixels per item (for the chance level)
=====================  ==========================================================

:func:`evidence_from_records` checks these arrays and *merges* records that
share ``(train_pipeline, fold)``: an experiment may split the conditions of
one trained model over several cells (the audit experiment does), as long
as they describe the same test items in the same order. Every model of one
fold must have been tested on the same items (the paired bootstrap of
:mod:`driftlab.verdicts.drift` resamples them together).
:func:`driftlab.verdicts.records.check_record` checks one record's arrays
against its own rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from driftlab.errors import DriftlabError

__all__ = [
    "CELL_COLUMNS",
    "OUTCOME_ARRAYS",
    "TARGET_ARRAYS",
    "Evidence",
    "EvidenceError",
    "EvidenceMissing",
    "FoldEvidence",
    "check_classes",
    "condition_label",
    "evidence_from_records",
    "fold_evidence",
    "parse_condition",
    "target_evidence",
]

TASKS = ("classification", "segmentation")
OUTCOME_ARRAYS = {"classification": ("pred",), "segmentation": ("inter", "union")}
"""Per-condition arrays ``c{i}.NAME`` of each task."""
TARGET_ARRAYS = {"classification": ("targets",), "segmentation": ("fg", "pixels")}
"""Per-item target arrays of each task (see :func:`target_evidence`)."""

CELL_COLUMNS: dict[str, str] = {
    "train_pipeline": "str",
    "fold": "int",
    "test_kind": "str",
    "test_condition": "str",
    "severity": "int",
    "metric": "str",
    "value": "float",
    "device": "str",
}
"""Columns (and their types) of the rows of every drift-experiment cell (synthesis, audit):
one row per test condition; ``severity`` is 0 for ISP rows and ``identity``; ``value`` is
``metric`` (the task's default, :func:`driftlab.train.metrics.task_metric_name`) in [0, 1]."""


class EvidenceError(DriftlabError, ValueError):
    """Per-item arrays of cell records are malformed or contradict each other."""


class EvidenceMissing(EvidenceError):
    """A cell record carries no per-item arrays (e.g. written by an older driftlab)."""


def condition_label(kind: str, name: str, severity: int) -> str:
    """``"isp:bi,s,ga"``, ``"corruption:identity"`` or ``"corruption:gaussian_noise@3"``.

    Severity 0 (ISP conditions, ``identity``, corruptions with a single
    severity) is left out of the label.
    """
    return f"{kind}:{name}" + (f"@{int(severity)}" if severity else "")


def parse_condition(label: str) -> tuple[str, str, int]:
    """Inverse of :func:`condition_label`: ``(kind, name, severity)``.

    Raises
    ------
    EvidenceError
        Not ``isp:NAME`` or ``corruption:NAME[@SEVERITY]``.
    """
    kind, sep, rest = str(label).partition(":")
    if not sep or not rest or kind not in ("isp", "corruption"):
        raise EvidenceError(
            f"condition label {label!r}: expected 'isp:NAME' or 'corruption:NAME[@SEVERITY]'"
        )
    if kind == "corruption":
        name, at, severity = rest.rpartition("@")
        if at and severity.isdigit() and name:
            return kind, name, int(severity)
    return kind, rest, 0


@attrs.frozen
class FoldEvidence:
    """What the model trained on one pipeline in one fold did on each test item.

    Attributes
    ----------
    train : str
        Train pipeline.
    fold : int
    test_ids : tuple of str
        ``n`` test items, in array order.
    outcomes : dict of str to dict of str to numpy.ndarray
        Condition label -> ``{"pred": (n,) int64}`` (classification) or
        ``{"inter": (n,), "union": (n,)}`` int64 (segmentation).
    targets : numpy.ndarray or None
        ``(n,)`` int64 true classes (classification).
    foreground, pixels : numpy.ndarray or None
        ``(n,)`` int64 foreground pixels of each mask and pixels per item
        (segmentation; None when the cells did not store them).
    keys : tuple of str
        Cell keys merged into this unit.
    """

    train: str
    fold: int
    test_ids: tuple[str, ...]
    outcomes: Mapping[str, Mapping[str, np.ndarray]] = attrs.field(eq=False)
    targets: np.ndarray | None = attrs.field(default=None, eq=False)
    foreground: np.ndarray | None = attrs.field(default=None, eq=False)
    pixels: np.ndarray | None = attrs.field(default=None, eq=False)
    keys: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.test_ids)


@attrs.frozen
class Evidence:
    """Checked per-item evidence of a drift experiment, one unit per (train pipeline, fold).

    Attributes
    ----------
    task : {"classification", "segmentation"}
    units : tuple of FoldEvidence
        Sorted by train pipeline (first-seen order) and fold.
    conditions : tuple of str
        Condition labels (the same for every unit), first-seen order.
    n_classes : int
        Classification: the number of classes; every target and prediction
        is in ``[0, n_classes)``. 0 for segmentation.
    """

    task: str
    units: tuple[FoldEvidence, ...]
    conditions: tuple[str, ...]
    n_classes: int = 0

    @property
    def trains(self) -> list[str]:
        return list(dict.fromkeys(u.train for u in self.units))

    @property
    def folds(self) -> list[int]:
        return sorted({u.fold for u in self.units})

    def unit(self, train: str, fold: int) -> FoldEvidence:
        """The unit of ``(train, fold)``; KeyError if absent."""
        for u in self.units:
            if u.train == train and u.fold == fold:
                return u
        raise KeyError((train, fold))

    @property
    def shared_test_items(self) -> bool:
        """Every fold was tested on the same items (a fixed held-out test set), folds > 1."""
        ids = {u.test_ids for u in self.units}
        return len(self.folds) > 1 and len(ids) == 1

    def fold_size(self, fold: int) -> int:
        """Test items of ``fold``."""
        return next(u.size for u in self.units if u.fold == fold)


def _int_vector(value: Any, n: int, where: str, *, below: int | None = None) -> np.ndarray:
    """``value`` as ``(n,)`` int64, every entry in ``[0, below)`` (``below`` None: ``>= 0``)."""
    array = np.asarray(value)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise EvidenceError(
            f"{where}: expected ({n},) integers (one per test item), got {array.dtype} "
            f"{array.shape}"
        )
    if n and array.min() < 0:
        raise EvidenceError(f"{where}: expected non-negative values, got {array.min()}")
    if n and below is not None and array.max() >= below:
        raise EvidenceError(
            f"{where}: expected class indices in [0, {below}) ({below} classes), got "
            f"{array.max()} at item {int(np.argmax(array >= below))}"
        )
    return array.astype(np.int64)


def check_classes(task: str, n_classes: int | None) -> int:
    """The class count that bounds class indices: ``n_classes`` (classification) or 0.

    Raises
    ------
    EvidenceError
        An unknown task, or a classification without a positive ``n_classes``.
    """
    if task not in TASKS:
        raise EvidenceError(f"task: expected one of {TASKS}, got {task!r}")
    if task != "classification":
        return 0
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise EvidenceError(
            f"n_classes: expected the number of classes of the classification task (a positive "
            f"integer), got {n_classes!r}"
        )
    return int(n_classes)


def fold_evidence(record: Any, task: str, *, n_classes: int | None) -> FoldEvidence:
    """Check the per-item arrays of one cell record (module docstring) on their own.

    Parameters
    ----------
    record : driftlab.engine.rundir.CellRecord
        Or any object with ``key``, ``arrays`` and ``info``.
    task : {"classification", "segmentation"}
    n_classes : int or None
        Classification: the number of classes; a target or prediction
        outside ``[0, n_classes)`` is refused. Not used for segmentation
        (pass None).

    Returns
    -------
    FoldEvidence
        The record's unit (``keys = (record.key,)``).

    Raises
    ------
    EvidenceMissing
        The record has no per-item arrays.
    EvidenceError
        Malformed info (train pipeline, fold, condition labels, test ids,
        repeats), an array missing, of another length or type, negative, a
        class index out of range, intersection above union or pixel counts
        above the mask's; the message names the cell and the array.
    """
    classes = check_classes(task, n_classes)
    key = getattr(record, "key", "?")
    info = record.info if isinstance(record.info, Mapping) else {}
    arrays = record.arrays or {}
    where = f"cell {key}"
    if not arrays:
        raise EvidenceMissing(f"{where}: stored no per-item outcomes")
    train, fold = info.get("train_pipeline"), info.get("fold")
    labels, ids = info.get("conditions"), info.get("test_ids")
    if not isinstance(train, str) or isinstance(fold, bool) or not isinstance(fold, int):
        raise EvidenceError(f"{where}: info needs 'train_pipeline' (str) and 'fold' (int)")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise EvidenceError(f"{where}: info 'conditions' must be a list of condition labels")
    if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise EvidenceError(f"{where}: info 'test_ids' must be a list of item ids")
    if len(set(labels)) != len(labels):
        raise EvidenceError(f"{where}: repeated condition labels in info 'conditions'")
    if len(set(ids)) != len(ids):
        raise EvidenceError(f"{where}: repeated item ids in info 'test_ids'")
    n = len(ids)
    below = classes or None
    outcomes: dict[str, dict[str, np.ndarray]] = {}
    for i, label in enumerate(labels):
        parse_condition(label)
        parts = {}
        for part in OUTCOME_ARRAYS[task]:
            name = f"c{i}.{part}"
            if name not in arrays:
                raise EvidenceError(f"{where}: array {name!r} ({label}) is missing")
            parts[part] = _int_vector(arrays[name], n, f"{where}: array {name!r}", below=below)
        if task == "segmentation" and np.any(parts["inter"] > parts["union"]):
            raise EvidenceError(f"{where}: condition {label}: intersection exceeds union")
        outcomes[label] = parts
    extra = {}
    for name in TARGET_ARRAYS[task]:
        if name in arrays:
            extra[name] = _int_vector(arrays[name], n, f"{where}: array {name!r}", below=below)
    if task == "classification" and "targets" not in extra:
        raise EvidenceError(f"{where}: array 'targets' (true class per test item) is missing")
    fg, pixels = extra.get("fg"), extra.get("pixels")
    if task == "segmentation":
        if (fg is None) != (pixels is None):
            raise EvidenceError(f"{where}: arrays 'fg' and 'pixels' go together")
        if fg is not None and np.any(fg > pixels):
            raise EvidenceError(f"{where}: foreground pixels exceed pixels per item")
        if pixels is not None:
            for label, parts in outcomes.items():
                if np.any(parts["union"] > pixels) or np.any(parts["inter"] > fg):
                    raise EvidenceError(
                        f"{where}: condition {label}: pixel counts exceed the item's mask"
                    )
    return FoldEvidence(
        train=train,
        fold=int(fold),
        test_ids=tuple(ids),
        outcomes=outcomes,
        targets=extra.get("targets"),
        foreground=fg,
        pixels=pixels,
        keys=(str(key),),
    )


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _merge(first: FoldEvidence, other: FoldEvidence) -> FoldEvidence:
    where = f"cells {', '.join(first.keys)} and {', '.join(other.keys)}"
    what = f"(train pipeline {first.train!r}, fold {first.fold})"
    if first.test_ids != other.test_ids:
        raise EvidenceError(f"{where} {what}: different test items; cannot merge")
    for name in ("targets", "foreground", "pixels"):
        if not _same(getattr(first, name), getattr(other, name)):
            raise EvidenceError(f"{where} {what}: different {name}; cannot merge")
    repeated = sorted(set(first.outcomes) & set(other.outcomes))
    if repeated:
        raise EvidenceError(f"{where} {what}: both hold condition(s) {repeated}")
    return attrs.evolve(
        first, outcomes={**first.outcomes, **other.outcomes}, keys=first.keys + other.keys
    )


def evidence_from_records(records: Iterable[Any], task: str, *, n_classes: int | None) -> Evidence:
    """Check and merge the per-item arrays of cell records into :class:`Evidence`.

    Parameters
    ----------
    records : iterable of driftlab.engine.rundir.CellRecord
        Finished cells following the conventions of the module docstring
        (objects with ``key``, ``arrays`` and ``info`` suffice).
    task : {"classification", "segmentation"}
    n_classes : int or None
        Classification: the number of classes of the task (the model's
        outputs); every target and prediction must lie in ``[0, n_classes)``.
        Not used for segmentation (pass None).

    Returns
    -------
    Evidence

    Raises
    ------
    EvidenceMissing
        A record has no per-item arrays at all.
    EvidenceError
        Malformed info or arrays (wrong shape or type, negative counts, a
        class index outside ``[0, n_classes)``, intersection above union, a
        missing condition array; see :func:`fold_evidence`), records of
        one (train pipeline, fold) that disagree (test items, targets,
        a condition held twice), units with different conditions, or two
        models of one fold tested on different items.
    """
    classes = check_classes(task, n_classes)
    merged: dict[tuple[str, int], FoldEvidence] = {}
    for record in records:
        unit = fold_evidence(record, task, n_classes=n_classes)
        at = (unit.train, unit.fold)
        merged[at] = _merge(merged[at], unit) if at in merged else unit
    if not merged:
        raise EvidenceMissing("no cell records")
    units = list(merged.values())
    conditions = tuple(dict.fromkeys(label for u in units for label in u.outcomes))
    trains = list(dict.fromkeys(u.train for u in units))
    folds = sorted({u.fold for u in units})
    order = {t: i for i, t in enumerate(trains)}
    units.sort(key=lambda u: (order[u.train], u.fold))
    by_fold: dict[int, FoldEvidence] = {}
    for u in units:
        missing = [c for c in conditions if c not in u.outcomes]
        if missing:
            raise EvidenceError(
                f"cell(s) {', '.join(u.keys)} (train pipeline {u.train!r}, fold {u.fold}) lack "
                f"condition(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}"
            )
        ref = by_fold.setdefault(u.fold, u)
        if ref.test_ids != u.test_ids or not _same(ref.targets, u.targets):
            raise EvidenceError(
                f"fold {u.fold}: cells {', '.join(ref.keys)} and {', '.join(u.keys)} were tested "
                "on different items or targets; the paired bootstrap needs the same test items "
                "for every model of a fold"
            )
        if u.size == 0:
            raise EvidenceError(f"cell(s) {', '.join(u.keys)}: no test items")
    absent = [(t, f) for t in trains for f in folds if (t, f) not in merged]
    if absent:
        raise EvidenceError(f"no cell for (train pipeline, fold) {absent[:5]}")
    return Evidence(task=task, units=tuple(units), conditions=conditions, n_classes=classes)


def target_evidence(targets: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """The per-item target arrays a cell stores beside its predictions.

    Parameters
    ----------
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` masks of the cell's test items.
    task : {"classification", "segmentation"}

    Returns
    -------
    dict
        ``targets`` (int64 classes) for classification; ``fg`` (foreground
        pixels of each mask) and ``pixels`` (pixels per item) for
        segmentation, from which the chance level (best constant mask) follows.
    """
    if task == "classification":
        return {"targets": np.asarray(targets, dtype=np.int64)}
    masks = np.asarray(targets) > 0
    return {
        "fg": masks.reshape(len(masks), -1).sum(axis=1).astype(np.int64),
        "pixels": np.full(len(masks), masks[0].size if len(masks) else 0, np.int64),
    }
