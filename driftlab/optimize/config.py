"""Configuration of an optimisation run (TOML), validated before any work starts.

Example::

    [dataset]
    name = "embedded-smear"
    intensities = [1.0, 0.05]
    options = { n_items = 240, size = 32 }

    [pipeline]
    name = "bi,s,ga"           # a paper data model with a differentiable form, or a TOML file

    [model]
    name = "small-cnn"

    [training]
    modes = ["frozen", "learned", "raw"]
    epochs = 6
    batch_size = 32
    lr = 1e-3                  # Adam learning rate of the task model
    isp_lr = 1e-3              # Adam learning rate of the ISP parameters ("learned" mode)
    folds = 3
    seed = 0
    device = "auto"
    eval_every = 1             # evaluate on the fold's test split every N epochs
    summary_last = 0           # evaluations pooled in the summary: the last N (0 = all)

    [run]
    out = "runs/optimize-quickstart"
    workers = 2

Relative paths (``dataset.data_root``, a pipeline TOML file, ``run.out``)
are resolved against the config file's folder.
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
from driftlab.registry import suggest

__all__ = ["MODES", "OptimizeConfig", "load_optimize_config"]

MODES: tuple[str, ...] = ("frozen", "learned", "raw")
SECTIONS = ("dataset", "pipeline", "model", "training", "run")
KEYS = {
    "dataset": ("name", "data_root", "intensities", "options"),
    "pipeline": ("name",),
    "model": ("name", "options"),
    "training": (
        "modes",
        "epochs",
        "batch_size",
        "lr",
        "isp_lr",
        "folds",
        "seed",
        "device",
        "eval_every",
        "summary_last",
    ),
    "run": ("out", "workers", "progress"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "dataset": {"intensities": [1.0], "options": {}},
    "pipeline": {"name": "bi,s,ga"},
    "model": {"options": {}},
    "training": {
        "modes": list(MODES),
        "epochs": 5,
        "batch_size": 32,
        "lr": 1e-3,
        "isp_lr": 1e-3,
        "folds": 5,
        "seed": 0,
        "device": "auto",
        "eval_every": 1,
        "summary_last": 0,
    },
    "run": {"workers": 2, "progress": True},
}


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value


def _integer(value: Any, where: str, least: int) -> int:
    _typed(value, int, where, f"an integer >= {least}")
    if value < least:
        raise ConfigError(f"{where}: expected an integer >= {least}, got {value}")
    return int(value)


def _positive(value: Any, where: str) -> float:
    _typed(value, (int, float), where, "a positive number")
    if not value > 0:
        raise ConfigError(f"{where}: expected a positive number, got {value}")
    return float(value)


def _intensities(value: Any, where: str) -> list[float]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{where}: expected a non-empty list of numbers in (0, 1], got {value!r}")
    out = [float(v) for v in value]
    bad = [v for v in out if not 0 < v <= 1]
    if bad:
        raise ConfigError(f"{where}: intensities must lie in (0, 1], got {bad}")
    if len(set(out)) != len(out):
        raise ConfigError(f"{where}: repeated intensity levels in {out}")
    return out


def _modes(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list out of {list(MODES)}, got {value!r}")
    for mode in value:
        if mode not in MODES:
            raise ConfigError(
                f"{where}: unknown mode {mode!r}{suggest(mode, MODES)}; valid modes: "
                f"{', '.join(MODES)}"
            )
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: repeated modes in {value}")
    return [m for m in MODES if m in value]  # canonical order


@attrs.frozen
class OptimizeConfig(RunConfig):
    """A validated optimisation configuration (plain data; registry checks happen in the plan).

    Attributes
    ----------
    data : dict
        The resolved configuration, section by section (defaults filled in,
        overrides applied, paths absolute); written to the run directory.
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
    ) -> OptimizeConfig:
        """Validate keys and types, fill defaults, apply ``section.key=value`` overrides.

        Parameters
        ----------
        raw : mapping
            Parsed TOML.
        base : str or Path
            Folder relative paths are resolved against.
        overrides : sequence of str
            ``section.key=value`` strings (values parsed as TOML).
        where : str
            Name of the source used in error messages (the file path).

        Raises
        ------
        ConfigError
            Unknown section, key or mode (with the closest valid name),
            missing required key, or a value of the wrong type or range.
        """
        base = Path(base).resolve()
        raw = apply_overrides(raw, overrides)
        check_keys(raw, SECTIONS, where, required=("dataset", "model"))
        data: dict[str, dict[str, Any]] = {}
        for section in SECTIONS:
            table = require_table(raw, section, where)
            check_keys(table, KEYS[section], f"{where} [{section}]")
            data[section] = {**DEFAULTS.get(section, {}), **table}
        ds, pipe, mo, tr, run = (data[s] for s in SECTIONS)
        for section, table in (("dataset", ds), ("model", mo)):
            if "name" not in table:
                raise ConfigError(f"{where} [{section}]: missing required key 'name'")
        _typed(ds["name"], str, f"{where} [dataset].name", "a dataset name")
        _typed(mo["name"], str, f"{where} [model].name", "a task-model name")
        _typed(pipe["name"], str, f"{where} [pipeline].name", "a pipeline name or TOML file")
        _typed(ds["options"], Mapping, f"{where} [dataset].options", "a table")
        _typed(mo["options"], Mapping, f"{where} [model].options", "a table")
        ds["intensities"] = _intensities(ds["intensities"], f"{where} [dataset].intensities")
        tr["modes"] = _modes(tr["modes"], f"{where} [training].modes")
        for key in ("epochs", "batch_size", "eval_every"):
            tr[key] = _integer(tr[key], f"{where} [training].{key}", 1)
        tr["folds"] = _integer(tr["folds"], f"{where} [training].folds", 2)
        tr["seed"] = _integer(tr["seed"], f"{where} [training].seed", 0)
        tr["summary_last"] = _integer(tr["summary_last"], f"{where} [training].summary_last", 0)
        if tr["eval_every"] > tr["epochs"]:
            raise ConfigError(
                f"{where} [training].eval_every: {tr['eval_every']} exceeds epochs "
                f"({tr['epochs']}); the test split would be evaluated only after the last epoch"
            )
        tr["lr"] = _positive(tr["lr"], f"{where} [training].lr")
        tr["isp_lr"] = _positive(tr["isp_lr"], f"{where} [training].isp_lr")
        _typed(tr["device"], str, f"{where} [training].device", "auto, cpu or cuda[:N]")
        run["workers"] = _integer(run["workers"], f"{where} [run].workers", 1)
        _typed(run["progress"], bool, f"{where} [run].progress", "true or false")
        if ds.get("data_root"):
            ds["data_root"] = str((base / ds["data_root"]).resolve())
        if pipe["name"].endswith(".toml"):
            pipe["name"] = str((base / pipe["name"]).resolve())
        if run.get("out"):
            run["out"] = str((base / run["out"]).resolve())
        return cls(data=data, base=base)


def load_optimize_config(
    source: str | Path | Mapping[str, Any] | OptimizeConfig, overrides: Sequence[str] = ()
) -> OptimizeConfig:
    """Read an optimisation config from a TOML path, a dict or an existing config.

    Parameters
    ----------
    source : path, mapping or OptimizeConfig
        A dict is resolved against the current directory.
    overrides : sequence of str
        ``section.key=value`` overrides.

    Returns
    -------
    OptimizeConfig

    Raises
    ------
    FileNotFoundError, ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return OptimizeConfig.load(source, overrides)  # type: ignore[return-value]
