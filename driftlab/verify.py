"""The equivalence contract: static and differentiable forms must agree.

For every stage that declares both forms, :func:`verify_stage` compares the
two on random inputs of several sizes, all four CFA patterns (for stages that
read the mosaic) and several parameter values (the defaults, the domain's low
and high corners, and a random draw inside the domain), over the whole
image, borders included (the paper's Eq. 5). Each form's output must also be
what the stage declares (type, shape, float64 / the input's dtype) and
finite, and neither form may modify its input in place. Then it runs
:func:`torch.autograd.gradcheck` in float64 with respect to the input and to
each differentiable parameter in turn, so a failure names the parameter.

:func:`verify_data_models` checks whole pipelines, the paper's twelve data
models by default: static form against the float64 differentiable form and
against the fast batched render path (:mod:`driftlab.pipeline.batched`).

Plugin authors run both through ``driftlab verify``; every failure message
says which form, which case and where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.cfa import CFA_PATTERNS
from driftlab.params import ParamSpec
from driftlab.pipeline.batched import FastRenderer
from driftlab.pipeline.differentiable import build_differentiable
from driftlab.pipeline.outputs import StageOutputError, check_stage_output
from driftlab.pipeline.resolve import ResolvedStage, resolve
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.static import build_static
from driftlab.registry import Registry, get_registry
from driftlab.stages.base import StageContext, StageSpec

__all__ = [
    "FAST_TOLERANCE",
    "PipelineCheck",
    "StageCheck",
    "check_summary",
    "domain_corners",
    "parameter_draws",
    "report_lines",
    "sample_in_domain",
    "verify_data_models",
    "verify_pipeline",
    "verify_registry",
    "verify_stage",
]

SIZES: tuple[tuple[int, int], ...] = ((8, 10), (34, 22), (64, 64))
GRADCHECK_SIZE: tuple[int, int] = (6, 8)
FAST_TOLERANCE = 1e-4
"""Largest difference between the static form and the fast render path (float32 views)."""

# a camera with non-trivial black level, gains and colour matrix for pipeline checks
VERIFY_CAMERA = CameraParams(
    name="verify",
    black_level=(0.05, 0.06, 0.055, 0.06),
    white_balance=(2.0, 1.0, 1.6),
    color_matrix=((1.5, -0.33, -0.17), (-0.23, 1.7, -0.47), (-0.03, -0.33, 1.36)),
)


@attrs.frozen
class StageCheck:
    """Outcome of :func:`verify_stage` for one stage variant.

    Attributes
    ----------
    key : str
        ``slot.variant``.
    plugin : str
        Plugin that declared the stage.
    max_abs_diff : float
        Largest ``|static - differentiable|`` over all cases (float64); NaN
        when a comparison could not be made.
    tolerance : float
        Allowed maximum (the stage's declared tolerance).
    cases : int
        Number of (size, CFA, parameter) cases compared.
    gradcheck : bool
        Whether ``torch.autograd.gradcheck`` passed for the input and every
        differentiable parameter.
    error : str
        Why the check failed, empty when it passed: the first problem found,
        naming the form, the case and where (the worst pixel when the forms
        disagree, the parameter when gradcheck fails).
    worst_case : str
        Where the largest difference occurred (size, CFA, parameters, channel
        and pixel), also when it is within the tolerance.
    """

    key: str
    plugin: str
    max_abs_diff: float
    tolerance: float
    cases: int
    gradcheck: bool
    error: str = ""
    worst_case: str = ""

    @property
    def passed(self) -> bool:
        return (
            self.gradcheck
            and np.isfinite(self.max_abs_diff)
            and self.max_abs_diff <= self.tolerance
            and not self.error
        )


def sample_in_domain(
    param: ParamSpec, rng: np.random.Generator, spread: float = 0.25
) -> np.ndarray:
    """Draw a value near the default and inside the declared domain.

    The default is perturbed by up to ``spread`` of the domain's width per
    element, then projected onto the domain (box clamp, equality constraints
    by Dykstra projection).

    Returns
    -------
    numpy.ndarray
        float64, shape ``param.shape``.
    """
    domain = param.domain
    default = np.asarray(param.default, dtype=np.float64)
    width = domain.high - domain.low
    value = default + rng.uniform(-spread, spread, size=param.shape) * width
    projected = domain.project(torch.as_tensor(value, dtype=torch.float64), iterations=200)
    return projected.numpy().reshape(param.shape)


def domain_corners(param: ParamSpec) -> tuple[np.ndarray, np.ndarray]:
    """The low and high corner of a parameter's domain (projected onto its constraints).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Every element at ``low``, and every element at ``high``, each
        projected onto the domain when it has a row-sum or total constraint;
        float64 of the declared shape.
    """
    out = []
    for bound in (param.domain.low, param.domain.high):
        corner = torch.full(param.shape, float(bound), dtype=torch.float64)
        out.append(param.domain.project(corner, iterations=500).numpy().reshape(param.shape))
    return out[0], out[1]


def parameter_draws(
    stage: StageSpec, rng: np.random.Generator
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Labelled parameter sets a stage is checked with.

    The declared defaults; when the stage has parameters, also the domain's
    low corner and high corner (every parameter at once) and one random draw
    near the defaults.
    """
    defaults = {p.name: np.asarray(p.default, dtype=np.float64) for p in stage.params}
    draws = [("defaults", defaults)]
    if stage.params:
        corners = {p.name: domain_corners(p) for p in stage.params}
        draws.append(("low corner", {k: v[0] for k, v in corners.items()}))
        draws.append(("high corner", {k: v[1] for k, v in corners.items()}))
        draws.append(("random draw", {p.name: sample_in_domain(p, rng) for p in stage.params}))
    return draws


def _random_input(stage: StageSpec, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    channels = 1 if stage.input_kind == "mosaic" else 3
    return rng.uniform(0.05, 0.95, size=(channels, *size))


class _FormError(Exception):
    """A form failed in a way that is its own fault (raised, wrong output, in-place)."""


def _describe_params(params: Mapping[str, np.ndarray]) -> str:
    parts = []
    for k, v in params.items():
        text = np.array2string(np.asarray(v), precision=4, separator=",", max_line_width=200)
        parts.append(f"{k}={text}")
    return ", ".join(parts) or "no parameters"


def _compare(
    stage: StageSpec,
    probe: ResolvedStage,
    x: np.ndarray,
    ctx: StageContext,
    params: dict[str, np.ndarray],
) -> tuple[float, tuple[int, ...]]:
    """Max |static - differentiable| and its (channel, row, column); raises _FormError."""
    h, w = x.shape[-2:]
    channels = 1 if stage.output_kind == "mosaic" else 3
    static_in = np.array(x[0] if stage.input_kind == "mosaic" else x)
    static_params = {k: np.array(v) for k, v in params.items()}
    try:
        expected = stage.static(static_in, ctx, **static_params)
    except Exception as exc:
        raise _FormError(f"static form raised {type(exc).__name__}: {exc}") from exc
    if not np.array_equal(static_in, x[0] if stage.input_kind == "mosaic" else x):
        raise _FormError("static form modified its input in place (return a new array)")
    for k, v in static_params.items():
        if not np.array_equal(v, params[k]):
            raise _FormError(f"static form modified parameter {k!r} in place")
    static_shape = (h, w) if channels == 1 else (3, h, w)
    try:
        check_stage_output(probe, expected, "static", static_shape, np.float64)
    except StageOutputError as exc:
        raise _FormError(str(exc)) from None

    tensor = torch.as_tensor(x[None].copy())
    before = tensor.clone()
    tensor_params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
    try:
        with torch.no_grad():
            got = stage.differentiable(tensor, ctx, **tensor_params)
    except Exception as exc:
        raise _FormError(f"differentiable form raised {type(exc).__name__}: {exc}") from exc
    if not torch.equal(tensor, before):
        raise _FormError("differentiable form modified its input in place (return a new tensor)")
    try:
        check_stage_output(probe, got, "differentiable", (1, channels, h, w), torch.float64)
    except StageOutputError as exc:
        raise _FormError(str(exc)) from None
    diff = np.abs(np.asarray(expected).reshape(channels, h, w) - got[0].numpy())
    where = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return float(diff[where]), tuple(int(i) for i in where)


def _gradcheck(stage: StageSpec, rng: np.random.Generator) -> str:
    """Empty string, or which argument failed gradcheck and why."""
    ctx = StageContext(cfa="RGGB")
    x = torch.as_tensor(_random_input(stage, GRADCHECK_SIZE, rng)[None], dtype=torch.float64)
    values = {
        p.name: torch.as_tensor(
            sample_in_domain(p, rng, 0.1)
            if p.differentiable
            else np.asarray(p.default, dtype=np.float64)
        )
        for p in stage.params
    }
    targets = ["input"] + [p.name for p in stage.params if p.differentiable]
    for target in targets:
        start = x if target == "input" else values[target]

        def fn(value: torch.Tensor, target: str = target) -> torch.Tensor:
            inp = value if target == "input" else x
            params = {**values, **({} if target == "input" else {target: value})}
            return stage.differentiable(inp, ctx, **params)

        try:
            torch.autograd.gradcheck(
                fn, (start.clone().requires_grad_(True),), eps=1e-6, atol=1e-5, rtol=1e-3
            )
        except Exception as exc:
            what = "the input" if target == "input" else f"parameter {target!r}"
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            first = first.replace("with respect to input 0", f"with respect to {what}")
            return f"gradcheck failed for {what}: {type(exc).__name__}: {first}"
    return ""


def verify_stage(stage: StageSpec, plugin: str = "", seed: int = 0) -> StageCheck:
    """Check one stage variant that has both forms.

    Parameters
    ----------
    stage : StageSpec
        Declaration with static and differentiable forms.
    plugin : str
        Name shown in reports.
    seed : int
        Seed of the random inputs and parameter values.

    Returns
    -------
    StageCheck
        Never raises for a failing stage: the first problem is described in
        ``error``; ``passed`` is False whenever ``error`` is not empty.

    Raises
    ------
    ValueError
        If the stage lacks one of the two forms.
    """
    if len(stage.forms) != 2:
        raise ValueError(f"stage {stage.key} has only the {stage.forms[0]} form")
    rng = np.random.default_rng(seed)
    patterns = CFA_PATTERNS if stage.input_kind == "mosaic" else ("RGGB",)
    probe = ResolvedStage(stage, {}, {}, stage.slot, plugin)
    worst, worst_case, cases, error = 0.0, "", 0, ""
    draws = parameter_draws(stage, rng)
    for size in SIZES:
        for cfa in patterns:
            ctx = StageContext(cfa=cfa)
            for label, params in draws:
                x = _random_input(stage, size, rng)
                case = f"{size[0]}x{size[1]} input, CFA {cfa}, {label} ({_describe_params(params)})"
                try:
                    diff, where = _compare(stage, probe, x, ctx, params)
                except _FormError as exc:
                    error = error or f"{exc} [case: {case}]"
                    continue
                cases += 1  # outputs are checked finite, so diff is a number
                if diff > worst or not worst_case:
                    worst = diff
                    channel = "" if stage.output_kind == "mosaic" else f"channel {where[0]}, "
                    worst_case = f"{case}: {channel}pixel (row {where[-2]}, column {where[-1]})"
    if error and not cases:
        worst = float("nan")
    if not error and worst > stage.tolerance:
        error = (
            f"the forms disagree: max |static - differentiable| = {worst:.3g} > tolerance "
            f"{stage.tolerance:g} at {worst_case}"
        )
    grad_error = _gradcheck(stage, rng)
    error = error or grad_error
    return StageCheck(
        stage.key, plugin, worst, stage.tolerance, cases, not grad_error, error, worst_case
    )


def verify_registry(registry: Registry | None = None, seed: int = 0) -> list[StageCheck]:
    """Run :func:`verify_stage` on every registered stage that has both forms."""
    registry = registry or get_registry()
    checks = []
    for key, stage in sorted(registry.items("stages").items()):
        if len(stage.forms) == 2:
            checks.append(verify_stage(stage, registry.owner("stages", key), seed))
    return checks


def verify_pipeline(
    spec: PipelineSpec,
    camera: CameraParams,
    raw: np.ndarray,
    registry: Registry | None = None,
    *,
    allow_out_of_range: bool = False,
) -> float:
    """Max abs difference between a pipeline's static and float64 differentiable views.

    Parameters
    ----------
    spec : PipelineSpec
        A pipeline whose stages all have both forms.
    camera : CameraParams
        Camera the pipeline is built with.
    raw : numpy.ndarray
        ``(H, W)`` mosaic in [0, 1].

    Returns
    -------
    float
        ``max |static(raw) - differentiable(raw)|`` over the whole view.
    """
    static = build_static(spec, camera, registry)(raw, allow_out_of_range=allow_out_of_range)
    module = build_differentiable(spec, camera, registry, dtype=torch.float64)
    with torch.no_grad():
        view = module(
            torch.as_tensor(np.asarray(raw, dtype=np.float64)[None, None]),
            allow_out_of_range=allow_out_of_range,
        )[0].numpy()
    return float(np.abs(static - view).max())


@attrs.frozen
class PipelineCheck:
    """Outcome of :func:`verify_data_models` for one pipeline.

    Attributes
    ----------
    name : str
        Pipeline name.
    static_vs_differentiable : float
        Largest ``|static - differentiable|`` (float64 module) over all cases.
    static_vs_fast : float
        Largest ``|static - fast render path|`` (default precision, float32
        views) over all cases.
    tolerance : float
        Allowed maximum of both (1e-4).
    cases : int
        Mosaics compared (sizes x CFA patterns).
    error : str
        Why it failed (which comparison, where), empty when it passed.
    """

    name: str
    static_vs_differentiable: float
    static_vs_fast: float
    tolerance: float
    cases: int
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error

    @property
    def max_abs_diff(self) -> float:
        return max(self.static_vs_differentiable, self.static_vs_fast)


def verify_data_models(
    pipelines: Sequence[PipelineSpec] | None = None,
    camera: CameraParams = VERIFY_CAMERA,
    registry: Registry | None = None,
    seed: int = 0,
    sizes: Sequence[tuple[int, int]] = ((8, 10), (34, 22), (64, 64)),
) -> list[PipelineCheck]:
    """Check whole pipelines in all three forms against each other.

    For each pipeline, each size and each CFA pattern, one random mosaic is
    rendered by the static form (the reference), the float64 differentiable
    form and the fast render path; both must be within 1e-4 of the reference
    over the whole view.

    Parameters
    ----------
    pipelines : sequence of PipelineSpec, optional
        Default: the paper's twelve data models.
    camera : CameraParams
        Camera they are built with (default: black level, gains and colour
        matrix that exercise every stage).
    registry : Registry, optional
        Default: installed plugins.
    seed : int
        Seed of the random mosaics.
    sizes : sequence of (int, int)
        Mosaic sizes.

    Returns
    -------
    list of PipelineCheck
    """
    from driftlab.pipeline.zoo import PAPER_DATA_MODELS

    registry = registry or get_registry()
    specs = list(pipelines) if pipelines is not None else list(PAPER_DATA_MODELS.values())
    rng = np.random.default_rng(seed)
    checks = []
    for spec in specs:
        worst_diff, worst_fast, cases, error = 0.0, 0.0, 0, ""
        try:
            for cfa in CFA_PATTERNS:
                cam = camera.replace(cfa=cfa)
                static = build_static(spec, cam, registry)
                module = build_differentiable(spec, cam, registry, dtype=torch.float64)
                fast = FastRenderer(resolve(spec, cam, registry))
                for h, w in sizes:
                    raw = rng.uniform(0.0, 1.0, size=(h, w))
                    reference = static(raw)
                    with torch.no_grad():
                        diff_view = module(torch.as_tensor(raw[None, None]))[0].numpy()
                    fast_view = fast.render_numpy(raw)[0]
                    cases += 1
                    for label, view in (("differentiable", diff_view), ("fast", fast_view)):
                        delta = np.abs(view.astype(np.float64) - reference)
                        value = float(delta.max()) if np.all(np.isfinite(delta)) else float("nan")
                        if label == "differentiable":
                            worst_diff = _worse(worst_diff, value)
                        else:
                            worst_fast = _worse(worst_fast, value)
                        if not error and not value <= FAST_TOLERANCE:
                            c, y, x = np.unravel_index(int(np.nanargmax(delta)), delta.shape)
                            error = (
                                f"{label} form differs from the static form by {value:.3g} > "
                                f"{FAST_TOLERANCE:g} on a {h}x{w} mosaic, CFA {cfa}, channel "
                                f"{c}, pixel (row {y}, column {x})"
                            )
        except Exception as exc:
            error = error or f"{type(exc).__name__}: {exc}"
        checks.append(
            PipelineCheck(spec.name, worst_diff, worst_fast, FAST_TOLERANCE, cases, error)
        )
    return checks


def _worse(current: float, value: float) -> float:
    if not np.isfinite(value) or not np.isfinite(current):
        return float("nan")
    return max(current, value)


def check_summary(check: StageCheck | PipelineCheck) -> dict[str, Any]:
    """Plain-data form of a check for JSON output."""
    if isinstance(check, StageCheck):
        return {
            "stage": check.key,
            "plugin": check.plugin,
            "max_abs_diff": check.max_abs_diff,
            "tolerance": check.tolerance,
            "cases": check.cases,
            "gradcheck": check.gradcheck,
            "passed": check.passed,
            "error": check.error,
            "worst_case": check.worst_case,
        }
    return {
        "pipeline": check.name,
        "static_vs_differentiable": check.static_vs_differentiable,
        "static_vs_fast": check.static_vs_fast,
        "max_abs_diff": check.max_abs_diff,
        "tolerance": check.tolerance,
        "cases": check.cases,
        "passed": check.passed,
        "error": check.error,
    }


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> list[str]:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def report_lines(
    stages: Sequence[StageCheck], pipelines: Sequence[PipelineCheck] = ()
) -> list[str]:
    """The text report of ``driftlab verify``: a table per kind, every error, a count."""
    lines = _table(
        [
            (
                c.key,
                c.plugin,
                f"{c.max_abs_diff:.2e}",
                f"{c.tolerance:.0e}",
                c.cases,
                "ok" if c.gradcheck else "FAIL",
                "PASS" if c.passed else "FAIL",
            )
            for c in stages
        ],
        ("stage", "plugin", "max|static-diff|", "tolerance", "cases", "gradcheck", "result"),
    )
    if pipelines:
        lines.append("")
        lines += _table(
            [
                (
                    m.name,
                    f"{m.static_vs_differentiable:.2e}",
                    f"{m.static_vs_fast:.2e}",
                    f"{m.tolerance:.0e}",
                    m.cases,
                    "PASS" if m.passed else "FAIL",
                )
                for m in pipelines
            ],
            ("data model", "max|static-diff|", "max|static-fast|", "tolerance", "cases", "result"),
        )
    lines += [f"{c.key}: {c.error}" for c in stages if c.error]
    lines += [f"{m.name}: {m.error}" for m in pipelines if m.error]
    failed = sum(not c.passed for c in [*stages, *pipelines])
    lines.append(f"{len(stages) + len(pipelines) - failed} passed, {failed} failed")
    return lines
