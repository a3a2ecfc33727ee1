"""Camera parameters: what a pipeline is built with.

:class:`CameraParams` gathers the sensor facts that the reference ISP needs
(CFA pattern, bit depth, black level, white-balance gains, colour matrix) and
an optional noise model. Named instances are *camera profiles*, declared by
plugins through the ``driftlab_camera_profiles`` hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from driftlab.cfa import check_cfa
from driftlab.params import Domain, parse_domain

__all__ = ["CameraParams", "DomainTolerances"]


def _floats(shape: tuple[int, ...], field: str):
    def convert(value: object) -> tuple:
        array = np.asarray(value, dtype=np.float64)
        if array.size != int(np.prod(shape)):
            raise ValueError(
                f"camera {field}: expected {int(np.prod(shape))} numbers, got {array.size}"
            )
        return tuple(map(tuple, array.reshape(shape))) if len(shape) == 2 else tuple(array.ravel())

    return convert


def _check_finite(instance: object, attribute: attrs.Attribute, value: tuple) -> None:
    if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
        raise ValueError(f"camera {attribute.name}: contains NaN or Inf: {value}")


def _check_bits(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= 32:
        raise ValueError(f"camera bit_depth: expected 1..32 bits, got {value}")


def _convert_domains(value: Mapping[str, object]) -> dict[str, Domain]:
    return {key: parse_domain(v, f"camera domains[{key!r}]") for key, v in dict(value).items()}


def _convert_params(value: Mapping[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in dict(value).items():
        slot, dot, name = str(key).partition(".")
        if not dot or not slot or not name:
            raise ValueError(
                f"camera params: key {key!r} must be 'slot.param' (e.g. 'gamma.gamma')"
            )
        array = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"camera params[{key!r}]: expected finite numbers, got {v!r}")
        out[str(key)] = array.tolist()
    return out


def _non_negative(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"camera tolerances {attribute.name}: expected a number >= 0, got {value}")


def _below_one(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (np.isfinite(value) and 0 <= value < 1):
        raise ValueError(
            f"camera tolerances {attribute.name}: expected a fraction in [0, 1) (so that gains "
            f"never cross zero), got {value}"
        )


def _convert_bounds(
    value: Mapping[str, object],
) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    out = {}
    for key, pair in dict(value).items():
        where = f"camera tolerances bounds[{key!r}]"
        if not isinstance(key, str) or key.count(".") != 1:
            raise ValueError(f"{where}: keys are 'slot.param', got {key!r}")
        try:
            low, high = (np.asarray(v, dtype=np.float64).ravel() for v in pair)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected [low, high] arrays, got {pair!r}") from None
        if low.shape != high.shape or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"{where}: low and high must be finite and of one shape")
        if np.any(low > high):
            raise ValueError(f"{where}: low exceeds high")
        out[key] = (tuple(low.tolist()), tuple(high.tolist()))
    return out


@attrs.frozen
class DomainTolerances:
    """How far calibrated camera parameters may move in camera-relative domains.

    Used by :func:`driftlab.domains.stage_domains` (``mode="camera"``); a
    camera profile declares its own through :attr:`CameraParams.tolerances`.

    Parameters
    ----------
    black_level_sigmas : float
        Black level within ``k`` read-noise standard deviations of its
        calibrated value (``k * read_noise / white_level`` per site; needs the
        camera's read noise).
    white_balance_fraction : float
        White-balance gains within this fraction of the calibrated gains
        (``g * (1 -+ f)``), in [0, 1) so that no gain crosses zero.
    color_matrix_delta : float
        Colour-matrix entries within this absolute distance of the calibrated
        matrix.
    light_fraction : float
        Illumination ``ratio`` within this fraction of the requested light level.
    gain_fraction : float
        Conversion gain within this fraction of the camera's gain.
    read_noise_fraction : float
        Read noise within this fraction of the camera's read noise.
    bounds : mapping of str to (low, high)
        Explicit element-wise bounds keyed ``"slot.param"`` that replace the
        rules above for that parameter.

    Raises
    ------
    ValueError
        Negative or non-finite tolerances, fractions of 1 or more, or
        malformed bounds.
    """

    black_level_sigmas: float = attrs.field(default=3.0, converter=float, validator=_non_negative)
    white_balance_fraction: float = attrs.field(default=0.25, converter=float, validator=_below_one)
    color_matrix_delta: float = attrs.field(default=0.1, converter=float, validator=_non_negative)
    light_fraction: float = attrs.field(default=0.1, converter=float, validator=_below_one)
    gain_fraction: float = attrs.field(default=0.1, converter=float, validator=_below_one)
    read_noise_fraction: float = attrs.field(default=0.25, converter=float, validator=_below_one)
    bounds: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = attrs.field(
        factory=dict, converter=_convert_bounds
    )


def _convert_tolerances(value: object) -> DomainTolerances | None:
    if value is None or isinstance(value, DomainTolerances):
        return value
    if isinstance(value, Mapping):
        try:
            return DomainTolerances(**dict(value))
        except TypeError as exc:
            raise ValueError(f"camera tolerances: {exc}") from None
    raise ValueError(
        f"camera tolerances: expected a table of DomainTolerances fields, got {value!r}"
    )


@attrs.frozen
class CameraParams:
    """Sensor facts used to build a pipeline.

    Parameters
    ----------
    name : str
        Profile name (``openisp``, ``raw-microscopy`` ...).
    cfa : str
        Bayer pattern, ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.
    bit_depth : int
        Bits per stored sample; raw values are divided by ``white_level``.
    black_level : tuple of 4 float
        Black level of each CFA site in raster order, as a fraction of the
        white level (0..1).
    white_balance : tuple of 3 float
        R, G, B gains.
    color_matrix : 3x3 tuple of float
        Camera RGB to output RGB.
    white_level : int or None
        Saturation value of the stored integers; defaults to ``2**bit_depth - 1``.
    gain : float or None
        Conversion gain in DN per electron on the stored scale (for noise
        simulation), if known.
    read_noise : float or None
        Read-noise standard deviation in DN on the stored scale, if known.
    domains : mapping of str to Domain
        Domain overrides keyed ``"slot.param"`` for cameras whose calibrated
        values leave the default physical domain (e.g. fitted matrices).
    tolerances : DomainTolerances or mapping, optional
        The profile's own tolerances for camera-relative domains
        (:func:`driftlab.domains.stage_domains`); None: the defaults.
    params : mapping of str to array_like
        Calibrated values of any stage parameter, keyed ``"slot.param"``
        (e.g. ``{"lens_shading.k1": -0.21}``): used when a pipeline does not
        set the parameter, before its ``camera_field`` and its default, so a
        lens fit lives in the profile only.
    description : str
        Where the numbers come from.
    """

    name: str
    cfa: str = attrs.field(default="RGGB", converter=lambda v: check_cfa(v, "camera cfa"))
    bit_depth: int = attrs.field(default=16, converter=int, validator=_check_bits)
    black_level: tuple[float, ...] = attrs.field(
        default=(0.0, 0.0, 0.0, 0.0),
        converter=_floats((4,), "black_level"),
        validator=_check_finite,
    )
    white_balance: tuple[float, ...] = attrs.field(
        default=(1.0, 1.0, 1.0),
        converter=_floats((3,), "white_balance"),
        validator=_check_finite,
    )
    color_matrix: tuple[tuple[float, ...], ...] = attrs.field(
        default=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        converter=_floats((3, 3), "color_matrix"),
        validator=_check_finite,
    )
    white_level: int | None = None
    gain: float | None = None
    read_noise: float | None = None
    domains: dict[str, Domain] = attrs.field(factory=dict, converter=_convert_domains)
    tolerances: DomainTolerances | None = attrs.field(default=None, converter=_convert_tolerances)
    params: dict[str, Any] = attrs.field(factory=dict, converter=_convert_params)
    description: str = ""

    @property
    def saturation(self) -> int:
        """White level used to normalise raw integers to [0, 1]."""
        return int(self.white_level) if self.white_level is not None else 2**self.bit_depth - 1

    def field_value(self, field: str) -> np.ndarray:
        """Value of ``black_level``, ``white_balance`` or ``color_matrix`` as float64.

        Raises
        ------
        KeyError
            If ``field`` is not a camera parameter.
        """
        if field not in ("black_level", "white_balance", "color_matrix"):
            raise KeyError(f"camera has no parameter field {field!r}")
        return np.asarray(getattr(self, field), dtype=np.float64)

    def replace(self, **changes: object) -> CameraParams:
        """Copy with some fields changed (validated again)."""
        return attrs.evolve(self, **changes)
