"""Check one stored cell record of a drift experiment: its per-item arrays against its own rows.

A finished cell of a drift experiment (synthesis, audit) holds tidy rows
(:data:`driftlab.verdicts.evidence.CELL_COLUMNS`, one per test condition)
and the per-item outcomes they were computed from (the conventions of
:mod:`driftlab.verdicts.evidence`). The run directory checks that the
files are the ones written (checksums), not that they agree with each
other: a record whose rows were edited together with their checksum, whose
arrays were truncated, or that holds a class the task does not have, reads
back cleanly. :func:`check_record` recomputes every row's value from the
arrays and refuses the record (:class:`CellRecordError`, naming the cell)
unless everything agrees, so the engine can compute such a cell again
instead of reusing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftlab.verdicts.evidence import (
    CELL_COLUMNS,
    OUTCOME_ARRAYS,
    TARGET_ARRAYS,
    EvidenceError,
    FoldEvidence,
    check_classes,
    condition_label,
    fold_evidence,
    target_evidence,
)
from driftlab.verdicts.scores import FoldScorer

__all__ = ["CellRecordError", "check_record"]

TOLERANCE = 1e-9
"""Largest difference between a stored value and the value recomputed from the arrays."""


class CellRecordError(EvidenceError):
    """A stored cell record contradicts itself or what the run expects of it.

    Attributes
    ----------
    key : str
        The cell.
    reason : str
        What is wrong (the message without the cell).
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"cell {key}: {reason}")
        self.key = key
        self.reason = reason


def check_record(
    record: Any,
    *,
    task: str,
    n_classes: int | None,
    metric: str | None = None,
    train_pipeline: str | None = None,
    fold: int | None = None,
    conditions: Sequence[str] | None = None,
    test_ids: Sequence[str] | None = None,
    targets: np.ndarray | None = None,
) -> FoldEvidence:
    """Check one drift-experiment cell record's per-item evidence against its rows.

    Checks, in order: the per-item arrays on their own
    (:func:`driftlab.verdicts.evidence.fold_evidence`: info, lengths equal
    to the number of test ids, integer counts, class indices in
    ``[0, n_classes)``, intersection <= union <= pixels); no array outside
    the conventions; one row per condition of ``info["conditions"]`` and
    no other, each with the record's train pipeline and fold; one metric,
    and every value finite, in [0, 1] and equal (to 1e-9) to that metric
    recomputed from the arrays (accuracy = the fraction of predictions equal
    to the targets; IoU = summed intersections over summed unions); then
    whatever the caller expects (each optional argument).

    Parameters
    ----------
    record : driftlab.engine.rundir.CellRecord
        Or any object with ``key``, ``rows`` (a DataFrame with
        :data:`~driftlab.verdicts.evidence.CELL_COLUMNS`, ``device`` may be
        absent), ``arrays`` and ``info``.
    task : {"classification", "segmentation"}
    n_classes : int or None
        Classification: the number of classes (the model's outputs); not
        used for segmentation (pass None).
    metric : str, optional
        The metric the rows must be in (the cells record the task's default).
    train_pipeline : str, optional
        The cell's train pipeline (an audit: the reference pipeline).
    fold : int, optional
    conditions : sequence of str, optional
        The condition labels the cell must hold, in array order
        (:func:`~driftlab.verdicts.evidence.condition_label`).
    test_ids : sequence of str, optional
        The cell's test items, in array order.
    targets : numpy.ndarray, optional
        ``(n,)`` class indices (classification) or ``(n, H, W)`` masks at
        the model's resolution (segmentation) of the test items: the stored
        ``targets`` (or ``fg`` and ``pixels``) must be theirs.

    Returns
    -------
    FoldEvidence
        The record's checked per-item evidence.

    Raises
    ------
    CellRecordError
        Anything that does not agree; the message names the cell and the
        row, array or info field, and what was expected. A record without
        per-item arrays is refused too (it cannot be checked).
    EvidenceError
        ``task`` unknown, or ``n_classes`` not a positive integer for
        classification (a mistake of the caller, not of the record).
    """
    classes = check_classes(task, n_classes)
    key = str(getattr(record, "key", "?"))
    try:
        unit = fold_evidence(record, task, n_classes=n_classes)
    except EvidenceError as exc:
        reason = str(exc).removeprefix(f"cell {key}: ")
        raise CellRecordError(key, reason) from None
    labels = list(unit.outcomes)
    known = {f"c{i}.{part}" for i in range(len(labels)) for part in OUTCOME_ARRAYS[task]}
    known |= set(TARGET_ARRAYS[task])
    unknown = sorted(set(record.arrays) - known)
    if unknown:
        raise CellRecordError(
            key, f"arrays {unknown[:5]} belong to no condition of info 'conditions'"
        )
    _check_rows(key, record.rows, unit, task, classes)
    _check_expected(
        key, unit, task, metric, record.rows, train_pipeline, fold, conditions, test_ids, targets
    )
    return unit


def _check_rows(key: str, rows: Any, unit: FoldEvidence, task: str, classes: int) -> None:
    if not isinstance(rows, pd.DataFrame):
        raise CellRecordError(key, f"rows: expected a table, got {type(rows).__name__}")
    missing = [c for c in CELL_COLUMNS if c != "device" and c not in rows.columns]
    if missing:
        raise CellRecordError(key, f"rows lack columns {missing}")
    if rows.empty:
        raise CellRecordError(key, "no rows")
    metrics = sorted(set(map(str, rows["metric"])))
    if len(metrics) != 1:
        raise CellRecordError(key, f"rows: expected one metric, got {metrics}")
    labels: list[str] = []
    for n, row in enumerate(rows.itertuples(index=False)):
        where = f"row {n}"
        if str(row.train_pipeline) != unit.train or int(row.fold) != unit.fold:
            raise CellRecordError(
                key,
                f"{where}: train pipeline {row.train_pipeline!r}, fold {row.fold}; expected "
                f"{unit.train!r}, fold {unit.fold} (info)",
            )
        label = condition_label(str(row.test_kind), str(row.test_condition), int(row.severity))
        if label not in unit.outcomes:
            raise CellRecordError(key, f"{where}: condition {label} has no per-item outcomes")
        labels.append(label)
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise CellRecordError(key, f"rows repeat condition(s) {repeated}")
    without = [x for x in unit.outcomes if x not in labels]
    if without:
        raise CellRecordError(key, f"condition(s) {without[:5]} of info 'conditions' have no row")
    try:
        scores = FoldScorer(unit, labels, metrics[0], task, classes).point()
    except EvidenceError as exc:
        raise CellRecordError(key, f"rows: {exc}") from None
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=np.float64)
    for n, (label, value, score) in enumerate(zip(labels, values, scores, strict=True)):
        if not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise CellRecordError(
                key, f"row {n} ({label}): value {value} is not a {metrics[0]} in [0, 1]"
            )
        if not abs(value - score) <= TOLERANCE:
            raise CellRecordError(
                key,
                f"row {n} ({label}): stored {metrics[0]} {value!r} differs from {score!r} "
                f"recomputed from the per-item outcomes",
            )


def _check_expected(
    key: str,
    unit: FoldEvidence,
    task: str,
    metric: str | None,
    rows: pd.DataFrame,
    train_pipeline: str | None,
    fold: int | None,
    conditions: Sequence[str] | None,
    test_ids: Sequence[str] | None,
    targets: np.ndarray | None,
) -> None:
    stored = str(rows["metric"].iloc[0])
    if metric is not None and stored != metric:
        raise CellRecordError(key, f"rows are in {stored!r}; expected {metric!r}")
    if train_pipeline is not None and unit.train != train_pipeline:
        raise CellRecordError(
            key, f"info 'train_pipeline' is {unit.train!r}; expected {train_pipeline!r}"
        )
    if fold is not None and unit.fold != fold:
        raise CellRecordError(key, f"info 'fold' is {unit.fold}; expected {fold}")
    if conditions is not None and list(unit.outcomes) != list(conditions):
        raise CellRecordError(
            key,
            f"info 'conditions' {list(unit.outcomes)[:5]} differ from the expected "
            f"{list(conditions)[:5]}",
        )
    if test_ids is not None and unit.test_ids != tuple(test_ids):
        raise CellRecordError(
            key,
            f"info 'test_ids' ({unit.size} items) differ from the cell's {len(test_ids)} test "
            "items",
        )
    if targets is None:
        return
    if len(targets) != unit.size:
        raise CellRecordError(key, f"{len(targets)} expected targets for {unit.size} test items")
    expected: Mapping[str, np.ndarray] = target_evidence(np.asarray(targets), task)
    stored_arrays = {"targets": unit.targets, "fg": unit.foreground, "pixels": unit.pixels}
    for name, array in expected.items():
        mine = stored_arrays[name]
        if mine is None or not np.array_equal(mine, array):
            raise CellRecordError(key, f"array {name!r} differs from the test items' targets")
