"""Resolve a declared pipeline against the registry and a camera.

Resolution looks up every stage, fills parameter values (explicit value,
else the camera's, else the declared default), checks each value against its
effective domain and checks that the stages chain (mosaic stages, one
demosaic, RGB stages).
"""

from __future__ import annotations

import attrs
import numpy as np

from driftlab.camera import CameraParams
from driftlab.params import Domain
from driftlab.pipeline.spec import PipelineSpec, SpecError
from driftlab.registry import Registry, RegistryError, get_registry, suggest
from driftlab.stages.base import StageContext, StageSpec

__all__ = ["ResolvedPipeline", "ResolvedStage", "resolve"]


@attrs.frozen
class ResolvedStage:
    """A stage with concrete parameter values and domains.

    Attributes
    ----------
    spec : StageSpec
        The registered declaration.
    values : dict of str to numpy.ndarray
        float64 values of the declared shapes.
    domains : dict of str to Domain
        Effective domain of each parameter.
    name : str
        Unique name within the pipeline (the slot, suffixed ``_2``... when a
        slot repeats).
    plugin : str
        Name of the plugin that declared the stage (for error messages).
    """

    spec: StageSpec
    values: dict[str, np.ndarray]
    domains: dict[str, Domain]
    name: str
    plugin: str = ""

    @property
    def label(self) -> str:
        """``stage 'name' (slot.variant, plugin 'p')`` for error messages."""
        owner = f", plugin {self.plugin!r}" if self.plugin else ""
        return f"stage {self.name!r} ({self.spec.key}{owner})"


@attrs.frozen
class ResolvedPipeline:
    """A pipeline ready to be built in static or differentiable form."""

    spec: PipelineSpec
    camera: CameraParams
    stages: tuple[ResolvedStage, ...]
    seed: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def context(self) -> StageContext:
        """CFA pattern, bit depth and seed handed to every stage."""
        return _context(self.camera, self.seed)

    @property
    def forms(self) -> tuple[str, ...]:
        """Forms every stage provides (the pipeline can be built in these)."""
        return tuple(
            form
            for form in ("static", "differentiable")
            if all(form in s.spec.forms for s in self.stages)
        )


def _context(camera: CameraParams, seed: int) -> StageContext:
    return StageContext(
        cfa=camera.cfa, bit_depth=camera.bit_depth, seed=int(seed), white_level=camera.saturation
    )


def resolve(
    spec: PipelineSpec,
    camera: CameraParams,
    registry: Registry | None = None,
    *,
    check_domains: bool = True,
    seed: int = 0,
) -> ResolvedPipeline:
    """Look up stages and fill and check parameter values.

    Parameters
    ----------
    spec : PipelineSpec
        Declared pipeline.
    camera : CameraParams
        Supplies CFA pattern, bit depth, white level and parameter values the
        pipeline does not set: its ``params["slot.param"]`` first, then the
        field a parameter's ``camera_field`` names.
    registry : Registry or None
        Defaults to :func:`driftlab.registry.get_registry`.
    check_domains : bool
        Reject values outside their effective domain (default True).
    seed : int
        Seed handed to stages that draw random numbers (noise simulators).

    Returns
    -------
    ResolvedPipeline

    Raises
    ------
    SpecError
        Unknown slot, variant or parameter (with the closest valid name), a
        value of the wrong shape, a value outside its domain, or stages that
        do not chain from a mosaic to an RGB view.
    """
    registry = registry or get_registry()
    resolved: list[ResolvedStage] = []
    used_names: dict[str, int] = {}
    kind = "mosaic"
    for i, config in enumerate(spec.stages):
        where = f"pipeline {spec.name!r} stage {i} ({config.slot})"
        try:
            stage = registry.stage(config.slot, config.variant)
        except RegistryError as exc:
            raise SpecError(f"{where}: {exc}") from None
        declared = [p.name for p in stage.params]
        for key in (*config.params, *config.domains):
            if key not in declared:
                raise SpecError(
                    f"{where}: stage {stage.key} has no parameter {key!r}{suggest(key, declared)}; "
                    f"parameters: {', '.join(declared) or 'none'}"
                )
        for key in camera.params:
            slot, _, name = key.partition(".")
            if slot == stage.slot and name not in declared:
                raise SpecError(
                    f"{where}: camera {camera.name!r} params key {key!r}: stage {stage.key} has "
                    f"no parameter {name!r}{suggest(name, declared)}"
                )
        values: dict[str, np.ndarray] = {}
        domains: dict[str, Domain] = {}
        for p in stage.params:
            pwhere = f"{where}: {stage.key}.{p.name}"
            camera_key = f"{stage.slot}.{p.name}"
            if p.name in config.params:
                raw_value = config.params[p.name]
            elif camera_key in camera.params:
                raw_value = camera.params[camera_key]
            elif p.camera_field is not None:
                raw_value = camera.field_value(p.camera_field)
            else:
                raw_value = p.default
            try:
                value = p.coerce(raw_value, pwhere)
            except ValueError as exc:
                raise SpecError(str(exc)) from None
            domain = config.domains.get(
                p.name, camera.domains.get(f"{stage.slot}.{p.name}", p.domain)
            )
            if check_domains:
                problems = domain.problems(value)
                if problems:
                    from_camera = camera_key in camera.params or p.camera_field
                    source = (
                        "spec"
                        if p.name in config.params
                        else (f"camera {camera.name!r}" if from_camera else "default")
                    )
                    raise SpecError(
                        f"{pwhere} ({p.unit}) from the {source} is outside its domain "
                        f"{domain.describe()}: {'; '.join(problems)}. Set a wider domain for it "
                        "in the stage's 'domains' table if this is intended"
                    )
            values[p.name] = value
            domains[p.name] = domain
        if stage.input_kind != kind:
            raise SpecError(
                f"{where}: {stage.key} expects {'a ' if stage.input_kind == 'mosaic' else 'an '}"
                f"{'mosaic' if stage.input_kind == 'mosaic' else 'RGB image'} but receives "
                f"{'a mosaic' if kind == 'mosaic' else 'an RGB image'}; "
                "mosaic stages go before the demosaic stage, RGB stages after it"
            )
        kind = stage.output_kind
        if stage.check_params is not None:
            try:
                stage.check_params(_context(camera, seed), **values)
            except ValueError as exc:
                raise SpecError(f"{where}: {stage.key}: {exc}") from None
        count = used_names.get(stage.slot, 0) + 1
        used_names[stage.slot] = count
        name = stage.slot if count == 1 else f"{stage.slot}_{count}"
        try:
            owner = registry.owner("stages", stage.key)
        except KeyError:
            owner = ""
        resolved.append(ResolvedStage(stage, values, domains, name, owner))
    if kind != "rgb":
        raise SpecError(
            f"pipeline {spec.name!r}: ends with a mosaic; add a demosaic stage to produce RGB views"
        )
    return ResolvedPipeline(spec=spec, camera=camera, stages=tuple(resolved), seed=int(seed))
