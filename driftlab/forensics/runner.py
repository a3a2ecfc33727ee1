"""Forensics runner: attacks a frozen task model through its ISP pipeline's
parameters and writes results, figures, a report and a forensic signature.

One *cell* per (attack, lambda, target set) is the unit of work and of
resumption (written atomically to ``cells/``); a run started again with the
same configuration recomputes only missing cells.

Run directory::

    RUN/config.toml, manifest.json, cells/, results.csv, figures/,
        report.md, report.html, signature.json, signature.md, signature.html
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from driftlab import __version__
from driftlab.attacks.base import AttackSettings, run_attack
from driftlab.forensics.config import ForensicsConfig, load_forensics_config
from driftlab.forensics.figures import write_figures
from driftlab.forensics.plan import ForensicsPlan, plan_forensics
from driftlab.forensics.report import write_report
from driftlab.forensics.signature import build_signature, write_signature
from driftlab.forensics.verify import reuse_signature
from driftlab.registry import Registry, get_registry
from driftlab.runs import RunDir, package_versions, write_csv_atomic

__all__ = ["RESULT_COLUMNS", "ForensicsResult", "run_forensics"]

log = logging.getLogger("driftlab.forensics")

RESULT_COLUMNS = (
    "attack",
    "lam",
    "targets",
    "similarity",
    "metric",
    "clean_metric",
    "attacked_metric",
    "l2",
    "ssim",
    "clean_loss",
    "attacked_loss",
    "values",
)


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
    cells_reused, cells_computed : int
    """

    run_dir: Path
    results: pd.DataFrame
    signature: dict[str, Any] | None
    cells_reused: int
    cells_computed: int


def _cell_key(attack: str, lam: float, targets: Sequence[str]) -> str:
    label = re.sub(r"[^A-Za-z0-9,._+-]", "_", "+".join(targets))
    digest = hashlib.sha256(f"{attack}|{lam!r}|{'|'.join(targets)}".encode()).hexdigest()[:8]
    return f"{attack}__lam{lam:g}__{label[:60]}__{digest}"


def _manifest(plan: ForensicsPlan, registry: Registry) -> dict[str, Any]:
    return {
        "kind": "forensics",
        "driftlab": __version__,
        "packages": package_versions(),
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in registry.plugins
        ],
        "model": plan.model_info,
        "data": {k: v for k, v in plan.data_info.items() if k != "ids"},
        "pipeline": plan.problem.resolved.spec.fingerprint(),
    }


def run_forensics(
    config: str | Path | Mapping[str, Any] | ForensicsConfig,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    registry: Registry | None = None,
) -> ForensicsResult:
    """Run (or resume) a forensics experiment.

    Parameters
    ----------
    config : path, dict or ForensicsConfig
        See :mod:`driftlab.forensics.config`.
    out : path, optional
        Run directory; defaults to ``[run].out`` or ``runs/forensics-<hash>``.
    overrides : sequence of str
        ``section.key=value`` overrides.
    registry : Registry, optional

    Returns
    -------
    ForensicsResult

    Raises
    ------
    driftlab.configtools.ConfigError
        Any configuration problem, raised before any attack runs.
    driftlab.runs.RunDirError
        ``out`` holds a run of a different configuration.
    """
    registry = registry or get_registry()
    cfg = load_forensics_config(config, overrides)
    plan = plan_forensics(cfg, registry)
    run = RunDir(out or cfg.section("run").get("out") or f"runs/forensics-{cfg.digest[:10]}")
    resumed = run.prepare(cfg.data, cfg.digest, _manifest(plan, registry))
    log.info("run directory %s (%s)", run.path, "resumed" if resumed else "new")
    at = cfg.section("attacks")
    problem = plan.problem
    clean = problem.evaluate()
    finished = run.finished_cells()
    frames, reused, computed = [], 0, 0
    for spec in plan.attacks:
        for lam in at["lambdas"]:
            for targets in plan.target_sets:
                key = _cell_key(spec.name, lam, targets)
                if key in finished:
                    frames.append(finished[key])
                    reused += 1
                    continue
                settings = AttackSettings(
                    steps=at["steps"],
                    lr=at["lr"],
                    lam=lam,
                    similarity=at["similarity"],
                    budget=at.get("budget"),
                    method=at["method"],
                    population=at["population"],
                    seed=at["seed"],
                )
                result = run_attack(spec, problem, settings, targets=list(targets), clean=clean)
                row = {
                    "attack": spec.name,
                    "lam": lam,
                    "targets": "+".join(targets),
                    "similarity": at["similarity"],
                    "metric": plan.metric,
                    "clean_metric": clean["metric"],
                    "attacked_metric": result.attacked["metric"],
                    "l2": result.attacked["l2"],
                    "ssim": result.attacked["ssim"],
                    "clean_loss": clean["loss"],
                    "attacked_loss": result.attacked["loss"],
                    "values": json.dumps(result.values_json(), sort_keys=True),
                }
                frame = pd.DataFrame([row], columns=list(RESULT_COLUMNS))
                write_csv_atomic(frame, run.cell_path(key))
                frames.append(pd.read_csv(run.cell_path(key)))  # same dtypes as on resume
                computed += 1
                log.info(
                    "%s: %s %.3f -> %.3f", key, plan.metric, clean["metric"], row["attacked_metric"]
                )
    results = pd.concat(frames, ignore_index=True)[list(RESULT_COLUMNS)]
    write_csv_atomic(results, run.path / "results.csv")
    figures = write_figures(problem, results, run.figures, plan.metric, at["samples"])
    sg = cfg.section("signature")
    signature = None
    if sg["enabled"]:
        sig_path = run.path / "signature.json"
        if resumed and sig_path.is_file():  # checked and re-measured, never trusted
            signature, why = reuse_signature(
                sig_path,
                plan,
                threshold=sg["threshold"],
                points=sg["points"],
                refine=sg["refine"],
                steps=sg["steps"],
            )
            if signature is None:
                log.warning("not reusing %s: %s; computing it again", sig_path, why)
        if signature is None:
            signature = build_signature(
                plan,
                clean["metric"],
                threshold=sg["threshold"],
                points=sg["points"],
                refine=sg["refine"],
                steps=sg["steps"],
                tolerance=sg["tolerance"],
                registry=registry,
            )
            write_signature(signature, run.path)
    write_report(run.path, plan, results, clean, figures, signature)
    return ForensicsResult(run.path, results, signature, reused, computed)
