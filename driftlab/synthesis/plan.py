"""Resolve a synthesis configuration against the installed plugins, before any work.

Everything that can be wrong with a configuration (unknown dataset, model,
pipeline or corruption, a model for the wrong task, a severity the
corruption does not have, a pipeline that does not build for the dataset's
camera, an unavailable device) is found here, so a run fails before the
first view is rendered or the first model trained.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from driftlab.camera import CameraParams
from driftlab.configtools import ConfigError
from driftlab.corruptions.apply import get_corruption
from driftlab.corruptions.base import CorruptionSpec
from driftlab.corruptions.protocol import PAPER_CORRUPTIONS
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset
from driftlab.models.base import TaskModelSpec
from driftlab.models.device import resolve_device
from driftlab.models.loading import get_task_model
from driftlab.pipeline import PipelineSpec, SpecError, build_static, expand_pipeline_names
from driftlab.registry import Registry, RegistryError, get_registry
from driftlab.synthesis.config import SynthesisConfig
from driftlab.train.metrics import task_metric_name

__all__ = ["Condition", "SynthesisPlan", "output_channels", "plan_synthesis"]


@attrs.frozen
class Condition:
    """One corruption test condition (``severity`` 0 for identity)."""

    corruption: CorruptionSpec
    severity: int

    @property
    def name(self) -> str:
        return self.corruption.name


@attrs.frozen
class SynthesisPlan:
    """A configuration resolved into plugin declarations and an opened dataset."""

    config: SynthesisConfig
    dataset_spec: DatasetSpec
    dataset: RawDataset
    camera: CameraParams
    train: tuple[PipelineSpec, ...]
    test: tuple[PipelineSpec, ...]
    conditions: tuple[Condition, ...]
    model: TaskModelSpec
    device: str

    @property
    def task(self) -> str:
        return self.dataset_spec.task

    @property
    def metric(self) -> str:
        return task_metric_name(self.task)

    @property
    def pipelines(self) -> tuple[PipelineSpec, ...]:
        """Train and test pipelines without repeats, train first."""
        seen: dict[str, PipelineSpec] = {}
        for spec in (*self.train, *self.test):
            seen.setdefault(spec.name, spec)
        return tuple(seen.values())

    @property
    def output_channels(self) -> int:
        return output_channels(self.dataset_spec)


def output_channels(spec: DatasetSpec) -> int:
    """Outputs of a task model for ``spec``: one per class, or 1 logit for binary segmentation."""
    classes = len(spec.classes)
    return classes if spec.task == "classification" else (1 if classes <= 2 else classes)


def _pipelines(selection, where: str) -> tuple[PipelineSpec, ...]:
    try:
        specs = expand_pipeline_names(selection)
    except (SpecError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: pipeline names must be unique, repeated: {', '.join(dupes)}")
    return tuple(specs)


def _conditions(names, severities, registry: Registry, where: str) -> tuple[Condition, ...]:
    if names == "paper":
        names = list(PAPER_CORRUPTIONS)
    elif names == "all":
        names = registry.names("corruptions")
    elif isinstance(names, str):
        names = [names]
    out: list[Condition] = []
    for name in names:
        try:
            spec = get_corruption(name, registry)
        except (RegistryError, ValueError) as exc:
            raise ConfigError(f"{where}.names: {exc}") from None
        if len(spec.severities) == 1 or name == "identity":
            out.append(Condition(spec, 0))
            continue
        for severity in severities:
            if severity not in spec.severities:
                raise ConfigError(
                    f"{where}.severities: corruption {name!r} has severities "
                    f"{list(spec.severities)}, got {severity}"
                )
            out.append(Condition(spec, int(severity)))
    return tuple(out)


def plan_synthesis(config: SynthesisConfig, registry: Registry | None = None) -> SynthesisPlan:
    """Check every name in ``config`` and open the dataset.

    Returns
    -------
    SynthesisPlan

    Raises
    ------
    ConfigError
        Any unknown or incompatible name, with the closest valid one; a
        dataset that cannot be opened; an unavailable device.
    """
    registry = registry or get_registry()
    ds_cfg, model_cfg = config.section("dataset"), config.section("model")
    try:
        dataset_spec = registry.get("datasets", ds_cfg["name"])
    except RegistryError as exc:
        raise ConfigError(f"[dataset].name: {exc}") from None
    try:
        model = get_task_model(model_cfg["name"], registry)
    except (RegistryError, ValueError) as exc:
        raise ConfigError(f"[model].name: {exc}") from None
    if model.task != dataset_spec.task:
        raise ConfigError(
            f"[model].name: {model.name!r} is a {model.task} model but dataset "
            f"{dataset_spec.name!r} is a {dataset_spec.task} dataset"
        )
    if model_cfg.get("weights") and not Path(model_cfg["weights"]).is_file():
        raise ConfigError(f"[model].weights: {model_cfg['weights']}: no such file")
    train = _pipelines(config.section("pipelines")["train"], "[pipelines].train")
    test = _pipelines(config.section("pipelines")["test"], "[pipelines].test")
    corruptions = config.section("corruptions")
    conditions = _conditions(
        corruptions["names"], corruptions["severities"], registry, "[corruptions]"
    )
    try:
        device = str(resolve_device(config.section("training")["device"]))
    except ValueError as exc:
        raise ConfigError(f"[training].device: {exc}") from None
    try:
        dataset = dataset_spec.open(
            ds_cfg.get("data_root"),
            intensity=ds_cfg["intensity"],
            registry=registry,
            **ds_cfg["options"],
        )
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"[dataset]: {exc}") from None
    camera = dataset.spec.camera
    for spec in {s.name: s for s in (*train, *test)}.values():
        try:
            build_static(spec, camera, registry)
        except SpecError as exc:
            raise ConfigError(f"[pipelines]: {exc}") from None
    try:
        model.build(output_channels(dataset.spec), **model_cfg["options"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[model].options: {exc}") from None
    return SynthesisPlan(
        config=config,
        dataset_spec=dataset.spec,
        dataset=dataset,
        camera=camera,
        train=train,
        test=test,
        conditions=conditions,
        model=model,
        device=device,
    )
