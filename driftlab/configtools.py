"""Helpers shared by the TOML-driven runners: key checks, overrides, hashing."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from driftlab.registry import suggest
from driftlab.tomlio import tomllib

__all__ = [
    "ConfigError",
    "RunConfig",
    "apply_overrides",
    "check_keys",
    "config_hash",
    "require_table",
]


class ConfigError(ValueError):
    """A run configuration is malformed; the message names the key."""


def check_keys(
    data: Mapping[str, Any],
    allowed: Sequence[str],
    where: str,
    required: Iterable[str] = (),
    *,
    error: type[ValueError] = ConfigError,
) -> None:
    """Reject unknown keys (naming the closest valid one) and missing required keys.

    Raises
    ------
    ConfigError
        Or the subclass of ValueError given as ``error``.
    """
    for key in data:
        if key not in allowed:
            raise error(
                f"{where}: unknown key {key!r}{suggest(key, allowed)}; "
                f"valid keys: {', '.join(allowed)}"
            )
    for key in required:
        if key not in data:
            raise error(f"{where}: missing required key {key!r}")


def require_table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """Return ``data[key]`` as a dict (empty when absent); raise if it is not a table."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key}: expected a table, got {value!r}")
    return dict(value)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as TOML, bare words as strings).

    Parameters
    ----------
    data : mapping
        Parsed configuration.
    overrides : sequence of str
        E.g. ``["training.epochs=2", "dataset.name=embedded-smear"]``.

    Returns
    -------
    dict
        A deep copy with the overrides applied.

    Raises
    ------
    ConfigError
        An override without ``=`` or whose path crosses a non-table value.
    """
    out = copy.deepcopy(dict(data))
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        keys = [k.strip() for k in path.split(".")]
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {key!r} is not a table")
        node[keys[-1]] = _parse_value(text.strip())
    return out


def config_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON form of a configuration."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@attrs.frozen
class RunConfig:
    """A validated run configuration: plain data, section by section.

    Subclassed by each runner's configuration (synthesis, forensics,
    optimisation), which adds its own ``from_dict`` validation.

    Attributes
    ----------
    data : dict
        The resolved configuration (defaults filled in, overrides applied,
        paths absolute); written to the run directory.
    base : Path
        Folder relative paths were resolved against.
    """

    data: dict[str, dict[str, Any]]
    base: Path

    @property
    def digest(self) -> str:
        """SHA-256 of the resolved configuration (identifies the run)."""
        return config_hash(self.data)

    def section(self, name: str) -> dict[str, Any]:
        """One resolved section."""
        return self.data[name]

    @classmethod
    def from_dict(
        cls,
        raw: Mapping[str, Any],
        base: str | Path = ".",
        overrides: Sequence[str] = (),
        where: str = "config",
    ) -> RunConfig:  # pragma: no cover - every subclass defines its own validation
        raise NotImplementedError

    @classmethod
    def load(cls, source: Any, overrides: Sequence[str] = ()) -> RunConfig:
        """Read a configuration from a TOML path, a dict or an existing instance.

        Relative paths are resolved against the TOML file's folder (the
        current directory for a dict).

        Raises
        ------
        FileNotFoundError, ConfigError
            Missing file, invalid TOML or invalid content, naming file and key.
        """
        from driftlab.tomlio import read_toml

        if isinstance(source, cls):
            return source if not overrides else cls.from_dict(source.data, source.base, overrides)
        if isinstance(source, Mapping):
            return cls.from_dict(source, Path.cwd(), overrides)
        path = Path(source)
        try:
            raw = read_toml(path)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return cls.from_dict(raw, path.parent, overrides, where=str(path))
