"""``run_audit``: a drift audit of a frozen model through the experiment engine.

See :mod:`driftlab.audit.experiment` for what a cell does and
:mod:`driftlab.engine.skeleton` for the run's steps (validation before
anything is created, resumable checked cells, executors, progress, report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from driftlab.audit.config import AuditConfig
from driftlab.audit.experiment import AUDIT
from driftlab.engine.skeleton import run_experiment
from driftlab.registry import Registry
from driftlab.verdicts.experiment import DriftRunResult

__all__ = ["AuditResult", "run_audit"]


@attrs.frozen
class AuditResult(DriftRunResult):
    """What :func:`run_audit` produced (see
    :class:`driftlab.verdicts.experiment.DriftRunResult`): ``results`` has the reference
    pipeline in ``train_pipeline`` and fold 0; ``summary`` is the shared drift summary plus
    ``audit`` (:func:`driftlab.audit.experiment.audit_facts`: reference score, lowest scores
    under ISP drift and corruptions, model and contract)."""


def run_audit(
    config: str | Path | Mapping[str, Any] | AuditConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    track: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> AuditResult:
    """Run (or resume) a drift audit of a frozen model.

    Parameters
    ----------
    config : path, dict or AuditConfig
        The audit's configuration (see :mod:`driftlab.audit.config`).
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/audit-<identity>``.
    overrides : sequence of str
        ``section.key=value`` overrides (e.g. ``run.workers=4``).
    registry : Registry, optional
        Plugins to use (default: every installed plugin); travels to the
        workers, so an architecture registered in-process works there too.
    track : sequence of str
        Trackers to enable besides ``[tracking]`` (e.g. ``["mlflow"]``).
    stream : file, optional
        Where progress is drawn (default stderr).

    Returns
    -------
    AuditResult

    Raises
    ------
    driftlab.errors.ConfigError
        Any configuration problem, a model file that cannot be read or does
        not fit, raised before anything is created.
    driftlab.errors.RunDirError
        ``out`` holds another run, or another process is running in it.
    driftlab.errors.CellError
        A cell failed (its traceback is logged); finished cells are kept.
    KeyboardInterrupt
        On SIGINT or SIGTERM; finished cells stay on disk for resumption.

    Notes
    -----
    With ``[run] workers`` above 1 the cells run in spawned processes, which
    re-import the calling script: call this under ``if __name__ ==
    "__main__":`` in a script.
    """
    run = run_experiment(
        AUDIT,
        config,
        out=out,
        overrides=overrides,
        registry=registry,
        track=track,
        stream=stream,
    )
    return AuditResult.from_run(run)
