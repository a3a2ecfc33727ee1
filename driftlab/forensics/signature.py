"""Forensic signature of a task model: fingerprints, envelope, worst case, ranking.

The signature records what a model tolerates: for the base pipeline's
parameters, the interval around each default inside which the task metric
stays at or above ``threshold`` times its clean value (1-D sweeps, see
:mod:`driftlab.forensics.envelope`), the worst case the attacks found with
all parameters moving jointly inside that envelope, and the stages ranked by
sensitivity. Model and data are identified by SHA-256 fingerprints so that
:func:`driftlab.forensics.verify.verify_signature` can re-check them.
The JSON layout is described by ``docs/signature.schema.json``.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

import numpy as np

from driftlab import __version__
from driftlab.atomic import write_json_atomic
from driftlab.attacks.base import AttackSettings, run_attack
from driftlab.attacks.space import spec_with_values
from driftlab.forensics.envelope import envelope_bounds, rank_stages, sweep_envelope
from driftlab.forensics.markup import markdown_to_html
from driftlab.forensics.plan import ForensicsPlan
from driftlab.io.images import atomic_path
from driftlab.registry import Registry, get_registry

__all__ = ["SCHEMA_ID", "build_signature", "signature_markdown", "write_signature"]

SCHEMA_ID = "driftlab-signature/1"


def _tightest(envelope: dict[str, dict]) -> dict[str, Any]:
    best = None
    for key, entry in envelope.items():
        for e in entry["elements"]:
            if best is None or e["relative_width"] < best[1]["relative_width"]:
                best = (key, e, entry["unit"])
    key, e, unit = best
    label = key + ("[" + ",".join(map(str, e["index"])) + "]" if e["index"] else "")
    return {
        "parameter": label,
        "default": e["default"],
        "low": e["low"],
        "high": e["high"],
        "unit": unit,
        "relative_width": e["relative_width"],
    }


def build_signature(
    plan: ForensicsPlan,
    clean: float,
    *,
    threshold: float = 0.95,
    points: int = 6,
    refine: int = 4,
    steps: int = 20,
    tolerance: float = 0.02,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Compute the signature of ``plan``'s model on its items and base pipeline.

    The worst case inside the envelope is searched with the ``projected``
    attack (lambda 0, every parameter, element-wise envelope bounds) for a
    differentiable pipeline, and with the ``search`` attack otherwise.

    Parameters
    ----------
    plan : ForensicsPlan
    clean : float
        Metric at the default parameters, in [0, 1].
    threshold : float
        Accepted fraction of ``clean``, in (0, 1].
    points : int
        Sweep steps towards each domain end.
    refine : int
        Bisection steps refining each envelope end.
    steps : int
        Attack steps for the worst case.
    tolerance : float
        Metric tolerance recorded for verification.

    Returns
    -------
    dict
        JSON-ready signature (``docs/signature.schema.json``).
    """
    registry = registry or get_registry()
    problem = plan.problem
    space = problem.space()
    envelope = sweep_envelope(problem, space, clean, threshold, points, refine)
    attack = registry.get("attacks", "projected" if problem.differentiable else "search")
    settings = AttackSettings(steps=steps, lr=0.02, lam=0.0, seed=0)
    worst = run_attack(
        attack,
        problem,
        settings,
        targets="all",
        bounds=envelope_bounds(envelope, space),
        clean=problem.evaluate(),
    )
    spec = spec_with_values(problem.resolved, {})
    return {
        "schema": SCHEMA_ID,
        "driftlab": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task": problem.task,
        "metric": plan.metric,
        "model": plan.model_info,
        "data": plan.data_info,
        "pipeline": {
            "name": spec.name,
            "spec": spec.to_dict(),
            "parameters": [
                {
                    "key": s.key,
                    "unit": s.unit,
                    "domain": s.domain.describe(s.unit),
                    "default": np.asarray(s.default).tolist(),
                }
                for s in space.slots
            ],
        },
        "acceptance": {"threshold": threshold, "clean": clean, "floor": threshold * clean},
        "sweep": {
            "points": points,
            "refine": refine,
            "method": "per-element 1-D sweep from the default to each domain end, projected "
            "onto the domain, then bisection between the last accepted and first rejected "
            "value; the envelope ends are the last values meeting the floor",
        },
        "envelope": envelope,
        "tightest": _tightest(envelope),
        "stages": rank_stages(envelope),
        "worst_case": {
            "attack": worst.attack,
            "steps": steps,
            "metric": worst.attacked["metric"],
            "accepted": bool(worst.attacked["metric"] >= threshold * clean),
            "l2": worst.attacked["l2"],
            "ssim": worst.attacked["ssim"],
            "values": worst.values_json(),
        },
        "verification": {"tolerance": tolerance},
    }


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def signature_markdown(sig: dict[str, Any]) -> str:
    """Human-readable Markdown form of a signature."""
    acc, worst, tight = sig["acceptance"], sig["worst_case"], sig["tightest"]
    metric = sig["metric"]
    lines = [
        f"# Forensic signature: {sig['model']['name']} on {sig['data']['name']}",
        "",
        "## Headline",
        "",
        "| item | value |",
        "|---|---|",
        f"| clean {metric} | {_fmt(acc['clean'])} |",
        f"| acceptance floor | {_fmt(acc['floor'])} ({acc['threshold']:.0%} of clean) |",
        f"| most sensitive stage | {sig['stages'][0]['stage']} "
        f"(sensitivity {_fmt(sig['stages'][0]['sensitivity'])}) |",
        f"| tightest interval | {tight['parameter']}: [{_fmt(tight['low'])}, "
        f"{_fmt(tight['high'])}] {tight['unit']} around {_fmt(tight['default'])} "
        f"({tight['relative_width']:.1%} of its domain) |",
        f"| worst case inside envelope | {metric} {_fmt(worst['metric'])} "
        f"({'accepted' if worst['accepted'] else 'below floor'}; attack {worst['attack']}) |",
        "",
        "## Fingerprints",
        "",
        "| what | sha256 |",
        "|---|---|",
        f"| model weights `{Path(sig['model']['weights']).name}` | `{sig['model']['sha256']}` |",
        f"| data item ids ({sig['data']['items']} items) | `{sig['data']['ids_sha256']}` |",
        f"| data ids + raw + targets | `{sig['data']['sha256']}` |",
        "",
        f"## Base pipeline `{sig['pipeline']['name']}`",
        "",
        "| parameter | default | domain |",
        "|---|---|---|",
    ]
    for p in sig["pipeline"]["parameters"]:
        default = np.round(np.asarray(p["default"], dtype=float), 4).tolist()
        lines.append(f"| {p['key']} | {default} | {p['domain']} |")
    lines += [
        "",
        "## Envelope (metric >= floor along each 1-D sweep)",
        "",
        f"{sig['sweep']['method']}; {sig['sweep']['points']} steps per side, "
        f"{sig['sweep']['refine']} bisection steps.",
        "",
        "| parameter | element | default | low | high | width / domain |",
        "|---|---|---|---|---|---|",
    ]
    for key, entry in sig["envelope"].items():
        for e in entry["elements"]:
            lines.append(
                f"| {key} | {e['index']} | {_fmt(e['default'])} | {_fmt(e['low'])} | "
                f"{_fmt(e['high'])} | {e['relative_width']:.2f} |"
            )
    lines += [
        "",
        "## Stages by sensitivity",
        "",
        "| stage | sensitivity | tightest |",
        "|---|---|---|",
    ]
    for r in sig["stages"]:
        lines.append(f"| {r['stage']} | {_fmt(r['sensitivity'])} | {r['tightest']} |")
    lines += [
        "",
        "## Worst case inside the envelope",
        "",
        f"{metric} {_fmt(worst['metric'])}, view RMS difference {_fmt(worst['l2'])}, "
        f"SSIM {_fmt(worst['ssim'])}.",
        "",
        "| parameter | value |",
        "|---|---|",
    ]
    for key, value in worst["values"].items():
        lines.append(f"| {key} | {np.round(np.asarray(value, dtype=float), 4).tolist()} |")
    lines += [
        "",
        "Verify with `driftlab signature verify signature.json` (tolerance "
        f"{sig['verification']['tolerance']}).",
        "",
    ]
    return "\n".join(lines)


def write_signature(sig: dict[str, Any], folder: str | Path) -> dict[str, Path]:
    """Write ``signature.json``, ``signature.md`` and ``signature.html`` into ``folder``."""
    folder = Path(folder)
    out = {"json": write_json_atomic(sig, folder / "signature.json")}
    md = signature_markdown(sig)
    for suffix, text in (
        ("md", md),
        ("html", markdown_to_html(md, title=html.escape("driftlab signature"))),
    ):
        path = folder / f"signature.{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        out[suffix] = path
    return out
