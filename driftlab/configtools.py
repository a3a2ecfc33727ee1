"""Low-level helpers of TOML configurations: key checks with "did you mean", overrides."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from driftlab.errors import ConfigError
from driftlab.registry import suggest
from driftlab.tomlio import tomllib

__all__ = ["ConfigError", "apply_overrides", "check_keys", "require_table"]


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
