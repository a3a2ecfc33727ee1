"""Planning the ISP side of an optimisation run: domains, the true camera, paper checks.

Everything here is resolved (and every problem raised as a
:class:`~driftlab.errors.ConfigError` naming the key) before the run
directory exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from driftlab.camera import CameraParams
from driftlab.domains import ParamBounds, stage_domains
from driftlab.errors import ConfigError
from driftlab.optimize.config import PAPER_MODES, OptimizeConfig
from driftlab.optimize.miscalibration import true_camera
from driftlab.optimize.paper import check_paper_pipeline
from driftlab.pipeline import PipelineSpec, SpecError
from driftlab.pipeline.resolve import resolve
from driftlab.registry import Registry

__all__ = ["IspSetup", "plan_isp"]


@attrs.frozen
class IspSetup:
    """The ISP facts every cell and the summary share.

    Attributes
    ----------
    domains : {"camera", "generic"}
        Which domains (``[isp].domains``).
    step_size : {"domain-width", "absolute"}
        How the learned arm's steps are sized (``[isp].step_size``).
    bounds : dict of float to dict of str to ParamBounds
        Per intensity level, the element-wise domain of every learnable
        parameter of the base pipeline, keyed ``"stage.param"``.
    camera : CameraParams
        The calibrated profile the ISP is built with.
    true : CameraParams
        The camera the data are rendered for (``camera`` itself unless
        ``[miscalibration]`` says otherwise).
    targets : dict of str to numpy.ndarray
        Values of the camera-derived parameters (black level, white balance,
        colour matrix) that the true camera calls for: where an ISP that
        corrects the mis-calibration would go.
    start : dict of str to numpy.ndarray
        Initial values of every learnable parameter of the base pipeline
        (resolved with the profile).
    """

    domains: str
    step_size: str
    bounds: dict[float, dict[str, ParamBounds]] = attrs.field(eq=False)
    camera: CameraParams
    true: CameraParams
    targets: dict[str, np.ndarray] = attrs.field(eq=False)
    start: dict[str, np.ndarray] = attrs.field(eq=False)

    @property
    def miscalibrated(self) -> bool:
        """Whether the data are rendered for another camera than the profile."""
        return self.true != self.camera

    def widths(self, intensity: float) -> dict[str, np.ndarray]:
        """Element-wise domain widths ``high - low`` at ``intensity``, keyed ``"stage.param"``."""
        return {
            k: np.asarray(b.high - b.low, np.float64) for k, b in self.bounds[intensity].items()
        }


def plan_isp(
    config: OptimizeConfig,
    camera: CameraParams,
    pipeline: PipelineSpec,
    registry: Registry,
    intensities: Sequence[float],
) -> IspSetup:
    """Resolve domains, the mis-calibrated camera and the paper checks of ``config``.

    Parameters
    ----------
    config : OptimizeConfig
    camera : CameraParams
        The dataset's (calibrated) camera profile.
    pipeline : PipelineSpec
        The base pipeline, already known to have a differentiable form when
        an ISP arm is configured.
    registry : Registry
    intensities : sequence of float
        The light levels of the run.

    Raises
    ------
    ConfigError
        A mis-calibration that no camera could have (naming the
        ``[miscalibration]`` key), a base pipeline without the paper's
        structure while a paper arm is configured, or a domain of infinite
        width.
    """
    mis = config.miscalibration
    try:
        true = true_camera(camera, mis.white_balance, mis.color_matrix_delta, mis.black_level)
    except ValueError as exc:
        raise ConfigError(f"{config.source} [miscalibration].{exc}") from None
    try:
        resolved = resolve(pipeline, camera, registry)
        resolved_true = resolve(pipeline, true, registry, check_domains=False)
    except SpecError as exc:
        raise ConfigError(f"{config.source} [pipeline].name: {exc}") from None
    paper = [m for m in config.training.modes if m in PAPER_MODES]
    if paper:
        try:
            check_paper_pipeline(resolved)
        except ValueError as exc:
            raise ConfigError(
                f"{config.source} [training].modes: {', '.join(map(repr, paper))} follow the "
                f"paper's processor, but {exc}"
            ) from None
    start = {
        f"{stage.name}.{p.name}": np.asarray(stage.values[p.name], np.float64)
        for stage in resolved.stages
        for p in stage.spec.params
        if p.differentiable
    }
    bounds: dict[float, dict[str, ParamBounds]] = {}
    for intensity in intensities:
        every = stage_domains(resolved, camera, intensity, mode=config.isp.domains)
        chosen = {k: every[k] for k in start}
        for key, b in chosen.items():
            if not (np.all(np.isfinite(b.low)) and np.all(np.isfinite(b.high))):
                raise ConfigError(
                    f"{config.source} [isp].domains: the domain of {key} is not finite "
                    f"({b.describe()}); steps cannot be scaled to its width"
                )
        bounds[float(intensity)] = chosen
    targets: dict[str, np.ndarray] = {}
    for stage, true_stage in zip(resolved.stages, resolved_true.stages, strict=True):
        for p in stage.spec.params:
            if p.differentiable and p.camera_field is not None:
                targets[f"{stage.name}.{p.name}"] = np.asarray(
                    true_stage.values[p.name], np.float64
                )
    return IspSetup(
        domains=config.isp.domains,
        step_size=config.isp.step_size,
        bounds=bounds,
        camera=camera,
        true=true,
        targets=targets,
        start=start,
    )
