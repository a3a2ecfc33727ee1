"""The equivalence contract: static and differentiable forms must agree.

For every stage that declares both forms, :func:`verify_stage` compares the
two on random inputs of several sizes, all four CFA patterns (for stages that
read the mosaic) and several parameter values inside the declared domain, over
the whole image, borders included (the paper's Eq. 5). It also runs
:func:`torch.autograd.gradcheck` in float64 with respect to the stage's
parameters and its input. Plugin authors run this on their stages through
``driftlab verify``.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.cfa import CFA_PATTERNS
from driftlab.params import ParamSpec
from driftlab.pipeline.differentiable import build_differentiable
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.static import build_static
from driftlab.registry import Registry, get_registry
from driftlab.stages.base import StageContext, StageSpec

__all__ = ["StageCheck", "sample_in_domain", "verify_pipeline", "verify_registry", "verify_stage"]

SIZES: tuple[tuple[int, int], ...] = ((8, 10), (34, 22), (64, 64))
GRADCHECK_SIZE: tuple[int, int] = (6, 8)


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
        Largest ``|static - differentiable|`` over all cases (float64).
    tolerance : float
        Allowed maximum (the stage's declared tolerance).
    cases : int
        Number of (size, CFA, parameter) cases compared.
    gradcheck : bool
        Whether ``torch.autograd.gradcheck`` passed.
    error : str
        Why a check failed or could not run, empty otherwise.
    """

    key: str
    plugin: str
    max_abs_diff: float
    tolerance: float
    cases: int
    gradcheck: bool
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.gradcheck and self.max_abs_diff <= self.tolerance and not self.error


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


def _random_input(stage: StageSpec, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    channels = 1 if stage.input_kind == "mosaic" else 3
    return rng.uniform(0.05, 0.95, size=(channels, *size))


def _compare(
    stage: StageSpec, x: np.ndarray, ctx: StageContext, params: dict[str, np.ndarray]
) -> float:
    static_in = x[0] if stage.input_kind == "mosaic" else x
    expected = np.asarray(stage.static(static_in.copy(), ctx, **params))
    tensor_params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
    with torch.no_grad():
        got = stage.differentiable(torch.as_tensor(x[None]), ctx, **tensor_params)[0].numpy()
    if stage.output_kind == "mosaic":
        got = got[0]
    if expected.shape != got.shape:
        raise ValueError(f"static output {expected.shape} vs differentiable output {got.shape}")
    return float(np.abs(expected - got).max())


def _gradcheck(stage: StageSpec, rng: np.random.Generator) -> None:
    ctx = StageContext(cfa="RGGB")
    x = torch.as_tensor(_random_input(stage, GRADCHECK_SIZE, rng)[None], dtype=torch.float64)
    x.requires_grad_(True)
    names = [p.name for p in stage.params if p.differentiable]
    fixed = {
        p.name: torch.as_tensor(np.asarray(p.default, dtype=np.float64))
        for p in stage.params
        if not p.differentiable
    }
    values = [
        torch.as_tensor(sample_in_domain(stage.param(n), rng, 0.1)).requires_grad_(True)
        for n in names
    ]

    def fn(inp: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        return stage.differentiable(inp, ctx, **dict(zip(names, params, strict=True)), **fixed)

    torch.autograd.gradcheck(fn, (x, *values), eps=1e-6, atol=1e-5, rtol=1e-3)


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
        Never raises for a failing stage: errors are captured in ``error``.

    Raises
    ------
    ValueError
        If the stage lacks one of the two forms.
    """
    if len(stage.forms) != 2:
        raise ValueError(f"stage {stage.key} has only the {stage.forms[0]} form")
    rng = np.random.default_rng(seed)
    patterns = CFA_PATTERNS if stage.input_kind == "mosaic" else ("RGGB",)
    worst, cases, error = 0.0, 0, ""
    try:
        for size in SIZES:
            for cfa in patterns:
                ctx = StageContext(cfa=cfa)
                param_sets = [
                    {p.name: np.asarray(p.default, dtype=np.float64) for p in stage.params}
                ]
                if stage.params:
                    param_sets.append({p.name: sample_in_domain(p, rng) for p in stage.params})
                for params in param_sets:
                    x = _random_input(stage, size, rng)
                    worst = max(worst, _compare(stage, x, ctx, params))
                    cases += 1
    except Exception as exc:
        error = f"comparison failed: {type(exc).__name__}: {exc}"
    grad_ok = False
    try:
        _gradcheck(stage, rng)
        grad_ok = True
    except Exception as exc:
        error = error or f"gradcheck failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return StageCheck(stage.key, plugin, worst, stage.tolerance, cases, grad_ok, error)


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
