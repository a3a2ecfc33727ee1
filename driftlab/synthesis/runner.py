"""``run_synthesis``: drift synthesis through the experiment engine.

See :mod:`driftlab.synthesis.experiment` for what a cell does and
:mod:`driftlab.engine.skeleton` for the run's steps (validation before
anything is created, resumable checked cells, executors, progress, report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from driftlab.engine.skeleton import run_experiment
from driftlab.registry import Registry
from driftlab.synthesis.config import SynthesisConfig
from driftlab.synthesis.experiment import SYNTHESIS
from driftlab.verdicts.experiment import DriftRunResult

__all__ = ["SynthesisResult", "run_synthesis"]


@attrs.frozen
class SynthesisResult(DriftRunResult):
    """What :func:`run_synthesis` produced: ``run_dir``, ``results``, ``summary`` (of
    ``summary.json``), ``cells_reused``, ``cells_computed``, ``cells_repaired`` and ``report``
    (see :class:`driftlab.verdicts.experiment.DriftRunResult`)."""


def run_synthesis(
    config: str | Path | Mapping[str, Any] | SynthesisConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    track: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> SynthesisResult:
    """Run (or resume) a drift-synthesis experiment.

    Parameters
    ----------
    config : path, dict or SynthesisConfig
        The run's configuration (see :mod:`driftlab.synthesis.config`).
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/synthesis-<identity>``.
    overrides : sequence of str
        ``section.key=value`` overrides (e.g. ``run.workers=4``,
        ``executor.kind=ray``, ``run.device=cuda``).
    registry : Registry, optional
        Plugins to use (default: every installed plugin); travels to the workers.
    track : sequence of str
        Trackers to enable besides ``[tracking]`` (e.g. ``["mlflow"]``).
    stream : file, optional
        Where progress is drawn (default stderr).

    Returns
    -------
    SynthesisResult

    Raises
    ------
    driftlab.errors.ConfigError
        Any configuration problem, raised before anything is created.
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
    "__main__":`` in a script (see ``examples/scripted_audit.py``).
    """
    run = run_experiment(
        SYNTHESIS,
        config,
        out=out,
        overrides=overrides,
        registry=registry,
        track=track,
        stream=stream,
    )
    return SynthesisResult.from_run(run)
