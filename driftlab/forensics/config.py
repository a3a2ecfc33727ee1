"""Configuration of a forensics run (TOML), validated before any work starts.

Example::

    [model]
    run = "../runs/quickstart"     # a synthesis run directory ...
    train_pipeline = "bi,s,ga"
    fold = 0
    # ... or: name = "small-cnn", options = {...}, weights = "model.pt"

    [dataset]                      # optional with [model].run (the run's dataset)
    name = "embedded-smear"
    options = { n_items = 600, size = 48 }

    [split]
    part = "test"                  # the fold's "test" items, "train" items, or "all"
    max_items = 48

    [pipeline]
    base = "bi,s,ga"               # default: [model].train_pipeline

    [attacks]
    names = ["penalty", "projected", "search"]
    lambdas = [0.0, 1.0]
    targets = [["all"], ["gamma"], ["white_balance.gains"]]
    steps = 20

    [signature]
    threshold = 0.95

    [run]
    out = "../runs/forensics-quickstart"

Relative paths (``model.run``, ``model.weights``, ``dataset.data_root``,
pipeline files, ``run.out``) are resolved against the config file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from driftlab.configtools import (
    ConfigError,
    RunConfig,
    apply_overrides,
    check_keys,
    require_table,
)

__all__ = ["ForensicsConfig", "load_forensics_config"]

SECTIONS = ("model", "dataset", "split", "pipeline", "attacks", "signature", "run")
KEYS = {
    "model": ("run", "train_pipeline", "fold", "name", "options", "weights"),
    "dataset": ("name", "data_root", "intensity", "options"),
    "split": ("part", "folds", "fold", "seed", "max_items"),
    "pipeline": ("base",),
    "attacks": (
        "names",
        "lambdas",
        "targets",
        "steps",
        "lr",
        "similarity",
        "budget",
        "method",
        "population",
        "seed",
        "samples",
    ),
    "signature": ("enabled", "threshold", "points", "refine", "tolerance", "steps"),
    "run": ("out", "progress"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {"options": {}},
    "split": {"part": "test", "max_items": 64},
    "attacks": {
        "names": ["penalty", "projected", "search"],
        "lambdas": [0.0, 1.0],
        "targets": [["all"]],
        "steps": 20,
        "lr": 0.02,
        "similarity": "ssim",
        "method": "random",
        "population": 8,
        "seed": 0,
        "samples": 4,
    },
    "signature": {
        "enabled": True,
        "threshold": 0.95,
        "points": 6,
        "refine": 4,
        "tolerance": 0.02,
        "steps": 20,
    },
    "run": {"progress": False},
}


def _check(value: Any, kinds: type | tuple[type, ...], where: str, what: str) -> Any:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value


def _number(value: Any, where: str, what: str, low: float, high: float | None = None) -> float:
    _check(value, (int, float), where, what)
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return float(value)


def _integer(value: Any, where: str, least: int) -> int:
    _check(value, int, where, f"an integer >= {least}")
    if value < least:
        raise ConfigError(f"{where}: expected an integer >= {least}, got {value}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: expected a name or a non-empty list of names, got {value!r}")


@attrs.frozen
class ForensicsConfig(RunConfig):
    """A validated forensics configuration (registry checks happen in the planner).

    Attributes
    ----------
    data : dict
        Resolved configuration, section by section (defaults filled,
        overrides applied, paths absolute).
    base : Path
        Folder relative paths were resolved against.
    """

    @classmethod
    def from_dict(
        cls,
        raw: Mapping[str, Any],
        base: str | Path = ".",
        overrides: Sequence[str] = (),
        where: str = "config",
    ) -> ForensicsConfig:
        """Validate keys and types, fill defaults, apply ``section.key=value`` overrides.

        Raises
        ------
        ConfigError
            Unknown section or key (with the closest valid name), a missing
            model source, or a value of the wrong type or range.
        """
        base = Path(base).resolve()
        raw = apply_overrides(raw, overrides)
        check_keys(raw, SECTIONS, where, required=("model",))
        data: dict[str, dict[str, Any]] = {}
        for section in SECTIONS:
            table = require_table(raw, section, where)
            check_keys(table, KEYS[section], f"{where} [{section}]")
            data[section] = {**DEFAULTS.get(section, {}), **table}
        mo, ds, sp, at, sg = (
            data[s] for s in ("model", "dataset", "split", "attacks", "signature")
        )
        if "run" in mo:
            _check(mo["run"], str, f"{where} [model].run", "a synthesis run directory")
            if "train_pipeline" not in mo:
                raise ConfigError(
                    f"{where} [model]: 'run' needs 'train_pipeline' (e.g. \"bi,s,ga\")"
                )
            _check(mo["train_pipeline"], str, f"{where} [model].train_pipeline", "a pipeline name")
            mo["fold"] = _integer(mo.get("fold", 0), f"{where} [model].fold", 0)
            mo["run"] = str((base / mo["run"]).resolve())
        else:
            for key in ("name", "weights"):
                if key not in mo:
                    raise ConfigError(
                        f"{where} [model]: give either run + train_pipeline (+ fold) or "
                        f"name + weights; missing {key!r}"
                    )
            _check(mo["name"], str, f"{where} [model].name", "a task-model name")
            _check(mo["weights"], str, f"{where} [model].weights", "a weights file")
            mo["weights"] = str((base / mo["weights"]).resolve())
            if "name" not in ds:
                raise ConfigError(
                    f"{where} [dataset]: missing required key 'name' (no [model].run)"
                )
        _check(mo["options"], Mapping, f"{where} [model].options", "a table")
        if ds:
            ds.setdefault("intensity", 1.0)
            ds.setdefault("options", {})
            if "name" in ds:
                _check(ds["name"], str, f"{where} [dataset].name", "a dataset name")
            _number(ds["intensity"], f"{where} [dataset].intensity", "a number in (0, 1]", 1e-9, 1)
            _check(ds["options"], Mapping, f"{where} [dataset].options", "a table")
            if ds.get("data_root"):
                ds["data_root"] = str((base / ds["data_root"]).resolve())
        if sp["part"] not in ("test", "train", "all"):
            raise ConfigError(
                f"{where} [split].part: expected 'test', 'train' or 'all', got {sp['part']!r}"
            )
        sp["max_items"] = _integer(sp["max_items"], f"{where} [split].max_items", 1)
        for key, least in (("folds", 2), ("fold", 0), ("seed", 0)):
            if key in sp:
                _integer(sp[key], f"{where} [split].{key}", least)
        if "base" in data["pipeline"]:
            b = _check(data["pipeline"]["base"], str, f"{where} [pipeline].base", "a pipeline name")
            if b.endswith(".toml"):
                data["pipeline"]["base"] = str((base / b).resolve())
        at["names"] = _strings(at["names"], f"{where} [attacks].names")
        lambdas = at["lambdas"]
        if not isinstance(lambdas, list) or not lambdas:
            raise ConfigError(
                f"{where} [attacks].lambdas: expected a non-empty list of numbers >= 0"
            )
        at["lambdas"] = [
            _number(v, f"{where} [attacks].lambdas", "numbers >= 0", 0) for v in lambdas
        ]
        targets = at["targets"]
        if isinstance(targets, str) or (
            isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets)
        ):
            targets = [targets]
        if not isinstance(targets, list) or not targets:
            raise ConfigError(f"{where} [attacks].targets: expected a list of target lists")
        at["targets"] = [_strings(t, f"{where} [attacks].targets") for t in targets]
        at["steps"] = _integer(at["steps"], f"{where} [attacks].steps", 1)
        at["lr"] = _number(at["lr"], f"{where} [attacks].lr", "a positive number", 1e-12)
        if at["similarity"] not in ("ssim", "l2"):
            raise ConfigError(
                f"{where} [attacks].similarity: expected 'ssim' or 'l2', got {at['similarity']!r}"
            )
        if at.get("budget") is not None:
            at["budget"] = _number(
                at["budget"], f"{where} [attacks].budget", "a fraction in (0, 1]", 1e-9, 1
            )
        if at["method"] not in ("random", "cma"):
            raise ConfigError(
                f"{where} [attacks].method: expected 'random' or 'cma', got {at['method']!r}"
            )
        for key, least in (("population", 1), ("seed", 0), ("samples", 1)):
            at[key] = _integer(at[key], f"{where} [attacks].{key}", least)
        _check(sg["enabled"], bool, f"{where} [signature].enabled", "true or false")
        sg["threshold"] = _number(
            sg["threshold"], f"{where} [signature].threshold", "a fraction in (0, 1]", 1e-9, 1
        )
        sg["points"] = _integer(sg["points"], f"{where} [signature].points", 1)
        sg["refine"] = _integer(sg["refine"], f"{where} [signature].refine", 0)
        sg["steps"] = _integer(sg["steps"], f"{where} [signature].steps", 1)
        sg["tolerance"] = _number(
            sg["tolerance"], f"{where} [signature].tolerance", "a number >= 0", 0
        )
        _check(data["run"]["progress"], bool, f"{where} [run].progress", "true or false")
        if data["run"].get("out"):
            data["run"]["out"] = str((base / data["run"]["out"]).resolve())
        return cls(data=data, base=base)


def load_forensics_config(
    source: str | Path | Mapping[str, Any] | ForensicsConfig, overrides: Sequence[str] = ()
) -> ForensicsConfig:
    """Read a forensics config from a TOML path, a dict or an existing config.

    Raises
    ------
    FileNotFoundError, ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return ForensicsConfig.load(source, overrides)  # type: ignore[return-value]
