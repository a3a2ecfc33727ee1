"""Cross-fitted evidence for a forensic signature: search on one half of the
items, measure on the other, and shrink the published box until its joint
worst case holds there.

The examined items are split by a seeded permutation
(:func:`split_items`): the *search* half drives every search (the 1-D
envelope sweeps and the worst-case attack), the *held-out* half only
measures. A box is accepted when the one-sided lower confidence bound
(:class:`driftlab.forensics.confidence.BoundSettings`) of the held-out metric
at its joint worst case is at least the floor, ``threshold x`` the held-out
clean metric. The joint worst case is the lowest bound among the defaults
(which every box contains), the box's corners
(:func:`driftlab.forensics.envelope.corner_patterns`, projected onto the
domains) and the point an attack finds inside the box on the search half.

The per-axis envelope (each element moved alone) is first checked whole
(``scale = 1``); if it fails jointly, it is shrunk towards the defaults by a
common scale, bisected ``shrink_steps`` times, and the largest scale that
passed is published as ``safe``. If none passes (or the held-out clean metric's
own bound is already below the floor, so no box can pass), the per-axis
envelope is published labelled ``per-axis tolerance``: a statement about
one parameter at a time, never a safe region.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from driftlab.attacks.base import AttackSettings, AttackSpec, run_attack
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import ParameterSpace
from driftlab.forensics.confidence import BoundSettings, metric_of_scores
from driftlab.forensics.envelope import corner_patterns, corner_values, scaled_bounds

__all__ = [
    "PER_AXIS",
    "SAFE",
    "SPLIT_METHOD",
    "BoxResult",
    "JointCheck",
    "joint_check",
    "shrink_box",
    "split_items",
]

SAFE = "safe"
PER_AXIS = "per-axis tolerance"
SPLIT_METHOD = (
    "numpy.random.default_rng(seed).permutation(n) of the examined items in recorded "
    "order; the first n // 2 positions (sorted) search, the rest (sorted) are held out"
)


def split_items(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n`` items into a search half and a held-out half.

    Parameters
    ----------
    n : int
        Number of examined items (>= 2).
    seed : int
        Seed of :func:`numpy.random.default_rng` (>= 0).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Sorted int64 positions: ``n // 2`` search items and ``n - n // 2``
        held-out items, disjoint, together ``0 .. n - 1``.

    Raises
    ------
    ValueError
        Fewer than 2 items or a negative seed.
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"cross-fitting needs at least 2 examined items, got {n}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"split seed: expected an integer >= 0, got {seed!r}")
    order = np.random.default_rng(int(seed)).permutation(int(n))
    half = int(n) // 2
    return np.sort(order[:half]).astype(np.int64), np.sort(order[half:]).astype(np.int64)


@attrs.frozen
class JointCheck:
    """The joint worst case of one box on the held-out items.

    Attributes
    ----------
    scale : float
        Common scale of the per-axis envelope, in [0, 1].
    bounds : dict
        ``{"stage.param": (low, high)}`` float64 arrays.
    corners : list of dict
        Per examined corner: ``pattern``, ``metric`` and ``lower_bound`` on the
        held-out items.
    search : dict
        The attack's point: ``values``, ``metric`` and ``lower_bound`` on the
        held-out items, ``metric_search`` on the search items.
    worst : dict
        The candidate with the lowest bound (then the lowest metric):
        ``source`` (``default``, ``corner`` or ``search``), ``corner``
        (pattern or None), ``values``, ``metric``, ``lower_bound``.
    passed : bool
        ``worst["lower_bound"] >= floor``.
    """

    scale: float
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = attrs.field(eq=False)
    corners: list[dict[str, Any]]
    search: dict[str, Any] = attrs.field(eq=False)
    worst: dict[str, Any] = attrs.field(eq=False)
    passed: bool

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no values)."""
        return {
            "scale": self.scale,
            "worst_source": self.worst["source"],
            "worst_metric": self.worst["metric"],
            "worst_lower_bound": self.worst["lower_bound"],
            "passed": self.passed,
        }


def joint_check(
    search: AttackProblem,
    holdout: AttackProblem,
    space: ParameterSpace,
    envelope: Mapping[str, dict],
    scale: float,
    patterns: list[str],
    attack: AttackSpec,
    settings: AttackSettings,
    bounds_settings: BoundSettings,
    floor: float,
) -> JointCheck:
    """Joint worst case of the envelope box shrunk by ``scale`` (see module docstring).

    Parameters
    ----------
    search, holdout : AttackProblem
        The two halves (same model and pipeline).
    space : ParameterSpace
        Every attacked parameter, with full-domain boxes.
    envelope : mapping
        Per-axis envelope from :func:`driftlab.forensics.envelope.sweep_envelope`.
    scale : float
        In [0, 1].
    patterns : list of str
        Corners to examine (:func:`driftlab.forensics.envelope.corner_patterns`).
    attack : AttackSpec
        Worst-case search run on ``search`` inside the box (lambda 0).
    settings : AttackSettings
    bounds_settings : BoundSettings
        Lower-bound method.
    floor : float
        Acceptance floor in [0, 1].

    Returns
    -------
    JointCheck
    """
    task = holdout.task
    bounds = scaled_bounds(envelope, space, scale)

    def measure(values: Mapping[str, np.ndarray]) -> tuple[float, float]:
        scores = holdout.scores(values)
        return metric_of_scores(task, scores), bounds_settings.lower(task, scores)

    corners = []
    metric, lower = measure({})
    candidates: list[dict[str, Any]] = [
        {
            "source": "default",
            "corner": None,
            "values": space.defaults(),
            "metric": metric,
            "lower_bound": lower,
        }
    ]
    for pattern in patterns:
        values = corner_values(space, bounds, pattern)
        metric, lower = measure(values)
        corners.append({"pattern": pattern, "metric": metric, "lower_bound": lower})
        candidates.append(
            {
                "source": "corner",
                "corner": pattern,
                "values": values,
                "metric": metric,
                "lower_bound": lower,
            }
        )
    found = run_attack(attack, search, settings, targets=list(space.keys), bounds=bounds)
    metric, lower = measure(found.values)
    point = {
        "values": found.values,
        "metric": metric,
        "lower_bound": lower,
        "metric_search": found.attacked["metric"],
    }
    candidates.append({"source": "search", "corner": None, **point})
    worst = min(candidates, key=lambda c: (c["lower_bound"], c["metric"]))
    return JointCheck(
        scale=float(scale),
        bounds=bounds,
        corners=corners,
        search=point,
        worst=worst,
        passed=bool(worst["lower_bound"] >= floor),
    )


@attrs.frozen
class BoxResult:
    """Outcome of :func:`shrink_box`.

    Attributes
    ----------
    status : {"safe", "per-axis tolerance"}
    published : JointCheck
        The box published: the largest passing scale when ``safe``, the whole
        per-axis envelope (scale 1) otherwise.
    checks : list of JointCheck
        Every box examined, in order.
    reason : str
        One sentence on why this status.
    clean_lower_bound : float
        Lower bound of the held-out clean metric.
    """

    status: str
    published: JointCheck
    checks: list[JointCheck]
    reason: str
    clean_lower_bound: float


def shrink_box(
    search: AttackProblem,
    holdout: AttackProblem,
    space: ParameterSpace,
    envelope: Mapping[str, dict],
    *,
    attack: AttackSpec,
    settings: AttackSettings,
    bounds_settings: BoundSettings,
    floor: float,
    shrink_steps: int = 5,
    corners: int = 16,
    seed: int = 0,
) -> BoxResult:
    """Largest common scale of the per-axis envelope whose joint worst case
    holds on the held-out items (see module docstring).

    Parameters
    ----------
    shrink_steps : int
        Bisection steps on the scale (>= 0; the smallest scale tried is
        ``2 ** -shrink_steps``).
    corners : int
        Most corners examined per box (>= 2).
    seed : int
        Seed of the corner draw.

    Returns
    -------
    BoxResult
    """
    total = sum(s.default.size for s in space.slots)
    patterns = corner_patterns(total, corners, seed)
    clean_lower = bounds_settings.lower(holdout.task, holdout.scores())

    def check(scale: float) -> JointCheck:
        return joint_check(
            search,
            holdout,
            space,
            envelope,
            scale,
            patterns,
            attack,
            settings,
            bounds_settings,
            floor,
        )

    full = check(1.0)
    checks = [full]
    n = len(holdout.raw)
    level = f"{bounds_settings.confidence:.0%}"
    if full.passed:
        reason = (
            f"the whole per-axis envelope holds jointly: the {level} lower bound at its "
            f"worst case on {n} held-out items is {full.worst['lower_bound']:.4f} >= floor "
            f"{floor:.4f}"
        )
        return BoxResult(SAFE, full, checks, reason, clean_lower)
    if clean_lower < floor:  # every box contains the defaults: none can pass
        reason = (
            f"the {level} lower bound of the clean metric on the {n} held-out items "
            f"({clean_lower:.4f}) is already below the floor ({floor:.4f}): too few items "
            "to certify any box; the per-axis envelope is a tolerance of one parameter at a "
            "time, not a safe region"
        )
        return BoxResult(PER_AXIS, full, checks, reason, clean_lower)
    low, high, best = 0.0, 1.0, None
    for _ in range(shrink_steps):
        middle = (low + high) / 2
        result = check(middle)
        checks.append(result)
        if result.passed:
            low, best = middle, result
        else:
            high = middle
    if best is None:
        reason = (
            f"the per-axis envelope fails jointly ({level} lower bound "
            f"{full.worst['lower_bound']:.4f} < floor {floor:.4f} on {n} held-out items) and "
            f"so does every common scale down to {high:g}: a tolerance of one parameter at a "
            "time, not a safe region"
        )
        return BoxResult(PER_AXIS, full, checks, reason, clean_lower)
    reason = (
        f"the per-axis envelope fails jointly ({level} lower bound "
        f"{full.worst['lower_bound']:.4f} < floor {floor:.4f}); shrunk by a common scale "
        f"{best.scale:g} towards the defaults its worst case holds ({level} lower bound "
        f"{best.worst['lower_bound']:.4f} on {n} held-out items)"
    )
    return BoxResult(SAFE, best, checks, reason, clean_lower)
