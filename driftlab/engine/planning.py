"""Planning steps shared by every experiment: datasets, models, pipelines, devices, weights.

Each helper resolves one part of a configuration against the registry and
turns any problem into a :class:`~driftlab.errors.ConfigError` naming the
config key, so experiments validate everything before a run directory
exists. Nothing here calls the process-wide registry: the caller passes the
registry the run uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset
from driftlab.errors import ConfigError
from driftlab.models.base import TaskModelSpec
from driftlab.pipeline import PipelineSpec, SpecError, expand_pipeline_names
from driftlab.registry import Registry, RegistryError

__all__ = [
    "check_initial_weights",
    "data_fingerprint",
    "open_dataset",
    "output_channels",
    "resolve_model",
    "resolve_pipeline",
    "resolve_pipelines",
    "run_device",
]


def output_channels(spec: DatasetSpec) -> int:
    """Outputs of a task model for ``spec``: one per class, or 1 logit for binary segmentation."""
    classes = len(spec.classes)
    return classes if spec.task == "classification" else (1 if classes <= 2 else classes)


def open_dataset(
    section: Any,
    registry: Registry,
    *,
    intensity: float | None = None,
    where: str = "[dataset]",
) -> tuple[DatasetSpec, RawDataset]:
    """Look the dataset up and open it.

    Parameters
    ----------
    section : DatasetSection
        ``name``, ``data_root``, ``intensity``, ``options``.
    registry : Registry
    intensity : float, optional
        Overrides ``section.intensity``.

    Raises
    ------
    ConfigError
        Unknown dataset (closest name), or the loader refused the options
        or the files.
    """
    try:
        spec = registry.get("datasets", section.name)
    except RegistryError as exc:
        raise ConfigError(f"{where}.name: {exc}") from None
    level = section.intensity if intensity is None else intensity
    camera = getattr(section, "camera", None)
    if camera is not None:
        try:
            registry.camera(camera)
        except RegistryError as exc:
            raise ConfigError(f"{where}.camera: {exc}") from None
        spec = attrs.evolve(spec, camera=camera)
    try:
        dataset = spec.open(
            section.data_root, intensity=level, registry=registry, **section.options
        )
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        label = f"{where} at intensity {level:g}" if intensity is not None else where
        raise ConfigError(f"{label}: {exc}") from None
    return spec, dataset


def resolve_model(
    name: str, dataset_spec: DatasetSpec, registry: Registry, where: str = "[model].name"
) -> TaskModelSpec:
    """The task-model declaration ``name``, checked to fit the dataset's task.

    Raises
    ------
    ConfigError
        Unknown name (closest name) or a model of another task.
    """
    try:
        model = registry.get("task_models", name)
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if model.task != dataset_spec.task:
        raise ConfigError(
            f"{where}: {model.name!r} is a {model.task} model but dataset "
            f"{dataset_spec.name!r} is a {dataset_spec.task} dataset"
        )
    return model


def resolve_pipelines(
    selection: str | Sequence[str], where: str, registry: Registry
) -> tuple[PipelineSpec, ...]:
    """Pipeline specs of a selection; names must be unique.

    A selection is ``"all"`` (every named pipeline of the registry: the
    paper's twelve and those plugins ship through ``driftlab_pipelines``),
    names, or pipeline TOML files.

    Raises
    ------
    ConfigError
        Unknown name (closest name), unreadable file, repeated names.
    """
    try:
        specs = expand_pipeline_names(selection, registry.items("pipelines"))
    except (SpecError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: pipeline names must be unique, repeated: {', '.join(dupes)}")
    return tuple(specs)


def resolve_pipeline(name: str, where: str, registry: Registry) -> PipelineSpec:
    """Exactly one pipeline spec (a name or a TOML file holding one).

    Raises
    ------
    ConfigError
        Unknown, unreadable, or a file with several pipelines.
    """
    specs = resolve_pipelines([name], where, registry)
    if len(specs) != 1:
        raise ConfigError(f"{where}: expected one pipeline, {name!r} gives {len(specs)}")
    return specs[0]


def run_device(device: str, where: str = "[run].device") -> str:
    """The resolved torch device (``cpu``, ``cuda:N``) of a device request.

    Raises
    ------
    ConfigError
        Unknown device or CUDA not available.
    """
    from driftlab.models.device import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_initial_weights(
    section: Any,
    dataset_spec: DatasetSpec,
    registry: Registry,
    *,
    for_training: bool,
    in_channels: int = 3,
) -> Any:
    """Load ``[model]`` (architecture and optional weights) once to prove it fits, before any work.

    Parameters
    ----------
    section : ModelSection
        ``name``, ``options``, ``weights``, ``key``.
    dataset_spec : DatasetSpec
        Gives the task and the class count the outputs must match.
    registry : Registry
    for_training : bool
        The model will be trained (TorchScript / exported archives cannot).

    Returns
    -------
    driftlab.models.LoadedModel

    Raises
    ------
    ConfigError
        Unreadable or unsafe file, missing checkpoint key, keys, shapes or
        outputs that do not fit (one line naming what to set).
    """
    from driftlab.models.check import check_weights

    try:
        return check_weights(
            section.weights,
            num_classes=output_channels(dataset_spec),
            task=dataset_spec.task,
            name=section.name,
            options=section.options,
            key=getattr(section, "key", None),
            in_channels=in_channels,
            for_training=for_training,
            registry=registry,
        )
    except ConfigError:
        raise
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        where = "[model].weights" if section.weights else "[model]"
        raise ConfigError(f"{where}: {first}") from None


def data_fingerprint(dataset: RawDataset) -> str:
    """SHA-256 over every item's id, target and raw mosaic (dtype, shape, bytes).

    Reads every item once; the run identity uses it, so the same config on
    edited data is a different run, and a moved copy of the same data is not.

    Raises
    ------
    ConfigError
        An item cannot be read (naming it).
    """
    digest = hashlib.sha256()
    for index, item_id in enumerate(dataset.ids):
        try:
            sample = dataset[index]
        except (DatasetError, ValueError, OSError) as exc:
            raise ConfigError(f"[dataset]: item {item_id!r} cannot be read: {exc}") from None
        raw = np.ascontiguousarray(sample.raw)
        target = np.ascontiguousarray(np.asarray(sample.target))
        digest.update(f"{item_id}|{raw.dtype.str}|{raw.shape}|{target.dtype.str}|".encode())
        digest.update(raw.tobytes())
        digest.update(target.tobytes())
    return digest.hexdigest()
