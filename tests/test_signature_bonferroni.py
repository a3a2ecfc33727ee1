"""Forensic signatures: a box can be declared safe with the default settings, the
run warns when it cannot, and the box search's many tests on the same held-out
items are Bonferroni-corrected (known-answer simulations of the false-safe rate)."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from driftlab.forensics.confidence import (
    BoundSettings,
    clopper_pearson_lower,
    clopper_pearson_upper,
    level_text,
    min_holdout_items,
)
from driftlab.forensics.config import SignatureSection, SplitSection
from driftlab.forensics.crossfit import (
    SAFE,
    box_tests,
    holdout_count,
    safe_reachability,
    search_box,
)
from driftlab.forensics.signature import signature_headline
from driftlab.forensics.validate import SignatureError, validate_signature
from driftlab.forensics.verify import check_measurements
from tests.signature_cases import (
    BrightnessBand,
    Constant,
    constructed_problem,
    constructed_signature,
)

ALPHA = 0.05

# -- how many boxes the search can test --------------------------------------------------


def _reachable_scales(shrink_steps: int) -> tuple[set[float], int]:
    """Every scale :func:`search_box` examines over all pass/fail outcomes, and the most
    checks one run makes."""
    seen: set[float] = set()
    longest = 0
    for outcomes in itertools.product([False, True], repeat=shrink_steps + 1):
        answers = iter(outcomes)
        checks, _, _ = search_box(
            lambda scale, answers=answers: (scale, next(answers)),
            lambda c: c[1],
            shrink_steps,
            True,
        )
        seen.update(scale for scale, _ in checks)
        longest = max(longest, len(checks))
    return seen, longest


@pytest.mark.parametrize("shrink_steps", [0, 1, 2, 3, 5])
def test_box_tests_counts_every_box_the_bisection_can_reach(shrink_steps):
    scales, longest = _reachable_scales(shrink_steps)
    assert len(scales) == box_tests(shrink_steps) == 2**shrink_steps
    # scale 1 and every dyadic midpoint j / 2**shrink_steps
    assert scales == {1.0, *(j / 2**shrink_steps for j in range(1, 2**shrink_steps))}
    assert longest == 1 + shrink_steps  # one run tests fewer, but which ones depends on data
    with pytest.raises(ValueError, match="shrink_steps"):
        box_tests(-1)


def test_bound_level_is_bonferroni_corrected_and_named():
    settings = BoundSettings(confidence=0.95, tests=32)
    # half the family-wise error for the floor, half shared by the 32 box tests
    assert settings.level == pytest.approx(1 - 0.05 / 64, abs=1e-15)
    assert settings.floor_level == pytest.approx(0.975, abs=1e-15)
    # the bounds of 10 of 10 items at the corrected levels, in closed form
    scores = np.ones(10)
    assert settings.lower("classification", scores) == pytest.approx(
        (0.05 / 64) ** (1 / 10), rel=1e-12
    )
    assert settings.upper("classification", scores) == 1.0
    # the upper bound of 9 of 10: P(X <= 9 | p_U) = 1 - p_U ** 10 = 0.025
    assert settings.upper("classification", np.r_[np.ones(9), 0.0]) == pytest.approx(
        0.975 ** (1 / 10), rel=1e-12
    )
    described = settings.describe("classification")
    assert described["correction"] == "bonferroni" and described["tests"] == 32
    assert described["per_test_confidence"] == settings.level and described["confidence"] == 0.95
    assert described["floor_confidence"] == settings.floor_level
    assert described["error_split"] == {
        "floor": pytest.approx(0.025),
        "boxes": pytest.approx(0.025),
    }
    assert described["floor_method"] == "clopper-pearson-upper"
    assert described["extreme_resample"] is None
    assert (
        "Bonferroni" in described["description"] and "Clopper-Pearson" in described["description"]
    )
    assert "upper bound" in described["description"]
    assert level_text(settings) == "99.92% (Bonferroni, 32 tests, 95% family-wise)"
    assert level_text(BoundSettings()) == "97.5%"
    with pytest.raises(ValueError, match="tests: expected an integer >= 1"):
        BoundSettings(tests=0)
    with pytest.raises(ValueError, match="rounds to 1"):
        BoundSettings(tests=2**60)


# -- finding 1: "safe" must be reachable ---------------------------------------------------


def test_min_holdout_items_known_values():
    plain = BoundSettings(confidence=0.95)
    # closed form: (1 - level) ** (1 / n) >= threshold  <=>  n >= log(1 - level) / log(threshold)
    # (all correct: the floor's upper bound is 1, so the floor is the threshold)
    assert min_holdout_items("classification", 0.95, plain) == 72
    assert math.ceil(math.log(0.025) / math.log(0.95)) == 72
    default = BoundSettings(confidence=0.95, tests=box_tests(5))
    needed = min_holdout_items("classification", 0.95, default)
    assert needed == math.ceil(math.log(0.05 / 64) / math.log(0.95)) == 140
    assert clopper_pearson_lower(needed, needed, default.level) >= 0.95
    assert clopper_pearson_lower(needed - 1, needed - 1, default.level) < 0.95
    # with fewer items no count of correct items clears threshold x its own clean accuracy,
    # let alone threshold x its upper bound (the floor)
    for n in range(needed - 5, needed):
        for k in range(1, n + 1):
            assert clopper_pearson_lower(k, n, default.level) < 0.95 * k / n
            assert k / n <= clopper_pearson_upper(k, n, default.floor_level)
    assert min_holdout_items("classification", 1.0, default) is None  # never reaches 1
    assert min_holdout_items("segmentation", 0.95, default) == 1  # bootstrap of perfect items
    with pytest.raises(ValueError, match="threshold"):
        min_holdout_items("classification", 0.0, default)


def test_default_item_cap_can_reach_safe_and_sixty_four_cannot():
    sg, sp = SignatureSection(), SplitSection()
    reach = safe_reachability(
        "classification", sp.max_items, sg.threshold, sg.confidence, sg.shrink_steps
    )
    assert reach.reachable and reach.message == ""
    assert reach.tests == 2**sg.shrink_steps and reach.holdout_items == holdout_count(sp.max_items)
    assert reach.holdout_items >= reach.needed
    few = safe_reachability("classification", 64, sg.threshold, sg.confidence, sg.shrink_steps)
    assert not few.reachable
    assert "no box can be declared safe" in few.message
    assert ">= 140 held-out items" in few.message and "has 32" in few.message
    never = safe_reachability("classification", 256, 1.0, 0.95, 5)
    assert not never.reachable and never.needed is None and "any number" in never.message


def test_a_perfect_model_is_declared_safe_with_the_default_settings():
    sg, sp = SignatureSection(), SplitSection()
    sig = constructed_signature(
        Constant(),  # every item correct at every parameter value
        n=sp.max_items,
        threshold=sg.threshold,
        points=sg.points,
        refine=sg.refine,
        steps=sg.steps,
        seed=sg.seed,
        confidence=sg.confidence,
        resamples=sg.resamples,
        shrink_steps=sg.shrink_steps,
        corners=sg.corners,
    )
    assert sig["box"]["status"] == SAFE and sig["box"]["scale"] == 1.0
    assert sig["acceptance"]["min_holdout_items"] == 140
    assert sig["statistics"]["tests"] == 32
    assert sig["worst_case"]["lower_bound"] >= sig["acceptance"]["floor"] == 0.95
    assert signature_headline(sig)[0].startswith("safe box")
    validate_signature(json.loads(json.dumps(sig)))


def test_a_perfect_model_on_too_few_items_is_never_safe_and_says_why():
    sig = constructed_signature(Constant(), n=64, threshold=0.95, shrink_steps=5, steps=1)
    assert sig["box"]["status"] != SAFE
    assert (
        "needs >= 140 held-out items" in sig["box"]["reason"] and "has 32" in sig["box"]["reason"]
    )
    line = signature_headline(sig)[0]
    assert "no box can be declared safe: needs >= 140 held-out items, has 32" in line


# -- finding 2: the false-safe rate of the whole search ------------------------------------


def _false_safe_rate(tests: int, shrink_steps: int, n: int, p_bad: float, runs: int, seed: int):
    """Run :func:`search_box` with Clopper-Pearson bounds at ``BoundSettings(tests=tests)``
    on simulated held-out items: the defaults are correct on all ``n`` items (clean 1,
    floor = threshold 0.8) and every box's examined point has true accuracy ``p_bad``
    < 0.8 (independent items per box), so every box declared safe is a false verdict."""
    threshold = 0.8
    settings = BoundSettings(confidence=1 - ALPHA, tests=tests)
    lower = [settings.lower("classification", np.r_[np.ones(k), np.zeros(n - k)])
             for k in range(n + 1)]  # fmt: skip
    rng = np.random.default_rng(seed)
    floor = threshold * settings.upper("classification", np.ones(n))  # upper bound of n of n: 1
    assert floor == threshold
    false_safe = 0
    for _ in range(runs):

        def check(scale: float) -> float:  # the joint worst case's bound
            return min(lower[n], lower[int(rng.binomial(n, p_bad))])

        _, best, _ = search_box(check, lambda b: b >= floor, shrink_steps, lower[n] >= floor)
        false_safe += best is not None
    per_test = stats.binom.sf(
        next(k for k in range(n + 1) if lower[k] >= floor) - 1, n, p_bad
    )  # exact size of one box test
    exact = 1 - (1 - per_test) ** (1 + shrink_steps)  # every box fails until one passes
    return false_safe / runs, exact


def test_corrected_search_keeps_the_false_safe_rate_below_alpha():
    shrink_steps, runs = 5, 3000
    rate, exact = _false_safe_rate(box_tests(shrink_steps), shrink_steps, 100, 0.799, runs, 1)
    slack = 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert rate <= ALPHA + slack
    assert exact <= ALPHA
    assert abs(rate - exact) <= 3 * math.sqrt(max(exact, 1e-3) / runs)  # the known answer


def test_uncorrected_search_would_exceed_alpha():
    shrink_steps, runs = 5, 3000
    # one test: each bound at 1 - alpha / 2 (the floor's half is unused here: clean is 1)
    rate, exact = _false_safe_rate(1, shrink_steps, 94, 0.799, runs, 2)
    assert exact > 2 * ALPHA  # 1 - (1 - 0.0234) ** 6 = 0.13
    assert rate > ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert abs(rate - exact) <= 3 * math.sqrt(exact * (1 - exact) / runs)


def test_counting_only_the_tests_on_the_path_can_exceed_alpha():
    """Exact computation with valid level-``a`` tests driven by one uniform ``U`` shared
    by every box (the same held-out items). The box at scale 1/2 holds and passes when
    U < 1/2; every other box is false and passes on its own interval of length ``a``
    (so each test alone has size ``a``), placed where the bisection reaches it: scale 1
    always, 3/4 and 5/8 when U < 1/2, 1/4 and 1/8 otherwise. Five false boxes can then be
    declared safe on disjoint events, 5 a in all: dividing alpha by the 1 + shrink_steps
    = 4 tests on one path gives 1.25 alpha; dividing by box_tests = 8 stays below alpha."""
    shrink_steps = 3
    starts = {1.0: 0.9, 0.75: 0.0, 0.625: 0.2, 0.25: 0.5, 0.125: 0.7, 0.375: 0.3, 0.875: 0.4}
    assert set(starts) | {0.5} == _reachable_scales(shrink_steps)[0]
    grid = (np.arange(20_000) + 0.5) / 20_000

    def probability(tests: int) -> float:
        a = ALPHA / tests
        for start in starts.values():  # each false box's test has size a
            assert np.mean((grid >= start) & (grid < start + a)) == pytest.approx(a, abs=1e-4)

        def result(scale: float, u: float) -> tuple[float, bool]:
            if scale == 0.5:
                return scale, u < 0.5
            return scale, starts[scale] <= u < starts[scale] + a

        hits = 0
        for u in grid:
            _, best, _ = search_box(lambda s, u=u: result(s, u), lambda c: c[1],
                                    shrink_steps, True)  # fmt: skip
            hits += best is not None and best[0] != 0.5
        return hits / len(grid)

    assert probability(1 + shrink_steps) == pytest.approx(5 * ALPHA / 4, abs=2e-4)
    assert probability(1 + shrink_steps) > ALPHA
    assert probability(box_tests(shrink_steps)) == pytest.approx(5 * ALPHA / 8, abs=2e-4)
    assert probability(box_tests(shrink_steps)) <= ALPHA


# -- the recorded correction is checked and recomputed -------------------------------------


@pytest.fixture(scope="module")
def band():
    return json.loads(json.dumps(constructed_signature(BrightnessBand())))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (
            lambda s: s["statistics"].update(per_test_confidence=0.95),
            "statistics.per_test_confidence",
        ),
        (lambda s: s["statistics"].update(tests=5), "statistics.tests"),
        (lambda s: s["acceptance"].update(min_holdout_items=3), "acceptance.min_holdout_items"),
        (lambda s: s["statistics"].pop("correction"), "statistics.correction"),
    ],
    ids=["uncorrected-level", "path-count", "min-items", "no-correction"],
)
def test_a_recorded_correction_that_does_not_match_is_refused(band, edit, field):
    forged = copy.deepcopy(band)
    edit(forged)
    with pytest.raises(SignatureError) as info:
        validate_signature(forged)
    assert f"field '{field}'" in str(info.value)


def test_old_layout_without_correction_is_refused(band):
    old = copy.deepcopy(band)
    old["schema"] = "driftlab-signature/2"
    with pytest.raises(SignatureError, match="not corrected for the boxes tested"):
        validate_signature(old)


def test_verification_recomputes_bounds_at_the_corrected_level(band):
    problem, _ = constructed_problem(BrightnessBand())
    measured = check_measurements(band, problem)
    assert measured.status == band["box"]["status"] == SAFE
    # a consistent relabelling to a laxer family-wise level: for accuracy validation
    # already recomputes the held-out clean bounds from the correct count, and the bounds
    # re-measured at its corrected level do not reproduce
    forged = copy.deepcopy(band)
    settings = BoundSettings(confidence=0.5, tests=forged["statistics"]["tests"])
    forged["statistics"].update(
        confidence=0.5,
        per_test_confidence=settings.level,
        floor_confidence=settings.floor_level,
        error_split={"floor": settings.floor_error, "boxes": settings.box_error},
    )
    forged["acceptance"]["min_holdout_items"] = min_holdout_items(
        "classification", forged["acceptance"]["threshold"], settings
    )
    with pytest.raises(SignatureError, match=r"acceptance\.clean_holdout_lower_bound"):
        validate_signature(copy.deepcopy(forged))
    with pytest.raises(SignatureError, match="clean_holdout_lower_bound"):
        check_measurements(forged, problem)
    # and a per-test level that is not the correction is refused even unvalidated
    bad = copy.deepcopy(band)
    bad["statistics"]["per_test_confidence"] = 0.95
    with pytest.raises(SignatureError, match=r"statistics\.per_test_confidence"):
        check_measurements(bad, problem)
