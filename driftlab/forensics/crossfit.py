"""Cross-fitted evidence for a forensic signature: search on one half of the
items, measure on the other, and shrink the published box until its joint
worst case holds there.

The examined items are split by a seeded permutation
(:func:`split_items`): the *search* half drives every search (the 1-D
envelope sweeps and the worst-case attack), the *held-out* half only
measures. A box is accepted when the one-sided lower confidence bound
(:class:`driftlab.forensics.confidence.BoundSettings`) of the held-out metric
at its joint worst case is at least the floor, ``threshold x`` the one-sided
upper confidence bound of the held-out clean metric
(:meth:`driftlab.forensics.confidence.BoundSettings.upper`). The joint worst
case is the lowest bound among the defaults (which every box contains), the
box's corners
(:func:`driftlab.forensics.envelope.corner_patterns`, projected onto the
domains) and the point an attack finds inside the box on the search half.

The per-axis envelope (each element moved alone) is first checked whole
(``scale = 1``); if it fails jointly, it is shrunk towards the defaults by a
common scale, bisected ``shrink_steps`` times, and the largest scale that
passed is published as ``safe``. If none passes (or the held-out clean metric's
own bound is already below the floor, so no box can pass), the per-axis
envelope is published labelled ``per-axis tolerance``: a statement about
one parameter at a time, never a safe region.

Multiple testing: the bisection tests up to ``1 + shrink_steps`` boxes on
the same held-out items, and *which* boxes it tests depends on the earlier
outcomes; over all outcomes it can reach ``2 ** shrink_steps`` distinct
boxes (scale 1 and every dyadic midpoint it may bisect to,
:func:`box_tests`). The family-wise error ``alpha = 1 - confidence`` is
split in halves: the floor's upper bound is taken at ``1 - alpha / 2``, and
every lower bound at the Bonferroni-corrected level ``1 - alpha / (2 x 2 **
shrink_steps)`` (:attr:`driftlab.forensics.confidence.BoundSettings.level`).
Whatever the path, the probability that any box one of whose examined
points (defaults, corners, attack point) truly lies below ``threshold x``
the true held-out clean metric is declared safe is at most ``alpha``: the
upper bound falls below the true clean metric with probability at most
``alpha / 2`` (otherwise the floor is at least the true floor), and some
examined point's lower bound clears the true floor wrongly with probability
at most ``2 ** shrink_steps x alpha / (2 x 2 ** shrink_steps)`` (union
bound; the examined points of every reachable box are fixed by the search
half and the seeds, independent of the held-out items, so each bound keeps
its coverage). (A floor that is the held-out clean point estimate, as
before ``driftlab-signature/4``, moves with the same items and breaks this:
a box just below the true floor then passes more often than ``alpha``.)
(Counting only the ``1 + shrink_steps`` boxes on the path would need the
truth to be monotone in the scale, which the examined points of nested
boxes do not guarantee.) Each box itself is an intersection-union test
(every examined point must pass), which needs no correction. The guarantee
is about the examined points: a failure between them is a search miss, not
a statistical error. It assumes exchangeable held-out items drawn
independently of the search (the seeded split) and, for IoU, holds only
approximately (percentile bootstrap, asymptotic).

:func:`safe_reachability` says before any work whether the configured
number of held-out items can reach ``safe`` at all
(:func:`driftlab.forensics.confidence.min_holdout_items`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import numpy as np

from driftlab.attacks.base import AttackSettings, AttackSpec, run_attack
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import ParameterSpace
from driftlab.forensics.confidence import (
    EXTREME_TAIL,
    BoundSettings,
    level_text,
    metric_of_scores,
    min_holdout_items,
)
from driftlab.forensics.envelope import corner_patterns, corner_values, scaled_bounds

__all__ = [
    "PER_AXIS",
    "SAFE",
    "SPLIT_METHOD",
    "BoxResult",
    "JointCheck",
    "Reachability",
    "bisect_scales",
    "box_tests",
    "holdout_count",
    "joint_check",
    "safe_reachability",
    "search_box",
    "shrink_box",
    "split_items",
]

T = TypeVar("T")

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


def holdout_count(n: int) -> int:
    """Held-out items of :func:`split_items` for ``n`` examined items: ``n - n // 2``."""
    return int(n) - int(n) // 2


def box_tests(shrink_steps: int) -> int:
    """Distinct boxes :func:`shrink_box` can test on the same held-out items.

    The whole envelope (scale 1) and every scale the bisection can reach:
    ``2 ** (j - 1)`` odd multiples of ``2 ** -j`` at step ``j``, so
    ``1 + (2 ** shrink_steps - 1) = 2 ** shrink_steps`` in all (at most
    ``1 + shrink_steps`` of them on one run, but which ones depends on the
    held-out outcomes). This is the Bonferroni divisor of the bounds.

    Parameters
    ----------
    shrink_steps : int
        Bisection steps (>= 0).

    Returns
    -------
    int
        ``2 ** shrink_steps``.

    Raises
    ------
    ValueError
        ``shrink_steps`` not an integer >= 0.
    """
    if isinstance(shrink_steps, bool) or int(shrink_steps) != shrink_steps or shrink_steps < 0:
        raise ValueError(f"shrink_steps: expected an integer >= 0, got {shrink_steps!r}")
    return 2 ** int(shrink_steps)


@attrs.frozen
class Reachability:
    """Whether a signature's settings can declare any box safe.

    Attributes
    ----------
    tests : int
        Boxes tested on the same held-out items (:func:`box_tests`).
    per_test_confidence : float
        Bonferroni-corrected level of every lower bound.
    floor_confidence : float
        Level of the clean metric's upper bound that sets the floor.
    holdout_items : int
        Held-out items the examined items give (``n - n // 2``).
    needed : int or None
        Least held-out count with which a box can pass
        (:func:`driftlab.forensics.confidence.min_holdout_items`); None when
        no count can.
    reachable : bool
        ``needed is not None and holdout_items >= needed``.
    message : str
        One sentence: why no box can be declared safe, naming both numbers
        (empty when reachable).
    bootstrap_warning : str
        For IoU when ``resamples x (1 - per_test_confidence) < 10``
        (:attr:`driftlab.forensics.confidence.BoundSettings.extreme_resample`):
        one sentence saying that each lower bound is the extreme resample and
        its coverage is not controlled; empty otherwise.
    """

    tests: int
    per_test_confidence: float
    floor_confidence: float
    holdout_items: int
    needed: int | None
    reachable: bool
    message: str
    bootstrap_warning: str = ""

    def describe(self) -> dict[str, Any]:
        """JSON-ready form (for a run's summary)."""
        return attrs.asdict(self)


def safe_reachability(
    task: str,
    items: int,
    threshold: float,
    confidence: float,
    shrink_steps: int,
    resamples: int = 1000,
    seed: int = 0,
) -> Reachability:
    """Can ``items`` examined items (half held out) certify any box as safe?

    Uses the verdict's own bounds (:class:`BoundSettings` at the corrected
    level of :func:`box_tests` tests, the floor from the upper bound) on
    perfectly scored items
    (:func:`driftlab.forensics.confidence.min_holdout_items`). For IoU it
    also says when the bootstrap's lower bounds rest on the most extreme
    resamples (``bootstrap_warning``).

    Parameters
    ----------
    task : {"classification", "segmentation"}
    items : int
        Examined items (>= 2).
    threshold : float
        Accepted fraction of the held-out clean metric, in (0, 1].
    confidence : float
        Family-wise one-sided level in (0, 1).
    shrink_steps : int
        Bisection steps of the box (>= 0).
    resamples, seed : int
        Bootstrap settings (IoU).

    Returns
    -------
    Reachability

    Raises
    ------
    ValueError
        Settings out of range.
    """
    settings = BoundSettings(
        confidence=confidence, resamples=resamples, seed=seed, tests=box_tests(shrink_steps)
    )
    holdout = holdout_count(items)
    needed = min_holdout_items(task, threshold, settings)
    reachable = needed is not None and holdout >= needed
    message = ""
    if not reachable:
        level = level_text(settings)
        if needed is None:
            message = (
                f"no box can be declared safe: at threshold {threshold:g} the {level} lower "
                f"bound of a perfect model stays below the floor for any number of held-out "
                f"items (has {holdout}); lower [signature].threshold"
            )
        else:
            message = (
                f"no box can be declared safe: the {level} lower bound needs >= {needed} "
                f"held-out items (all correct) to reach threshold {threshold:g}, has {holdout} "
                f"({items} examined items, half held out); examine >= {2 * needed - 1} items "
                "([split].max_items and the split's size) or lower [signature].threshold, "
                "confidence or shrink_steps"
            )
    warning = ""
    if task == "segmentation" and settings.extreme_resample:
        warning = (
            f"the percentile-bootstrap lower bounds are taken at {level_text(settings)} with "
            f"{int(resamples)} resamples: resamples x (1 - level) = "
            f"{int(resamples) * (1 - settings.level):.3g} < {EXTREME_TAIL}, so each bound is "
            "(close to) the most extreme resample and its coverage is not controlled; raise "
            f"[signature].resamples to >= {math.ceil(EXTREME_TAIL / (1 - settings.level) - 1e-6)} "
            "(the IoU guarantee is approximate in any case: bootstrap, asymptotic)"
        )
    return Reachability(
        tests=settings.tests,
        per_test_confidence=settings.level,
        floor_confidence=settings.floor_level,
        holdout_items=holdout,
        needed=needed,
        reachable=reachable,
        message=message,
        bootstrap_warning=warning,
    )


def bisect_scales(
    check: Callable[[float], T], passed: Callable[[T], bool], shrink_steps: int
) -> tuple[list[T], T | None]:
    """The bisection of :func:`shrink_box` on the common scale, without the measuring.

    ``check(0.5)`` first; a pass moves the lower end up, a fail the upper
    end down; ``shrink_steps`` checks in all.

    Parameters
    ----------
    check : callable
        ``scale -> result`` for a scale in (0, 1).
    passed : callable
        ``result -> bool``.
    shrink_steps : int
        Number of checks (>= 0).

    Returns
    -------
    (list, result or None)
        Every result in order, and the one of the largest passing scale
        (None when none passed).
    """
    low, high, best = 0.0, 1.0, None
    results = []
    for _ in range(int(shrink_steps)):
        middle = (low + high) / 2
        result = check(middle)
        results.append(result)
        if passed(result):
            low, best = middle, result
        else:
            high = middle
    return results, best


def search_box(
    check: Callable[[float], T],
    passed: Callable[[T], bool],
    shrink_steps: int,
    clean_passes: bool,
) -> tuple[list[T], T | None, str]:
    """The decisions of :func:`shrink_box`, without the measuring.

    The whole envelope (scale 1) first; if it fails and the clean metric's
    bound clears the floor, :func:`bisect_scales`.

    Parameters
    ----------
    check : callable
        ``scale -> result`` for a scale in (0, 1].
    passed : callable
        ``result -> bool``: the box's joint worst case clears the floor.
    shrink_steps : int
        Bisection steps (>= 0).
    clean_passes : bool
        Whether the held-out clean metric's bound clears the floor (every
        box contains the defaults, so otherwise none can pass).

    Returns
    -------
    (list, result or None, str)
        Every result in order (scale 1 first), the published passing result
        (None when none passed) and the outcome: ``"whole"``,
        ``"clean below floor"``, ``"shrunk"`` or ``"none passed"``.
    """
    full = check(1.0)
    if passed(full):
        return [full], full, "whole"
    if not clean_passes:
        return [full], None, "clean below floor"
    shrunk, best = bisect_scales(check, passed, shrink_steps)
    return [full, *shrunk], best, "none passed" if best is None else "shrunk"


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
        Acceptance floor in [0, 1]: ``threshold x`` the held-out clean
        metric's upper bound (:meth:`BoundSettings.upper`).

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
    needed: int | None = None,
) -> BoxResult:
    """Largest common scale of the per-axis envelope whose joint worst case
    holds on the held-out items (see module docstring).

    Parameters
    ----------
    bounds_settings : BoundSettings
        Its ``tests`` must be :func:`box_tests` of ``shrink_steps`` (the
        Bonferroni divisor of every bound).
    floor : float
        ``threshold x`` the held-out clean metric's upper bound at
        ``bounds_settings.floor_level`` (:meth:`BoundSettings.upper`).
    shrink_steps : int
        Bisection steps on the scale (>= 0; the smallest scale tried is
        ``2 ** -shrink_steps``).
    corners : int
        Most corners examined per box (>= 2).
    seed : int
        Seed of the corner draw.
    needed : int, optional
        Least held-out count that can pass
        (:func:`driftlab.forensics.confidence.min_holdout_items`), named in
        the reason when there are fewer.

    Returns
    -------
    BoxResult

    Raises
    ------
    ValueError
        ``bounds_settings.tests`` is not ``box_tests(shrink_steps)``.
    """
    if int(bounds_settings.tests) != box_tests(shrink_steps):
        raise ValueError(
            f"bounds_settings.tests: expected box_tests({shrink_steps}) = "
            f"{box_tests(shrink_steps)} (the boxes the bisection can test), got "
            f"{bounds_settings.tests}"
        )
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

    checks, best, outcome = search_box(
        check, lambda c: c.passed, shrink_steps, clean_lower >= floor
    )
    full = checks[0]
    n = len(holdout.raw)
    level = level_text(bounds_settings)
    short = f"{100 * bounds_settings.level:.4g}%"
    if outcome == "whole":
        reason = (
            f"the whole per-axis envelope holds jointly: the {level} lower bound at its "
            f"worst case on {n} held-out items is {full.worst['lower_bound']:.4f} >= floor "
            f"{floor:.4f}"
        )
        return BoxResult(SAFE, full, checks, reason, clean_lower)
    if outcome == "clean below floor":  # every box contains the defaults: none can pass
        few = ""
        if needed is not None and n < needed:
            few = (
                f" (needs >= {needed} held-out items to reach the threshold even with every "
                f"item correct, has {n})"
            )
        reason = (
            f"the {level} lower bound of the clean metric on the {n} held-out items "
            f"({clean_lower:.4f}) is already below the floor ({floor:.4f}, threshold x "
            f"the clean metric's {100 * bounds_settings.floor_level:.4g}% upper bound): too "
            "few items "
            f"to certify any box{few}; the per-axis envelope is a tolerance of one "
            "parameter at a time, not a safe region"
        )
        return BoxResult(PER_AXIS, full, checks, reason, clean_lower)
    if best is None:
        reason = (
            f"the per-axis envelope fails jointly ({level} lower bound "
            f"{full.worst['lower_bound']:.4f} < floor {floor:.4f} on {n} held-out items) and "
            f"so does every common scale down to {checks[-1].scale:g}: a tolerance of one "
            "parameter at a time, not a safe region"
        )
        return BoxResult(PER_AXIS, full, checks, reason, clean_lower)
    reason = (
        f"the per-axis envelope fails jointly ({level} lower bound "
        f"{full.worst['lower_bound']:.4f} < floor {floor:.4f}); shrunk by a common scale "
        f"{best.scale:g} towards the defaults its worst case holds ({short} lower bound "
        f"{best.worst['lower_bound']:.4f} on {n} held-out items)"
    )
    return BoxResult(SAFE, best, checks, reason, clean_lower)
