"""One synthesis cell: train under one pipeline on one fold, test under every condition.

The cell trains a task model on the training items' views of its pipeline
(standardised with their channel statistics), then predicts the fold's test
items under every test pipeline (ISP drift) and under every corruption x
severity of its own pipeline's views (common corruptions), following Oala
et al., TMLR 2023, Sec. 5. Besides one tidy row per condition it keeps the
per-item outcomes (predicted class, or intersection and union pixel counts)
so the summary can bootstrap every quantity, and the trained weights.
"""

from __future__ import annotations

import io
from typing import Any

import attrs
import numpy as np
import torch

from driftlab.engine.cell import ArrayRef, CellContext, CellOutput
from driftlab.naming import derive_seed
from driftlab.registry import Registry
from driftlab.train import Normalized, TrainConfig, channel_stats, fit, predict
from driftlab.verdicts.cells import ConditionRecorder, corrupted_views
from driftlab.verdicts.evidence import CELL_COLUMNS as RESULT_COLUMNS

__all__ = ["RESULT_COLUMNS", "SynthesisJob", "synthesis_cell"]


@attrs.frozen
class SynthesisJob:
    """Everything one (train pipeline, fold) cell needs, as picklable data."""

    train: str
    fold: int
    train_index: np.ndarray = attrs.field(eq=False)
    test_index: np.ndarray = attrs.field(eq=False)
    test_ids: tuple[str, ...]
    views: dict[str, ArrayRef]
    targets: ArrayRef
    model_name: str
    model_options: dict[str, Any]
    weights: str | None
    weights_key: str | None
    task: str
    metric: str
    output_channels: int
    tests: tuple[str, ...]
    conditions: tuple[tuple[str, int], ...]
    family: str
    training: dict[str, Any]
    seed: int
    registry: Registry


def synthesis_cell(job: SynthesisJob, ctx: CellContext) -> CellOutput:
    """Train one task model and evaluate it under every ISP and corruption condition.

    Returns
    -------
    CellOutput
        Rows with :data:`RESULT_COLUMNS` (the drift cells' columns,
        :data:`driftlab.verdicts.evidence.CELL_COLUMNS`); arrays ``targets`` (the test
        targets, classification) or ``fg`` / ``pixels`` (foreground pixels
        of each test mask and pixels per item, segmentation) and per
        condition ``i`` ``c{i}.pred`` or ``c{i}.inter`` / ``c{i}.union``;
        files ``{"pt": weights}``; info ``train_pipeline``, ``fold``,
        ``conditions`` (labels in array order) and ``test_ids``: the
        conventions of :mod:`driftlab.verdicts.evidence`.
    """
    from driftlab.models.loading import load_model

    tr = job.training
    seed = derive_seed(job.seed, job.train, job.fold)
    torch.manual_seed(seed)
    model = load_model(
        job.weights,
        name=job.model_name,
        num_classes=job.output_channels,
        options=job.model_options,
        key=job.weights_key,
        registry=job.registry,
    ).module
    model.train()
    targets = ctx.load_array(job.targets)
    train_views = ctx.load_array(job.views[job.train], job.train_index)
    net = Normalized(model, *channel_stats(train_views))
    fit(
        net,
        train_views,
        targets[job.train_index],
        job.task,
        TrainConfig(
            epochs=tr["epochs"],
            batch_size=tr["batch_size"],
            lr=tr["lr"],
            seed=seed,
            device=ctx.device,
            augment=tr["augment"],
            schedule=tr.get("schedule", "constant"),
        ),
        progress=ctx.progress,
        description=f"cell {job.train} fold {job.fold}",
    )
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    recorder = ConditionRecorder(
        train_pipeline=job.train,
        fold=job.fold,
        test_ids=job.test_ids,
        targets=targets[job.test_index],
        task=job.task,
        metric=job.metric,
        device=ctx.device,
    )
    for test in job.tests:
        views = ctx.load_array(job.views[test], job.test_index)
        recorder.add("isp", test, 0, predict(net, views, device=ctx.device))
    base_views = ctx.load_array(job.views[job.train], job.test_index)
    for name, severity in job.conditions:
        corrupted = corrupted_views(
            base_views,
            name,
            severity,
            job.test_ids,
            seed=job.seed,
            family=job.family,
            registry=job.registry,
        )
        recorder.add("corruption", name, severity, predict(net, corrupted, device=ctx.device))
    return recorder.output(files={"pt": buffer.getvalue()})
