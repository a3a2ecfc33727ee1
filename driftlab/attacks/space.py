"""The attacked parameter space: which ``"stage.param"`` entries, their defaults,
domains, units and per-element bounds, and projection back inside them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from driftlab.errors import DriftlabError
from driftlab.params import Domain
from driftlab.pipeline.resolve import ResolvedPipeline
from driftlab.pipeline.spec import PipelineSpec, StageConfig
from driftlab.registry import suggest

if TYPE_CHECKING:
    from driftlab.domains import ParamBounds

__all__ = [
    "AttackTargetError",
    "ParameterSpace",
    "Slot",
    "resolved_with_values",
    "select_targets",
    "spec_with_values",
]


class AttackTargetError(DriftlabError, ValueError):
    """A target names no stage or parameter of the pipeline."""

    exit_code = 2


@attrs.frozen
class Slot:
    """One attackable parameter.

    Attributes
    ----------
    key : str
        ``"stage.param"``.
    default : numpy.ndarray
        float64 default value of the declared shape.
    domain : Domain
        Effective domain of the stage parameter.
    unit : str
        Physical unit (for reports).
    low, high : numpy.ndarray
        float64 element-wise bounds of the search (domain box intersected with
        any budget or envelope); same shape as ``default``.
    span : numpy.ndarray or None
        Element-wise width of the domain the budget is a fraction of; None:
        ``domain.high - domain.low`` for every element. Camera-calibrated
        domains (:func:`driftlab.domains.stage_domains`) set it per element.
    source : str
        Where the domain comes from (``"generic"`` or the camera rule).
    """

    key: str
    default: np.ndarray = attrs.field(eq=False)
    domain: Domain
    unit: str
    low: np.ndarray = attrs.field(eq=False)
    high: np.ndarray = attrs.field(eq=False)
    span: np.ndarray | None = attrs.field(default=None, eq=False)
    source: str = "generic"

    @property
    def width(self) -> np.ndarray:
        """Element-wise width of the domain (``span``, else the scalar domain's width)."""
        if self.span is not None:
            return np.asarray(self.span, dtype=np.float64)
        return np.full(self.default.shape, self.domain.high - self.domain.low)

    def project(self, value: torch.Tensor, iterations: int = 200) -> torch.Tensor:
        """Project onto the element-wise box ``[low, high]`` intersected with the
        domain's equality constraints, by Dykstra's algorithm (Boyle and Dykstra,
        1986); exact clamping when the domain has no equality constraint.

        Parameters
        ----------
        value : torch.Tensor
            Tensor of the parameter's shape, any float dtype.

        Returns
        -------
        torch.Tensor
            Same shape and dtype, inside the box and (to about 1e-9) on the
            affine set.
        """
        lo = torch.as_tensor(self.low, dtype=torch.float64, device=value.device)
        hi = torch.as_tensor(self.high, dtype=torch.float64, device=value.device)
        x = value.detach().to(torch.float64)
        if self.domain.row_sum is None and self.domain.total is None:
            return torch.minimum(torch.maximum(x, lo), hi).to(value.dtype)
        p = torch.zeros_like(x)
        q = torch.zeros_like(x)
        for _ in range(iterations):
            y = _affine(x + p, self.domain)
            p = x + p - y
            x = torch.minimum(torch.maximum(y + q, lo), hi)
            q = y + q - x
        return x.to(value.dtype)


def _affine(x: torch.Tensor, domain: Domain) -> torch.Tensor:
    if domain.row_sum is not None:
        x = x - (x.sum(dim=-1, keepdim=True) - domain.row_sum) / x.shape[-1]
    if domain.total is not None:
        x = x - (x.sum() - domain.total) / x.numel()
    return x


def select_targets(
    available: Sequence[str], targets: str | Iterable[str], where: str = "targets"
) -> tuple[str, ...]:
    """Resolve a target selection to ``"stage.param"`` keys.

    Parameters
    ----------
    available : sequence of str
        Attackable keys ``"stage.param"`` in pipeline order.
    targets : str or iterable of str
        ``"all"``, stage names (``"gamma"``) and/or parameter keys
        (``"white_balance.gains"``).

    Returns
    -------
    tuple of str
        Selected keys in pipeline order, without repeats.

    Raises
    ------
    AttackTargetError
        An unknown name (with the closest valid one), or nothing selected.
    """
    items = [targets] if isinstance(targets, str) else list(targets)
    stages = list(dict.fromkeys(k.split(".", 1)[0] for k in available))
    chosen: set[str] = set()
    for item in items:
        if item == "all":
            chosen.update(available)
        elif item in available:
            chosen.add(item)
        elif item in stages:
            chosen.update(k for k in available if k.split(".", 1)[0] == item)
        else:
            valid = ["all", *stages, *available]
            raise AttackTargetError(
                f"{where}: {item!r} is no attackable stage or parameter{suggest(item, valid)}; "
                f"valid: {', '.join(valid)}"
            )
    out = tuple(k for k in available if k in chosen)
    if not out:
        raise AttackTargetError(f"{where}: no parameters selected from {items!r}")
    return out


@attrs.frozen
class ParameterSpace:
    """Attackable parameters of a resolved pipeline, in pipeline order.

    Parameters
    ----------
    slots : tuple of Slot
    """

    slots: tuple[Slot, ...]

    @classmethod
    def from_resolved(
        cls,
        resolved: ResolvedPipeline,
        *,
        differentiable_only: bool = True,
        domains: Mapping[str, ParamBounds] | None = None,
    ) -> ParameterSpace:
        """Every declared parameter (only the ``nn.Parameter`` ones when
        ``differentiable_only``) with its default and domain bounds.

        Parameters
        ----------
        resolved : ResolvedPipeline
        differentiable_only : bool
            Skip parameters the differentiable form does not expose.
        domains : mapping of str to ParamBounds, optional
            Element-wise domains keyed ``"stage.param"``, e.g.
            ``stage_domains(resolved, camera, intensity, mode="camera")``
            (:mod:`driftlab.domains`); parameters not in it keep their
            declared (generic) domain.
        """
        slots = []
        for stage in resolved.stages:
            for p in stage.spec.params:
                if differentiable_only and not p.differentiable:
                    continue
                default = np.asarray(stage.values[p.name], dtype=np.float64)
                domain = stage.domains[p.name]
                slot = Slot(
                    key=f"{stage.name}.{p.name}",
                    default=default,
                    domain=domain,
                    unit=p.unit,
                    low=np.full(default.shape, domain.low),
                    high=np.full(default.shape, domain.high),
                )
                slots.append(slot)
        space = cls(tuple(slots))
        return space.with_domains(domains) if domains else space

    def with_domains(self, domains: Mapping[str, ParamBounds]) -> ParameterSpace:
        """Replace the domains of the named slots by element-wise bounds.

        Each slot's box is intersected with the bounds' ``[low, high]``, its
        domain becomes the bounds' domain (whose equality constraint the
        projection keeps) and its budget width the element-wise ``high - low``.

        Raises
        ------
        AttackTargetError
            A key names no slot, or bounds of another shape.
        """
        for key in domains:
            if key not in self.keys:
                raise AttackTargetError(f"domains: no parameter {key!r}{suggest(key, self.keys)}")
        out = []
        for s in self.slots:
            b = domains.get(s.key)
            if b is not None:
                low, high = np.asarray(b.low, np.float64), np.asarray(b.high, np.float64)
                if low.shape != s.default.shape or high.shape != s.default.shape:
                    raise AttackTargetError(
                        f"domains[{s.key!r}]: bounds of shape {low.shape}, parameter shape "
                        f"{s.default.shape}"
                    )
                s = attrs.evolve(
                    s,
                    domain=b.domain,
                    low=np.maximum(s.low, low),
                    high=np.minimum(s.high, high),
                    span=high - low,
                    source=b.source,
                )
            out.append(s)
        return ParameterSpace(tuple(out))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.slots)

    def __getitem__(self, key: str) -> Slot:
        for slot in self.slots:
            if slot.key == key:
                return slot
        raise AttackTargetError(f"no parameter {key!r}{suggest(key, self.keys)}")

    def subset(self, keys: Iterable[str]) -> ParameterSpace:
        """The slots named by ``keys`` (in pipeline order)."""
        keys = set(keys)
        return ParameterSpace(tuple(s for s in self.slots if s.key in keys))

    def with_budget(self, budget: float | None) -> ParameterSpace:
        """Narrow every box to ``default +- budget * width`` (:attr:`Slot.width`: the
        domain's width, element-wise for calibrated domains).

        Raises
        ------
        ValueError
            ``budget`` not in (0, 1].
        """
        if budget is None:
            return self
        if not 0 < budget <= 1:
            raise ValueError(
                f"budget: expected a fraction of the domain width in (0, 1], got {budget}"
            )
        out = []
        for s in self.slots:
            r = budget * s.width
            out.append(
                attrs.evolve(
                    s, low=np.maximum(s.low, s.default - r), high=np.minimum(s.high, s.default + r)
                )
            )
        return ParameterSpace(tuple(out))

    def with_bounds(self, bounds: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> ParameterSpace:
        """Intersect the boxes of the named slots with explicit ``(low, high)`` arrays."""
        out = []
        for s in self.slots:
            if s.key in bounds:
                lo, hi = (
                    np.broadcast_to(np.asarray(b, np.float64), s.default.shape)
                    for b in bounds[s.key]
                )
                s = attrs.evolve(s, low=np.maximum(s.low, lo), high=np.minimum(s.high, hi))
            out.append(s)
        return ParameterSpace(tuple(out))

    def defaults(self) -> dict[str, np.ndarray]:
        return {s.key: s.default.copy() for s in self.slots}


def _check_keys(resolved: ResolvedPipeline, values: Mapping[str, Any]) -> None:
    """Raise :class:`AttackTargetError` for a key of ``values`` naming no parameter."""
    known = {f"{s.name}.{k}" for s in resolved.stages for k in s.values}
    for key in values:
        if key not in known:
            raise AttackTargetError(f"no parameter {key!r}{suggest(key, sorted(known))}")


def spec_with_values(
    resolved: ResolvedPipeline, values: Mapping[str, np.ndarray], name: str | None = None
) -> PipelineSpec:
    """The resolved pipeline as a :class:`PipelineSpec` with some parameters replaced.

    Parameters
    ----------
    values : mapping
        ``{"stage.param": array}``; other parameters keep their resolved values.

    Raises
    ------
    AttackTargetError
        A key names no parameter of the pipeline.
    """
    _check_keys(resolved, values)
    stages = []
    for s in resolved.stages:
        params = {
            k: np.asarray(values.get(f"{s.name}.{k}", v), dtype=np.float64).tolist()
            for k, v in s.values.items()
        }
        domains = {k: d for k, d in s.domains.items() if d != s.spec.param(k).domain}
        stages.append(
            StageConfig(slot=s.spec.slot, variant=s.spec.variant, params=params, domains=domains)
        )
    return PipelineSpec(
        name=name or resolved.name, stages=stages, description=resolved.spec.description
    )


def resolved_with_values(
    resolved: ResolvedPipeline, values: Mapping[str, np.ndarray]
) -> ResolvedPipeline:
    """The resolved pipeline with some parameters replaced, without resolving it again.

    The stages keep their declarations (so no registry is looked up), domains,
    camera and seed; only the named values change, checked as
    :func:`driftlab.pipeline.resolve.resolve` checks values (declared shape,
    domain, the stage's own ``check_params``). Equivalent to resolving
    :func:`spec_with_values` with the registry the pipeline came from.

    Parameters
    ----------
    resolved : ResolvedPipeline
    values : mapping
        ``{"stage.param": array}`` of the declared shapes; other parameters
        keep their resolved values.

    Returns
    -------
    ResolvedPipeline

    Raises
    ------
    AttackTargetError
        A key names no parameter of the pipeline, or a value is not numeric,
        has another shape, leaves the parameter's domain or is refused by the
        stage (the message names the key).
    """
    _check_keys(resolved, values)
    stages = []
    for s in resolved.stages:
        changed = {k: v for k, v in s.values.items() if f"{s.name}.{k}" in values}
        if not changed:
            stages.append(s)
            continue
        new = dict(s.values)
        for name in changed:
            key = f"{s.name}.{name}"
            try:
                value = s.spec.param(name).coerce(values[key], key)
            except ValueError as exc:
                raise AttackTargetError(str(exc)) from None
            problems = s.domains[name].problems(value)
            if problems:
                raise AttackTargetError(
                    f"{key}: outside its domain {s.domains[name].describe()}: {'; '.join(problems)}"
                )
            new[name] = value
        if s.spec.check_params is not None:
            try:
                s.spec.check_params(resolved.context, **new)
            except ValueError as exc:
                raise AttackTargetError(f"{s.label}: {exc}") from None
        stages.append(attrs.evolve(s, values=new))
    # the declaration follows the values, so a fingerprint or report of it is the new pipeline's
    return attrs.evolve(
        resolved, stages=tuple(stages), spec=spec_with_values(resolved, dict(values))
    )
