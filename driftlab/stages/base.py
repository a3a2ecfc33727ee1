"""Declarations of ISP stages.

A stage is one step of an ISP with a fixed *slot* (its kind, e.g.
``demosaic``) and a *variant* (its algorithm, e.g. ``malvar2004``). A
:class:`StageSpec` declares the parameters and provides a static (numpy) and/or
a differentiable (torch) implementation as plain functions; the pipeline
builder wraps the torch function in :class:`DifferentiableStage`.

Function signatures
-------------------
static(x, ctx, **params) -> numpy.ndarray
    ``x`` is ``(H, W)`` float64 for a mosaic input or ``(3, H, W)`` float64
    for an RGB input; ``params`` are float64 arrays of the declared shapes.
differentiable(x, ctx, **params) -> torch.Tensor
    ``x`` is ``(B, 1, H, W)`` or ``(B, 3, H, W)``; ``params`` are tensors of
    the declared shapes, same dtype and device as ``x``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import attrs
import numpy as np
import torch
from torch import nn

from driftlab.params import Domain, ParamSpec

__all__ = ["KINDS", "DifferentiableStage", "StageContext", "StageSpec"]

Kind = Literal["mosaic", "rgb"]
KINDS: tuple[str, ...] = ("mosaic", "rgb")

StaticFn = Callable[..., np.ndarray]
TorchFn = Callable[..., torch.Tensor]


@attrs.frozen
class StageContext:
    """Fixed, non-learnable facts a stage may need.

    Parameters
    ----------
    cfa : str
        CFA pattern of the mosaic (``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``).
    bit_depth : int
        Bits per stored raw sample of the sensor.
    seed : int
        Seed for stages that draw random numbers (noise simulators).
    white_level : int
        Saturation value of the stored integers, the number a mosaic value of
        1.0 stands for: the camera's ``white_level`` (``CameraParams.saturation``),
        ``2**bit_depth - 1`` when not given. Stages that convert between the
        mosaic's [0, 1] scale and stored numbers (DN, electrons) use this, as
        datasets do.
    """

    cfa: str = "RGGB"
    bit_depth: int = 16
    seed: int = 0
    white_level: int = attrs.field(converter=int)

    @white_level.default
    def _white_level_from_bits(self) -> int:
        return 2 ** int(self.bit_depth) - 1


def _check_kind(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in KINDS:
        raise ValueError(f"{attribute.name} must be one of {KINDS}, got {value!r}")


def _check_identifier(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not value or not all(ch.isalnum() or ch == "_" for ch in value):
        raise ValueError(
            f"{attribute.name} must be a non-empty identifier (letters, digits, _), got {value!r}"
        )


@attrs.frozen
class StageSpec:
    """Declaration of one ISP stage variant.

    Parameters
    ----------
    slot : str
        Kind of step: ``black_level``, ``demosaic``, ``white_balance``,
        ``color_correction``, ``sharpen``, ``denoise``, ``gamma`` or a slot a
        plugin introduces.
    variant : str
        Algorithm name, unique within the slot.
    doc : str
        One-line description.
    params : tuple of ParamSpec
        Declared parameters.
    static : callable or None
        numpy implementation (see module docstring).
    differentiable : callable or None
        torch implementation (see module docstring).
    input_kind, output_kind : {"mosaic", "rgb"}
        What the stage consumes and produces.
    reference : str
        Source of the algorithm (paper or library).
    tolerance : float
        Max abs difference allowed between the two forms by ``driftlab verify``.
    check_params : callable or None
        Optional ``check_params(ctx, **params) -> None`` called when a
        pipeline is resolved, with the parameter values it will use; raises
        ``ValueError`` (message naming the parameter) for values that the
        domain admits but the stage cannot run with, e.g. a Gaussian whose
        kernel would not fit in memory. Nothing is allocated before it passes.
    """

    slot: str = attrs.field(validator=_check_identifier)
    variant: str = attrs.field(validator=_check_identifier)
    doc: str
    params: tuple[ParamSpec, ...] = attrs.field(default=(), converter=tuple)
    static: StaticFn | None = attrs.field(default=None, eq=False)
    differentiable: TorchFn | None = attrs.field(default=None, eq=False)
    input_kind: str = attrs.field(default="rgb", validator=_check_kind)
    output_kind: str = attrs.field(default="rgb", validator=_check_kind)
    reference: str = ""
    tolerance: float = 1e-4
    check_params: Callable[..., None] | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.static is None and self.differentiable is None:
            raise ValueError(
                f"stage {self.key}: declares neither a static nor a differentiable form"
            )
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"stage {self.key}: duplicate parameter names {names}")

    @property
    def key(self) -> str:
        """``slot.variant``, the stage's registry key."""
        return f"{self.slot}.{self.variant}"

    @property
    def forms(self) -> tuple[str, ...]:
        """The implemented forms, a subset of ``("static", "differentiable")``."""
        found = []
        if self.static is not None:
            found.append("static")
        if self.differentiable is not None:
            found.append("differentiable")
        return tuple(found)

    def param(self, name: str) -> ParamSpec:
        """Return the declared parameter ``name``.

        Raises
        ------
        KeyError
            If the stage has no such parameter; the message lists the valid names.
        """
        for p in self.params:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.params) or "none"
        raise KeyError(f"stage {self.key} has no parameter {name!r} (valid: {valid})")


class DifferentiableStage(nn.Module):
    """Thin ``nn.Module`` around a stage's differentiable function.

    Every declared parameter with ``differentiable=True`` becomes an
    ``nn.Parameter``; the others are
    buffers. Effective domains (declaration or pipeline override) are kept in
    :attr:`domains` for projection by attacks.

    Parameters
    ----------
    spec : StageSpec
        Stage declaration with a differentiable form.
    values : mapping of str to numpy.ndarray
        Resolved parameter values (declared shapes).
    context : StageContext
        CFA pattern and other fixed facts.
    domains : mapping of str to Domain
        Effective domain of each parameter.
    dtype : torch.dtype
        Floating dtype of the parameters (``torch.float64`` for exact checks).
    """

    def __init__(
        self,
        spec: StageSpec,
        values: Mapping[str, np.ndarray],
        context: StageContext,
        domains: Mapping[str, Domain],
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if spec.differentiable is None:
            raise ValueError(f"stage {spec.key} has no differentiable form (forms: {spec.forms})")
        self.spec = spec
        self.context = context
        self.domains = dict(domains)
        self.learnable = nn.ParameterDict()
        for p in spec.params:
            tensor = torch.as_tensor(np.asarray(values[p.name]), dtype=dtype)
            if p.differentiable:
                self.learnable[p.name] = nn.Parameter(tensor)
            else:
                self.register_buffer(f"fixed_{p.name}", tensor)

    def param_tensors(self) -> dict[str, torch.Tensor]:
        """Current parameter tensors by declared name."""
        out: dict[str, torch.Tensor] = {}
        for p in self.spec.params:
            out[p.name] = (
                self.learnable[p.name] if p.differentiable else getattr(self, f"fixed_{p.name}")
            )
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stage to ``(B, C, H, W)``; returns ``(B, C', H, W)``."""
        params = {k: v.to(dtype=x.dtype) for k, v in self.param_tensors().items()}
        return self.spec.differentiable(x, self.context, **params)

    def extra_repr(self) -> str:
        return self.spec.key
