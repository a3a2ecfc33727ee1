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
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch

from driftlab import __version__
from driftlab.cache import ViewCache
from driftlab.corruptions.apply import apply_corruption_batch
from driftlab.datasets.splits import Fold, dataset_folds
from driftlab.io.images import atomic_path
from driftlab.models.weights import load_weights
from driftlab.registry import Registry, get_registry
from driftlab.render import pipeline_file_name
from driftlab.runs import RunDir, package_versions, write_csv_atomic, write_json_atomic
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


class _Terminated(Exception):
    """Raised inside the run when SIGTERM arrives, so atomic writes clean up."""


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


def _render_views(
    plan: SynthesisPlan, run: RunDir, registry: Registry, progress: bool
) -> dict[str, np.ndarray]:
    cache = ViewCache(run.path / "views")
    report = cache.render(
        plan.dataset,
        list(plan.pipelines),
        camera=plan.camera,
        registry=registry,
        workers=int(plan.config.section("run")["workers"]),
        progress=progress,
    )
    log.info(
        "views: %d rendered, %d reused, %d repaired (%.1f s)",
        report.rendered,
        report.reused,
        report.repaired,
        report.seconds,
    )
    return {
        name: np.stack([cache.load(k) for k in keys]).astype(np.float32)
        for name, keys in report.keys.items()
    }


def _run_cell(
    plan: SynthesisPlan,
    train: str,
    fold: Fold,
    views: Mapping[str, np.ndarray],
    targets: np.ndarray,
    run: RunDir,
    progress: bool,
) -> pd.DataFrame:
    cfg = plan.config
    tr = cfg.section("training")
    seed = derive_seed(tr["seed"], train, fold.index)
    torch.manual_seed(seed)
    model = plan.model.build(plan.output_channels, **cfg.section("model")["options"])
    if cfg.section("model").get("weights"):
        load_weights(model, cfg.section("model")["weights"])
    train_views = views[train][fold.train]
    net = Normalized(model, *channel_stats(train_views))
    fit(
        net,
        train_views,
        targets[fold.train],
        plan.task,
        TrainConfig(
            epochs=tr["epochs"],
            batch_size=tr["batch_size"],
            lr=tr["lr"],
            seed=seed,
            device=plan.device,
            augment=tr["augment"],
            progress=progress,
        ),
        description=f"{train} fold {fold.index}",
    )
    net.cpu()
    with atomic_path(run.models / f"{_cell_key(train, fold.index)}.pt") as tmp:
        torch.save(net.state_dict(), tmp)
    test_targets = targets[fold.test]
    rows: list[tuple] = []
    for test in plan.test:
        value = evaluate(net, views[test.name][fold.test], test_targets, plan.task)
        rows.append((train, fold.index, "isp", test.name, 0, plan.metric, value))
    base_views = views[train][fold.test]
    ids = [plan.dataset.ids[i] for i in fold.test]
    for cond in plan.conditions:
        seeds = [derive_seed(tr["seed"], cond.name, cond.severity, i) for i in ids]
        corrupted = apply_corruption_batch(
            base_views, cond.corruption, max(cond.severity, 1), seeds, clip=True
        )
        value = evaluate(net, corrupted, test_targets, plan.task)
        rows.append((train, fold.index, "corruption", cond.name, cond.severity, plan.metric, value))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _install_sigterm() -> Callable[[], None]:
    def handler(signum, frame):  # pragma: no cover - exercised through a subprocess
        raise _Terminated()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


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
    restore = _install_sigterm()
    started = time.perf_counter()
    try:
        views = _render_views(plan, run, registry, progress)
        targets = _targets(plan)
        folds = dataset_folds(
            plan.dataset,
            n_splits=cfg.section("training")["folds"],
            seed=cfg.section("training")["seed"],
        )
        finished = run.finished_cells()
        cells: list[pd.DataFrame] = []
        reused = computed = 0
        for train in plan.train:
            for fold in folds:
                key = _cell_key(train.name, fold.index)
                if key in finished:
                    cells.append(finished[key])
                    reused += 1
                    continue
                frame = _run_cell(plan, train.name, fold, views, targets, run, progress)
                write_csv_atomic(frame, run.cell_path(key))
                cells.append(pd.read_csv(run.cell_path(key)))
                computed += 1
                log.info(
                    "cell %s done (%d/%d)", key, reused + computed, len(plan.train) * len(folds)
                )
    except _Terminated:
        raise KeyboardInterrupt("terminated by SIGTERM; rerun the same command to resume") from None
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
