"""Re-check a forensic signature: never trust a number in the file, re-measure it.

:func:`verify_signature` reads the file with
:func:`driftlab.forensics.validate.load_signature` (structure, types, sizes,
internal relations), optionally checks an Ed25519 seal
(:mod:`driftlab.forensics.signing`), then checks the weights' SHA-256 and the
data fingerprint, resolves the recorded pipeline against the *registry's*
declared domains (a pipeline in the file that widens a declared domain is
refused unless explicitly allowed), and re-measures on the recorded items
(:func:`check_measurements`): the clean metric on all, search and held-out
items, both ends and the steepest point of every 1-D envelope sweep, every
recorded corner of the published box, the attack's point and the defaults,
the lower bounds (at the Bonferroni-corrected level ``1 - (1 - confidence) /
(2 tests)`` recomputed from the recorded family-wise ``confidence`` and
``box.shrink_steps``, never the recorded per-test level), the clean metric's
upper bound and the floor ``threshold x`` it (at ``1 - (1 - confidence) /
2``, recomputed likewise), and the box's status. Every value is compared
with the verifier's tolerance (:data:`DEFAULT_TOLERANCE` unless given); the
tolerance recorded in the file is only reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from driftlab.attacks.problem import AttackProblem
from driftlab.datasets.base import DatasetError
from driftlab.forensics.confidence import BoundSettings, metric_of_scores
from driftlab.forensics.crossfit import SAFE, box_tests
from driftlab.forensics.envelope import corner_values, sweep_point
from driftlab.forensics.model import file_sha256, load_view_model
from driftlab.forensics.plan import ForensicsPlan, data_fingerprint
from driftlab.forensics.validate import DEFAULT_TOLERANCE, SignatureError, load_signature
from driftlab.pipeline import PipelineSpec, SpecError, resolve
from driftlab.registry import Registry, RegistryError, get_registry

__all__ = [
    "DEFAULT_TOLERANCE",
    "Remeasured",
    "SignatureError",
    "VerifyResult",
    "check_measurements",
    "reuse_signature",
    "verify_signature",
]

_MAX_LISTED = 8


@attrs.frozen
class Remeasured:
    """What :func:`check_measurements` re-measured.

    Attributes
    ----------
    clean : float
        Held-out clean metric.
    worst : float
        Held-out metric at the box's joint worst case (defaults, corners and
        the attack's point).
    lower_bound : float
        Its one-sided lower bound.
    floor : float
        ``threshold x`` the clean metric's upper bound (at the floor level
        recomputed from the recorded family-wise ``confidence``).
    status : str
        ``"safe"`` when ``lower_bound >= floor`` and the box is not the bare
        defaults, else ``"per-axis tolerance"``.
    values : int
        Number of recorded values compared.
    """

    clean: float
    worst: float
    lower_bound: float
    floor: float
    status: str
    values: int


@attrs.frozen
class VerifyResult:
    """Outcome of :func:`verify_signature` (only returned when everything matched).

    Attributes
    ----------
    clean, recorded_clean : float
        Re-measured and recorded held-out clean metric.
    worst, recorded_worst : float
        Re-measured and recorded held-out metric at the box's worst case.
    lower_bound : float
        Re-measured lower bound at the worst case.
    status : str
        ``"safe"`` or ``"per-axis tolerance"`` (re-derived, equal to the recorded one).
    tolerance : float
        Tolerance used (the verifier's).
    recorded_tolerance : float
        Tolerance written in the file (shown, never used).
    values : int
        Number of recorded values re-measured and compared.
    sealed_by : str or None
        SHA-256 of the Ed25519 public key that sealed the file, when checked.
    wider_domains : tuple of str
        ``stage.param`` whose domain in the file is wider than declared (only
        non-empty when allowed).
    """

    clean: float
    worst: float
    recorded_clean: float
    recorded_worst: float
    lower_bound: float
    status: str
    tolerance: float
    recorded_tolerance: float
    values: int
    sealed_by: str | None = None
    wider_domains: tuple[str, ...] = ()


class _Comparer:
    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.problems: list[str] = []
        self.count = 0

    def __call__(self, field: str, recorded: float, measured: float) -> None:
        self.count += 1
        if not abs(float(recorded) - float(measured)) <= self.tolerance:
            self.problems.append(f"{field}: recorded {recorded:.6g}, re-measured {measured:.6g}")

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def raise_if_any(self, where: str) -> None:
        if self.problems:
            listed = "; ".join(self.problems[:_MAX_LISTED])
            more = len(self.problems) - _MAX_LISTED
            raise SignatureError(
                f"{where}: {len(self.problems)} recorded value(s) do not reproduce "
                f"(tolerance {self.tolerance}): {listed}"
                + (f"; and {more} more" if more > 0 else "")
            )


def check_measurements(
    sig: Mapping[str, Any],
    problem: AttackProblem,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    where: str = "signature",
) -> Remeasured:
    """Re-measure every metric a validated signature records (see module docstring).

    Parameters
    ----------
    sig : mapping
        A signature that passed :func:`driftlab.forensics.validate.validate_signature`.
    problem : AttackProblem
        The signed model and pipeline on every recorded item, in
        ``sig["data"]["ids"]`` order.
    tolerance : float
        Absolute tolerance (>= 0) for every compared value.
    where : str
        Prefix of error messages.

    Returns
    -------
    Remeasured

    Raises
    ------
    SignatureError
        A recorded per-test confidence or test count that is not the
        Bonferroni correction of ``box.shrink_steps``, a floor confidence
        that is not ``1 - (1 - confidence) / 2``, a parameter, default or
        domain that differs from the pipeline, or any value outside the
        tolerance; the message lists them.
    """
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise SignatureError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
    if problem.task != sig["task"] or len(problem.raw) != len(sig["data"]["ids"]):
        raise SignatureError(
            f"{where}: the problem ({problem.task}, {len(problem.raw)} items) is not the signed "
            f"one ({sig['task']}, {len(sig['data']['ids'])} items)"
        )
    compare = _Comparer(float(tolerance))
    position = {item: i for i, item in enumerate(sig["data"]["ids"])}
    search = problem.subset([position[i] for i in sig["cross_fit"]["search_ids"]])
    holdout = problem.subset([position[i] for i in sig["cross_fit"]["holdout_ids"]])
    space = problem.space()
    recorded = {p["key"]: p for p in sig["pipeline"]["parameters"]}
    if list(space.keys) != [p["key"] for p in sig["pipeline"]["parameters"]]:
        raise SignatureError(
            f"{where}: field 'pipeline.parameters': the pipeline's parameters are "
            f"{', '.join(space.keys)}, the signature records {', '.join(recorded)}"
        )
    for slot in space.slots:
        p = recorded[slot.key]
        if not np.allclose(np.asarray(p["default"], dtype=np.float64), slot.default, atol=1e-9):
            raise SignatureError(
                f"{where}: field 'pipeline.parameters' {slot.key}: recorded default "
                f"{p['default']} is not the pipeline's {slot.default.tolist()}"
            )
        if (p["unit"], p["domain"]) != (slot.unit, slot.domain.describe(slot.unit)):
            raise SignatureError(
                f"{where}: field 'pipeline.parameters' {slot.key}: recorded unit and domain "
                f"{p['unit']!r}, {p['domain']!r} are not the pipeline's {slot.unit!r}, "
                f"{slot.domain.describe(slot.unit)!r}"
            )
        if (p["low"], p["high"]) != (slot.domain.low, slot.domain.high):
            raise SignatureError(
                f"{where}: field 'pipeline.parameters' {slot.key}: recorded domain "
                f"[{p['low']:g}, {p['high']:g}] is not the pipeline's "
                f"[{slot.domain.low:g}, {slot.domain.high:g}]"
            )
    worst_case = sig["worst_case"]
    for field, values in (
        ("worst_case.values", worst_case["values"]),
        ("worst_case.search_point.values", worst_case["search_point"]["values"]),
    ):
        for key, value in values.items():
            problems = space[key].domain.problems(np.asarray(value, dtype=np.float64))
            if problems:
                raise SignatureError(
                    f"{where}: field '{field}.{key}': outside the declared domain "
                    f"{space[key].domain.describe(space[key].unit)}: {'; '.join(problems)}"
                )
    stats = sig["statistics"]
    tests = box_tests(sig["box"]["shrink_steps"])
    bounds_settings = BoundSettings(
        confidence=stats["confidence"],
        resamples=stats["resamples"] or 1,
        seed=stats["seed"] or 0,
        tests=tests,
    )
    if stats["tests"] != tests or not math.isclose(
        stats["per_test_confidence"], bounds_settings.level, rel_tol=0, abs_tol=1e-12
    ):
        raise SignatureError(
            f"{where}: field 'statistics.per_test_confidence': recorded "
            f"{stats['per_test_confidence']!r} for {stats['tests']} tests, but "
            f"box.shrink_steps = {sig['box']['shrink_steps']} gives {tests} tests and "
            f"1 - (1 - confidence) / (2 x {tests}) = {bounds_settings.level!r} (Bonferroni)"
        )
    if not math.isclose(
        stats["floor_confidence"], bounds_settings.floor_level, rel_tol=0, abs_tol=1e-12
    ):
        raise SignatureError(
            f"{where}: field 'statistics.floor_confidence': recorded "
            f"{stats['floor_confidence']!r}, but 1 - (1 - confidence) / 2 = "
            f"{bounds_settings.floor_level!r} (half the family-wise error for the floor)"
        )
    task = problem.task
    acc = sig["acceptance"]

    def on_holdout(values: Mapping[str, np.ndarray]) -> tuple[float, float]:
        scores = holdout.scores(values)
        return metric_of_scores(task, scores), bounds_settings.lower(task, scores)

    compare("acceptance.clean", acc["clean"], problem.metric())
    clean_search = search.metric()
    compare("acceptance.clean_search", acc["clean_search"], clean_search)
    clean_scores = holdout.scores()
    clean = metric_of_scores(task, clean_scores)
    clean_lower = bounds_settings.lower(task, clean_scores)
    clean_upper = bounds_settings.upper(task, clean_scores)
    compare("acceptance.clean_holdout", acc["clean_holdout"], clean)
    compare("acceptance.clean_holdout_lower_bound", acc["clean_holdout_lower_bound"], clean_lower)
    compare("acceptance.clean_holdout_upper_bound", acc["clean_holdout_upper_bound"], clean_upper)

    base = torch.from_numpy(search.render())
    for key, entry in sig["envelope"].items():
        slot = space[key]
        for j, e in enumerate(entry["elements"]):
            at, index = f"envelope.{key}.elements[{j}]", tuple(e["index"])
            for side in ("low", "high"):
                if e[side] == e["default"]:
                    compare(f"{at}.metric_{side}", e[f"metric_{side}"], clean_search)
                    continue
                metric, _ = sweep_point(search, slot, index, e[side], base)
                compare(f"{at}.metric_{side}", e[f"metric_{side}"], metric)
            steep = e["steepest"]
            if steep is not None:
                metric, rms = sweep_point(search, slot, index, steep["value"], base)
                compare(f"{at}.steepest.metric", steep["metric"], metric)
                compare(f"{at}.steepest.view_rms", steep["view_rms"], rms)

    box = sig["box"]
    bounds = {
        key: (np.asarray(box["low"][key], np.float64), np.asarray(box["high"][key], np.float64))
        for key in space.keys
    }
    candidates = [(clean_lower, clean)]
    for j, corner in enumerate(box["corners"]):
        metric, lower = on_holdout(corner_values(space, bounds, corner["pattern"]))
        compare(f"box.corners[{j}].metric", corner["metric"], metric)
        compare(f"box.corners[{j}].lower_bound", corner["lower_bound"], lower)
        candidates.append((lower, metric))
    worst = sig["worst_case"]
    point = worst["search_point"]
    point_values = {k: np.asarray(v, dtype=np.float64) for k, v in point["values"].items()}
    metric, lower = on_holdout(point_values)
    compare("worst_case.search_point.metric", point["metric"], metric)
    compare("worst_case.search_point.lower_bound", point["lower_bound"], lower)
    compare(
        "worst_case.search_point.metric_search", point["metric_search"], search.metric(point_values)
    )
    candidates.append((lower, metric))
    if worst["source"] == "corner":  # the recorded values must be that corner's
        expected = corner_values(space, bounds, worst["corner"])
        for key, value in expected.items():
            if not np.allclose(np.asarray(worst["values"][key], np.float64), value, atol=1e-9):
                compare.fail(f"worst_case.values.{key}: not the values of corner {worst['corner']}")
    worst_lower, worst_metric = min(candidates)
    compare("worst_case.metric", worst["metric"], worst_metric)
    compare("worst_case.lower_bound", worst["lower_bound"], worst_lower)
    worst_values = {k: np.asarray(v, dtype=np.float64) for k, v in worst["values"].items()}
    views = holdout.evaluate(worst_values)
    compare("worst_case.l2", worst["l2"], views["l2"])
    compare("worst_case.ssim", worst["ssim"], views["ssim"])
    floor = acc["threshold"] * clean_upper
    compare("acceptance.floor", acc["floor"], floor)
    status = SAFE if worst_lower >= floor and box["scale"] > 0 else "per-axis tolerance"
    if status != box["status"]:
        compare.fail(
            f"box.status: recorded {box['status']!r}, re-derived {status!r} (lower bound "
            f"{worst_lower:.6g} vs floor {floor:.6g})"
        )
    compare.raise_if_any(where)
    return Remeasured(clean, worst_metric, worst_lower, floor, status, compare.count)


def _declared_domain_problems(
    spec: PipelineSpec, camera: Any, registry: Registry
) -> tuple[str, ...]:
    """``stage.param`` whose domain in ``spec`` is wider than the declared one."""
    bare = PipelineSpec(
        name=spec.name,
        stages=[attrs.evolve(s, domains={}) for s in spec.stages],
        description=spec.description,
    )
    declared = resolve(bare, camera, registry, check_domains=False)
    actual = resolve(spec, camera, registry, check_domains=False)
    wider = []
    for mine, theirs in zip(actual.stages, declared.stages, strict=True):
        for name, domain in mine.domains.items():
            ref = theirs.domains[name]
            if (
                domain.low < ref.low
                or domain.high > ref.high
                or (ref.row_sum is not None and domain.row_sum != ref.row_sum)
                or (ref.total is not None and domain.total != ref.total)
            ):
                wider.append(f"{mine.name}.{name}")
    return tuple(wider)


def verify_signature(
    signature: str | Path,
    *,
    model: str | Path | None = None,
    data_root: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    public_key: str | Path | None = None,
    seal: str | Path | None = None,
    allow_wider_domains: bool = False,
    registry: Registry | None = None,
) -> VerifyResult:
    """Check a signature against its model and data by re-measuring it.

    Checks, in order: the Ed25519 seal (with ``public_key``); the file's
    structure and internal relations; the SHA-256 of the weights file; the
    data fingerprint (ids, raw bytes and targets of the recorded items,
    re-read from the dataset); the recorded pipeline against the registry
    (parameters, defaults and domains; a domain wider than the stage or
    camera declares is refused unless ``allow_wider_domains``); then every
    recorded measurement (:func:`check_measurements`).

    Parameters
    ----------
    signature : path
        ``signature.json``.
    model : path, optional
        Weights file (default: the one recorded in the signature).
    data_root : path, optional
        Dataset folder (default: the recorded one; embedded datasets need none).
    tolerance : float
        Absolute tolerance of every re-measured value (default
        :data:`DEFAULT_TOLERANCE`); the file's recorded tolerance is not used.
    public_key : path, optional
        Ed25519 public key (PEM): require a valid seal made with its private key.
    seal : path, optional
        Seal file (default ``<signature>.sig``).
    allow_wider_domains : bool
        Accept a pipeline in the file whose domains are wider than declared.
    registry : Registry, optional

    Returns
    -------
    VerifyResult

    Raises
    ------
    SignatureError
        Unreadable or malformed signature (naming the field), a bad seal,
        missing or changed model file (the message gives both hashes),
        changed data, a pipeline that does not resolve or widens a domain, or
        any value that does not reproduce.
    """
    registry = registry or get_registry()
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise SignatureError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
    sealed_by = None
    if public_key is not None:
        from driftlab.forensics.signing import check_seal

        sealed_by = check_seal(signature, public_key, seal)
    sig = load_signature(signature)
    where = str(signature)
    weights = Path(model or sig["model"]["weights"])
    if not weights.is_file():
        raise SignatureError(f"model file {weights}: no such file")
    digest = file_sha256(weights)
    if digest != sig["model"]["sha256"]:
        raise SignatureError(
            f"model file {weights} changed: sha256 {digest[:16]}... but the signature "
            f"records {sig['model']['sha256'][:16]}...; this is not the signed model"
        )
    data = sig["data"]
    try:
        spec = registry.get("datasets", data["name"])
    except RegistryError as exc:
        raise SignatureError(f"{where}: field 'data.name': {exc}") from None
    root = data_root if data_root is not None else data.get("data_root")
    try:
        dataset = spec.open(root, intensity=data["intensity"], registry=registry, **data["options"])
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        raise SignatureError(f"data {data['name']!r}: cannot open ({exc})") from None
    where_item = {item: i for i, item in enumerate(dataset.ids)}
    missing = [i for i in data["ids"] if i not in where_item]
    if missing:
        raise SignatureError(
            f"data {data['name']!r}: {len(missing)} signed items are missing (e.g. {missing[0]!r})"
        )
    samples = [dataset[where_item[i]] for i in data["ids"]]
    raw = np.stack([s.raw for s in samples]).astype(np.float32)
    targets = np.stack([np.asarray(s.target) for s in samples])
    prints = data_fingerprint(list(data["ids"]), raw, targets)
    if prints["sha256"] != data["sha256"] or prints["ids_sha256"] != data["ids_sha256"]:
        raise SignatureError(
            f"data {data['name']!r} changed: fingerprint {prints['sha256'][:16]}... but the "
            f"signature records {data['sha256'][:16]}..."
        )
    try:
        pipeline = PipelineSpec.from_dict(sig["pipeline"]["spec"], where="pipeline.spec")
        wider = _declared_domain_problems(pipeline, dataset.spec.camera, registry)
        if wider and not allow_wider_domains:
            raise SignatureError(
                f"{where}: field 'pipeline.spec': the domain of {', '.join(wider)} is wider "
                "than its stage or camera declares; values checked against it would not be "
                "physically plausible (allow explicitly with --allow-wider-domains)"
            )
        resolved = resolve(pipeline, dataset.spec.camera, registry)
    except (SpecError, RegistryError, ValueError) as exc:
        if isinstance(exc, SignatureError):
            raise
        raise SignatureError(f"{where}: field 'pipeline.spec': {exc}") from None
    try:
        model = sig["model"]
        net = load_view_model(
            model["name"], model["options"], weights, model.get("key"), dataset.spec, registry
        )
    except (RegistryError, TypeError, ValueError) as exc:
        raise SignatureError(f"{where}: field 'model': cannot rebuild the model ({exc})") from None
    problem = AttackProblem(net, resolved, raw, targets, sig["task"])
    measured = check_measurements(sig, problem, tolerance=tolerance, where=where)
    return VerifyResult(
        clean=measured.clean,
        worst=measured.worst,
        recorded_clean=sig["acceptance"]["clean_holdout"],
        recorded_worst=sig["worst_case"]["metric"],
        lower_bound=measured.lower_bound,
        status=measured.status,
        tolerance=float(tolerance),
        recorded_tolerance=sig["verification"]["tolerance"],
        values=measured.values,
        sealed_by=sealed_by,
        wider_domains=wider,
    )


def reuse_signature(
    path: str | Path,
    plan: ForensicsPlan,
    *,
    threshold: float,
    points: int,
    refine: int,
    steps: int,
    seed: int = 0,
    confidence: float = 0.95,
    resamples: int = 1000,
    shrink_steps: int = 5,
    corners: int = 16,
) -> tuple[dict[str, Any] | None, str]:
    """Whether a run directory's ``signature.json`` may be reused on resume.

    It may when it passes :func:`driftlab.forensics.validate.load_signature`,
    records this plan's model, items, pipeline and these settings, and every
    measurement reproduces (:func:`check_measurements` with
    :data:`DEFAULT_TOLERANCE`). A forged or stale file is never reused.

    Parameters
    ----------
    path : path
        ``RUN/signature.json``.
    plan : ForensicsPlan
    threshold, points, refine, steps, seed, confidence, resamples, shrink_steps, corners
        The settings :func:`driftlab.forensics.signature.build_signature` would use.

    Returns
    -------
    (dict or None, str)
        The signature and ``""``, or None and the reason it cannot be reused.
    """
    from driftlab.attacks.space import spec_with_values

    try:
        sig = load_signature(path)
    except SignatureError as exc:
        return None, str(exc)
    recorded = {
        "model sha256": sig["model"]["sha256"],
        "data sha256": sig["data"]["sha256"],
        "item ids": sig["data"]["ids"],
        "pipeline": sig["pipeline"]["spec"],
        "threshold": sig["acceptance"]["threshold"],
        "points": sig["sweep"]["points"],
        "refine": sig["sweep"]["refine"],
        "steps": sig["worst_case"]["steps"],
        "seed": sig["cross_fit"]["seed"],
        "confidence": sig["statistics"]["confidence"],
        "shrink_steps": sig["box"]["shrink_steps"],
        "corners": sig["box"]["corner_limit"],
    }
    wanted = {
        "model sha256": plan.model_info["sha256"],
        "data sha256": plan.data_info["sha256"],
        "item ids": list(plan.data_info["ids"]),
        "pipeline": spec_with_values(plan.problem.resolved, {}).to_dict(),
        "threshold": threshold,
        "points": points,
        "refine": refine,
        "steps": steps,
        "seed": seed,
        "confidence": confidence,
        "shrink_steps": shrink_steps,
        "corners": corners,
    }
    if sig["statistics"]["resamples"] is not None:
        recorded["resamples"], wanted["resamples"] = sig["statistics"]["resamples"], resamples
    differ = [k for k in wanted if recorded[k] != wanted[k]]
    if differ:
        return None, f"{path}: records another {', '.join(differ)} than this run"
    try:
        check_measurements(sig, plan.problem, where=str(path))
    except SignatureError as exc:
        return None, str(exc)
    return sig, ""
