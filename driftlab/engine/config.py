"""Typed run configurations: each TOML section is an attrs class, structured with cattrs.

A configuration is a set of *sections* (``[dataset]``, ``[model]``,
``[training]``, ``[run]``, ``[executor]``, ``[tracking]`` shared by every
experiment, plus each experiment's own). A section is an attrs class whose
fields are declared with :func:`setting`; :func:`structure_section` turns a
TOML table into an instance:

1. unknown keys are refused, naming the closest valid key ("did you mean");
2. each value is structured to the field's type by a cattrs converter with
   strict hooks (``3`` is not a bool, ``"fast"`` is not a number, a string
   is not a list);
3. the field's ``check`` validates the range and may normalise the value;
4. ``path`` fields are resolved against the config file's folder (``~`` is
   expanded).

Everything is validated before a run directory is created. Each field also
says whether it changes results (``identity``): the run's identity, which
decides whether an existing run directory may be resumed, covers only those
fields, with the *contents* of referenced files instead of their paths, so a
moved checkout, another ``workers`` count, ``--quiet`` or another output
folder resume the same run.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import cattrs

from driftlab.atomic import file_sha256
from driftlab.configtools import apply_overrides, check_keys, require_table
from driftlab.errors import ConfigError

__all__ = [
    "DatasetSection",
    "ExecutorSection",
    "ExperimentConfig",
    "ModelSection",
    "RunSection",
    "TestSection",
    "TrackingSection",
    "TrainingSection",
    "check_choice",
    "check_integer",
    "check_number",
    "check_seed",
    "content_identity",
    "identity_differences",
    "setting",
    "structure_section",
]

Check = Callable[[Any, str], Any]
Identity = bool | Callable[[Any], Any]


def setting(
    default: Any = attrs.NOTHING,
    *,
    factory: Callable[[], Any] | None = None,
    check: Check | None = None,
    path: str | None = None,
    identity: Identity = True,
    doc: str = "",
) -> Any:
    """Declare one key of a config section.

    Parameters
    ----------
    default, factory
        Default value (or factory); neither makes the key required.
    check : callable, optional
        ``check(value, where) -> value``: validates (raising
        :class:`~driftlab.errors.ConfigError` that names ``where``) and may
        normalise the structured value.
    path : {"file", "dir", "any", "toml-entries"}, optional
        The value is a filesystem path resolved against the config's folder
        (a ``"file"`` must exist); ``"toml-entries"``: a name or list of names
        whose entries ending in ``.toml`` are such files.
    identity : bool or callable
        Whether the value changes results (it then enters the run identity),
        or a function mapping the value to its identity form.
    doc : str
        One line for generated docs and error messages.
    """
    metadata = {"check": check, "path": path, "identity": identity, "doc": doc}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata, kw_only=True)
    return attrs.field(default=default, metadata=metadata, kw_only=True)


# -- strict structuring ------------------------------------------------------------------------


class _Mismatch(TypeError):
    """A value does not have the declared type."""


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if kind is bool:
        return "true or false"
    if kind is str:
        return "a string"
    if kind is Any:
        return "a value"
    if origin in (list, Sequence, tuple):
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin in (dict, Mapping):
        return "a table"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(names)
    return getattr(kind, "__name__", str(kind))


def _is_union(kind: Any) -> bool:
    import types

    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()

    def strict_int(value: Any, _: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch
        return value

    def strict_float(value: Any, _: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch
        return float(value)

    def strict_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value

    def strict_str(value: Any, _: Any) -> str:
        if not isinstance(value, str):
            raise _Mismatch
        return value

    def strict_list(value: Any, kind: Any) -> list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item,) = typing.get_args(kind) or (Any,)
        return [conv.structure(v, item) for v in value]

    def strict_dict(value: Any, kind: Any) -> dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        return {str(k): v for k, v in value.items()}

    def union(value: Any, kind: Any) -> Any:
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return conv.structure(value, arg)
            except (_Mismatch, cattrs.BaseValidationError, TypeError, ValueError):
                continue
        raise _Mismatch

    conv.register_structure_hook(int, strict_int)
    conv.register_structure_hook(float, strict_float)
    conv.register_structure_hook(bool, strict_bool)
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(Any, lambda v, _: v)
    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) in (list, Sequence), strict_list
    )
    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) in (dict, Mapping) or t is dict, strict_dict
    )
    conv.register_structure_hook_func(_is_union, union)
    return conv


CONVERTER = _make_converter()


def structure_section(cls: type, table: Mapping[str, Any], where: str, base: Path) -> Any:
    """Build section ``cls`` from a TOML table (see module docstring for the steps).

    Parameters
    ----------
    cls : type
        An attrs class whose fields were declared with :func:`setting`.
    table : mapping
        The raw TOML table.
    where : str
        Prefix of error messages, e.g. ``"quickstart.toml [training]"``.
    base : Path
        Folder relative paths are resolved against.

    Raises
    ------
    ConfigError
        Unknown or missing key, a value of the wrong type or range, a
        missing file.
    """
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    names = [f.name for f in fields]
    for key, target in getattr(cls, "MOVED", {}).items():
        if key in table:
            raise ConfigError(f"{where}: key {key!r} moved to {target}")
    check_keys(table, names, where)
    kwargs: dict[str, Any] = {}
    for f in fields:
        key_where = f"{where}.{f.name}"
        if f.name not in table:
            if f.default is attrs.NOTHING:
                raise ConfigError(f"{where}: missing required key {f.name!r}")
            continue
        raw = table[f.name]
        try:
            value = CONVERTER.structure(raw, f.type)
        except (_Mismatch, cattrs.BaseValidationError, TypeError, ValueError):
            check = f.metadata.get("check")
            expected = getattr(check, "describe", None) or _describe(f.type)
            raise ConfigError(f"{key_where}: expected {expected}, got {raw!r}") from None
        kind = f.metadata.get("path")
        if kind == "toml-entries":
            value = _resolve_toml_entries(value, key_where, base)
        elif kind and isinstance(value, str):
            value = _resolve_path(value, kind, key_where, base)
        check = f.metadata.get("check")
        if check is not None and value is not None:
            value = check(value, key_where)
        kwargs[f.name] = value
    return cls(**kwargs)


def _resolve_toml_entries(value: Any, where: str, base: Path) -> Any:
    """Resolve the entries ending in ``.toml`` (pipeline files) of a name or name list."""
    if isinstance(value, str):
        return _resolve_path(value, "file", where, base) if value.endswith(".toml") else value
    if isinstance(value, list):
        return [_resolve_toml_entries(v, where, base) for v in value]
    return value


def _resolve_path(value: str, kind: str, where: str, base: Path) -> str:
    if not value:
        raise ConfigError(f"{where}: expected a path, got an empty string")
    path = (base / Path(value).expanduser()).resolve()
    if kind == "file" and not path.is_file():
        raise ConfigError(f"{where}: {path}: no such file")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ConfigError(f"{where}: {path}: expected a folder, found a file")
    return str(path)


# -- common checks -----------------------------------------------------------------------------


def check_integer(least: int, most: int | None = None) -> Check:
    """Check an integer lies in ``[least, most]``."""

    def check(value: int, where: str) -> int:
        if value < least or (most is not None and value > most):
            span = f">= {least}" if most is None else f"in [{least}, {most}]"
            raise ConfigError(f"{where}: expected an integer {span}, got {value}")
        return value

    check.describe = (  # type: ignore[attr-defined]
        f"an integer >= {least}" if most is None else f"an integer in [{least}, {most}]"
    )
    return check


def check_number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    what: str = "",
) -> Check:
    """Check a finite number lies in a range (``low_open``: strictly above ``low``)."""

    def check(value: float, where: str) -> float:
        describe = what or _range_text(low, high, low_open)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected {describe}, got {value} (not finite)")
        if low is not None and (value < low or (low_open and value == low)):
            raise ConfigError(f"{where}: expected {describe}, got {value}")
        if high is not None and value > high:
            raise ConfigError(f"{where}: expected {describe}, got {value}")
        return float(value)

    check.describe = what or _range_text(low, high, low_open)  # type: ignore[attr-defined]
    return check


def _range_text(low: float | None, high: float | None, low_open: bool) -> str:
    if low == 0 and low_open and high is None:
        return "a positive number"
    left = "(" if low_open else "["
    return f"a number in {left}{'-inf' if low is None else low:g}, " + (
        f"{high:g}]" if high is not None else "inf)"
    )


def check_choice(*choices: str) -> Check:
    """Check a string is one of ``choices`` (with a "did you mean")."""
    from driftlab.registry import suggest

    def check(value: str, where: str) -> str:
        if value not in choices:
            raise ConfigError(
                f"{where}: expected one of {', '.join(repr(c) for c in choices)}, got "
                f"{value!r}{suggest(value, choices)}"
            )
        return value

    check.describe = "one of " + ", ".join(repr(c) for c in choices)  # type: ignore[attr-defined]
    return check


check_seed = check_integer(0, 2**32 - 1)


# -- shared sections ---------------------------------------------------------------------------


def _check_device(value: str, where: str) -> str:
    from driftlab.models.device import resolve_device

    text = value.strip().lower()
    try:
        resolve_device(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return text


@attrs.frozen(kw_only=True)
class DatasetSection:
    """``[dataset]``: which raw dataset, where, at which light level."""

    name: str = setting(doc="registered dataset name (driftlab data list)")
    data_root: str | None = setting(
        None, path="dir", identity=False, doc="local copy (content enters the identity)"
    )
    intensity: float = setting(
        1.0, check=check_number(0, 1, low_open=True), doc="light level in (0, 1]"
    )
    options: dict[str, Any] = setting(factory=dict, doc="loader options")
    camera: str | None = setting(
        None, doc="camera profile the data was captured with (default: the dataset's own)"
    )


@attrs.frozen(kw_only=True)
class ModelSection:
    """``[model]``: the task-model architecture and optional initial weights."""

    name: str = setting(doc="registered task-model name")
    options: dict[str, Any] = setting(factory=dict, doc="architecture options")
    weights: str | None = setting(
        None,
        path="file",
        doc="weights file (content enters the identity)",
    )
    key: str | None = setting(None, doc="key of the state dict inside a checkpoint dict")


def _check_id_list(value: str, where: str) -> str:
    path = Path(value)
    size = path.stat().st_size
    if size > MAX_ID_LIST_BYTES:
        raise ConfigError(
            f"{where}: {path} is {size} bytes; an id list may hold at most "
            f"{MAX_ID_LIST_BYTES} bytes"
        )
    return value


def _check_split(value: str, where: str) -> str:
    if not value.strip() or Path(value).name != value:
        raise ConfigError(f'{where}: expected the name of a split such as "val", got {value!r}')
    return value


MAX_ID_LIST_BYTES = 16 << 20
"""Largest ``[test] ids`` file read (a guard against pointing it at a data file)."""


@attrs.frozen(kw_only=True)
class TestSection:
    """``[test]``: a fixed held-out test set (absent: k-fold on ``[dataset]`` alone).

    Three ways to name it (see :func:`driftlab.engine.planning.open_held_out`):

    * a second dataset or folder: ``name``, ``data_root``, ``intensity``,
      ``options`` (the keys of ``[dataset]``; unset keys default to
      ``[dataset]``'s when ``name`` is unset or the same dataset);
    * a named split of the same dataset: ``split = "val"`` (the dataset's
      ``image_set`` option: a Pascal VOC ``ImageSets/Main/<split>.txt`` or
      ``ImageSets/<split>.txt`` list, e.g. BCCD's ``val``);
    * an id list: ``ids = "val.txt"``, one item id or split group (e.g. a
      BCCD photograph stem) per line; those items of ``[dataset]`` are the
      test set and the rest the training set.

    Class names are matched by name between the training and the test set.
    """

    __test__ = False  # not a pytest class

    name: str | None = setting(None, doc="registered dataset name (default: [dataset].name)")
    data_root: str | None = setting(
        None, path="dir", identity=False, doc="local copy (content enters the identity)"
    )
    intensity: float | None = setting(
        None,
        check=check_number(0, 1, low_open=True),
        doc="light level in (0, 1] (default: [dataset].intensity)",
    )
    options: dict[str, Any] = setting(factory=dict, doc="loader options (over [dataset]'s)")
    split: str | None = setting(
        None,
        check=_check_split,
        doc="named split of the dataset: its image_set option (e.g. 'val', 'test')",
    )
    ids: str | None = setting(
        None,
        path="file",
        check=_check_id_list,
        doc="file of item ids or groups (one per line) held out of [dataset]",
    )

    @property
    def given(self) -> bool:
        """Whether a held-out test set is configured."""
        return any(
            value not in (None, {})
            for value in (
                self.name,
                self.data_root,
                self.intensity,
                self.options,
                self.split,
                self.ids,
            )
        )


@attrs.frozen(kw_only=True)
class TrainingSection:
    """``[training]``: how task models are trained."""

    epochs: int = setting(5, check=check_integer(1))
    batch_size: int = setting(64, check=check_integer(1))
    lr: float = setting(1e-3, check=check_number(0, low_open=True))
    folds: int = setting(
        5,
        check=check_integer(1),
        doc="k-fold cross-validation (>= 2); with a [test] set, 1 trains once on every item",
    )
    MOVED: ClassVar[dict[str, str]] = {"device": "[run].device"}

    seed: int = setting(0, check=check_seed)
    augment: bool = setting(False)


@attrs.frozen(kw_only=True)
class RunSection:
    """``[run]``: where results go, the torch device and how many local processes run cells."""

    out: str | None = setting(None, path="any", identity=False)
    workers: int = setting(2, check=check_integer(0), identity=False)
    progress: bool = setting(True, identity=False)
    device: str = setting(
        "auto",
        check=_check_device,
        identity=False,
        doc="auto, cpu, cuda or cuda:N (recorded per cell; not part of the identity)",
    )


@attrs.frozen(kw_only=True)
class ExecutorSection:
    """``[executor]``: which engine runs the cells (none of it changes results)."""

    kind: str = setting("local", check=check_choice("local", "ray"), identity=False)
    address: str | None = setting(
        None, identity=False, doc='Ray cluster: "auto", "ray://host:port" or none (local)'
    )
    num_cpus: float = setting(
        1.0, check=check_number(0, low_open=True), identity=False, doc="CPUs per cell (Ray)"
    )
    num_gpus: float = setting(
        0.0, check=check_number(0), identity=False, doc="GPU fraction per cell (Ray)"
    )
    workers_per_gpu: int = setting(
        2, check=check_integer(1), identity=False, doc="local cells sharing one GPU"
    )
    ship_arrays: bool = setting(
        False,
        identity=False,
        doc="Ray: move view stacks through the object store (no shared filesystem)",
    )


@attrs.frozen(kw_only=True)
class TrackingSection:
    """``[tracking]``: experiment trackers (the run directory stays the source of truth)."""

    trackers: list[str] = setting(factory=list, identity=False, doc="tracker plugin names")
    mlflow_uri: str | None = setting(None, identity=False, doc='e.g. "file:./mlruns"')
    experiment: str | None = setting(None, identity=False, doc="tracker experiment name")


# -- a whole configuration ---------------------------------------------------------------------


@attrs.frozen
class ExperimentConfig:
    """A validated configuration: typed sections, their resolved dict form and identity.

    Subclasses set :attr:`KIND`, :attr:`SECTIONS` (name -> section class, in
    file order), :attr:`REQUIRED` and may override :meth:`validate` for
    checks that span sections.

    Attributes
    ----------
    sections : dict
        Section name -> typed section instance.
    base : Path
        Folder relative paths were resolved against.
    source : str
        The config file (or ``"config"`` for a dict), used in messages.
    """

    KIND: ClassVar[str] = ""
    SECTIONS: ClassVar[dict[str, type]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    sections: dict[str, Any]
    base: Path
    source: str = "config"

    def __getattr__(self, name: str) -> Any:
        sections = object.__getattribute__(self, "sections")
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    @property
    def data(self) -> dict[str, dict[str, Any]]:
        """The resolved configuration as plain TOML-ready data (``None`` values left out)."""
        out: dict[str, dict[str, Any]] = {}
        for name, section in self.sections.items():
            plain = CONVERTER.unstructure(section)
            out[name] = {k: v for k, v in plain.items() if v is not None}
        return out

    def section(self, name: str) -> dict[str, Any]:
        """One section as a plain dict (see :attr:`data`)."""
        return self.data[name]

    def validate(self) -> None:
        """Checks spanning sections (override in subclasses); raise ConfigError."""

    def identity(self) -> dict[str, Any]:
        """``{"section.key": value}`` of every setting that changes results.

        Referenced files enter by content (``"sha256:..."``), never by path.
        """
        out: dict[str, Any] = {}
        for name, section in self.sections.items():
            for f in attrs.fields(type(section)):
                rule = f.metadata.get("identity", True)
                if rule is False:
                    continue
                value = getattr(section, f.name)
                if value is None:
                    continue
                if callable(rule):
                    value = rule(value)
                elif f.metadata.get("path") in ("file", "toml-entries"):
                    value = content_identity(value)
                out[f"{name}.{f.name}"] = CONVERTER.unstructure(value)
        return out

    @classmethod
    def from_dict(
        cls,
        raw: Mapping[str, Any],
        base: str | Path = ".",
        overrides: Sequence[str] = (),
        where: str = "config",
    ) -> ExperimentConfig:
        """Validate keys, types and ranges, fill defaults, apply ``section.key=value`` overrides.

        Raises
        ------
        ConfigError
            Unknown section or key (with the closest valid name), missing
            required key, or a value of the wrong type or range.
        """
        base = Path(base).expanduser().resolve()
        raw = apply_overrides(raw, overrides)
        check_keys(raw, list(cls.SECTIONS), where, required=cls.REQUIRED)
        sections = {}
        for name, section_cls in cls.SECTIONS.items():
            table = require_table(raw, name, where)
            sections[name] = structure_section(section_cls, table, f"{where} [{name}]", base)
        config = cls(sections=sections, base=base, source=where)
        config.validate()
        return config

    @classmethod
    def load(cls, source: Any, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """Read a configuration from a TOML path, a dict or an existing instance.

        Relative paths are resolved against the TOML file's folder (the
        current directory for a dict).

        Raises
        ------
        ConfigError
            Missing file, invalid TOML or invalid content, naming file and key.
        """
        from driftlab.tomlio import read_toml

        if isinstance(source, cls):
            if not overrides:
                return source
            return cls.from_dict(source.data, source.base, overrides, where=source.source)
        if isinstance(source, Mapping):
            return cls.from_dict(source, Path.cwd(), overrides)
        path = Path(source).expanduser()
        try:
            raw = read_toml(path)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls.from_dict(raw, path.resolve().parent, overrides, where=str(path))


def content_identity(value: Any) -> Any:
    """The identity form of a path value: files by name and content, other entries as they are.

    A ``.toml`` entry of a name list (pipeline files) or a plain file path
    becomes ``"NAME:sha256:HEX"``, so a moved or renamed folder keeps the
    identity while an edited file changes it; pipeline names stay names.
    """
    if isinstance(value, list):
        return [content_identity(v) for v in value]
    if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_file():
        return f"{Path(value).name}:sha256:{file_sha256(value)}"
    return value


def identity_digest(identity: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON form of an identity mapping."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def identity_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable ``key: old -> new`` lines for every differing identity key."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if a != b:
            lines.append(f"{key}: {_short(a)} -> {_short(b)}")
    return lines


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
