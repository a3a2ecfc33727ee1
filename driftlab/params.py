"""Declared stage parameters and their physical domains.

A :class:`ParamSpec` declares one parameter of an ISP stage: its name, shape,
default value, unit and the :class:`Domain` of physically meaningful values.
Domains are used in three places: to reject bad user input when a pipeline is
built, to project parameters back inside during attacks, and to print the
envelope with units in reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import torch

__all__ = ["Domain", "ParamSpec", "parse_domain"]


def _as_tuple(value: object) -> tuple[int, ...]:
    return tuple(int(v) for v in value)  # type: ignore[union-attr]


@attrs.frozen
class Domain:
    """Set of admissible values for one parameter.

    The domain is an element-wise box ``low <= value <= high``, optionally
    intersected with linear equality constraints: every row summing to
    ``row_sum`` (for 3x3 colour matrices that preserve neutral grey) or all
    elements summing to ``total`` (for convolution kernels that keep mean
    brightness).

    Parameters
    ----------
    low, high : float
        Element-wise bounds, in the parameter's unit. ``low <= high``.
    row_sum : float or None
        If set, each row of a 2-D parameter must sum to this value.
    total : float or None
        If set, all elements must sum to this value.
    tolerance : float
        Absolute slack allowed when checking the equality constraints.
    """

    low: float = attrs.field(converter=float)
    high: float = attrs.field(converter=float)
    row_sum: float | None = None
    total: float | None = None
    tolerance: float = 1e-6

    def __attrs_post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"domain low={self.low} must not exceed high={self.high}")

    def problems(self, value: np.ndarray) -> list[str]:
        """Describe every way ``value`` violates this domain.

        Parameters
        ----------
        value : numpy.ndarray
            Parameter value of any shape, float.

        Returns
        -------
        list of str
            Empty when ``value`` lies inside the domain.
        """
        value = np.asarray(value, dtype=np.float64)
        found: list[str] = []
        if not np.all(np.isfinite(value)):
            found.append("contains NaN or Inf")
            return found
        slack = self.tolerance
        if np.any(value < self.low - slack) or np.any(value > self.high + slack):
            found.append(
                f"values must lie in [{self.low:g}, {self.high:g}], "
                f"got min {value.min():.6g}, max {value.max():.6g}"
            )
        if self.row_sum is not None:
            if value.ndim != 2:
                found.append(f"row-sum constraint needs a 2-D value, got shape {value.shape}")
            else:
                sums = value.sum(axis=1)
                if np.any(np.abs(sums - self.row_sum) > max(slack, 1e-6)):
                    found.append(
                        f"each row must sum to {self.row_sum:g}, got row sums "
                        + ", ".join(f"{s:.6g}" for s in sums)
                    )
        if self.total is not None and abs(value.sum() - self.total) > max(slack, 1e-6):
            found.append(f"elements must sum to {self.total:g}, got {value.sum():.6g}")
        return found

    def contains(self, value: np.ndarray) -> bool:
        """Return True when ``value`` satisfies every constraint."""
        return not self.problems(value)

    def project(self, value: torch.Tensor, iterations: int = 50) -> torch.Tensor:
        """Euclidean projection (approximate for combined constraints) onto the domain.

        For a plain box the projection is exact (clamping). With an equality
        constraint the box and the affine set are intersected by Dykstra's
        alternating projection algorithm (Boyle and Dykstra, 1986), which
        converges to the exact Euclidean projection.

        Parameters
        ----------
        value : torch.Tensor
            Parameter tensor of the declared shape, any float dtype.
        iterations : int
            Dykstra iterations when an equality constraint is present.

        Returns
        -------
        torch.Tensor
            Tensor of the same shape and dtype, inside the domain (to within
            ``tolerance`` for equality constraints after convergence).
        """
        if self.row_sum is None and self.total is None:
            return value.clamp(self.low, self.high)
        x = value.clone()
        p = torch.zeros_like(x)
        q = torch.zeros_like(x)
        for _ in range(iterations):
            y = self._project_affine(x + p)
            p = x + p - y
            x = (y + q).clamp(self.low, self.high)
            q = y + q - x
        return x

    def _project_affine(self, x: torch.Tensor) -> torch.Tensor:
        if self.row_sum is not None:
            n = x.shape[-1]
            x = x - (x.sum(dim=-1, keepdim=True) - self.row_sum) / n
        if self.total is not None:
            x = x - (x.sum() - self.total) / x.numel()
        return x

    def describe(self, unit: str = "") -> str:
        """Human-readable form, e.g. ``[1.6, 2.8] (exponent)``."""
        text = f"[{self.low:g}, {self.high:g}]"
        if unit:
            text += f" {unit}"
        if self.row_sum is not None:
            text += f", rows sum to {self.row_sum:g}"
        if self.total is not None:
            text += f", elements sum to {self.total:g}"
        return text


def parse_domain(data: object, where: str) -> Domain:
    """Build a :class:`Domain` from a TOML/dict value.

    Accepts ``[low, high]`` or a table with keys ``low``, ``high`` and
    optionally ``row_sum`` and ``total``.

    Raises
    ------
    ValueError
        If ``data`` has another form; the message names ``where``.
    """
    if isinstance(data, Domain):
        return data
    if isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 2:
        return Domain(float(data[0]), float(data[1]))
    if isinstance(data, dict):
        allowed = {"low", "high", "row_sum", "total"}
        unknown = set(data) - allowed
        if unknown or not {"low", "high"} <= set(data):
            raise ValueError(
                f"{where}: a domain needs keys low and high (optional row_sum, total); "
                f"got {sorted(data)}"
            )
        return Domain(**data)
    raise ValueError(f"{where}: expected a domain [low, high] or a table, got {data!r}")


def _nested_tuple(array: np.ndarray) -> object:
    if array.ndim == 0:
        return float(array)
    return tuple(_nested_tuple(a) for a in array)


@attrs.frozen
class ParamSpec:
    """Declaration of one stage parameter.

    Parameters
    ----------
    name : str
        Identifier, unique within its stage (``gains``, ``gamma`` ...).
    shape : tuple of int
        Tensor shape; ``()`` for a scalar.
    default : tuple or float
        Default value, nested to match ``shape``; a single number is
        broadcast to ``shape`` (stored as nested tuples).
    unit : str
        Physical unit printed in reports (``"fraction of white level"``).
    domain : Domain
        Physically meaningful admissible values.
    doc : str
        One-line description.
    camera_field : str or None
        Name of a :class:`driftlab.camera.CameraParams` field that supplies the
        value when the pipeline spec does not set it (e.g. ``"white_balance"``).
    differentiable : bool
        Whether the differentiable form exposes it as an ``nn.Parameter``.
    """

    name: str
    shape: tuple[int, ...] = attrs.field(converter=_as_tuple)
    default: object
    unit: str
    domain: Domain
    doc: str
    camera_field: str | None = attrs.field(default=None)
    differentiable: bool = True

    @camera_field.validator
    def _check_camera_field(self, attribute: attrs.Attribute, value: str | None) -> None:
        if value not in (None, "black_level", "white_balance", "color_matrix"):
            raise ValueError(
                f"parameter {self.name!r}: camera_field must be black_level, white_balance "
                f"or color_matrix, got {value!r}"
            )

    def __attrs_post_init__(self) -> None:
        default = np.asarray(self.default, dtype=np.float64)
        if default.ndim == 0 and self.shape != ():
            # a scalar default stands for every element (documented); frozen, hence setattr
            default = np.full(self.shape, float(default))
            object.__setattr__(self, "default", _nested_tuple(default))
        if default.shape != self.shape:
            raise ValueError(
                f"parameter {self.name!r}: default has shape {default.shape}, "
                f"declared shape is {self.shape}"
            )

    def coerce(self, value: object, where: str) -> np.ndarray:
        """Convert a user value to a float64 array of the declared shape.

        Raises
        ------
        ValueError
            If the value is not numeric or has the wrong shape; the message
            names ``where`` and the expected shape.
        """
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: expected numbers of shape {self.shape}, got {value!r}"
            ) from exc
        if array.shape != self.shape:
            if array.size == int(np.prod(self.shape)) and array.ndim <= 1:
                array = array.reshape(self.shape)
            else:
                raise ValueError(f"{where}: expected shape {self.shape}, got shape {array.shape}")
        return array
