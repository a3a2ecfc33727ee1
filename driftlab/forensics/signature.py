"""Forensic signature of a task model: fingerprints, cross-fitted envelope, box, ranking.

The signature records what a model tolerates, with evidence kept apart from
the search that produced it (Oala et al., TMLR 2023, Sec. 6, made
cross-fitted). The examined items are split by a seeded permutation
(:func:`driftlab.forensics.crossfit.split_items`); on the *search* half the
base pipeline's parameters are swept one element at a time
(:mod:`driftlab.forensics.envelope`), and the worst case inside a box is
searched by an attack; on the *held-out* half only measurements are made:
the clean metric, the box's corners and the attack's point. A one-sided
lower confidence bound on the held-out metric
(:mod:`driftlab.forensics.confidence`: Clopper-Pearson for accuracy, a
seeded percentile bootstrap for IoU), Bonferroni-corrected for the
``2 ** shrink_steps`` boxes the search can test on the same items, must
clear the floor, ``threshold x`` a one-sided upper confidence bound of the
held-out clean metric, for the box to be published as ``safe`` (half the
family-wise error is spent on the floor, half on the boxes); the per-axis
box is shrunk by a common scale until it does
(:mod:`driftlab.forensics.crossfit`), or else published as ``per-axis
tolerance``. ``acceptance.min_holdout_items`` records how many held-out
items a box needs to be able to pass at all. Stages are ranked by metric loss
per unit of view RMS change. Model and data are identified by SHA-256
fingerprints so that :func:`driftlab.forensics.verify.verify_signature` can
re-check everything. The JSON layout is ``docs/signature.schema.json``;
:func:`write_signature` validates every signature before writing it.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from driftlab import __version__
from driftlab.atomic import atomic_path
from driftlab.attacks.base import AttackSettings
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import spec_with_values
from driftlab.engine.report import KeyValues, Paragraph, Report, Section, Table, render_report
from driftlab.forensics.confidence import BoundSettings, level_text, metric_of_scores
from driftlab.forensics.crossfit import (
    SAFE,
    SPLIT_METHOD,
    box_tests,
    safe_reachability,
    shrink_box,
    split_items,
)
from driftlab.forensics.envelope import (
    SENSITIVITY_UNIT,
    element_label,
    most_sensitive,
    rank_stages,
    sweep_envelope,
)
from driftlab.forensics.plan import ForensicsPlan
from driftlab.forensics.validate import SCHEMA_ID, validate_signature
from driftlab.registry import Registry

__all__ = [
    "SCHEMA_ID",
    "SWEEP_METHOD",
    "build_signature",
    "canonical_json",
    "signature_from_problem",
    "signature_headline",
    "signature_markdown",
    "write_signature",
]

SWEEP_METHOD = (
    "per-element 1-D sweep on the search items from the default to each domain end, "
    "projected onto the domain, then bisection between the last accepted and first "
    "rejected value; the envelope ends are the last values meeting the search floor"
)


def canonical_json(sig: dict[str, Any]) -> str:
    """The one byte-exact text form of a signature (what is written and signed).

    ``json.dumps`` with sorted keys, two-space indent, ASCII only, no NaN or
    infinity, and a final newline.

    Raises
    ------
    ValueError
        A value JSON cannot represent exactly (NaN, infinity, non-JSON types).
    """
    return json.dumps(sig, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def _tightest(envelope: dict[str, dict]) -> dict[str, Any]:
    best = None
    for key, entry in envelope.items():
        for e in entry["elements"]:
            if best is None or e["relative_width"] < best[1]["relative_width"]:
                best = (key, e, entry["unit"])
    key, e, unit = best
    return {
        "parameter": element_label(key, e["index"]),
        "default": e["default"],
        "low": e["low"],
        "high": e["high"],
        "unit": unit,
        "relative_width": e["relative_width"],
    }


def _tensors(values: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in values.items()}


def signature_from_problem(
    problem: AttackProblem,
    *,
    ids: list[str],
    metric: str,
    model_info: dict[str, Any],
    data_info: dict[str, Any],
    threshold: float = 0.95,
    points: int = 6,
    refine: int = 4,
    steps: int = 20,
    tolerance: float = 1e-6,
    seed: int = 0,
    confidence: float = 0.95,
    resamples: int = 1000,
    shrink_steps: int = 5,
    corners: int = 16,
    registry: Registry,
) -> dict[str, Any]:
    """Compute a cross-fitted signature of ``problem``'s model (see module docstring).

    Parameters
    ----------
    problem : AttackProblem
        Frozen model, base pipeline, and every examined item (``N >= 2``).
    ids : list of str
        Item ids in ``problem`` order.
    metric : {"accuracy", "iou"}
    model_info, data_info : dict
        Recorded as ``model`` and ``data`` (see ``docs/signature.schema.json``).
    threshold : float
        Accepted fraction of the clean metric, in (0, 1].
    points, refine : int
        Sweep steps towards each domain end, bisection steps per end.
    steps : int
        Steps of the worst-case attack.
    tolerance : float
        Recorded as a suggestion only; verification takes its tolerance from
        the verifier.
    seed : int
        Seed of the item split, the corner draw and the worst-case attack.
    confidence : float
        Family-wise one-sided confidence level: the floor is ``threshold x``
        the held-out clean metric's upper bound at ``1 - (1 - confidence) /
        2``, and each lower bound is taken at ``1 - (1 - confidence) / (2 x 2
        ** shrink_steps)`` (Bonferroni over the boxes the bisection can test,
        :func:`driftlab.forensics.crossfit.box_tests`).
    resamples : int
        Bootstrap resamples (IoU).
    shrink_steps : int
        Bisection steps of the common scale (0 to 30).
    corners : int
        Most box corners examined per box.
    registry : Registry
        Source of the worst-case attack (``projected``, or ``search`` for a
        static-only pipeline).

    Returns
    -------
    dict
        JSON-ready signature (``docs/signature.schema.json``).

    Raises
    ------
    ValueError
        Fewer than 2 items, ``ids`` of another length, or settings out of range.
    """
    if len(ids) != len(problem.raw):
        raise ValueError(f"signature: {len(ids)} ids for {len(problem.raw)} items")
    task = problem.task
    search_idx, holdout_idx = split_items(len(ids), seed)
    search, holdout = problem.subset(search_idx), problem.subset(holdout_idx)
    bounds_settings = BoundSettings(
        confidence=confidence, resamples=resamples, seed=seed, tests=box_tests(shrink_steps)
    )
    reach = safe_reachability(task, len(ids), threshold, confidence, shrink_steps, resamples, seed)
    space = problem.space()
    clean_all = problem.metric()
    clean_search = search.metric()
    holdout_scores = holdout.scores()
    clean_holdout = metric_of_scores(task, holdout_scores)
    clean_upper = bounds_settings.upper(task, holdout_scores)
    floor = threshold * clean_upper
    envelope = sweep_envelope(search, space, clean_search, threshold, points, refine)
    attack = registry.get("attacks", "projected" if problem.differentiable else "search")
    settings = AttackSettings(steps=steps, lr=0.02, lam=0.0, seed=seed)
    box = shrink_box(
        search,
        holdout,
        space,
        envelope,
        attack=attack,
        settings=settings,
        bounds_settings=bounds_settings,
        floor=floor,
        shrink_steps=shrink_steps,
        corners=corners,
        seed=seed,
        needed=reach.needed,
    )
    published = box.published
    worst = published.worst
    views = holdout.evaluate(worst["values"])
    stages = rank_stages(envelope)
    spec = spec_with_values(problem.resolved, {})
    return {
        "schema": SCHEMA_ID,
        "driftlab": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "metric": metric,
        "model": model_info,
        "data": data_info,
        "pipeline": {
            "name": spec.name,
            "spec": spec.to_dict(),
            "parameters": [
                {
                    "key": s.key,
                    "unit": s.unit,
                    "domain": s.domain.describe(s.unit),
                    "low": s.domain.low,
                    "high": s.domain.high,
                    "shape": list(s.default.shape),
                    "default": np.asarray(s.default).tolist(),
                }
                for s in space.slots
            ],
        },
        "cross_fit": {
            "seed": seed,
            "method": SPLIT_METHOD,
            "search_ids": [ids[i] for i in search_idx],
            "holdout_ids": [ids[i] for i in holdout_idx],
        },
        "statistics": bounds_settings.describe(task),
        "acceptance": {
            "threshold": threshold,
            "clean": clean_all,
            "clean_search": clean_search,
            "clean_holdout": clean_holdout,
            "clean_holdout_lower_bound": box.clean_lower_bound,
            "clean_holdout_upper_bound": clean_upper,
            "floor": floor,
            "floor_search": threshold * clean_search,
            "min_holdout_items": reach.needed,
        },
        "sweep": {"points": points, "refine": refine, "items": "search", "method": SWEEP_METHOD},
        "envelope": envelope,
        "tightest": _tightest(envelope),
        "stages": stages,
        "sensitivity": {
            "unit": SENSITIVITY_UNIT,
            "method": "steepest loss / view RMS change over each element's 1-D sweep on the "
            "search items; a stage takes its largest element; 0 when the metric never drops",
            "most_sensitive": most_sensitive(stages),
        },
        "box": {
            "status": box.status,
            "scale": published.scale,
            "reason": box.reason,
            "shrink_steps": shrink_steps,
            "corner_limit": corners,
            "low": _tensors({k: b[0] for k, b in published.bounds.items()}),
            "high": _tensors({k: b[1] for k, b in published.bounds.items()}),
            "corners": published.corners,
            "checks": [c.summary() for c in box.checks],
        },
        "worst_case": {
            "attack": attack.name,
            "steps": steps,
            "source": worst["source"],
            "corner": worst["corner"],
            "metric": worst["metric"],
            "lower_bound": worst["lower_bound"],
            "accepted": box.status == SAFE,
            "l2": views["l2"],
            "ssim": views["ssim"],
            "values": _tensors(worst["values"]),
            "search_point": {
                "metric": published.search["metric"],
                "lower_bound": published.search["lower_bound"],
                "metric_search": published.search["metric_search"],
                "values": _tensors(published.search["values"]),
            },
        },
        "verification": {"tolerance": tolerance},
    }


def build_signature(
    plan: ForensicsPlan,
    clean: float | None = None,
    *,
    registry: Registry,
    **settings: Any,
) -> dict[str, Any]:
    """Cross-fitted signature of ``plan``'s model on its items and base pipeline.

    Parameters
    ----------
    plan : ForensicsPlan or any object with ``problem``, ``metric``,
        ``model_info`` and ``data_info`` (``data_info["ids"]``: item ids).
    clean : float, optional
        Accepted for compatibility; the clean metric is recomputed.
    registry : Registry
        The plugin registry the plan was built with (its stages and attacks);
        required, passed on to :func:`signature_from_problem`.
    **settings
        ``threshold``, ``points``, ``refine``, ``steps``, ``tolerance``,
        ``seed``, ``confidence``, ``resamples``, ``shrink_steps``,
        ``corners``: see :func:`signature_from_problem`.
    """
    return signature_from_problem(
        plan.problem,
        ids=list(plan.data_info["ids"]),
        metric=plan.metric,
        model_info=plan.model_info,
        data_info=plan.data_info,
        registry=registry,
        **settings,
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _level(stats: dict[str, Any]) -> str:
    """The per-test level of a signature's bounds, in words."""
    return level_text(BoundSettings(confidence=stats["confidence"], tests=stats["tests"]))


def signature_headline(sig: dict[str, Any]) -> list[str]:
    """Three short lines for a terminal or a report: box status, sensitivity, tightest.

    The box is called safe only when its held-out lower bound cleared the
    floor; otherwise it is a per-axis tolerance. No stage is named most
    sensitive when every stage's sensitivity is 0.
    """
    metric, box, worst = sig["metric"], sig["box"], sig["worst_case"]
    level = _level(sig["statistics"])
    n = len(sig["cross_fit"]["holdout_ids"])
    needed = sig["acceptance"]["min_holdout_items"]
    if box["status"] == SAFE:
        first = (
            f"safe box (common scale {box['scale']:g} of the per-axis envelope): worst case "
            f"{metric} {_fmt(worst['metric'])}, {level} lower bound "
            f"{_fmt(worst['lower_bound'])} >= floor {_fmt(sig['acceptance']['floor'])} on {n} "
            "held-out items"
        )
    else:
        first = (
            f"no safe box: per-axis tolerance only (joint worst case {metric} "
            f"{_fmt(worst['metric'])}, {level} lower bound {_fmt(worst['lower_bound'])} < floor "
            f"{_fmt(sig['acceptance']['floor'])} on {n} held-out items)"
        )
        if needed is None:
            first += "; no number of held-out items can reach the threshold with these settings"
        elif n < needed:
            first += f"; no box can be declared safe: needs >= {needed} held-out items, has {n}"
    top = sig["sensitivity"]["most_sensitive"]
    if top is None:
        second = "most sensitive stage: none (the metric did not drop along any 1-D sweep)"
    else:
        s = next(r for r in sig["stages"] if r["stage"] == top)
        second = (
            f"most sensitive stage: {top} ({_fmt(s['sensitivity'])} {metric} per unit of view "
            f"RMS change, at {s['steepest']})"
        )
    tight = sig["tightest"]
    third = (
        f"tightest per-axis interval: {tight['parameter']} [{_fmt(tight['low'])}, "
        f"{_fmt(tight['high'])}] {tight['unit']}"
    )
    return [first, second, third]


def _rounded(value: Any) -> str:
    return str(np.round(np.asarray(value, dtype=float), 4).tolist())


def signature_report(sig: dict[str, Any]) -> Report:
    """Human-readable form of a signature (rendered to ``signature.md`` / ``.html``)."""
    acc, worst, tight, box = sig["acceptance"], sig["worst_case"], sig["tightest"], sig["box"]
    stats, cross = sig["statistics"], sig["cross_fit"]
    metric = sig["metric"]
    level = _level(stats)
    worst_from = worst["source"] + (
        f" {worst['corner']}" if worst["corner"] else f", attack {worst['attack']}"
    )
    headline = [
        ("box", f"**{box['status']}** (scale {box['scale']:g}): {box['reason']}"),
        (
            f"clean {metric} (all / search / held-out items)",
            f"{_fmt(acc['clean'])} / {_fmt(acc['clean_search'])} / {_fmt(acc['clean_holdout'])}",
        ),
        (
            "acceptance floor",
            f"{_fmt(acc['floor'])} ({acc['threshold']:.0%} of the "
            f"{100 * stats['floor_confidence']:.4g}% upper bound "
            f"{_fmt(acc['clean_holdout_upper_bound'])} of the held-out clean metric)",
        ),
        (f"{level} lower bound, held-out clean", _fmt(acc["clean_holdout_lower_bound"])),
        (
            "worst case inside the published box",
            f"{metric} {_fmt(worst['metric'])}, {level} lower bound "
            f"{_fmt(worst['lower_bound'])} ({worst_from})",
        ),
        (
            "bound methods",
            f"{stats['method']} (boxes), {stats['floor_method']} (floor): {stats['description']}",
        ),
        (
            "held-out items a safe box needs",
            "none suffice"
            if acc["min_holdout_items"] is None
            else f">= {acc['min_holdout_items']} (has {len(cross['holdout_ids'])})",
        ),
        (
            "tightest per-axis interval",
            f"{tight['parameter']}: [{_fmt(tight['low'])}, {_fmt(tight['high'])}] "
            f"{tight['unit']} around {_fmt(tight['default'])} "
            f"({tight['relative_width']:.1%} of its domain)",
        ),
    ]
    envelope_rows = [
        [key, str(e["index"]), _fmt(e["default"]), _fmt(e["low"]), _fmt(e["high"]),
         f"{e['relative_width']:.2f}", _fmt(e["sensitivity"])]
        for key, entry in sig["envelope"].items()
        for e in entry["elements"]
    ]  # fmt: skip
    checks = [
        [f"{c['scale']:g}", c["worst_source"], _fmt(c["worst_metric"]),
         _fmt(c["worst_lower_bound"]), "yes" if c["passed"] else "no"]
        for c in box["checks"]
    ]  # fmt: skip
    sections = [
        Section(
            "Headline",
            [*(Paragraph(line) for line in signature_headline(sig)), KeyValues(headline)],
        ),
        Section(
            "Evidence kept apart from the search",
            [
                Paragraph(
                    f"{len(cross['search_ids'])} search items (envelope sweeps, worst-case "
                    f"attack) and {len(cross['holdout_ids'])} held-out items (every accepted "
                    f"number), split with seed {cross['seed']}: {cross['method']}. Both id "
                    "lists are in `signature.json`."
                )
            ],
        ),
        Section(
            "Fingerprints",
            [
                Table(
                    ["what", "sha256"],
                    [
                        [
                            f"model weights `{Path(sig['model']['weights']).name}`",
                            f"`{sig['model']['sha256']}`",
                        ],
                        [
                            f"data item ids ({sig['data']['items']} items)",
                            f"`{sig['data']['ids_sha256']}`",
                        ],
                        ["data ids + raw + targets", f"`{sig['data']['sha256']}`"],
                    ],
                )
            ],
        ),
        Section(
            f"Base pipeline `{sig['pipeline']['name']}`",
            [
                Table(
                    ["parameter", "default", "domain"],
                    [
                        [p["key"], _rounded(p["default"]), p["domain"]]
                        for p in sig["pipeline"]["parameters"]
                    ],
                )
            ],
        ),
        Section(
            "Per-axis envelope (search items; one element moved at a time)",
            [
                Paragraph(
                    f"{sig['sweep']['method']}; {sig['sweep']['points']} steps per side, "
                    f"{sig['sweep']['refine']} bisection steps; search floor "
                    f"{_fmt(acc['floor_search'])}. A per-axis interval is not a joint "
                    "guarantee: see the published box."
                ),
                Table(
                    [
                        "parameter",
                        "element",
                        "default",
                        "low",
                        "high",
                        "width / domain",
                        "sensitivity",
                    ],
                    envelope_rows,
                ),
            ],
        ),
        Section(
            "Published box",
            [
                Paragraph(
                    f"Status **{box['status']}**, common scale {box['scale']:g} of the "
                    "per-axis envelope. Boxes examined (held-out items):"
                ),
                Table(["scale", "worst from", "worst metric", "lower bound", "holds"], checks),
                Table(
                    ["parameter", "low", "high"],
                    [
                        [key, _rounded(box["low"][key]), _rounded(box["high"][key])]
                        for key in box["low"]
                    ],
                ),
            ],
        ),
        Section(
            f"Stages by sensitivity ({sig['sensitivity']['unit']})",
            [
                Table(
                    ["stage", "sensitivity", "steepest element", "tightest element"],
                    [
                        [r["stage"], _fmt(r["sensitivity"]), r["steepest"] or "-", r["tightest"]]
                        for r in sig["stages"]
                    ],
                )
            ],
        ),
        Section(
            "Worst case inside the published box",
            [
                Paragraph(
                    f"{metric} {_fmt(worst['metric'])} on the held-out items ({level} lower "
                    f"bound {_fmt(worst['lower_bound'])}), view RMS difference "
                    f"{_fmt(worst['l2'])}, SSIM {_fmt(worst['ssim'])}."
                ),
                Table(
                    ["parameter", "value"],
                    [[key, _rounded(value)] for key, value in worst["values"].items()],
                ),
                Paragraph(
                    "Verify with `driftlab signature verify signature.json` (it re-measures "
                    "every number above on the recorded items; its tolerance comes from its "
                    f"`--tolerance` option, the {sig['verification']['tolerance']} recorded "
                    "here is only shown)."
                ),
            ],
        ),
    ]
    return Report(
        title=f"Forensic signature: {sig['model']['name'] or Path(sig['model']['weights']).name} "
        f"on {sig['data']['name']}",
        sections=sections,
        files=["signature.json"],
    )


def signature_markdown(sig: dict[str, Any]) -> str:
    """Human-readable Markdown form of a signature (see :func:`signature_report`)."""
    return render_report(signature_report(sig), Path("."))[0]


def write_signature(sig: dict[str, Any], folder: str | Path) -> dict[str, Path]:
    """Validate ``sig``, then write ``signature.json`` (canonical form),
    ``signature.md`` and ``signature.html`` into ``folder``.

    Returns
    -------
    dict
        ``{"json": path, "md": path, "html": path}``.

    Raises
    ------
    driftlab.forensics.validate.SignatureError
        ``sig`` does not satisfy the signature schema; nothing is written.
    """
    validate_signature(sig, where="signature to write")
    folder = Path(folder)
    md, page = render_report(signature_report(sig), folder)
    out = {}
    for suffix, text in (("json", canonical_json(sig)), ("md", md), ("html", page)):
        path = folder / f"signature.{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        out[suffix] = path
    return out
