"""Drift synthesis: train under one ISP, test under all others and under corruptions.

For each train pipeline and fold one task model is trained on that
pipeline's views of the fold's training items, then evaluated on every test
pipeline's views of the fold's test items (ISP drift) and on every
corruption x severity applied to its own pipeline's test views (common
corruptions), following Oala et al., TMLR 2023, Sec. 5.

A (train pipeline, fold) *cell* is the unit of work and of resumption: its
rows are written atomically to ``cells/`` when it finishes, so a run killed
at any point and started again with the same command recomputes nothing that
was complete and ends with the same ``results.csv``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch

from driftlab import __version__
from driftlab.cache import ViewCache
from driftlab.corruptions.apply import apply_corruption_batch
from driftlab.datasets.splits import dataset_folds
from driftlab.io.images import atomic_path
from driftlab.models.weights import load_weights
from driftlab.registry import Registry, get_registry
from driftlab.render import pipeline_file_name
from driftlab.runs import RunDir, package_versions, write_csv_atomic, write_json_atomic
from driftlab.runs.cells import execute_cells, sigterm_as_interrupt
from driftlab.synthesis.config import SynthesisConfig, load_synthesis_config
from driftlab.synthesis.plan import SynthesisPlan, plan_synthesis
from driftlab.synthesis.report import write_figures_and_report
from driftlab.synthesis.summary import RESULT_COLUMNS, summarize
from driftlab.train import Normalized, TrainConfig, channel_stats, evaluate, fit

__all__ = ["SynthesisResult", "derive_seed", "run_synthesis"]

log = logging.getLogger("driftlab.synthesis")


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any labels (stable across runs, platforms and orders)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@attrs.frozen
class SynthesisResult:
    """What :func:`run_synthesis` produced.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    results : pandas.DataFrame
        Tidy table, one row per (train_pipeline, fold, test_kind,
        test_condition, severity, metric, value); ``severity`` is 0 for ISP
        rows and for ``identity``.
    summary : dict
        Contents of ``summary.json``.
    cells_reused, cells_computed : int
        Cells found finished on disk, and cells computed in this call.
    """

    run_dir: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    cells_reused: int
    cells_computed: int

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def _cell_key(train: str, fold: int) -> str:
    return f"{pipeline_file_name(train)}__fold{fold}"


def _manifest(plan: SynthesisPlan, registry: Registry) -> dict[str, Any]:
    train_cfg = plan.config.section("training")
    return {
        "kind": "synthesis",
        "driftlab": __version__,
        "packages": package_versions(),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in registry.plugins
        ],
        "seed": train_cfg["seed"],
        "device": plan.device,
        "dataset": {
            "name": plan.dataset_spec.name,
            "items": len(plan.dataset),
            "ids_sha256": hashlib.sha256("\n".join(plan.dataset.ids).encode()).hexdigest(),
            "camera": attrs.asdict(plan.camera),
        },
        "pipelines": {s.name: s.fingerprint() for s in plan.pipelines},
    }


def _targets(plan: SynthesisPlan) -> np.ndarray:
    if plan.task == "classification" and plan.dataset.labels is not None:
        return np.asarray(plan.dataset.labels, dtype=np.int64)
    items = [plan.dataset[i].target for i in range(len(plan.dataset))]
    return np.stack([np.asarray(t) for t in items])


def _view_arrays(
    plan: SynthesisPlan, run: RunDir, registry: Registry, progress: bool
) -> dict[str, Path]:
    """Render every view once (content-addressed cache), then stack each pipeline's views
    into one ``.npy`` file that cell workers memory-map."""
    cache = ViewCache(run.path / "views")
    report = cache.render(
        plan.dataset,
        list(plan.pipelines),
        camera=plan.camera,
        registry=registry,
        workers=int(plan.config.section("run")["workers"]),
        progress=progress,
        device=plan.device,
    )
    log.info(
        "views: %d rendered, %d reused, %d repaired (%.1f s)",
        report.rendered,
        report.reused,
        report.repaired,
        report.seconds,
    )
    arrays = run.path / "arrays"
    arrays.mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    for name, keys in report.keys.items():
        digest = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        path = arrays / f"{pipeline_file_name(name)}-{digest}.npy"
        if not path.is_file():
            stack = np.stack([cache.load(k) for k in keys]).astype(np.float32)
            with atomic_path(path) as tmp:
                np.save(tmp, stack)
        paths[name] = path
    return paths


@attrs.frozen
class CellJob:
    """Everything one (train pipeline, fold) cell needs, as plain picklable data."""

    train: str
    fold: int
    train_index: np.ndarray = attrs.field(eq=False)
    test_index: np.ndarray = attrs.field(eq=False)
    test_ids: tuple[str, ...]
    views: dict[str, str]
    targets: str
    model_name: str
    model_options: dict[str, Any]
    weights: str | None
    task: str
    metric: str
    output_channels: int
    tests: tuple[str, ...]
    conditions: tuple[tuple[str, int], ...]
    training: dict[str, Any]
    device: str
    model_path: str
    progress: bool


def _load_view(paths: Mapping[str, str], name: str, index: np.ndarray) -> np.ndarray:
    return np.asarray(np.load(paths[name], mmap_mode="r")[index], dtype=np.float32)


def _run_cell(job: CellJob) -> pd.DataFrame:
    """Train one task model and evaluate it on every ISP and corruption condition."""
    from driftlab.models.loading import get_task_model

    tr = job.training
    seed = derive_seed(tr["seed"], job.train, job.fold)
    torch.manual_seed(seed)
    model = get_task_model(job.model_name).build(job.output_channels, **job.model_options)
    if job.weights:
        load_weights(model, job.weights)
    targets = np.load(job.targets)
    train_views = _load_view(job.views, job.train, job.train_index)
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
            device=job.device,
            augment=tr["augment"],
            progress=job.progress,
        ),
        description=f"{job.train} fold {job.fold}",
    )
    net.cpu()
    with atomic_path(job.model_path) as tmp:
        torch.save(net.state_dict(), tmp)
    test_targets = targets[job.test_index]
    rows: list[tuple] = []
    for test in job.tests:
        views = _load_view(job.views, test, job.test_index)
        value = evaluate(net, views, test_targets, job.task, device=job.device)
        rows.append((job.train, job.fold, "isp", test, 0, job.metric, value))
    base_views = _load_view(job.views, job.train, job.test_index)
    for name, severity in job.conditions:
        seeds = [derive_seed(tr["seed"], name, severity, i) for i in job.test_ids]
        corrupted = apply_corruption_batch(base_views, name, max(severity, 1), seeds, clip=True)
        value = evaluate(net, corrupted, test_targets, job.task, device=job.device)
        rows.append((job.train, job.fold, "corruption", name, severity, job.metric, value))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def run_synthesis(
    config: str | Path | Mapping[str, Any] | SynthesisConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    progress: bool | None = None,
) -> SynthesisResult:
    """Run (or resume) a drift-synthesis experiment.

    Parameters
    ----------
    config : path, dict or SynthesisConfig
        The run's configuration (see :mod:`driftlab.synthesis.config`).
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/synthesis-<hash>``.
    overrides : sequence of str
        ``section.key=value`` overrides applied to the configuration.
    registry : Registry, optional
        Installed plugins (default: :func:`driftlab.registry.get_registry`).
    progress : bool, optional
        Progress bars; defaults to ``[run].progress``.

    Returns
    -------
    SynthesisResult

    Raises
    ------
    driftlab.configtools.ConfigError
        Any configuration problem, raised before any training.
    driftlab.runs.RunDirError
        ``out`` holds a run of a different configuration.
    KeyboardInterrupt
        On SIGINT or SIGTERM; finished cells stay on disk for resumption.
    """
    registry = registry or get_registry()
    cfg = load_synthesis_config(config, overrides)
    plan = plan_synthesis(cfg, registry)
    progress = cfg.section("run")["progress"] if progress is None else progress
    run_dir = Path(out or cfg.section("run").get("out") or f"runs/synthesis-{cfg.digest[:10]}")
    run = RunDir(run_dir)
    resumed = run.prepare(cfg.data, cfg.digest, _manifest(plan, registry))
    log.info("run directory %s (%s)", run.path, "resumed" if resumed else "new")
    restore = sigterm_as_interrupt()
    started = time.perf_counter()
    try:
        views = {k: str(v) for k, v in _view_arrays(plan, run, registry, progress).items()}
        targets_path = run.path / "arrays" / "targets.npy"
        with atomic_path(targets_path) as tmp:
            np.save(tmp, _targets(plan))
        tr = cfg.section("training")
        folds = dataset_folds(plan.dataset, n_splits=tr["folds"], seed=tr["seed"])
        finished = run.finished_cells()
        ids = plan.dataset.ids
        jobs: list[CellJob] = []
        for train in plan.train:
            for fold in folds:
                key = _cell_key(train.name, fold.index)
                if key in finished:
                    continue
                jobs.append(
                    CellJob(
                        train=train.name,
                        fold=fold.index,
                        train_index=fold.train,
                        test_index=fold.test,
                        test_ids=tuple(ids[i] for i in fold.test),
                        views=views,
                        targets=str(targets_path),
                        model_name=plan.model.name,
                        model_options=dict(cfg.section("model")["options"]),
                        weights=cfg.section("model").get("weights") or None,
                        task=plan.task,
                        metric=plan.metric,
                        output_channels=plan.output_channels,
                        tests=tuple(t.name for t in plan.test),
                        conditions=tuple((c.name, c.severity) for c in plan.conditions),
                        training=dict(tr),
                        device=plan.device,
                        model_path=str(run.models / f"{key}.pt"),
                        progress=progress,
                    )
                )
        total = len(plan.train) * len(folds)
        reused = total - len(jobs)
        workers = int(cfg.section("run")["workers"])
        computed = 0
        if reused:
            log.info(
                "resuming: %d of %d cells already finished, %d to compute", reused, total, len(jobs)
            )
        for job, frame in execute_cells(_run_cell, jobs, workers if plan.device == "cpu" else 1):
            key = _cell_key(job.train, job.fold)
            write_csv_atomic(frame, run.cell_path(key))
            computed += 1
            log.info("cell %s done (%d/%d)", key, reused + computed, total)
        finished = run.finished_cells()
        cells = [finished[_cell_key(t.name, f.index)] for t in plan.train for f in folds]
    finally:
        restore()
    log.info(
        "cells: %d reused, %d computed (%.1f s)", reused, computed, time.perf_counter() - started
    )
    results = pd.concat(cells, ignore_index=True)[list(RESULT_COLUMNS)]
    write_csv_atomic(results, run.path / "results.csv")
    summary = summarize(results)
    summary["cells"] = {"reused": reused, "computed": computed, "total": reused + computed}
    write_json_atomic(summary, run.path / "summary.json")
    write_figures_and_report(run.path, results, summary, plan)
    return SynthesisResult(run.path, results, summary, reused, computed)
