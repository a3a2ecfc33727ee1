"""Re-render the figures and report of a finished synthesis run from its tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from driftlab.runs import write_json_atomic
from driftlab.synthesis.config import load_synthesis_config
from driftlab.synthesis.plan import plan_synthesis
from driftlab.synthesis.report import write_figures_and_report
from driftlab.synthesis.summary import summarize

__all__ = ["rebuild_report"]


def rebuild_report(run_dir: str | Path) -> dict[str, Path]:
    """Recompute ``summary.json``, figures and report from ``results.csv`` and ``config.toml``.

    Parameters
    ----------
    run_dir : str or Path
        A synthesis run directory.

    Returns
    -------
    dict of str to Path
        Written files.

    Raises
    ------
    FileNotFoundError
        If ``results.csv`` or ``config.toml`` is missing (the run has not finished).
    driftlab.configtools.ConfigError
        If the stored configuration no longer resolves (e.g. a plugin was removed).
    """
    run_dir = Path(run_dir)
    for name in ("results.csv", "config.toml"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name}: missing; is {run_dir} a finished synthesis run directory?"
            )
    results = pd.read_csv(run_dir / "results.csv")
    plan = plan_synthesis(load_synthesis_config(run_dir / "config.toml"))
    summary = summarize(results)
    old = run_dir / "summary.json"
    if old.is_file():
        summary["cells"] = json.loads(old.read_text()).get("cells")
    write_json_atomic(summary, old)
    written = write_figures_and_report(run_dir, results, summary, plan)
    return {"summary": old, **written}
