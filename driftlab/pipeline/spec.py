"""Pipelines declared as data (dicts or TOML), validated on load.

Example TOML::

    name = "bi,s,ga"
    description = "bilinear demosaic, sharpening filter, Gaussian denoise"

    [[stages]]
    slot = "black_level"

    [[stages]]
    slot = "demosaic"
    variant = "bilinear"

    [[stages]]
    slot = "gamma"
    params = { gamma = 2.4 }

A stage may override the domain of a parameter
(``domains = { gamma = [1.0, 3.0] }``) when its value is meant to leave the
declared physical range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.configtools import ConfigError, check_keys
from driftlab.params import Domain, parse_domain
from driftlab.tomlio import read_toml

__all__ = ["PipelineSpec", "SpecError", "StageConfig", "load_pipeline_file"]

PIPELINE_KEYS = ("name", "description", "stages")
STAGE_KEYS = ("slot", "variant", "params", "domains")


class SpecError(ConfigError):
    """A pipeline declaration is malformed; the message names the key."""


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    check_keys(data, allowed, where, error=SpecError)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _convert_domains(value: Mapping[str, Any]) -> dict[str, Domain]:
    return {k: parse_domain(v, f"domains.{k}") for k, v in dict(value).items()}


@attrs.frozen
class StageConfig:
    """One stage of a declared pipeline.

    Parameters
    ----------
    slot : str
        Slot name (``demosaic`` ...).
    variant : str or None
        Variant name; may be omitted when the slot has a single variant.
    params : mapping
        Explicit parameter values; unset parameters come from the camera
        (black level, gains, matrix) or the declared default.
    domains : mapping of str to Domain
        Per-parameter domain overrides.
    """

    slot: str
    variant: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    domains: Mapping[str, Domain] = attrs.field(factory=dict, converter=_convert_domains)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StageConfig:
        """Validate keys and types of one stage table.

        Raises
        ------
        SpecError
            Unknown key (with the closest valid one), missing ``slot``, or a
            value of the wrong type.
        """
        if isinstance(data, str):
            slot, _, variant = data.partition(".")
            return cls(slot=slot, variant=variant or None)
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table with slot/variant/params, got {data!r}")
        _check_keys(data, STAGE_KEYS, where)
        if "slot" not in data:
            raise SpecError(f"{where}: missing required key 'slot'")
        slot, variant = data["slot"], data.get("variant")
        if not isinstance(slot, str) or (variant is not None and not isinstance(variant, str)):
            raise SpecError(f"{where}: slot and variant must be strings")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise SpecError(f"{where}.params: expected a table of name = value, got {params!r}")
        raw_domains = data.get("domains", {})
        if not isinstance(raw_domains, Mapping):
            raise SpecError(f"{where}.domains: expected a table of name = [low, high]")
        try:
            domains = {k: parse_domain(v, f"{where}.domains.{k}") for k, v in raw_domains.items()}
        except ValueError as exc:
            raise SpecError(str(exc)) from exc
        return cls(slot=slot, variant=variant, params=dict(params), domains=domains)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {"slot": self.slot}
        if self.variant is not None:
            out["variant"] = self.variant
        if self.params:
            out["params"] = {k: _plain(v) for k, v in self.params.items()}
        if self.domains:
            out["domains"] = {
                k: {
                    key: val
                    for key, val in attrs.asdict(d).items()
                    if key in ("low", "high") or (key in ("row_sum", "total") and val is not None)
                }
                for k, d in self.domains.items()
            }
        return out


@attrs.frozen
class PipelineSpec:
    """An ISP pipeline declared as data: an ordered list of stages.

    Parameters
    ----------
    name : str
        Pipeline name, used for file names and table rows.
    stages : tuple of StageConfig
        Stages in processing order (a mosaic-to-RGB demosaic must appear).
    description : str
        Free text.
    """

    name: str
    stages: tuple[StageConfig, ...] = attrs.field(converter=tuple)
    description: str = ""

    @classmethod
    def from_dict(cls, data: Any, where: str = "pipeline") -> PipelineSpec:
        """Build from a dict as read from TOML or JSON.

        Raises
        ------
        SpecError
            Unknown or missing keys, wrong types; the message names the key
            and the closest valid one.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table with name and stages, got {data!r}")
        _check_keys(data, PIPELINE_KEYS, where)
        for key in ("name", "stages"):
            if key not in data:
                raise SpecError(f"{where}: missing required key {key!r}")
        name = data["name"]
        if not isinstance(name, str) or not name:
            raise SpecError(f"{where}.name: expected a non-empty string, got {name!r}")
        stages = data["stages"]
        if not isinstance(stages, Sequence) or isinstance(stages, str) or not stages:
            raise SpecError(f"{where}.stages: expected a non-empty list of stage tables")
        configs = [
            StageConfig.from_dict(stage, f"{where} {name!r} stages[{i}]")
            for i, stage in enumerate(stages)
        ]
        return cls(name=name, stages=configs, description=str(data.get("description", "")))

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineSpec:
        """Read one pipeline from a TOML file (see module docstring)."""
        return cls.from_dict(read_toml(path), where=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON form (name excluded), for caches and manifests."""
        data = self.to_dict()
        data.pop("name")
        data.pop("description", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def replace_stage(self, slot: str, variant: str | None, **params: Any) -> PipelineSpec:
        """Copy with the first stage of ``slot`` replaced.

        Raises
        ------
        SpecError
            If the pipeline has no stage in ``slot``.
        """
        stages = list(self.stages)
        for i, stage in enumerate(stages):
            if stage.slot == slot:
                stages[i] = StageConfig(slot=slot, variant=variant, params=params)
                return attrs.evolve(self, stages=stages)
        raise SpecError(f"pipeline {self.name!r} has no stage in slot {slot!r}")


def load_pipeline_file(path: str | Path) -> list[PipelineSpec]:
    """Read one pipeline (top-level ``name``/``stages``) or several (``[[pipeline]]``).

    Raises
    ------
    SpecError, ValueError, FileNotFoundError
        Malformed file, naming the file and the key.
    """
    data = read_toml(path)
    if "pipeline" in data:
        _check_keys(data, ("pipeline",), str(path))
        items = data["pipeline"]
        if not isinstance(items, list):
            raise SpecError(f"{path}: 'pipeline' must be an array of tables ([[pipeline]])")
        return [PipelineSpec.from_dict(d, f"{path} pipeline[{i}]") for i, d in enumerate(items)]
    return [PipelineSpec.from_dict(data, str(path))]
