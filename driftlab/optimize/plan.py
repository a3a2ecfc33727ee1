"""Resolve an optimisation configuration against the installed plugins, before any work.

Unknown dataset, model or pipeline names, a pipeline without a
differentiable form, a model for the wrong task or without support for
4-channel input (raw mode), a dataset that cannot be opened at one of the
intensity levels, or an unavailable device all fail here, before the first
mosaic is rendered or the first model trained.
"""

from __future__ import annotations

import attrs

from driftlab.camera import CameraParams
from driftlab.configtools import ConfigError
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset
from driftlab.datasets.splits import Fold, dataset_folds
from driftlab.models.base import TaskModelSpec
from driftlab.models.device import resolve_device
from driftlab.models.loading import get_task_model
from driftlab.optimize.config import OptimizeConfig
from driftlab.pipeline import PipelineSpec, SpecError, build_differentiable, expand_pipeline_names
from driftlab.registry import Registry, RegistryError, get_registry
from driftlab.synthesis.plan import output_channels
from driftlab.train.metrics import task_metric_name

__all__ = ["OptimizePlan", "plan_optimization"]


@attrs.frozen
class OptimizePlan:
    """A configuration resolved into plugin declarations and opened datasets.

    Attributes
    ----------
    config : OptimizeConfig
    dataset_spec : DatasetSpec
    datasets : dict of float to RawDataset
        One opened dataset per intensity level, in configuration order; all
        hold the same items (same ids) at different light levels.
    camera : CameraParams
    pipeline : PipelineSpec
        The base pipeline (has a differentiable form for ``camera``).
    model : TaskModelSpec
    device : str
    folds : tuple of Fold
        The k folds, chosen on the first intensity level's items (the same
        items at every level).
    """

    config: OptimizeConfig
    dataset_spec: DatasetSpec
    datasets: dict[float, RawDataset]
    camera: CameraParams
    pipeline: PipelineSpec
    model: TaskModelSpec
    device: str
    folds: tuple[Fold, ...]

    @property
    def task(self) -> str:
        return self.dataset_spec.task

    @property
    def metric(self) -> str:
        return task_metric_name(self.task)

    @property
    def output_channels(self) -> int:
        return output_channels(self.dataset_spec)

    @property
    def modes(self) -> list[str]:
        return list(self.config.section("training")["modes"])


def _pipeline(name: str) -> PipelineSpec:
    try:
        specs = expand_pipeline_names([name])
    except (SpecError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"[pipeline].name: {exc}") from None
    if len(specs) != 1:
        raise ConfigError(f"[pipeline].name: expected one pipeline, {name!r} gives {len(specs)}")
    return specs[0]


def plan_optimization(config: OptimizeConfig, registry: Registry | None = None) -> OptimizePlan:
    """Check every name in ``config`` and open the dataset at every intensity level.

    Parameters
    ----------
    config : OptimizeConfig
    registry : Registry, optional
        Installed plugins (default: the process-wide registry).

    Returns
    -------
    OptimizePlan

    Raises
    ------
    ConfigError
        Any unknown or incompatible name (with the closest valid one), a
        pipeline without a differentiable form, a dataset that cannot be
        opened, folds that cannot be made from its items, an unavailable device.
    """
    registry = registry or get_registry()
    ds_cfg, model_cfg = config.section("dataset"), config.section("model")
    modes = config.section("training")["modes"]
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
    pipeline = _pipeline(config.section("pipeline")["name"])
    try:
        device = str(resolve_device(config.section("training")["device"]))
    except ValueError as exc:
        raise ConfigError(f"[training].device: {exc}") from None
    datasets: dict[float, RawDataset] = {}
    for intensity in ds_cfg["intensities"]:
        try:
            datasets[intensity] = dataset_spec.open(
                ds_cfg.get("data_root"), intensity=intensity, registry=registry, **ds_cfg["options"]
            )
        except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
            raise ConfigError(f"[dataset] at intensity {intensity}: {exc}") from None
    first, *others = datasets.values()
    for intensity, dataset in zip(ds_cfg["intensities"][1:], others, strict=True):
        if dataset.ids != first.ids:
            raise ConfigError(
                f"[dataset]: items at intensity {intensity} differ from those at "
                f"{ds_cfg['intensities'][0]}; folds need the same items at every level"
            )
    training = config.section("training")
    try:
        folds = dataset_folds(first, n_splits=training["folds"], seed=training["seed"])
    except DatasetError as exc:
        raise ConfigError(f"[training].folds: {exc}") from None
    camera = first.spec.camera
    if {"frozen", "learned"} & set(modes):
        try:
            build_differentiable(pipeline, camera, registry)
        except SpecError as exc:
            raise ConfigError(f"[pipeline].name: {exc}") from None
    channels = sorted({3 if m != "raw" else 4 for m in modes})
    for in_channels in channels:
        try:
            model.build(
                output_channels(first.spec), in_channels=in_channels, **model_cfg["options"]
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"[model].options: {model.name!r} with in_channels={in_channels}: {exc}"
            ) from None
    return OptimizePlan(
        config=config,
        dataset_spec=first.spec,
        datasets=datasets,
        camera=camera,
        pipeline=pipeline,
        model=model,
        device=device,
        folds=tuple(folds),
    )
