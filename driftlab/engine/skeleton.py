"""The experiment skeleton: plan -> cells -> executor -> cell records -> summary -> report.

Synthesis, forensics, optimisation and audit are four *fillings* of this one
skeleton (:class:`Experiment`); none imports another. :func:`run_experiment`
does, in order:

1. **config**: load and validate the configuration (typed sections);
2. **plan**: the experiment resolves every name against the registry, opens
   the data and checks weights, folds and devices -- all before anything is
   created on disk (a bad config leaves no run directory behind);
3. **run directory**: lock it (a second concurrent run into the same folder
   fails at once), refuse another identity (naming the differing settings),
   record config and manifest;
4. **prepare**: the experiment writes its shared inputs (view stacks,
   mosaics) as checksummed arrays, with progress;
5. **cells**: finished cells are checked (checksums, schema) and reused; bad
   ones are reported and recomputed; the rest run on the executor, each
   result written by the driver as it arrives (and sent to trackers);
6. **summary and report**: the experiment turns the cell records into
   tables, ``summary.json``, figures and one report (Markdown + HTML).

SIGTERM is turned into KeyboardInterrupt so that a terminated run leaves only
complete files; rerunning the same command resumes it.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import attrs
import pandas as pd

from driftlab import __version__
from driftlab.atomic import write_json_atomic
from driftlab.engine.cell import ArrayRef, Cell, CellFailure, isolated_state
from driftlab.engine.config import ExperimentConfig, identity_differences, identity_digest
from driftlab.engine.executors import make_executor, shipped_by_value
from driftlab.engine.progress import Progress
from driftlab.engine.report import Report, write_report
from driftlab.engine.rundir import CellRecord, RunDir, write_csv_atomic
from driftlab.errors import CellError, ConfigError, RunDirError
from driftlab.registry import Registry

__all__ = [
    "Experiment",
    "ExperimentRun",
    "Outcome",
    "Prepared",
    "package_versions",
    "rebuild_report",
    "run_experiment",
    "sigterm_as_interrupt",
]

log = logging.getLogger("driftlab.engine")

PACKAGES = (
    "driftlab",
    "numpy",
    "scipy",
    "scikit-image",
    "torch",
    "colour-demosaicing",
    "pandas",
    "imagecorruptions-imaug",
    "segmentation-models-pytorch",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    import importlib.metadata as metadata
    import platform

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@attrs.frozen
class Prepared:
    """Shared inputs an experiment wrote before its cells.

    Attributes
    ----------
    inputs : object
        Whatever the experiment's :meth:`Experiment.cells` needs.
    arrays : tuple of ArrayRef
        The shared arrays (an executor may ship them to remote workers).
    """

    inputs: Any
    arrays: tuple[ArrayRef, ...] = ()


@attrs.frozen
class Outcome:
    """What an experiment's summary step produced.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        Written as ``NAME.csv`` (``results`` first).
    summary : dict
        Written as ``summary.json`` (JSON without NaN).
    report : Report
        Rendered to ``report.md`` and ``report.html``.
    extra : dict
        Anything the experiment's result object needs (not written here).
    """

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    report: Report
    extra: dict[str, Any] = attrs.field(factory=dict)


class Experiment(Protocol):
    """One filling of the skeleton (see module docstring)."""

    kind: str
    config_class: type[ExperimentConfig]
    columns: dict[str, str]

    def plan(self, config: ExperimentConfig, registry: Registry) -> Any:
        """Resolve and check everything; raise ConfigError; create nothing on disk."""
        ...  # pragma: no cover - protocol

    def identity(self, plan: Any) -> dict[str, Any]:
        """Identity entries the config alone cannot give (data and pipeline fingerprints)."""
        ...  # pragma: no cover - protocol

    def manifest(self, plan: Any) -> dict[str, Any]:
        """Extra manifest fields (dataset, pipelines, seeds, model ...)."""
        ...  # pragma: no cover - protocol

    def prepare(self, plan: Any, run: RunDir, progress: Progress) -> Prepared:
        """Write the shared inputs of the cells."""
        ...  # pragma: no cover - protocol

    def keys(self, plan: Any) -> list[str]:
        """The key of every cell of the run, in configuration order."""
        ...  # pragma: no cover - protocol

    def cells(self, plan: Any, prepared: Prepared, run: RunDir) -> list[Cell]:
        """Every cell of the run, in the order of :meth:`keys`."""
        ...  # pragma: no cover - protocol

    # Optional: ``check(plan, record) -> None`` raises (any exception, its message the
    # reason) when a stored cell's content contradicts the plan (labels out of range,
    # a summary row that its per-item evidence does not give ...). Reused cells failing
    # it are computed again; ``driftlab report`` refuses them.

    def metrics(self, record: CellRecord) -> dict[str, float]:
        """Numbers of one cell for trackers."""
        ...  # pragma: no cover - protocol

    def summarize(
        self, plan: Any, run: RunDir, records: list[CellRecord], progress: Progress
    ) -> Outcome:
        """Tables, summary and report from every cell's record."""
        ...  # pragma: no cover - protocol


@attrs.frozen
class ExperimentRun:
    """What :func:`run_experiment` produced."""

    run_dir: Path
    config: ExperimentConfig
    plan: Any
    outcome: Outcome
    records: list[CellRecord]
    cells_reused: int
    cells_computed: int
    cells_repaired: int
    resumed: bool


def sigterm_as_interrupt() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt so atomic writes clean up; return the undo.

    Does nothing (and returns a no-op) outside the main thread.
    """

    def handler(signum: int, frame: Any) -> None:  # pragma: no cover - needs an outside signal
        raise KeyboardInterrupt("terminated by SIGTERM; rerun the same command to resume")

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


def executor_device(request: str, resolved: str) -> str:
    """The device handed to the executor: ``"cuda"`` (every visible GPU, cells in turn) when
    the run asked for ``"auto"`` or ``"cuda"`` and got a GPU, else the resolved device
    (``"cpu"`` or the one ``"cuda:N"`` the run named)."""
    if resolved.startswith("cuda") and str(request).strip().lower() in ("auto", "cuda"):
        return "cuda"
    return resolved


def _trackers(config: ExperimentConfig, registry: Registry, run_dir: Path, names: Sequence[str]):
    tracking = config.sections.get("tracking")
    wanted = list(dict.fromkeys([*(tracking.trackers if tracking else []), *names]))
    if tracking is not None and tracking.mlflow_uri and "mlflow" not in wanted:
        wanted.append("mlflow")
    out = []
    for name in wanted:
        spec = registry.get("trackers", name)
        out.append((name, spec.create(tracking, run_dir)))
    return out


def _check_trackers(config: ExperimentConfig, registry: Registry, names: Sequence[str]) -> None:
    from driftlab.errors import require_extra
    from driftlab.registry import RegistryError

    tracking = config.sections.get("tracking")
    wanted = [*(tracking.trackers if tracking else []), *names]
    if tracking is not None and tracking.mlflow_uri:
        wanted.append("mlflow")
    for name in wanted:
        try:
            spec = registry.get("trackers", name)
        except RegistryError as exc:
            raise ConfigError(f"[tracking].trackers: {exc}") from None
        if spec.extra == "mlflow":
            require_extra("mlflow", "mlflow", f"tracker {name!r}")


def _call_trackers(trackers, method: str, *args: Any) -> None:
    for name, tracker in list(trackers):
        try:
            getattr(tracker, method)(*args)
        except Exception as exc:  # a tracker must never cost a run its results
            log.warning("tracker %s failed in %s (%s: %s); disabled", name, method,
                        type(exc).__name__, exc)  # fmt: skip
            trackers.remove((name, tracker))


def run_experiment(
    experiment: Experiment,
    config: str | Path | Mapping[str, Any] | ExperimentConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    track: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> ExperimentRun:
    """Run (or resume) ``experiment`` (see module docstring).

    Parameters
    ----------
    experiment : Experiment
    config : path, dict or ExperimentConfig
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/<kind>-<identity>``.
    overrides : sequence of str
        ``section.key=value`` overrides.
    registry : Registry, optional
        The plugins to use (default: the process-wide registry). It travels
        with the cells to every worker, so plugins registered in-process work
        on every executor.
    track : sequence of str
        Extra tracker names (``--track``).
    stream : file, optional
        Where progress is drawn (default stderr).

    Raises
    ------
    ConfigError
        Any configuration problem, before anything is created.
    RunDirError
        The run directory holds another run, is locked, or is unusable.
    CellError
        A cell failed; finished cells are kept for resumption.
    KeyboardInterrupt
        SIGINT or SIGTERM; finished cells are kept for resumption.
    """
    from driftlab.engine.scriptguard import check_not_reimported

    check_not_reimported(experiment.kind)
    if registry is None:
        from driftlab.registry import get_registry

        registry = get_registry()
    with isolated_state(threads=None):  # planning builds models: keep the caller's RNG
        return _run_experiment(experiment, config, out, overrides, registry, track, stream)


def _run_experiment(experiment, config, out, overrides, registry, track, stream) -> ExperimentRun:
    from driftlab.engine.scriptguard import check_script_guard

    cfg = experiment.config_class.load(config, overrides)
    run_section = cfg.run
    executor_section = cfg.sections["executor"]
    check_script_guard(run_section.workers, executor_section.kind, experiment.kind)
    plan = experiment.plan(cfg, registry)
    _check_trackers(cfg, registry, track)
    device = plan.device
    ray_on_cuda = executor_section.kind == "ray" and device.startswith("cuda")
    if ray_on_cuda and not executor_section.num_gpus:
        raise ConfigError(
            "[executor].num_gpus: Ray cells on CUDA need num_gpus > 0 (e.g. 0.5 to share a GPU)"
        )
    identity = {**cfg.identity(), **experiment.identity(plan)}
    digest = identity_digest(identity)
    folder = out or run_section.out or f"runs/{experiment.kind}-{digest[:10]}"
    run = RunDir(folder)
    executor = make_executor(
        executor_section.kind,
        workers=run_section.workers,
        device=executor_device(run_section.device, device),
        workers_per_gpu=executor_section.workers_per_gpu,
        address=executor_section.address,
        num_cpus=executor_section.num_cpus,
        num_gpus=executor_section.num_gpus,
        ship_arrays=executor_section.ship_arrays,
    )
    manifest = {
        "driftlab": __version__,
        "packages": package_versions(),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in registry.plugins
        ],
        "executor": executor.name,
        "device": device,
        **experiment.manifest(plan),
    }
    quiet = not run_section.progress
    restore = sigterm_as_interrupt()
    try:
        with run.lock():
            resumed = run.prepare(experiment.kind, identity, digest, manifest, cfg.data)
            log.info("run directory %s (%s)", run.path, "resumed" if resumed else "new")
            trackers = _trackers(cfg, registry, run.path, track)
            from driftlab.tracking import RunInfo

            _call_trackers(
                trackers, "start", RunInfo(experiment.kind, run.path, cfg.data, digest, resumed)
            )
            try:
                result = _run_cells(
                    experiment, plan, run, registry, executor, trackers, quiet, stream
                )
            except BaseException as exc:
                _call_trackers(trackers, "fail", f"{type(exc).__name__}: {exc}")
                raise
            records, reused, computed, repaired, outcome, files = result
            _call_trackers(trackers, "finish", outcome.summary, files)
    finally:
        restore()
    return ExperimentRun(
        run_dir=run.path,
        config=cfg,
        plan=plan,
        outcome=outcome,
        records=records,
        cells_reused=reused,
        cells_computed=computed,
        cells_repaired=repaired,
        resumed=resumed,
    )


def _write_outcome(run: RunDir, outcome: Outcome, cells: dict[str, int]) -> tuple[Outcome, dict]:
    files: dict[str, Path] = {}
    for name, table in outcome.tables.items():
        files[name] = write_csv_atomic(table, run.path / f"{name}.csv")
    summary = {**outcome.summary, "cells": cells}
    files["summary"] = write_json_atomic(summary, run.path / "summary.json")
    files.update(write_report(outcome.report, run.path))
    return attrs.evolve(outcome, summary=summary), files


def rebuild_report(
    experiment: Experiment, run_dir: str | Path, registry: Registry
) -> dict[str, Path]:
    """Recompute tables, ``summary.json``, figures and report of a finished run from its cells.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` has no ``config.toml`` (not a run directory).
    ConfigError
        The stored configuration no longer resolves (e.g. a plugin was removed).
    RunDirError
        The configuration, data, pipelines or files it names no longer give
        the run's recorded identity (each differing setting is named); a
        cell is missing or fails its checks (rerun the run command to
        compute it); or another process holds the directory.
    """
    import json

    run = RunDir(run_dir)
    config_path = run.path / "config.toml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; is {run.path} a driftlab run directory?")
    cfg = experiment.config_class.load(config_path)
    plan = experiment.plan(cfg, registry)
    keys = experiment.keys(plan)
    identity = {**cfg.identity(), **experiment.identity(plan)}
    with run.lock():
        recorded = run.read_manifest()
        if recorded.get("identity_sha256") != identity_digest(identity):
            lines = identity_differences(recorded.get("identity") or {}, identity)
            detail = "; ".join(lines) if lines else "(recorded identity unreadable)"
            raise RunDirError(
                f"{run.path}: its results no longer match what the configuration gives "
                f"today: {detail}. Rerun the {experiment.kind} command into another --out"
            )
        records = []
        for key in keys:
            try:
                record = run.read_cell(key, experiment.columns)
            except Exception as exc:
                raise RunDirError(
                    f"{run.path}: cell {key}: {exc}; rerun the {experiment.kind} command to "
                    "compute it"
                ) from None
            reason = _content_problem(experiment, plan, record)
            if reason is not None:
                raise RunDirError(
                    f"{run.path}: cell {key}: {reason}; rerun the {experiment.kind} command to "
                    "compute it again"
                )
            records.append(attrs.evolve(record, reused=True))
        with Progress(experiment.kind, quiet=True) as progress:
            outcome = experiment.summarize(plan, run, records, progress)
        try:
            cells = json.loads((run.path / "summary.json").read_text()).get("cells")
        except (OSError, ValueError, AttributeError):
            cells = None
        _, files = _write_outcome(run, outcome, cells or {"total": len(keys)})
    return files


def _content_problem(experiment: Experiment, plan: Any, record: CellRecord) -> str | None:
    """Why a checksummed cell's content is impossible for ``plan`` (None: it is fine)."""
    check = getattr(experiment, "check", None)
    if check is None:
        return None
    try:
        check(plan, record)
    except Exception as exc:  # any failure of the check means "do not trust this cell"
        return f"content check failed ({exc})"
    return None


def _run_cells(experiment, plan, run, registry, executor, trackers, quiet, stream):
    with (
        Progress(experiment.kind, quiet=quiet, stream=stream) as progress,
        shipped_by_value(registry.in_process_modules()),  # before any worker pool starts
    ):
        started = time.perf_counter()
        prepared = experiment.prepare(plan, run, progress)
        cells = experiment.cells(plan, prepared, run)
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys) or keys != experiment.keys(plan):  # pragma: no cover
            raise RuntimeError(f"{experiment.kind}: cell keys are not unique or not in order")
        good, bad = run.scan_cells(keys, experiment.columns)
        for key in list(good):
            reason = _content_problem(experiment, plan, good[key])
            if reason is not None:
                bad[key] = reason
                del good[key]
        for key, reason in bad.items():
            log.warning("cell %s: %s; computing it again", key, reason)
            run.discard_cell(key)
        todo = [c for c in cells if c.key not in good]
        progress.begin_cells(len(cells), len(good), {c.key: c.label for c in cells})
        failures: list[CellFailure] = []
        computed = 0
        for result in executor.run(todo, progress.event, prepared.arrays):
            if isinstance(result, CellFailure):
                failures.append(result)
                progress.cell_finished(result.key, False, 0.0)
                log.error("cell %s failed: %s\n%s", result.key, result.message, result.traceback)
                continue
            run.write_cell(result, experiment.columns)
            computed += 1
            progress.cell_finished(result.key, True, result.seconds, result.device)
            if trackers:
                record = run.read_cell(result.key, experiment.columns)
                _call_trackers(trackers, "log_cell", result.key, experiment.metrics(record))
        if failures:
            first = failures[0]
            more = f" ({len(failures) - 1} more cell(s) failed)" if len(failures) > 1 else ""
            raise CellError(first.key, first.message + more, first.traceback)
        log.info(
            "cells: %d reused, %d computed (%.1f s)",
            len(good), computed, time.perf_counter() - started,
        )  # fmt: skip
        records = []
        for key in keys:
            try:
                record = run.read_cell(key, experiment.columns)
                records.append(attrs.evolve(record, reused=key in good))
            except Exception as exc:  # changed while we ran: refuse rather than guess
                raise RunDirError(
                    f"{run.path}: cell {key} changed during the run ({exc})"
                ) from None
        outcome = experiment.summarize(plan, run, records, progress)
    outcome, files = _write_outcome(
        run,
        outcome,
        {"reused": len(good), "computed": computed, "repaired": len(bad), "total": len(cells)},
    )
    return records, len(good), computed, len(bad), outcome, files
