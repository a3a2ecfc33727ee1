"""What the cells of drift experiments (synthesis, audit) share: test conditions and their records.

A drift cell scores one model on its test items under a list of conditions:
the views of a test pipeline (ISP drift) or a corruption x severity of the
views of the pipeline it was trained on (common corruptions, Hendrycks &
Dietterich, ICLR 2019). :func:`corrupted_views` makes the corrupted views
with the per-item seeds every drift experiment uses, and
:class:`ConditionRecorder` turns each condition's logits into the record the
verdicts read (:data:`~driftlab.verdicts.evidence.CELL_COLUMNS` rows and the
per-item arrays of :mod:`driftlab.verdicts.evidence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftlab.corruptions.apply import apply_corruption_batch
from driftlab.engine.cell import CellOutput
from driftlab.naming import derive_seed
from driftlab.registry import Registry
from driftlab.train import item_outcomes, metric_from_outcomes
from driftlab.verdicts.evidence import condition_label, target_evidence

__all__ = ["ConditionRecorder", "corrupted_views"]


def corrupted_views(
    views: np.ndarray,
    name: str,
    severity: int,
    test_ids: Sequence[str],
    *,
    seed: int,
    family: str,
    registry: Registry,
) -> np.ndarray:
    """Views under one corruption at one severity, each item with its own seed.

    Parameters
    ----------
    views : numpy.ndarray
        ``(N, 3, H, W)`` float32 views in [0, 1].
    name : str
        A registered corruption.
    severity : int
        1..5, or 0 for corruptions without severities (``identity``; applied at 1).
    test_ids : sequence of str
        The ``N`` items' ids: item ``i`` is corrupted with seed
        ``derive_seed(seed, name, severity, test_ids[i])``, so the same item
        gets the same corruption in every cell, run and experiment.
    seed : int
        Base seed (``[training].seed`` in synthesis, ``[corruptions].seed`` in an audit).
    family : {"imagenet-c", "cifar-c"}
        Severity tables.
    registry : Registry

    Returns
    -------
    numpy.ndarray
        ``(N, 3, H, W)`` float32, clipped to [0, 1].
    """
    seeds = [derive_seed(seed, name, severity, i) for i in test_ids]
    return apply_corruption_batch(
        views, name, max(severity, 1), seeds, clip=True, registry=registry, family=family
    )


class ConditionRecorder:
    """Collects one drift cell's rows and per-item arrays, condition by condition.

    Parameters
    ----------
    train_pipeline : str
        The pipeline the model was trained on (rows' ``train_pipeline``).
    fold : int
        0 for an audit (one fixed test set).
    test_ids : sequence of str
        The ``N`` test items, in array order.
    targets : numpy.ndarray
        ``(N,)`` int64 classes or ``(N, H, W)`` masks at the model's resolution.
    task : {"classification", "segmentation"}
    metric : str
        The task's default metric (:func:`driftlab.train.metrics.task_metric_name`),
        the rows' ``metric``.
    device : str
        Where the cell ran (rows' ``device``).
    """

    def __init__(
        self,
        *,
        train_pipeline: str,
        fold: int,
        test_ids: Sequence[str],
        targets: np.ndarray,
        task: str,
        metric: str,
        device: str,
    ) -> None:
        self.train_pipeline = train_pipeline
        self.fold = fold
        self.test_ids = list(test_ids)
        self.targets = targets
        self.task = task
        self.metric = metric
        self.device = device
        self.rows: list[dict[str, Any]] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.labels: list[str] = []

    def add(self, kind: str, name: str, severity: int, logits: np.ndarray) -> str:
        """Record the model's outputs under one condition.

        Parameters
        ----------
        kind : {"isp", "corruption"}
        name : str
            Test pipeline or corruption.
        severity : int
            0 for ISP conditions and corruptions without severities.
        logits : numpy.ndarray
            ``(N, K)`` (classification) or ``(N, C, H, W)`` (segmentation).

        Returns
        -------
        str
            The condition's label (:func:`~driftlab.verdicts.evidence.condition_label`).
        """
        outcome = item_outcomes(logits, self.targets, self.task)
        value = metric_from_outcomes(outcome, self.targets, self.task)
        index = len(self.labels)
        label = condition_label(kind, name, severity)
        self.labels.append(label)
        for part, values in outcome.items():
            self.arrays[f"c{index}.{part}"] = values
        self.rows.append(
            {
                "train_pipeline": self.train_pipeline,
                "fold": self.fold,
                "test_kind": kind,
                "test_condition": name,
                "severity": severity,
                "metric": self.metric,
                "value": value,
                "device": self.device,
            }
        )
        return label

    def output(self, files: Mapping[str, bytes] | None = None) -> CellOutput:
        """The cell's output: rows, per-item arrays with the targets', info and ``files``."""
        return CellOutput(
            rows=self.rows,
            arrays={**self.arrays, **target_evidence(self.targets, self.task)},
            files=dict(files or {}),
            info={
                "train_pipeline": self.train_pipeline,
                "fold": self.fold,
                "conditions": list(self.labels),
                "test_ids": self.test_ids,
            },
        )
