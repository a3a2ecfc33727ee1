"""Constructed cell records of drift experiments with known per-item outcomes (for verdict tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd

from driftlab.verdicts.evidence import condition_label

COLUMNS = ["train_pipeline", "fold", "test_kind", "test_condition", "severity", "metric", "value"]


def conditions(tests: Sequence[str], corruptions: Sequence[tuple[str, int]] = ()) -> list[tuple]:
    """``(kind, name, severity)`` of ISP tests and corruptions (identity first)."""
    out = [("isp", t, 0) for t in tests]
    return out + [("corruption", n, s) for n, s in corruptions]


def classification_records(
    trains: Sequence[str],
    conds: Sequence[tuple[str, str, int]],
    p_correct: Callable[[str, tuple[str, str, int], int], float],
    *,
    folds: int = 3,
    n: int = 120,
    classes: int = 5,
    seed: int = 0,
    split: int = 1,
    shared: bool = False,
    held_out: bool = False,
) -> list[SimpleNamespace]:
    """Records whose predictions are right with probability ``p_correct(train, condition, fold)``.

    Every model of a fold sees the same items and targets; ``split`` > 1
    spreads each (train, fold)'s conditions over that many records (as the
    audit experiment does); ``shared``: every train pipeline makes the same
    predictions (exact ties) where its probabilities are equal; ``held_out``:
    every fold is tested on the same items (a fixed held-out test set).
    """
    rng = np.random.default_rng(seed)
    records = []
    fixed = rng.permutation(np.arange(n) % classes).astype(np.int64)
    for fold in range(folds):
        ids = [f"item{0 if held_out else fold}-{i}" for i in range(n)]
        targets = fixed if held_out else rng.permutation(np.arange(n) % classes).astype(np.int64)
        for train in trains:
            parts = np.array_split(np.arange(len(conds)), split)
            for part_index, part in enumerate(parts):
                arrays, labels, rows = {"targets": targets}, [], []
                for i, c in enumerate(part):
                    cond = conds[c]
                    draw = np.random.default_rng([seed, fold, int(c)]) if shared else rng
                    right = draw.random(n) < p_correct(train, cond, fold)
                    wrong = (targets + draw.integers(1, classes, n)) % classes
                    pred = np.where(right, targets, wrong).astype(np.int64)
                    arrays[f"c{i}.pred"] = pred
                    labels.append(condition_label(*cond))
                    rows.append((train, fold, *cond, "accuracy", float(np.mean(pred == targets))))
                records.append(
                    SimpleNamespace(
                        key=f"{train}-fold{fold}-part{part_index}",
                        arrays=arrays,
                        info={
                            "train_pipeline": train,
                            "fold": fold,
                            "conditions": labels,
                            "test_ids": ids,
                        },
                        rows=pd.DataFrame(rows, columns=COLUMNS),
                    )
                )
    return records


def results_of(records) -> pd.DataFrame:
    return pd.concat([r.rows for r in records], ignore_index=True)
