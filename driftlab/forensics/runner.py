"""``run_forensics``: attacks on a frozen task model and its signature, through the engine.

Run directory::

    RUN/config.toml, manifest.json, cells/, results.csv, summary.json, figures/,
        report.md, report.html, signature.json, signature.md, signature.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import pandas as pd

from driftlab.engine.skeleton import run_experiment
from driftlab.forensics.cells import RESULT_COLUMNS
from driftlab.forensics.config import ForensicsConfig
from driftlab.forensics.experiment import FORENSICS
from driftlab.registry import Registry

__all__ = ["RESULT_COLUMNS", "ForensicsResult", "run_forensics"]


@attrs.frozen
class ForensicsResult:
    """What :func:`run_forensics` produced.

    Attributes
    ----------
    run_dir : Path
    results : pandas.DataFrame
        One row per (attack, lambda, target set); columns :data:`RESULT_COLUMNS`
        (``l2``: RMS difference to the default views; ``ssim``: mean SSIM to
        them; ``values``: JSON of the final parameter values).
    signature : dict or None
        Contents of ``signature.json`` (None when disabled).
    summary : dict
        Contents of ``summary.json``.
    cells_reused, cells_computed : int
    """

    run_dir: Path
    results: pd.DataFrame
    signature: dict[str, Any] | None
    summary: dict[str, Any]
    cells_reused: int
    cells_computed: int

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


def run_forensics(
    config: str | Path | Mapping[str, Any] | ForensicsConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
    track: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> ForensicsResult:
    """Run (or resume) a forensics experiment.

    Parameters
    ----------
    config : path, dict or ForensicsConfig
        See :mod:`driftlab.forensics.config`.
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/forensics-<identity>``.
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
    ForensicsResult

    Raises
    ------
    driftlab.errors.ConfigError
        Any configuration problem, raised before anything is created.
    driftlab.errors.RunDirError
        ``out`` holds another run, or another process is running in it.
    driftlab.errors.CellError
        A cell failed; finished cells are kept.
    """
    run = run_experiment(
        FORENSICS, config, out=out, overrides=overrides, registry=registry, track=track,
        stream=stream,
    )  # fmt: skip
    return ForensicsResult(
        run_dir=run.run_dir,
        results=run.outcome.tables["results"],
        signature=run.outcome.extra["signature"],
        summary=run.outcome.summary,
        cells_reused=run.cells_reused,
        cells_computed=run.cells_computed,
    )
