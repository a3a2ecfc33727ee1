"""Camera-calibrated parameter domains: how far each ISP parameter may physically move.

A stage parameter declares a *generic* domain (:class:`~driftlab.params.Domain`,
e.g. black level in [0, 0.1] of the white level, gains in [0.25, 8], matrix
entries in [-4, 4]): wide enough for any camera. Attacks, forensic envelopes
and optimisation then range over settings no real camera of this kind would
produce (a black level of 10% at 5% light erases the image). Where physics
ties a parameter to the camera and the light level, :func:`stage_domains`
narrows it (``mode="camera"``), element by element:

black level (``camera_field = "black_level"``)
    ``b_site -+ k * sigma_read / WL``: the calibrated level of each CFA site
    within ``k`` read-noise standard deviations (``sigma_read``, DN; ``WL``
    the white level), the precision with which a dark frame fixes it. An
    offset of the electronics: independent of the light level. Needs the
    camera's ``read_noise``; without it the generic domain is kept.
white-balance gains (``camera_field = "white_balance"``)
    ``g -+ f * |g|`` with ``0 <= f < 1``: within a stated fraction of the
    calibrated gains, so a gain never reaches or crosses zero (a negative
    fitted gain, as Raw-Microscopy's red, stays negative).
colour matrix (``camera_field = "color_matrix"``)
    ``M -+ delta`` per entry; when the calibrated rows sum to 1 (white
    preserving, as Raw-Drone's), the domain keeps rows summing to 1, and a
    stage that declares a row-sum constraint keeps its own.
illumination (slot ``illumination``)
    ``ratio`` within ``light_fraction`` of the requested light level,
    ``gain`` and ``read_noise`` within their fractions of the camera's values.

Each camera-relative box is intersected with the parameter's effective
generic domain (which already includes the camera's ``domains`` overrides).
Defaults of the tolerances are in :class:`~driftlab.camera.DomainTolerances`;
a camera profile may declare its own (``CameraParams.tolerances``), including
explicit element-wise bounds per ``"slot.param"``. Every other parameter keeps
its generic domain. ``mode="generic"`` returns the generic domains for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs
import numpy as np

from driftlab.camera import CameraParams, DomainTolerances
from driftlab.params import Domain, ParamSpec

if TYPE_CHECKING:
    from driftlab.pipeline.resolve import ResolvedPipeline, ResolvedStage
    from driftlab.stages.base import StageSpec

__all__ = ["DOMAIN_MODES", "ParamBounds", "bounds_table", "stage_domains"]

DOMAIN_MODES: tuple[str, ...] = ("camera", "generic")
"""``camera``: calibrated, camera- and light-relative domains; ``generic``: declared ones."""

_ROW_SUM_TOLERANCE = 1e-3


@attrs.frozen
class ParamBounds:
    """Element-wise domain of one stage parameter.

    Attributes
    ----------
    key : str
        ``"stage.param"`` (resolved pipelines) or ``"slot.variant.param"``
        (stage declarations).
    low, high : numpy.ndarray
        float64 bounds of the parameter's shape, ``low <= high``.
    domain : Domain
        Scalar envelope ``[min(low), max(high)]`` with the equality
        constraint (row sum, total) the values must also meet.
    unit : str
        Unit of the parameter.
    source : str
        How the bounds were derived (``"generic"`` or the camera rule with
        its numbers).
    """

    key: str
    low: np.ndarray = attrs.field(eq=False)
    high: np.ndarray = attrs.field(eq=False)
    domain: Domain
    unit: str = ""
    source: str = "generic"

    def contains(self, value: np.ndarray, slack: float = 1e-9) -> bool:
        """Whether ``value`` lies inside the bounds and meets the equality constraint."""
        value = np.asarray(value, dtype=np.float64)
        inside = bool(np.all(value >= self.low - slack) and np.all(value <= self.high + slack))
        return inside and self.domain.contains(value)

    def describe(self) -> str:
        """Text for listings: a scalar range when all elements share it, else per element."""
        if np.allclose(self.low, self.low.flat[0]) and np.allclose(self.high, self.high.flat[0]):
            text = f"[{self.low.flat[0]:.6g}, {self.high.flat[0]:.6g}]"
        else:
            pairs = ", ".join(
                f"[{lo:.4g}, {hi:.4g}]"
                for lo, hi in zip(self.low.ravel(), self.high.ravel(), strict=True)
            )
            text = f"per element {pairs}"
        if self.unit:
            text += f" {self.unit}"
        if self.domain.row_sum is not None:
            text += f", rows sum to {self.domain.row_sum:g}"
        if self.domain.total is not None:
            text += f", elements sum to {self.domain.total:g}"
        return text


def _bounds(
    key: str,
    low: np.ndarray,
    high: np.ndarray,
    generic: Domain,
    unit: str,
    source: str,
    row_sum: float | None = None,
) -> ParamBounds:
    low = np.maximum(np.asarray(low, np.float64), generic.low)
    high = np.minimum(np.asarray(high, np.float64), generic.high)
    low, high = np.minimum(low, high), np.maximum(low, high)
    domain = Domain(
        float(low.min()),
        float(high.max()),
        row_sum=generic.row_sum if generic.row_sum is not None else row_sum,
        total=generic.total,
        tolerance=generic.tolerance,
    )
    return ParamBounds(key, low, high, domain, unit, source)


def _generic(key: str, p: ParamSpec, generic: Domain, note: str = "") -> ParamBounds:
    shape = p.shape
    return ParamBounds(
        key,
        np.full(shape, generic.low),
        np.full(shape, generic.high),
        generic,
        p.unit,
        "generic" + (f" ({note})" if note else ""),
    )


def _camera_rule(
    key: str,
    slot: str,
    p: ParamSpec,
    generic: Domain,
    camera: CameraParams,
    intensity: float,
    tol: DomainTolerances,
) -> ParamBounds:
    explicit = tol.bounds.get(f"{slot}.{p.name}")
    if explicit is not None:
        n = int(np.prod(p.shape))
        low, high = (np.asarray(v, np.float64).ravel() for v in explicit)
        if low.size not in (1, n):
            raise ValueError(
                f"camera {camera.name!r} tolerances bounds[{slot}.{p.name!r}]: expected {n} "
                f"values (or one), got {low.size}"
            )
        low, high = (np.resize(v, n).reshape(p.shape) for v in (low, high))
        source = f"camera {camera.name!r}: bounds declared by the profile"
        return _bounds(key, low, high, generic, p.unit, source)
    if p.camera_field == "black_level":
        if camera.read_noise is None:
            return _generic(key, p, generic, f"camera {camera.name!r} declares no read noise")
        value = camera.field_value("black_level").reshape(p.shape)
        sigma = float(camera.read_noise) / float(camera.saturation)
        half = tol.black_level_sigmas * sigma
        source = (
            f"camera {camera.name!r}: calibrated -+ {tol.black_level_sigmas:g} read-noise sigma "
            f"({camera.read_noise:g} DN / {camera.saturation} = {sigma:.3g})"
        )
        return _bounds(key, value - half, value + half, generic, p.unit, source)
    if p.camera_field == "white_balance":
        value = camera.field_value("white_balance").reshape(p.shape)
        half = tol.white_balance_fraction * np.abs(value)
        source = (
            f"camera {camera.name!r}: calibrated gains -+ {100 * tol.white_balance_fraction:g}%"
        )
        return _bounds(key, value - half, value + half, generic, p.unit, source)
    if p.camera_field == "color_matrix":
        value = camera.field_value("color_matrix").reshape(p.shape)
        rows = value.sum(axis=-1) if value.ndim == 2 else value
        white = value.ndim == 2 and bool(np.all(np.abs(rows - 1.0) <= _ROW_SUM_TOLERANCE))
        delta = tol.color_matrix_delta
        source = f"camera {camera.name!r}: calibrated matrix -+ {delta:g} per entry" + (
            ", rows sum to 1 as calibrated" if white else ""
        )
        return _bounds(
            key, value - delta, value + delta, generic, p.unit, source, 1.0 if white else None
        )
    if slot == "illumination" and p.name == "ratio":
        half = tol.light_fraction * intensity
        source = f"light level {intensity:g} -+ {100 * tol.light_fraction:g}%"
        value = np.full(p.shape, intensity)
        return _bounds(key, value - half, value + half, generic, p.unit, source)
    if slot == "illumination" and p.name in ("gain", "read_noise"):
        known = camera.gain if p.name == "gain" else camera.read_noise
        if known is None:
            return _generic(key, p, generic, f"camera {camera.name!r} declares no {p.name}")
        fraction = tol.gain_fraction if p.name == "gain" else tol.read_noise_fraction
        value = np.full(p.shape, float(known))
        source = f"camera {camera.name!r}: {p.name} {float(known):g} -+ {100 * fraction:g}%"
        return _bounds(key, value * (1 - fraction), value * (1 + fraction), generic, p.unit, source)
    return _generic(key, p, generic)


def _entries(
    stages: ResolvedPipeline | Iterable[StageSpec | ResolvedStage], camera: CameraParams
) -> list[tuple[str, str, ParamSpec, Domain, np.ndarray | None]]:
    """``(key, slot, param, effective generic domain, resolved value or None)``."""
    from driftlab.pipeline.resolve import ResolvedPipeline, ResolvedStage

    items = stages.stages if isinstance(stages, ResolvedPipeline) else list(stages)
    out = []
    for stage in items:
        if isinstance(stage, ResolvedStage):
            for p in stage.spec.params:
                out.append(
                    (f"{stage.name}.{p.name}", stage.spec.slot, p, stage.domains[p.name],
                     np.asarray(stage.values[p.name], np.float64))
                )  # fmt: skip
        else:
            for p in stage.params:
                generic = camera.domains.get(f"{stage.slot}.{p.name}", p.domain)
                out.append((f"{stage.key}.{p.name}", stage.slot, p, generic, None))
    return out


def _include(bounds: ParamBounds, value: np.ndarray, generic: Domain) -> ParamBounds:
    """Widen ``bounds`` to admit a pipeline's value; drop an added row-sum rule it breaks."""
    low, high = np.minimum(bounds.low, value), np.maximum(bounds.high, value)
    domain = attrs.evolve(bounds.domain, low=float(low.min()), high=float(high.max()))
    source = bounds.source + "; widened to include the pipeline's value"
    if generic.row_sum is None and domain.row_sum is not None and not domain.contains(value):
        domain = attrs.evolve(domain, row_sum=None)
        source += " (rows not constrained: its rows do not sum to 1)"
    return attrs.evolve(bounds, low=low, high=high, domain=domain, source=source)


def stage_domains(
    stages: ResolvedPipeline | Iterable[StageSpec | ResolvedStage],
    camera: CameraParams,
    intensity: float = 1.0,
    mode: str = "camera",
    tolerances: DomainTolerances | None = None,
) -> dict[str, ParamBounds]:
    """Domain of every parameter of some stages, relative to a camera and a light level.

    Parameters
    ----------
    stages : ResolvedPipeline, or iterable of StageSpec / ResolvedStage
        A resolved pipeline (keys ``"stage.param"`` as attacks use them;
        the effective domains include pipeline and camera overrides) or
        stage declarations (keys ``"slot.variant.param"``, as
        ``driftlab stages`` lists them).
    camera : CameraParams
        Calibrated values, read noise, gain, white level and tolerances.
    intensity : float
        Light level in (0, 1] the data is captured or simulated at.
    mode : {"camera", "generic"}
        Camera-relative domains (module docstring) or the generic ones.
    tolerances : DomainTolerances, optional
        Overrides the camera's (``camera.tolerances``) and the defaults.

    Returns
    -------
    dict of str to ParamBounds
        In stage order. With a resolved pipeline, a resolved value outside
        its camera box widens the box to include it (said in ``source``),
        so the pipeline's own setting stays admissible.

    Raises
    ------
    ValueError
        Unknown mode, intensity outside (0, 1], or profile bounds of the
        wrong size.
    """
    if mode not in DOMAIN_MODES:
        raise ValueError(f"domains: expected one of {', '.join(DOMAIN_MODES)}, got {mode!r}")
    intensity = float(intensity)
    if not 0.0 < intensity <= 1.0:
        raise ValueError(f"domains: light level must lie in (0, 1], got {intensity}")
    tol = tolerances or camera.tolerances or DomainTolerances()
    out: dict[str, ParamBounds] = {}
    for key, slot, p, generic, value in _entries(stages, camera):
        if mode == "generic":
            bounds = _generic(key, p, generic)
        else:
            bounds = _camera_rule(key, slot, p, generic, camera, intensity, tol)
        if value is not None and not bounds.contains(value, slack=1e-12):
            bounds = _include(bounds, value, generic)
        out[key] = bounds
    return out


def bounds_table(bounds: Mapping[str, ParamBounds]) -> list[dict[str, object]]:
    """JSON-ready rows ``{key, low, high, row_sum, unit, source}`` for reports."""
    return [
        {
            "key": key,
            "low": b.low.tolist(),
            "high": b.high.tolist(),
            "row_sum": b.domain.row_sum,
            "unit": b.unit,
            "source": b.source,
        }
        for key, b in bounds.items()
    ]
