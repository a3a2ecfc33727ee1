"""Configuration of a drift-synthesis run (TOML), validated before any work starts.

Example::

    [dataset]
    name = "embedded-smear"
    intensity = 1.0
    options = { n_items = 600 }

    [pipelines]
    train = "all"              # "all", a list of names, or pipeline TOML files
    test = "all"

    [corruptions]
    names = ["identity", "gaussian_noise", "contrast"]   # or "paper" / "all"
    severities = [1, 3, 5]

    [model]
    name = "small-cnn"

    [training]
    epochs = 4
    batch_size = 64
    lr = 1e-3
    folds = 3
    seed = 0
    device = "auto"
    augment = false

    [run]
    out = "runs/quickstart"
    workers = 2

Relative paths (``dataset.data_root``, pipeline files, ``model.weights``,
``run.out``) are resolved against the config file's folder.
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

__all__ = ["SynthesisConfig", "load_synthesis_config"]

SECTIONS = ("dataset", "pipelines", "corruptions", "model", "training", "run")
KEYS = {
    "dataset": ("name", "data_root", "intensity", "options"),
    "pipelines": ("train", "test"),
    "corruptions": ("names", "severities"),
    "model": ("name", "options", "weights"),
    "training": ("epochs", "batch_size", "lr", "folds", "seed", "device", "augment"),
    "run": ("out", "workers", "progress"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "dataset": {"intensity": 1.0, "options": {}},
    "pipelines": {"train": "all", "test": "all"},
    "corruptions": {"names": "paper", "severities": [1, 3, 5]},
    "model": {"options": {}},
    "training": {
        "epochs": 5,
        "batch_size": 64,
        "lr": 1e-3,
        "folds": 5,
        "seed": 0,
        "device": "auto",
        "augment": False,
    },
    "run": {"workers": 2, "progress": True},
}


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value


def _names(value: Any, where: str) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f'{where}: expected "all" or a non-empty list of names, got {value!r}')


@attrs.frozen
class SynthesisConfig(RunConfig):
    """A validated synthesis configuration (plain data; registry checks happen in the runner).

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
    ) -> SynthesisConfig:
        """Validate keys and types, fill defaults, apply ``section.key=value`` overrides.

        Raises
        ------
        ConfigError
            Unknown section or key (with the closest valid name), missing
            required key, or a value of the wrong type.
        """
        base = Path(base).resolve()
        raw = apply_overrides(raw, overrides)
        check_keys(raw, SECTIONS, where, required=("dataset", "model"))
        data: dict[str, dict[str, Any]] = {}
        for section in SECTIONS:
            table = require_table(raw, section, where)
            check_keys(table, KEYS[section], f"{where} [{section}]")
            data[section] = {**DEFAULTS.get(section, {}), **table}
        ds, tr, co, mo, run = (
            data[s] for s in ("dataset", "training", "corruptions", "model", "run")
        )
        if "name" not in ds:
            raise ConfigError(f"{where} [dataset]: missing required key 'name'")
        if "name" not in mo:
            raise ConfigError(f"{where} [model]: missing required key 'name'")
        _typed(ds["name"], str, f"{where} [dataset].name", "a dataset name")
        _typed(mo["name"], str, f"{where} [model].name", "a task-model name")
        ds["intensity"] = float(
            _typed(
                ds["intensity"], (int, float), f"{where} [dataset].intensity", "a number in (0, 1]"
            )
        )
        if not 0 < ds["intensity"] <= 1:
            raise ConfigError(
                f"{where} [dataset].intensity: expected a number in (0, 1], got {ds['intensity']}"
            )
        for key in ("options",):
            _typed(ds[key], Mapping, f"{where} [dataset].{key}", "a table")
            _typed(mo[key], Mapping, f"{where} [model].{key}", "a table")
        for key in ("epochs", "batch_size", "folds"):
            value = _typed(tr[key], int, f"{where} [training].{key}", "a positive integer")
            if value < 1 or (key == "folds" and value < 2):
                least = 2 if key == "folds" else 1
                raise ConfigError(
                    f"{where} [training].{key}: expected an integer >= {least}, got {value}"
                )
        tr["lr"] = float(
            _typed(tr["lr"], (int, float), f"{where} [training].lr", "a positive number")
        )
        if tr["lr"] <= 0:
            raise ConfigError(f"{where} [training].lr: expected a positive number, got {tr['lr']}")
        _typed(tr["seed"], int, f"{where} [training].seed", "an integer")
        _typed(tr["device"], str, f"{where} [training].device", "auto, cpu or cuda[:N]")
        _typed(tr["augment"], bool, f"{where} [training].augment", "true or false")
        _typed(run["workers"], int, f"{where} [run].workers", "a positive integer")
        _typed(run["progress"], bool, f"{where} [run].progress", "true or false")
        p = data["pipelines"]
        p["train"] = _names(p["train"], f"{where} [pipelines].train")
        p["test"] = _names(p["test"], f"{where} [pipelines].test")
        co["names"] = _names(co["names"], f"{where} [corruptions].names")
        sev = co["severities"]
        if (
            not isinstance(sev, list)
            or not sev
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in sev)
        ):
            raise ConfigError(
                f"{where} [corruptions].severities: expected a list of integers 1..5, got {sev!r}"
            )
        # resolve paths
        if ds.get("data_root"):
            ds["data_root"] = str((base / ds["data_root"]).resolve())
        if mo.get("weights"):
            mo["weights"] = str((base / mo["weights"]).resolve())
        for key in ("train", "test"):
            if isinstance(p[key], list):
                p[key] = [str((base / n).resolve()) if n.endswith(".toml") else n for n in p[key]]
        if run.get("out"):
            run["out"] = str((base / run["out"]).resolve())
        return cls(data=data, base=base)


def load_synthesis_config(
    source: str | Path | Mapping[str, Any] | SynthesisConfig, overrides: Sequence[str] = ()
) -> SynthesisConfig:
    """Read a synthesis config from a TOML path, a dict or an existing config.

    Raises
    ------
    FileNotFoundError, ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return SynthesisConfig.load(source, overrides)  # type: ignore[return-value]
