"""``run_optimization``: frozen, learned and paper ISPs vs packed raw, on the experiment engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import pandas as pd

from driftlab.engine.skeleton import run_experiment
from driftlab.optimize.config import OptimizeConfig
from driftlab.optimize.experiment import OPTIMIZE, optimize_key
from driftlab.registry import Registry

__all__ = ["OptimizationResult", "cell_key", "run_optimization"]

cell_key = optimize_key


@attrs.frozen
class OptimizationResult:
    """What :func:`run_optimization` produced.

    Attributes
    ----------
    run_dir : Path
    results : pandas.DataFrame
        Tidy rows ``intensity, mode, fold, epoch, metric, value, device``
        (the task metric on the test split and the epoch's ``train_loss``).
    table : pandas.DataFrame
        Per (intensity, mode): pooled and final-epoch mean and std (see
        :func:`driftlab.optimize.summary.summary_table`).
    curves : pandas.DataFrame
        Per (intensity, mode, epoch): mean and std over folds.
    differences : pandas.DataFrame
        Paired per-fold differences between arms with confidence intervals
        (:func:`driftlab.optimize.summary.paired_differences`).
    trajectory : pandas.DataFrame
        Every ISP parameter element of the learning cells at every epoch
        (:func:`driftlab.optimize.summary.isp_trajectory_table`).
    isp : dict
        ``{cell key: isp.json content}`` of every ISP cell: ``initial`` and
        ``final`` parameters and, for the learning arms, ``trajectory``.
    cells_reused, cells_computed : int
    """

    run_dir: Path
    results: pd.DataFrame
    table: pd.DataFrame
    curves: pd.DataFrame
    differences: pd.DataFrame
    trajectory: pd.DataFrame
    isp: dict[str, dict[str, Any]]
    cells_reused: int
    cells_computed: int

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def run_optimization(
    config: str | Path | Mapping[str, Any] | OptimizeConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    track: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> OptimizationResult:
    """Run (or resume) an optimisation experiment.

    Parameters
    ----------
    config : path, dict or OptimizeConfig
        See :mod:`driftlab.optimize.config`.
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/optimize-<identity>``.
    overrides : sequence of str
        ``section.key=value`` overrides.
    registry : Registry, optional
        Plugins (default: every installed plugin); travels to the workers.
    track : sequence of str
        Trackers to enable besides ``[tracking]``.
    stream : file, optional
        Where progress is drawn (default stderr).

    Returns
    -------
    OptimizationResult

    Raises
    ------
    driftlab.errors.ConfigError
        Any configuration problem, raised before anything is created.
    driftlab.errors.RunDirError
        ``out`` holds another run, or another process is running in it.
    driftlab.errors.CellError
        A cell failed; finished cells are kept.
    KeyboardInterrupt
        On SIGINT or SIGTERM; finished cells stay on disk for resumption.
    """
    run = run_experiment(
        OPTIMIZE, config, out=out, overrides=overrides, registry=registry, track=track,
        stream=stream,
    )  # fmt: skip
    tables = run.outcome.tables
    return OptimizationResult(
        run_dir=run.run_dir,
        results=tables["results"],
        table=tables["table"],
        curves=tables["curves"],
        differences=tables["differences"],
        trajectory=tables["isp_trajectory"],
        isp=run.outcome.extra["isp"],
        cells_reused=run.cells_reused,
        cells_computed=run.cells_computed,
    )
