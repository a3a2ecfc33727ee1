"""Re-render the tables, figures and report of a finished synthesis run."""

from __future__ import annotations

from pathlib import Path

from driftlab.engine.skeleton import rebuild_report as _rebuild
from driftlab.registry import Registry
from driftlab.synthesis.experiment import SYNTHESIS

__all__ = ["rebuild_report"]


def rebuild_report(run_dir: str | Path, registry: Registry | None = None) -> dict[str, Path]:
    """Recompute ``results.csv``, ``summary.json``, figures and report from the checked cells.

    Parameters
    ----------
    run_dir : str or Path
        A synthesis run directory.
    registry : Registry, optional
        Plugins (default: every installed plugin).

    Returns
    -------
    dict of str to Path
        Written files.

    Raises
    ------
    FileNotFoundError, driftlab.errors.ConfigError, driftlab.errors.RunDirError
        See :func:`driftlab.engine.skeleton.rebuild_report`.
    """
    if registry is None:
        from driftlab.registry import get_registry

        registry = get_registry()
    return _rebuild(SYNTHESIS, run_dir, registry)
