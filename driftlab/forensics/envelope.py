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

*Sensitivity* is metric loss per unit of physical change. Every swept value
``x`` of an element gives a loss ``max(0, clean - metric(x))`` and a change
of the image the model sees, the RMS difference of the views to the default
views (view intensity on the [0, 1] scale). An element's sensitivity is the
steepest ratio ``loss / view RMS`` over its swept values and a stage's is the
largest over its elements, so stages whose parameters have different units
(gamma exponent, gains, fractions of the white level) are compared in one
unit: metric per unit of view RMS change. Each element also reports the same
point's ``slope``, loss per unit of the parameter's own unit. A metric that
never drops gives exactly 0 (never a negative rounding residue), and no
stage is named most sensitive when every stage is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.similarity import mse
from driftlab.attacks.space import ParameterSpace, Slot

__all__ = [
    "LOSS_FLOOR",
    "SENSITIVITY_UNIT",
    "corner_patterns",
    "corner_values",
    "element_label",
    "element_sensitivity",
    "envelope_bounds",
    "most_sensitive",
    "rank_stages",
    "scaled_bounds",
    "sweep_envelope",
    "sweep_point",
]

SENSITIVITY_UNIT = "metric loss per unit of view RMS change (view intensity, [0, 1] scale)"

# losses below this are rounding residue of equal metrics, not a drop
LOSS_FLOOR = 1e-12


def element_label(key: str, index: list[int] | tuple[int, ...]) -> str:
    """``"stage.param"`` or ``"stage.param[i,j]"`` for one element."""
    return key + ("[" + ",".join(map(str, index)) + "]" if len(index) else "")


def element_sensitivity(
    clean: float, metric: float, view_rms: float, change: float
) -> tuple[float, float]:
    """Loss per view RMS change and per parameter unit at one swept value.

    Parameters
    ----------
    clean, metric : float
        Metric at the default and at the swept value, in [0, 1].
    view_rms : float
        RMS difference of the views to the default views (view units).
    change : float
        ``|value - default|`` of the element, parameter unit.

    Returns
    -------
    (float, float)
        ``(sensitivity, slope)``, both >= 0 exactly: 0 when the metric did not
        drop (loss below :data:`LOSS_FLOOR`) or nothing changed.
    """
    loss = clean - metric
    if not loss > LOSS_FLOOR:
        return 0.0, 0.0
    sensitivity = loss / view_rms if view_rms > 0 else 0.0
    slope = loss / change if change > 0 else 0.0
    return float(sensitivity), float(slope)


def sweep_point(
    problem: AttackProblem,
    slot: Slot,
    index: tuple[int, ...],
    target: float,
    base_views: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Metric and view RMS change with one element set to ``target`` (then projected).

    Parameters
    ----------
    problem : AttackProblem
    slot : Slot
        The parameter (its ``low``/``high`` box and domain constraints apply).
    index : tuple of int
        Element position.
    target : float
        Requested element value, parameter unit.
    base_views : torch.Tensor, optional
        ``(N, 3, H, W)`` default views (rendered when not given).

    Returns
    -------
    (float, float)
        Metric in [0, 1] and RMS difference to the default views.
    """
    value = slot.default.copy()
    value[index] = target
    value = slot.project(torch.as_tensor(value)).numpy()
    views = torch.from_numpy(problem.render({slot.key: value}))
    if base_views is None:
        base_views = torch.from_numpy(problem.render())
    metric = problem.metric_of_logits(problem.logits(views))
    return metric, float(mse(views, base_views).mean().sqrt())


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
        The items swept on (for a cross-fitted signature: the search half).
    space : ParameterSpace
        Parameters to sweep.
    clean : float
        Metric at the default on ``problem``'s items, in [0, 1].
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
        the ends), ``steepest`` (``{"value", "metric", "view_rms"}`` of the
        swept value with the largest loss per view RMS change, or None when
        the metric never dropped), ``sensitivity`` (that ratio, >= 0) and
        ``slope`` (the same loss per parameter unit, >= 0).
    """
    floor = threshold * clean
    base = torch.from_numpy(problem.render())
    out: dict[str, dict] = {}
    for slot in space.slots:
        elements = []
        for index in np.ndindex(slot.default.shape or ()):
            d = float(slot.default[index])
            ends, metrics = {}, {}
            seen: list[tuple[float, float, float]] = []  # (value, metric, view rms)

            def measure(target: float, slot=slot, index=index, seen=seen) -> float:
                metric, rms = sweep_point(problem, slot, index, target, base)
                seen.append((target, metric, rms))
                return metric

            for side, bound in (("low", slot.domain.low), ("high", slot.domain.high)):
                ends[side], metrics[side] = d, clean
                rejected = None
                for k in range(1, points + 1):
                    target = d + (bound - d) * k / points
                    metric = measure(target)
                    if metric < floor:
                        rejected = target
                        break
                    ends[side], metrics[side] = target, metric
                for _ in range(refine if rejected is not None else 0):
                    middle = (ends[side] + rejected) / 2
                    metric = measure(middle)
                    if metric < floor:
                        rejected = middle
                    else:
                        ends[side], metrics[side] = middle, metric
            steepest, best = None, (0.0, 0.0)
            for value, metric, rms in seen:
                ratio = element_sensitivity(clean, metric, rms, abs(value - d))
                if ratio[0] > best[0]:
                    steepest, best = {"value": value, "metric": metric, "view_rms": rms}, ratio
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
                    "steepest": steepest,
                    "sensitivity": best[0],
                    "slope": best[1],
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


def envelope_bounds(envelope: Mapping[str, dict], space: ParameterSpace) -> dict[str, tuple]:
    """Element-wise ``(low, high)`` arrays of the envelope, for :func:`run_attack` bounds."""
    return scaled_bounds(envelope, space, 1.0)


def scaled_bounds(
    envelope: Mapping[str, dict], space: ParameterSpace, scale: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The envelope box shrunk towards the defaults by a common ``scale``.

    Each element's interval ``[low, high]`` becomes ``[d + scale (low - d),
    d + scale (high - d)]`` around its default ``d``: ``scale = 1`` is the
    per-axis envelope, ``scale = 0`` the defaults alone.

    Parameters
    ----------
    envelope : mapping
        As returned by :func:`sweep_envelope`.
    space : ParameterSpace
        Gives each parameter's shape.
    scale : float
        In [0, 1].

    Returns
    -------
    dict
        ``{"stage.param": (low, high)}``, float64 arrays of the parameter's shape.
    """
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"scale: expected a number in [0, 1], got {scale}")
    bounds = {}
    for key, entry in envelope.items():
        shape = tuple(space[key].default.shape)
        low, high = np.zeros(shape), np.zeros(shape)
        for e in entry["elements"]:
            i, d = tuple(e["index"]), e["default"]
            low[i] = d + scale * (e["low"] - d)
            high[i] = d + scale * (e["high"] - d)
        bounds[key] = (low, high)
    return bounds


def corner_patterns(elements: int, limit: int, seed: int) -> list[str]:
    """Which corners of a box with ``elements`` axes to examine.

    A corner is a string of ``l`` (element at its low end) and ``h`` (high
    end), one letter per element in parameter order. All ``2**elements``
    corners when that is at most ``limit``; otherwise the all-low and all-high
    corners plus ``limit - 2`` distinct ones drawn uniformly with
    :func:`numpy.random.default_rng` (``seed``).

    Raises
    ------
    ValueError
        ``elements < 1`` or ``limit < 2``.
    """
    if elements < 1 or limit < 2:
        raise ValueError(
            f"corner_patterns: need elements >= 1 and limit >= 2, got {elements}, {limit}"
        )
    if elements < 63 and 2**elements <= limit:
        return ["".join("lh"[(c >> b) & 1] for b in range(elements)) for c in range(2**elements)]
    chosen = ["l" * elements, "h" * elements]
    rng = np.random.default_rng(seed)
    while len(chosen) < limit:
        pattern = "".join(np.where(rng.integers(0, 2, elements) == 1, "h", "l"))
        if pattern not in chosen:
            chosen.append(pattern)
    return chosen


def corner_values(
    space: ParameterSpace, bounds: Mapping[str, tuple[np.ndarray, np.ndarray]], pattern: str
) -> dict[str, np.ndarray]:
    """Parameter values at one corner of ``bounds``, projected onto each domain.

    Elements follow ``space`` order and each parameter's row-major order.
    For parameters with equality constraints (colour-matrix rows, kernel
    sums) the corner itself is usually not admissible; it is projected onto
    the box intersected with the constraint (Dykstra), the nearest
    admissible value.

    Raises
    ------
    ValueError
        ``pattern`` length differs from the number of elements or has a letter
        other than ``l``/``h``.
    """
    total = sum(s.default.size for s in space.slots)
    if len(pattern) != total or set(pattern) - {"l", "h"}:
        raise ValueError(f"corner pattern: expected {total} letters l/h, got {pattern!r}")
    boxed = space.with_bounds(bounds)
    out, start = {}, 0
    for slot in boxed.slots:
        n = slot.default.size
        pick = np.array([c == "h" for c in pattern[start : start + n]]).reshape(slot.default.shape)
        value = np.where(pick, slot.high, slot.low)
        out[slot.key] = slot.project(torch.as_tensor(value)).numpy()
        start += n
    return out


def rank_stages(envelope: Mapping[str, dict]) -> list[dict]:
    """Stages by sensitivity, most sensitive first (see module docstring).

    A stage's sensitivity is the largest element sensitivity among its
    parameters (metric loss per unit of view RMS change, >= 0); ties keep
    pipeline order.

    Returns
    -------
    list of dict
        ``stage``, ``sensitivity`` (>= 0), ``steepest`` (the element that
        sets it, ``"stage.param[i]"``, or None when 0), ``tightest``
        (``"stage.param[i]"`` with the narrowest envelope) and its
        ``relative_width``.
    """
    stages: dict[str, list[tuple[str, float, float]]] = {}
    for key, entry in envelope.items():
        stage = key.split(".", 1)[0]
        for e in entry["elements"]:
            label = element_label(key, e["index"])
            stages.setdefault(stage, []).append(
                (label, float(e["relative_width"]), max(0.0, float(e["sensitivity"])))
            )
    ranked = []
    for stage, items in stages.items():
        tight_label, width, _ = min(items, key=lambda t: t[1])
        steep_label, _, sensitivity = max(items, key=lambda t: t[2])
        ranked.append(
            {
                "stage": stage,
                "sensitivity": sensitivity,
                "steepest": steep_label if sensitivity > 0 else None,
                "tightest": tight_label,
                "relative_width": width,
            }
        )
    return sorted(ranked, key=lambda r: -r["sensitivity"])


def most_sensitive(stages: list[dict]) -> str | None:
    """Name of the first ranked stage when its sensitivity is above 0, else None."""
    return stages[0]["stage"] if stages and stages[0]["sensitivity"] > 0 else None
