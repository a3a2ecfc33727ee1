"""The steps the drift experiments (synthesis, audit) take alike: a base class and functions.

Both experiments are fillings of :mod:`driftlab.engine.skeleton` that render
one view stack per pipeline, score a model per (train pipeline, fold) under
ISP and corruption conditions, and state the shared drift verdict. What they
do alike lives here, written against :class:`DriftPlan` (the attributes a
synthesis plan and an audit plan both have): :class:`DriftExperiment` (the
run identity of the data and pipelines, the shared inputs, the numbers given
to trackers), the manifest entries of the data (:func:`data_manifest`), the
check of a reused cell (:func:`check_cell`), the verdict of the cell records
(:func:`drift_results`) and the run result handed to the caller
(:class:`DriftRunResult`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import numpy as np
import pandas as pd

from driftlab.cache import camera_digest, render_identity
from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetSpec, RawDataset
from driftlab.engine.cell import ArrayRef
from driftlab.engine.planning import HeldOut, held_out_manifest
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import CellRecord, RunDir
from driftlab.engine.skeleton import ExperimentRun, Prepared
from driftlab.engine.views import view_stacks
from driftlab.errors import ConfigError
from driftlab.pipeline import PipelineSpec
from driftlab.pipeline.resolve import resolve
from driftlab.registry import Registry
from driftlab.verdicts.drift import DriftSettings, DriftVerdict, drift_verdict, rescore
from driftlab.verdicts.evidence import (
    CELL_COLUMNS,
    EvidenceMissing,
    condition_label,
    evidence_from_records,
)
from driftlab.verdicts.records import check_record

__all__ = [
    "DriftExperiment",
    "DriftInputs",
    "DriftPlan",
    "DriftRunResult",
    "check_cell",
    "class_count",
    "data_manifest",
    "drift_results",
    "targets_array",
]


class DriftPlan(Protocol):
    """What the shared steps read of a drift experiment's plan (synthesis or audit).

    Attributes
    ----------
    config
        The experiment's configuration, with ``report``
        (:class:`driftlab.verdicts.config.ReportSection`) and ``run``.
    registry : Registry
    dataset_spec : DatasetSpec
        Its classes are the model's outputs, in order.
    dataset : RawDataset
        Every item the run renders, in the order of the view stacks.
    camera : CameraParams
    pipelines : tuple of PipelineSpec
        Every pipeline whose views the run renders.
    device : str
    fingerprint : str
        SHA-256 of the items' ids, targets and mosaics.
    held_out : HeldOut or None
    task : str
    metric : str
        The metric the cells record (the task's default).
    """

    config: Any
    registry: Registry
    dataset_spec: DatasetSpec
    dataset: RawDataset
    camera: CameraParams
    device: str
    fingerprint: str
    held_out: HeldOut | None

    @property
    def pipelines(self) -> tuple[PipelineSpec, ...]: ...  # pragma: no cover - protocol

    @property
    def task(self) -> str: ...  # pragma: no cover - protocol

    @property
    def metric(self) -> str: ...  # pragma: no cover - protocol


class DriftExperiment:
    """The steps of the skeleton's :class:`~driftlab.engine.skeleton.Experiment` protocol that
    drift experiments take alike; synthesis and audit derive from it and add ``kind``,
    ``config_class``, ``plan``, ``manifest`` (with :func:`data_manifest`), ``keys``,
    ``cells``, ``check`` (with :func:`check_cell`) and ``summarize`` (with
    :func:`drift_results`)."""

    columns = CELL_COLUMNS

    def identity(self, plan: DriftPlan) -> dict[str, Any]:
        """Run-identity entries the configuration alone cannot give: data and pipeline
        fingerprints, the camera and the rendering code
        (:func:`driftlab.cache.render_identity`), and the camera of a ``[test]`` set."""
        out: dict[str, Any] = {"data.fingerprint": plan.fingerprint}
        for spec in plan.pipelines:
            out[f"pipeline.{spec.name}"] = spec.fingerprint()
        resolved = [resolve(spec, plan.camera, plan.registry) for spec in plan.pipelines]
        out.update(render_identity(plan.camera, resolved))
        if plan.held_out is not None:  # its views are rendered with its own camera
            out["camera.test.sha256"] = camera_digest(plan.held_out.test.spec.camera)
        return out

    def prepare(self, plan: DriftPlan, run: RunDir, progress: Progress) -> Prepared:
        """Render every view once (content-addressed cache), stack each pipeline's views,
        store the targets: :class:`DriftInputs` in a
        :class:`~driftlab.engine.skeleton.Prepared`."""
        views = view_stacks(
            run,
            plan.dataset,
            list(plan.pipelines),
            registry=plan.registry,
            workers=plan.config.run.workers,
            device=plan.device,
            progress=progress,
        )
        targets = run.store_array("targets", targets_array(plan.dataset, plan.task))
        return Prepared(DriftInputs(views, targets), arrays=(*views.values(), targets))

    def metrics(self, record: CellRecord) -> dict[str, float]:
        """A cell's values for trackers: ``{"isp/bi,s,ga": 0.83, "corruption/contrast@3": ...}``."""
        out = {}
        for row in record.rows.itertuples(index=False):
            label = condition_label(row.test_kind, row.test_condition, int(row.severity))
            out[label.replace(":", "/", 1)] = float(row.value)
        return out


@attrs.frozen
class DriftInputs:
    """The cells' shared inputs.

    Attributes
    ----------
    views : dict of str to ArrayRef
        Pipeline name -> ``(N, 3, H, W)`` float32 views of every item of the plan's dataset.
    targets : ArrayRef
        ``(N,)`` int64 classes or ``(N, H, W)`` masks (:func:`targets_array`).
    """

    views: dict[str, ArrayRef]
    targets: ArrayRef


def class_count(plan: DriftPlan) -> int | None:
    """The number of classes (classification) that bounds every stored class index; else None."""
    return len(plan.dataset_spec.classes) if plan.task == "classification" else None


def targets_array(dataset: RawDataset, task: str) -> np.ndarray:
    """Targets of every item of ``dataset``, in item order.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` int64 class indices (classification; from the dataset's
        ``labels`` when it has them, without reading the items) or
        ``(N, H, W)`` masks (segmentation).
    """
    if task == "classification" and dataset.labels is not None:
        return np.asarray(dataset.labels, dtype=np.int64)
    items = [np.asarray(dataset[i].target) for i in range(len(dataset))]
    if task == "classification":
        return np.asarray(items, dtype=np.int64)
    return np.stack(items)


def data_manifest(plan: DriftPlan, seed: int) -> dict[str, Any]:
    """Manifest entries of the data: ``seed``, ``dataset``, ``pipelines`` and ``test_set``.

    Parameters
    ----------
    seed : int
        The experiment's base seed (synthesis: training; audit: corruptions).
    """
    return {
        "seed": seed,
        "dataset": {
            "name": plan.dataset_spec.name,
            "items": len(plan.dataset),
            "ids_sha256": hashlib.sha256("\n".join(plan.dataset.ids).encode()).hexdigest(),
            "fingerprint": plan.fingerprint,
            "camera": attrs.asdict(plan.camera),
        },
        "pipelines": {s.name: s.fingerprint() for s in plan.pipelines},
        **({"test_set": held_out_manifest(plan.held_out)} if plan.held_out else {}),
    }


def check_cell(
    plan: DriftPlan,
    record: CellRecord,
    *,
    train_pipeline: str,
    fold: int,
    conditions: Sequence[str],
    test_index: Sequence[int] | np.ndarray,
) -> None:
    """Check a stored cell record against its rows and against what the plan says it holds.

    The record must hold ``conditions`` (labels in array order) for the
    model trained on ``train_pipeline`` in ``fold``, tested on the items
    ``test_index`` of ``plan.dataset``, with classes of the plan's dataset
    and (classification, when the dataset lists its labels) the items' true
    classes, every value equal to the task's metric recomputed from the
    per-item outcomes.

    Raises
    ------
    driftlab.verdicts.records.CellRecordError
        Anything that does not agree (see :func:`~driftlab.verdicts.records.check_record`).
    """
    index = np.asarray(test_index, dtype=np.int64)
    ids = plan.dataset.ids
    labels = plan.dataset.labels if plan.task == "classification" else None
    check_record(
        record,
        task=plan.task,
        n_classes=class_count(plan),
        metric=plan.metric,
        train_pipeline=train_pipeline,
        fold=fold,
        conditions=conditions,
        test_ids=[ids[i] for i in index],
        targets=None if labels is None else np.asarray(labels, dtype=np.int64)[index],
    )


def drift_results(
    plan: DriftPlan, records: list[CellRecord], progress: Progress
) -> tuple[pd.DataFrame, DriftVerdict]:
    """The results table in the headline metric and the drift verdict of the cell records.

    The headline metric (``[report].metric``, default the task's) and every
    interval are computed from the per-item outcomes the cells keep; cells
    without them (written by an older driftlab) give the verdict without
    intervals, with the reason.

    Returns
    -------
    results : pandas.DataFrame
        :data:`~driftlab.verdicts.evidence.CELL_COLUMNS`, values in the headline metric.
    verdict : DriftVerdict

    Raises
    ------
    ConfigError
        ``[report].metric`` is not the cells' metric and they kept no per-item outcomes.
    driftlab.verdicts.evidence.EvidenceError
        Per-item outcomes that are malformed, hold a class outside the
        dataset's, or contradict the rows.
    """
    results = pd.concat([r.rows for r in records], ignore_index=True)[list(CELL_COLUMNS)]
    rep = plan.config.report
    metric = rep.metric or plan.metric
    try:
        evidence = evidence_from_records(records, plan.task, n_classes=class_count(plan))
        missing = ""
    except EvidenceMissing as exc:
        evidence, missing = None, f"{exc}; rerun into a new directory for intervals"
    if evidence is not None:
        results = rescore(results, evidence, metric)
        if rep.bootstrap:
            progress.message(f"bootstrap: {rep.bootstrap} paired resamples of folds and items")
    elif metric != plan.metric:
        raise ConfigError(f"[report].metric = {metric!r}: {missing}")
    verdict = drift_verdict(
        results,
        evidence,
        DriftSettings(bootstrap=rep.bootstrap, seed=rep.seed),
        missing_evidence=missing,
    )
    return results, verdict


_Result = TypeVar("_Result", bound="DriftRunResult")


@attrs.frozen
class DriftRunResult:
    """What a drift experiment's ``run_*`` function produced.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    results : pandas.DataFrame
        Tidy table, one row per (train_pipeline, fold, test_kind,
        test_condition, severity, metric, value, device); ``severity`` is 0
        for ISP rows and for ``identity``; values in the headline metric.
    summary : dict
        Contents of ``summary.json``.
    cells_reused, cells_computed, cells_repaired : int
        Cells found finished on disk, computed in this call, and found
        damaged on disk (then computed again).
    """

    run_dir: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    cells_reused: int
    cells_computed: int
    cells_repaired: int = 0

    @property
    def report(self) -> Path:
        """``report.html`` of the run."""
        return self.run_dir / "report.html"

    @classmethod
    def from_run(cls: type[_Result], run: ExperimentRun) -> _Result:
        """The result of a finished :func:`~driftlab.engine.skeleton.run_experiment`."""
        return cls(
            run_dir=run.run_dir,
            results=run.outcome.tables["results"],
            summary=run.outcome.summary,
            cells_reused=run.cells_reused,
            cells_computed=run.cells_computed,
            cells_repaired=run.cells_repaired,
        )
