"""One audit cell: a frozen model evaluated under a group of test conditions.

The audited model is loaded (never trained) and fed each condition's views
through its input contract (:class:`driftlab.models.InputContract`): the
views of a test pipeline (ISP drift) or a corruption x severity of the
reference pipeline's views (common corruptions, Hendrycks & Dietterich
2019). A cell's record is written by the same
:class:`driftlab.verdicts.cells.ConditionRecorder` as a synthesis cell's, so
the shared drift verdicts (:mod:`driftlab.verdicts`) read both:

* rows with :data:`driftlab.verdicts.evidence.CELL_COLUMNS`,
  ``train_pipeline`` = the reference pipeline, ``fold`` = 0 (one fixed test set);
* arrays ``c{i}.pred`` (classification: top-1 class, ``(N,)`` int64) or
  ``c{i}.inter`` / ``c{i}.union`` (segmentation: foreground pixel counts,
  ``(N,)`` int64) for the ``i``-th condition of the cell, and ``targets``
  (classification: ``(N,)`` int64);
* info ``train_pipeline``, ``fold``, ``conditions`` (labels ``isp:NAME``,
  ``corruption:NAME@SEV``, ``corruption:identity``, in array order) and
  ``test_ids``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from driftlab.engine.cell import ArrayRef, CellContext, CellOutput
from driftlab.models.contract import InputContract
from driftlab.registry import Registry
from driftlab.verdicts.cells import ConditionRecorder, corrupted_views

__all__ = ["BATCH_SIZE", "AuditJob", "audit_cell", "contract_predict"]

BATCH_SIZE = 64
"""Views per forward pass (the contract is applied batch by batch to bound memory)."""


@attrs.frozen
class AuditJob:
    """Everything one audit cell needs, as picklable data.

    Attributes
    ----------
    reference : str
        The pipeline the model was trained on (rows' ``train_pipeline``).
    conditions : tuple of (str, str, int)
        ``(kind, name, severity)``: ``("isp", pipeline, 0)`` or
        ``("corruption", corruption, severity)``.
    views : dict of str to ArrayRef
        ``(N, 3, H, W)`` float32 view stacks of the audited items by pipeline.
    targets : ArrayRef
        ``(N,)`` int64 classes or ``(N, H, W)`` masks.
    test_ids : tuple of str
    weights, model_name, model_options, weights_key, output_channels
        How to load the model (:func:`driftlab.models.load_model`).
    contract : InputContract
    task, metric : str
    family : str
        Corruption severity tables.
    seed : int
        Base seed of the corruptions (per item: ``(seed, name, severity, id)``).
    registry : Registry
    """

    reference: str
    conditions: tuple[tuple[str, str, int], ...]
    views: dict[str, ArrayRef]
    targets: ArrayRef
    test_ids: tuple[str, ...]
    weights: str
    model_name: str | None
    model_options: dict[str, Any]
    weights_key: str | None
    output_channels: int
    contract: InputContract
    task: str
    metric: str
    family: str
    seed: int
    registry: Registry


def contract_predict(
    model: torch.nn.Module,
    views: np.ndarray,
    contract: InputContract,
    *,
    device: str = "cpu",
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """Logits of ``model`` for views fed through ``contract``, batch by batch.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode; maps the contract's output ``(B, C, H, W)`` to logits.
    views : numpy.ndarray
        ``(N, 3, h, w)`` float views in [0, 1].
    contract : InputContract

    Returns
    -------
    numpy.ndarray
        ``(N, K)`` or ``(N, K, H, W)`` float32 logits on the CPU.
    """
    outs = []
    with torch.inference_mode():
        for start in range(0, len(views), batch_size):
            x = contract.apply(views[start : start + batch_size], device=device)
            outs.append(model(x).float().cpu().numpy())
    if not outs:
        return np.zeros((0,), np.float32)
    return np.concatenate(outs)


def audit_cell(job: AuditJob, ctx: CellContext) -> CellOutput:
    """Evaluate the frozen model under every condition of ``job``.

    Returns
    -------
    CellOutput
        See the module docstring; no files (nothing is trained).
    """
    from driftlab.models.loading import load_model

    loaded = load_model(
        job.weights,
        name=job.model_name,
        num_classes=job.output_channels if job.model_name is not None else None,
        options=job.model_options or None,
        key=job.weights_key,
        device=ctx.device,
        registry=job.registry,
    )
    model = loaded.view_model().eval()
    targets = ctx.load_array(job.targets)
    if job.task == "segmentation":
        targets = job.contract.apply_masks(targets)
    recorder = ConditionRecorder(
        train_pipeline=job.reference,
        fold=0,
        test_ids=job.test_ids,
        targets=targets,
        task=job.task,
        metric=job.metric,
        device=ctx.device,
    )
    reference_views: np.ndarray | None = None
    for n, (kind, name, severity) in enumerate(job.conditions):
        if kind == "isp":
            views = ctx.load_array(job.views[name])
        else:
            if reference_views is None:
                reference_views = ctx.load_array(job.views[job.reference])
            views = corrupted_views(
                reference_views,
                name,
                severity,
                job.test_ids,
                seed=job.seed,
                family=job.family,
                registry=job.registry,
            )
        logits = contract_predict(model, views, job.contract, device=ctx.device)
        label = recorder.add(kind, name, severity, logits)
        ctx.progress(n + 1, len(job.conditions), label)
    return recorder.output()
