"""The acceptance floor is a confidence statement too: ``threshold x`` a one-sided upper
bound of the held-out clean metric, with the family-wise error split between the floor
and the box tests. Known-answer (exact binomial) false-safe rates with a clean accuracy
below 1, under the new floor and under the old point-estimate floor; and the
percentile bootstrap's extreme-resample warning (IoU)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from scipy import stats

from driftlab.forensics.confidence import (
    BoundSettings,
    bootstrap_iou_lower,
    bootstrap_iou_upper,
    clopper_pearson_lower,
    clopper_pearson_upper,
)
from driftlab.forensics.crossfit import box_tests, safe_reachability, search_box
from driftlab.forensics.validate import SignatureError, validate_signature
from driftlab.forensics.verify import check_measurements
from tests.signature_cases import BrightnessBand, constructed_problem, constructed_signature

ALPHA = 0.05
THRESHOLD = 0.95


def _scores(k: int, n: int) -> np.ndarray:
    return np.r_[np.ones(k), np.zeros(n - k)]


def _rule(n: int, shrink_steps: int, floor: str) -> tuple[np.ndarray, np.ndarray]:
    """Per count ``k`` of correct held-out items: the lower bound every box point gets,
    and the floor when the defaults have ``k`` correct.

    ``floor="upper"``: this module's rule (:class:`BoundSettings`: floor ``threshold x``
    the upper bound at ``1 - alpha / 2``, lower bounds at ``1 - alpha / (2 tests)``).
    ``floor="point"``: the rule before ``driftlab-signature/4`` (floor ``threshold x
    k / n``, lower bounds at ``1 - alpha / tests``)."""
    tests = box_tests(shrink_steps)
    settings = BoundSettings(confidence=1 - ALPHA, tests=tests)
    counts = range(n + 1)
    if floor == "upper":
        lower = np.array([settings.lower("classification", _scores(k, n)) for k in counts])
        floors = THRESHOLD * np.array(
            [settings.upper("classification", _scores(k, n)) for k in counts]
        )
    else:
        lower = np.array([clopper_pearson_lower(k, n, 1 - ALPHA / tests) for k in counts])
        floors = THRESHOLD * np.arange(n + 1) / n
    return lower, floors


def _false_safe_exact(n: int, p0: float, shrink_steps: int, floor: str) -> tuple[float, float]:
    """Exact false-safe rates of the box search when the true held-out clean accuracy is
    ``p0`` and every examined point of every box has true accuracy just below the true
    floor ``threshold x p0`` (so every box declared safe is a false verdict).

    The defaults' count ``K0 ~ Binomial(n, p0)`` sets the floor; each box's worst point
    has ``K1 ~ Binomial(n, p1)``, independent of ``K0`` and of the other boxes. A run
    declares a box safe when the defaults clear the floor and one of its ``1 +
    shrink_steps`` checks does (every check fails until one passes). Returns that rate
    and ``P(lower(K1) >= floor(K0))`` for one point alone (the event the union bound
    controls at ``alpha``)."""
    p1 = THRESHOLD * p0 - 1e-9
    lower, floors = _rule(n, shrink_steps, floor)
    clean = stats.binom.pmf(np.arange(n + 1), n, p0)
    first = np.searchsorted(lower, floors, side="left")  # least k1 whose bound clears it
    q = stats.binom.sf(first - 1, n, p1)
    defaults_pass = lower >= floors
    search = float(np.sum(clean * defaults_pass * (1 - (1 - q) ** (1 + shrink_steps))))
    return search, float(np.sum(clean * q))


@pytest.mark.parametrize(
    ("n", "p0", "shrink_steps"),
    [(600, 0.9, 0), (2000, 0.9, 5), (2000, 0.8, 5)],
    ids=["one-box-n600", "search-n2000-p0.9", "search-n2000-p0.8"],
)
def test_floor_from_the_upper_bound_keeps_the_false_safe_rate_below_alpha(n, p0, shrink_steps):
    search, point = _false_safe_exact(n, p0, shrink_steps, "upper")
    assert search <= ALPHA
    assert point <= ALPHA  # one bad point against the random floor, defaults ignored


def test_point_estimate_floor_exceeds_alpha():
    # one box, one test at 95 %: the floor moving with the held-out items nearly doubles
    # the error (0.090 > 0.05), although each lower bound alone has coverage 95 %
    search, point = _false_safe_exact(600, 0.9, 0, "point")
    assert search > 1.5 * ALPHA and point > 1.5 * ALPHA
    # the whole default search (32 boxes, Bonferroni): 0.059 > 0.05
    search, _ = _false_safe_exact(2000, 0.8, 5, "point")
    assert search > ALPHA


def test_exact_rate_is_what_the_box_search_does():
    """A seeded simulation of :func:`search_box` reproduces the exact rate (old rule,
    where it is large enough to see with 3000 runs)."""
    n, p0, shrink_steps, runs = 2000, 0.8, 5, 3000
    exact, _ = _false_safe_exact(n, p0, shrink_steps, "point")
    lower, floors = _rule(n, shrink_steps, "point")
    rng = np.random.default_rng(3)
    p1 = THRESHOLD * p0 - 1e-9
    hits = 0
    for _ in range(runs):
        k0 = int(rng.binomial(n, p0))

        def check(scale: float, k0: int = k0) -> float:  # the joint worst case's bound
            return min(lower[k0], lower[int(rng.binomial(n, p1))])

        _, best, _ = search_box(
            check, lambda b, k0=k0: b >= floors[k0], shrink_steps, lower[k0] >= floors[k0]
        )
        hits += best is not None
    assert abs(hits / runs - exact) <= 4 * math.sqrt(exact * (1 - exact) / runs)


def test_upper_bounds_known_values():
    # Clopper-Pearson upper: 1 for k = n; P(X <= 0 | p) = (1 - p) ** n = 1 - level for k = 0
    assert clopper_pearson_upper(10, 10, 0.975) == 1.0
    assert clopper_pearson_upper(0, 10, 0.975) == pytest.approx(1 - 0.025 ** (1 / 10))
    k, n = 540, 600
    upper = clopper_pearson_upper(k, n, 0.975)
    assert stats.binom.cdf(k, n, upper) == pytest.approx(0.025, rel=1e-9)
    assert k / n < upper < 1
    with pytest.raises(ValueError, match="clopper_pearson_upper"):
        clopper_pearson_upper(11, 10)
    # the bootstrap's upper bound uses the same seeded resamples as its lower bound
    rng = np.random.default_rng(0)
    union = rng.integers(50, 100, 40)
    counts = np.stack([rng.integers(0, 50, 40), union], axis=1)
    low = bootstrap_iou_lower(counts, 0.975, 500, seed=1)
    high = bootstrap_iou_upper(counts, 0.975, 500, seed=1)
    estimate = counts[:, 0].sum() / counts[:, 1].sum()
    assert low < estimate < high
    assert bootstrap_iou_upper(np.ones((3, 2), np.int64), 0.975, 100) == 1.0


# -- IoU: the percentile bootstrap's far tail --------------------------------------------


def test_bootstrap_describes_when_its_bound_is_the_extreme_resample():
    default = BoundSettings(confidence=0.95, resamples=1000, tests=box_tests(5))
    assert 1000 * (1 - default.level) < 10 and default.extreme_resample
    described = default.describe("segmentation")
    assert described["extreme_resample"] is True
    assert described["floor_method"] == "percentile-bootstrap-upper"
    assert "most extreme resample" in described["description"]
    assert "not controlled" in described["description"]
    assert "approximate" in described["description"]
    enough = BoundSettings(confidence=0.95, resamples=12_800, tests=box_tests(5))
    assert not enough.extreme_resample
    assert "not controlled" not in enough.describe("segmentation")["description"]
    assert "approximate" in enough.describe("segmentation")["description"]


def test_reachability_warns_about_the_extreme_resample_but_does_not_refuse():
    reach = safe_reachability("segmentation", 256, 0.95, 0.95, 5, resamples=1000)
    assert reach.reachable  # the default configuration is not refused
    assert "most extreme resample" in reach.bootstrap_warning
    assert "not controlled" in reach.bootstrap_warning and ">= 12800" in reach.bootstrap_warning
    assert safe_reachability("segmentation", 256, 0.95, 0.95, 5, 12_800).bootstrap_warning == ""
    assert safe_reachability("classification", 280, 0.95, 0.95, 5).bootstrap_warning == ""
    assert reach.describe()["floor_confidence"] == pytest.approx(0.975)


# -- the recorded floor and levels are checked ---------------------------------------------


@pytest.fixture(scope="module")
def imperfect():
    """A signature whose model is wrong on 6 of 60 items at the defaults (clean < 1)."""
    problem, _ = constructed_problem(BrightnessBand(), 60, wrong=6)
    sig = json.loads(json.dumps(constructed_signature(BrightnessBand(), 60, wrong=6)))
    return sig, problem


def test_signature_records_the_floor_as_a_confidence_statement(imperfect):
    sig, problem = imperfect
    acc, st = sig["acceptance"], sig["statistics"]
    n = len(sig["cross_fit"]["holdout_ids"])
    k = round(acc["clean_holdout"] * n)
    assert 0 < k < n  # a clean metric below 1: the upper bound is above the estimate
    assert st["floor_confidence"] == pytest.approx(0.975)
    assert st["error_split"] == {"floor": pytest.approx(0.025), "boxes": pytest.approx(0.025)}
    assert acc["clean_holdout_upper_bound"] == clopper_pearson_upper(k, n, 0.975) > k / n
    assert acc["floor"] == pytest.approx(0.8 * acc["clean_holdout_upper_bound"])
    measured = check_measurements(sig, problem)
    assert measured.floor == pytest.approx(acc["floor"])
    # a consistent point-estimate floor (the old rule) is refused by validation, and its
    # floor does not reproduce on re-measuring
    forged = copy.deepcopy(sig)
    forged["acceptance"].update(
        clean_holdout_upper_bound=acc["clean_holdout"], floor=0.8 * acc["clean_holdout"]
    )
    with pytest.raises(SignatureError, match=r"acceptance\.clean_holdout_upper_bound"):
        validate_signature(copy.deepcopy(forged))
    with pytest.raises(SignatureError, match=r"acceptance\.floor"):
        check_measurements(forged, problem)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s["statistics"].update(floor_confidence=0.95), "statistics.floor_confidence"),
        (
            lambda s: s["statistics"].update(error_split={"floor": 0.04, "boxes": 0.01}),
            "statistics.error_split.floor",
        ),
        (
            lambda s: s["statistics"].update(floor_method="percentile-bootstrap-upper"),
            "statistics.floor_method",
        ),
        (lambda s: s["statistics"].update(extreme_resample=True), "statistics.extreme_resample"),
        (
            lambda s: s["acceptance"].update(floor=0.8 * s["acceptance"]["clean_holdout"]),
            "acceptance.floor",
        ),
        (lambda s: s["acceptance"].pop("clean_holdout_upper_bound"), "acceptance"),
    ],
    ids=["floor-level", "error-split", "floor-method", "extreme-flag", "point-floor", "no-upper"],
)
def test_a_recorded_floor_that_does_not_match_is_refused(imperfect, edit, field):
    forged = copy.deepcopy(imperfect[0])
    edit(forged)
    with pytest.raises(SignatureError) as info:
        validate_signature(forged)
    assert f"field '{field}" in str(info.value)


def test_signature_of_version_3_is_refused(imperfect):
    old = copy.deepcopy(imperfect[0])
    old["schema"] = "driftlab-signature/3"
    with pytest.raises(SignatureError, match="upper confidence bound"):
        validate_signature(old)
