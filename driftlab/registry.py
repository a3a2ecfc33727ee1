"""Plugin registry: discovers plugins and collects their declarations.

Built-in plugins (:data:`BUILTIN_PLUGINS`) and third-party plugins found in
the ``driftlab`` entry-point group are registered on one pluggy
``PluginManager``, the only global state of driftlab. Each hook is then
called plugin by plugin, so that one broken plugin is reported by name
without hiding the others: an exception, or a ``SystemExit`` (``sys.exit()``
at import or inside a hook), becomes a :class:`PluginError` naming the
plugin; ``KeyboardInterrupt`` still interrupts. A name declared by two
plugins is a *conflict*: it is withdrawn for every claimant and each lookup
of it raises a :class:`RegistryError` naming them all.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as metadata
import traceback
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import attrs
import pluggy

from driftlab import hookspecs
from driftlab.errors import DriftlabError

__all__ = [
    "BUILTIN_PLUGINS",
    "KINDS",
    "PluginError",
    "PluginInfo",
    "Registry",
    "RegistryError",
    "get_registry",
    "suggest",
]

BUILTIN_PLUGINS: tuple[str, ...] = (
    "driftlab.builtin.stages",
    "driftlab.builtin.cameras",
    "driftlab.builtin.datasets",
    "driftlab.builtin.simulated",
    "driftlab.builtin.corruptions",
    "driftlab.builtin.models",
    "driftlab.builtin.attacks",
    "driftlab.builtin.trackers",
    "driftlab.builtin.pipelines",
)

# kind -> (hook name, function giving a declaration's registry key)
KINDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "stages": ("driftlab_stages", lambda d: d.key),
    "camera_profiles": ("driftlab_camera_profiles", lambda d: d.name),
    "datasets": ("driftlab_datasets", lambda d: d.name),
    "task_models": ("driftlab_task_models", lambda d: d.name),
    "corruptions": ("driftlab_corruptions", lambda d: d.name),
    "attacks": ("driftlab_attacks", lambda d: d.name),
    "trackers": ("driftlab_trackers", lambda d: d.name),
    "pipelines": ("driftlab_pipelines", lambda d: d.name),
}

# kind -> "module:Class" every declaration must be an instance of (imported lazily,
# since the declaration modules import the registry)
KIND_TYPES: dict[str, str] = {
    "stages": "driftlab.stages.base:StageSpec",
    "camera_profiles": "driftlab.camera:CameraParams",
    "datasets": "driftlab.datasets.base:DatasetSpec",
    "task_models": "driftlab.models.base:TaskModelSpec",
    "corruptions": "driftlab.corruptions.base:CorruptionSpec",
    "attacks": "driftlab.attacks.base:AttackSpec",
    "trackers": "driftlab.tracking:TrackerSpec",
    "pipelines": "driftlab.pipeline.spec:PipelineSpec",
}


def _kind_type(kind: str) -> type | None:
    target = KIND_TYPES.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


KIND_LABELS = {
    "stages": "stage",
    "camera_profiles": "camera profile",
    "datasets": "dataset",
    "task_models": "task model",
    "corruptions": "corruption",
    "attacks": "attack",
    "trackers": "tracker",
    "pipelines": "pipeline",
}


class RegistryError(DriftlabError, LookupError):
    """A name is unknown or declared by more than one plugin."""

    exit_code = 2


def suggest(name: str, valid: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid name, or ``""``."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@attrs.frozen
class PluginError:
    """A plugin that could not be loaded, whose hook failed, or that declared a
    name another plugin declares too.

    Attributes
    ----------
    plugin : str
        Plugin name (entry-point name, built-in module name, or the name given
        to :meth:`Registry.load`'s ``extra``).
    distribution : str
        Distribution that installed it (``"driftlab"`` for built-ins,
        ``"(in-process)"`` for ``extra`` plugins).
    message : str
        One line: ``failed to load: <Exception>: ...``, ``hook <name> raised
        ...`` or ``<kind> '<key>' is declared by more than one plugin: ...``.
    detail : str
        The traceback, when there is one.
    """

    plugin: str
    distribution: str
    message: str
    detail: str = ""


@attrs.define
class PluginInfo:
    """One registered plugin and what it provides (``driftlab plugins`` prints these).

    Attributes
    ----------
    name : str
        Plugin name: the entry-point name of a third-party plugin, the module
        name of a built-in one, or the name passed in ``Registry.load(extra=...)``.
    distribution : str
        Installing distribution (``"driftlab"`` for built-ins, ``"(in-process)"``
        for ``extra`` plugins).
    version : str
        Version of that distribution (``""`` for in-process plugins).
    module : str
        Module the hook functions live in.
    builtin : bool
        Whether it is one of :data:`BUILTIN_PLUGINS`.
    provides : dict of str to list of str
        Registry keys declared, by kind (``"stages"``, ``"camera_profiles"``,
        ``"datasets"``, ``"task_models"``, ``"corruptions"``, ``"attacks"``,
        ``"pipelines"``), in declaration order; a key in conflict is listed
        here for every claimant and in :meth:`Registry.conflicts`.
    """

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool
    provides: dict[str, list[str]] = attrs.field(factory=dict)


def _declarations(returned: object, kind: str, hook_name: str) -> list[Any]:
    """Check what a hook returned: a list (or tuple) of declarations of the right class."""
    if not isinstance(returned, (list, tuple)):
        raise TypeError(f"returned {type(returned).__name__}; expected a list of declarations")
    expected = _kind_type(kind)
    for item in returned:
        if expected is not None and not isinstance(item, expected):
            raise TypeError(
                f"returned {item!r} ({type(item).__name__}); expected {expected.__name__} instances"
            )
    return list(returned)


def _describe(exc: BaseException) -> str:
    """``"Type: message"``; a ``SystemExit`` says that the plugin called ``sys.exit``."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _is_entry_point(target: object) -> bool:
    """Whether ``target`` is an entry point (stdlib or importlib_metadata backport)."""
    return isinstance(target, metadata.EntryPoint) or (
        callable(getattr(target, "load", None))
        and isinstance(getattr(target, "group", None), str)
        and isinstance(getattr(target, "value", None), str)
    )


def _make_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _driftlab_version() -> str:
    try:
        return metadata.version("driftlab")
    except metadata.PackageNotFoundError:
        return "unknown"


@attrs.define
class Registry:
    """Declarations collected from every plugin.

    Use :func:`get_registry` for the process-wide instance, or
    :meth:`Registry.load` to build one with extra plugins (tests).

    Attributes
    ----------
    plugins : list of PluginInfo
        Registered plugins, built-ins first.
    errors : list of PluginError
        Plugins that failed, and names declared twice.
    """

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = attrs.field(factory=list)
    errors: list[PluginError] = attrs.field(factory=list)
    _items: dict[str, dict[str, Any]] = attrs.field(factory=lambda: {k: {} for k in KINDS})
    _owners: dict[str, dict[str, str]] = attrs.field(factory=lambda: {k: {} for k in KINDS})
    _conflicts: dict[str, dict[str, list[str]]] = attrs.field(
        factory=lambda: {k: {} for k in KINDS}
    )

    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        extra: Iterable[tuple[str, object]] = (),
    ) -> Registry:
        """Discover plugins and collect their declarations.

        Parameters
        ----------
        entry_points : bool
            Also load third-party plugins from the ``driftlab`` entry-point group.
        extra : iterable of (name, plugin)
            Additional plugin objects or module names, registered after the
            others (used by tests and by scripts that define a plugin inline).

        Returns
        -------
        Registry
            Never raises for a broken plugin: failures are in :attr:`errors`.
        """
        registry = cls(_make_manager())
        version = _driftlab_version()
        for module_name in BUILTIN_PLUGINS:
            registry._register(module_name, module_name, "driftlab", version, builtin=True)
        if entry_points:
            for ep in sorted(metadata.entry_points(group="driftlab"), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist is not None else "unknown"
                dist_version = ep.dist.version if ep.dist is not None else "unknown"
                registry._register(ep.name, ep, dist, dist_version, builtin=False)
        for name, plugin in extra:
            registry._register(name, plugin, "(in-process)", "", builtin=False)
        registry._collect()
        return registry

    def _register(
        self, name: str, target: object, dist: str, version: str, *, builtin: bool
    ) -> None:
        try:
            if _is_entry_point(target):
                # duck-typed: the importlib_metadata backport (imported by some
                # packages) hands out EntryPoint objects of its own class
                plugin = target.load()  # type: ignore[attr-defined]
            elif isinstance(target, str):
                plugin = importlib.import_module(target)
            else:
                plugin = target
            if self.pm.is_registered(plugin) or self.pm.get_plugin(name) is not None:
                raise ValueError(f"plugin name {name!r} is already registered")
            known = [n for n in dir(hookspecs) if n.startswith("driftlab_")]
            for attr in dir(plugin):
                marked = hasattr(getattr(plugin, attr, None), f"{hookspecs.PROJECT_NAME}_impl")
                if marked and attr not in known:
                    raise ValueError(
                        f"@hookimpl function {attr!r} is not a driftlab hook{suggest(attr, known)}"
                    )
            self.pm.register(plugin, name=name)
        # A broken plugin must not stop the others. SystemExit (sys.exit() at import)
        # is isolated too; KeyboardInterrupt is not caught, so Ctrl-C still interrupts.
        except (Exception, SystemExit) as exc:
            self.errors.append(
                PluginError(
                    plugin=name,
                    distribution=dist,
                    message=f"failed to load: {_describe(exc)}",
                    detail=traceback.format_exc(),
                )
            )
            return
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        self.plugins.append(PluginInfo(name, dist, version, module, builtin))

    def _collect(self) -> None:
        for info in self.plugins:
            plugin = self.pm.get_plugin(info.name)
            for kind, (hook_name, key_of) in KINDS.items():
                impls = [
                    impl
                    for impl in getattr(self.pm.hook, hook_name).get_hookimpls()
                    if impl.plugin is plugin
                ]
                for impl in impls:
                    try:
                        declared = _declarations(impl.function(), kind, hook_name)
                        keys = [key_of(item) for item in declared]
                    except (Exception, SystemExit) as exc:  # see _register
                        self.errors.append(
                            PluginError(
                                plugin=info.name,
                                distribution=info.distribution,
                                message=f"hook {hook_name} raised {_describe(exc)}",
                                detail=traceback.format_exc(),
                            )
                        )
                        continue
                    for key, item in zip(keys, declared, strict=True):
                        self._add(kind, key, item, info)

    def _add(self, kind: str, key: str, item: object, info: PluginInfo) -> None:
        owners = self._owners[kind]
        info.provides.setdefault(kind, []).append(key)
        if key in owners or key in self._conflicts[kind]:
            first = [owners.pop(key)] if key in owners else []
            claimants = self._conflicts[kind].setdefault(key, first)
            claimants.append(info.name)
            self._items[kind].pop(key, None)
            self.errors.append(
                PluginError(
                    plugin=info.name,
                    distribution=info.distribution,
                    message=(
                        f"{KIND_LABELS[kind]} {key!r} is declared by more than one plugin: "
                        + ", ".join(repr(c) for c in claimants)
                        + "; it is withdrawn until only one declares it"
                    ),
                )
            )
            return
        owners[key] = info.name
        self._items[kind][key] = item

    # -- pickling (the registry travels with an experiment's cells) -------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Declarations and plugin infos without the plugin manager (not picklable)."""
        return {f.name: getattr(self, f.name) for f in attrs.fields(type(self)) if f.name != "pm"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "pm", None)

    def in_process_modules(self) -> list[str]:
        """Modules of plugins registered in-process (not installed distributions)."""
        return [p.module for p in self.plugins if p.distribution == "(in-process)"]

    # -- lookups ---------------------------------------------------------------------------
    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise RegistryError(f"unknown plugin kind {kind!r}{suggest(kind, KINDS)}")

    def names(self, kind: str) -> list[str]:
        """Sorted registry keys of one kind (``stages``, ``camera_profiles``,
        ``datasets``, ``task_models``, ``corruptions``, ``attacks``,
        ``pipelines``); keys in conflict are left out (see :meth:`conflicts`).

        Raises
        ------
        RegistryError
            Unknown kind.
        """
        self._check_kind(kind)
        return sorted(self._items[kind])

    def items(self, kind: str) -> dict[str, Any]:
        """All usable declarations of one kind, by key (conflicts left out)."""
        self._check_kind(kind)
        return dict(self._items[kind])

    def conflicts(self, kind: str | None = None) -> dict[str, dict[str, list[str]]]:
        """Keys declared more than once, with the plugins that declared them.

        Parameters
        ----------
        kind : str, optional
            Only this kind (default: every kind).

        Returns
        -------
        dict
            ``{kind: {key: [plugin, plugin, ...]}}`` in declaration order; kinds
            without conflicts are left out.
        """
        kinds = list(KINDS) if kind is None else [kind]
        for k in kinds:
            self._check_kind(k)
        return {
            k: {key: list(who) for key, who in self._conflicts[k].items()}
            for k in kinds
            if self._conflicts[k]
        }

    def owner(self, kind: str, key: str) -> str:
        """Name of the plugin that declared ``key``.

        Raises
        ------
        RegistryError
            Unknown kind or key, or a key in conflict (naming the claimants).
        """
        self.get(kind, key)
        return self._owners[kind][key]

    def _conflict_error(self, kind: str, key: str) -> RegistryError:
        who = ", ".join(repr(c) for c in self._conflicts[kind][key])
        return RegistryError(
            f"{KIND_LABELS[kind]} {key!r} is declared by several plugins: {who} "
            "(a conflict, not an override: uninstall or rename one of them)"
        )

    def get(self, kind: str, key: str) -> Any:
        """Return one declaration.

        Raises
        ------
        RegistryError
            If ``kind`` or ``key`` is unknown (with the closest valid name) or
            ``key`` is declared by several plugins (naming them).
        """
        self._check_kind(kind)
        if key in self._conflicts[kind]:
            raise self._conflict_error(kind, key)
        try:
            return self._items[kind][key]
        except KeyError:
            valid = self.names(kind)
            raise RegistryError(
                f"unknown {KIND_LABELS[kind]} {key!r}{suggest(key, valid)}; "
                f"installed: {', '.join(valid) or 'none'}"
            ) from None

    # stages are looked up by slot and variant, with errors that name both
    def _stage_keys(self) -> list[str]:
        """Every declared stage key, usable or in conflict."""
        return [*self._items["stages"], *self._conflicts["stages"]]

    def slots(self) -> list[str]:
        """Slots that at least one stage variant fills (variants in conflict count:
        their slot exists, looking the variant up reports the conflict)."""
        return sorted({key.split(".", 1)[0] for key in self._stage_keys()})

    def variants(self, slot: str) -> list[str]:
        """Variant names of one slot (including variants in conflict)."""
        return sorted(
            {key.split(".", 1)[1] for key in self._stage_keys() if key.split(".", 1)[0] == slot}
        )

    def stage(self, slot: str, variant: str | None = None) -> Any:
        """Return the :class:`~driftlab.stages.base.StageSpec` of ``slot.variant``.

        ``variant`` may be omitted when the slot has exactly one variant.

        Raises
        ------
        RegistryError
            Unknown slot or variant (with the closest valid name), an omitted
            variant for a slot that has several, or a variant declared by
            several plugins (naming them).
        """
        slots = self.slots()
        if slot not in slots:
            raise RegistryError(
                f"unknown slot {slot!r}{suggest(slot, slots)}; slots: {', '.join(slots)}"
            )
        variants = self.variants(slot)
        if variant is None:
            if len(variants) != 1:
                raise RegistryError(
                    f"slot {slot!r} has several variants ({', '.join(variants)}); name one"
                )
            variant = variants[0]
        if variant not in variants:
            raise RegistryError(
                f"unknown variant {variant!r} for slot {slot!r}{suggest(variant, variants)}; "
                f"variants: {', '.join(variants)}"
            )
        return self.get("stages", f"{slot}.{variant}")

    def camera(self, name: str) -> Any:
        """Return the camera profile ``name`` (see :meth:`get` for errors)."""
        return self.get("camera_profiles", name)

    def pipeline(self, name: str) -> Any:
        """Return the :class:`~driftlab.pipeline.spec.PipelineSpec` a plugin (or
        driftlab's built-in plugin of the paper's data models) declared as
        ``name`` (see :meth:`get` for errors)."""
        return self.get("pipelines", name)


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """Process-wide registry of installed plugins, loaded on first use.

    Parameters
    ----------
    reload : bool
        Discard the cached registry and discover plugins again.
    """
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = Registry.load()
    return _REGISTRY
