"""Per-parameter envelopes from 1-D sweeps, worst cases inside them, stage ranking.

For every element of every attacked parameter (scalars have one element;
the 4 black levels, 3 gains, 9 colour-matrix coefficients, 9 kernel weights
each count separately) the element alone is moved from its default towards
each end of its domain in ``points`` equal steps, the other elements staying
at their defaults; the value is then projected onto the domain (so for
kernels whose weights must sum to 1 the other weights absorb the change
equally). The sweep stops at the first value whose metric falls below
``threshold * clean`` and then bisects ``refine`` times between the last
accepted and that rejected value. The envelope of the element is the
interval between the last accepted values on both sides (a grid scan: a
failure between two accepted grid values is not seen). Per-element sweeps were chosen over a
single scale of the whole tensor because they say which coefficient a model
depends on and they work for sum-constrained kernels, where a common offset
is removed by the projection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import ParameterSpace

__all__ = ["envelope_bounds", "rank_stages", "sweep_envelope"]


def sweep_envelope(
    problem: AttackProblem,
    space: ParameterSpace,
    clean: float,
    threshold: float = 0.95,
    points: int = 6,
    refine: int = 4,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """1-D sweeps of every element (see module docstring).

    Parameters
    ----------
    problem : AttackProblem
    space : ParameterSpace
        Parameters to sweep.
    clean : float
        Metric at the default, in [0, 1].
    threshold : float
        Accepted fraction of ``clean`` (0.95: the metric must stay >= 95 %).
    points : int
        Steps from the default to each domain end.
    refine : int
        Bisection steps between the last accepted and the first rejected
        grid value (each halves the uncertainty of the envelope end).

    Returns
    -------
    dict
        ``{"stage.param": {"unit", "domain", "shape", "elements": [...]}}``;
        each element: ``index`` (list of int), ``default``, ``low``, ``high``
        (envelope ends, parameter unit), ``relative_width`` (envelope width /
        domain width, in [0, 1]), ``metric_low``, ``metric_high`` (metric at
        the ends).
    """
    floor = threshold * clean
    out: dict[str, dict] = {}
    for slot in space.slots:
        elements = []
        for index in np.ndindex(slot.default.shape or ()):
            d = float(slot.default[index])
            ends, metrics = {}, {}
            for side, bound in (("low", slot.domain.low), ("high", slot.domain.high)):
                ends[side], metrics[side] = d, clean
                rejected = None
                for k in range(1, points + 1):
                    target = d + (bound - d) * k / points
                    metric = _metric_at(problem, slot, index, target)
                    if metric < floor:
                        rejected = target
                        break
                    ends[side], metrics[side] = target, metric
                for _ in range(refine if rejected is not None else 0):
                    middle = (ends[side] + rejected) / 2
                    metric = _metric_at(problem, slot, index, middle)
                    if metric < floor:
                        rejected = middle
                    else:
                        ends[side], metrics[side] = middle, metric
            width = slot.domain.high - slot.domain.low
            elements.append(
                {
                    "index": [int(i) for i in index],
                    "default": d,
                    "low": ends["low"],
                    "high": ends["high"],
                    "relative_width": (ends["high"] - ends["low"]) / width if width > 0 else 1.0,
                    "metric_low": metrics["low"],
                    "metric_high": metrics["high"],
                }
            )
        if progress:
            progress(slot.key)
        out[slot.key] = {
            "unit": slot.unit,
            "domain": slot.domain.describe(slot.unit),
            "shape": list(slot.default.shape),
            "elements": elements,
        }
    return out


def _metric_at(problem: AttackProblem, slot, index: tuple, target: float) -> float:
    value = slot.default.copy()
    value[index] = target
    value = slot.project(torch.as_tensor(value)).numpy()
    return problem.metric({slot.key: value})


def envelope_bounds(envelope: dict[str, dict], space: ParameterSpace) -> dict[str, tuple]:
    """Element-wise ``(low, high)`` arrays of the envelope, for :func:`run_attack` bounds."""
    bounds = {}
    for key, entry in envelope.items():
        shape = tuple(space[key].default.shape)
        low, high = np.zeros(shape), np.zeros(shape)
        for e in entry["elements"]:
            low[tuple(e["index"])] = e["low"]
            high[tuple(e["index"])] = e["high"]
        bounds[key] = (low, high)
    return bounds


def rank_stages(envelope: dict[str, dict]) -> list[dict]:
    """Stages by sensitivity, most sensitive first.

    A stage's sensitivity is ``1 - mean relative envelope width`` over all
    elements of its parameters (0: every value in the domain keeps the
    metric; 1: no move at all does); ties keep pipeline order.

    Returns
    -------
    list of dict
        ``stage``, ``sensitivity`` in [0, 1], ``tightest`` (``"stage.param[i]"``)
        and its ``relative_width``.
    """
    stages: dict[str, list[tuple[str, float]]] = {}
    for key, entry in envelope.items():
        stage = key.split(".", 1)[0]
        for e in entry["elements"]:
            label = key + ("[" + ",".join(map(str, e["index"])) + "]" if e["index"] else "")
            stages.setdefault(stage, []).append((label, e["relative_width"]))
    ranked = []
    for stage, items in stages.items():
        label, width = min(items, key=lambda t: t[1])
        ranked.append(
            {
                "stage": stage,
                "sensitivity": 1.0 - float(np.mean([w for _, w in items])),
                "tightest": label,
                "relative_width": width,
            }
        )
    return sorted(ranked, key=lambda r: -r["sensitivity"])
