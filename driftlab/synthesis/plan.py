"""Resolve a synthesis configuration against the plugins, before anything is created.

Everything that can be wrong with a configuration (unknown dataset, model,
pipeline or corruption, a model for the wrong task, a severity the
corruption does not have, a pipeline that does not build for the dataset's
camera, an unavailable device, folds the items cannot make, weights that do
not fit the model) is found here, so a run fails before its run directory
exists.
"""

from __future__ import annotations

import attrs

from driftlab.camera import CameraParams
from driftlab.corruptions.apply import get_corruption
from driftlab.corruptions.base import CorruptionSpec
from driftlab.corruptions.protocol import PAPER_CORRUPTIONS
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset
from driftlab.datasets.splits import Fold, dataset_folds
from driftlab.engine.planning import (
    check_initial_weights,
    data_fingerprint,
    open_dataset,
    output_channels,
    resolve_model,
    resolve_pipelines,
    run_device,
)
from driftlab.errors import ConfigError
from driftlab.models.base import TaskModelSpec
from driftlab.pipeline import PipelineSpec, SpecError, build_static
from driftlab.registry import Registry, RegistryError
from driftlab.synthesis.config import SynthesisConfig
from driftlab.train.metrics import get_metric, task_metric_name

__all__ = ["Condition", "SynthesisPlan", "plan_synthesis"]


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
    """A configuration resolved into plugin declarations and an opened dataset.

    Attributes
    ----------
    config : SynthesisConfig
    registry : Registry
        The plugins the run uses (travels with the cells).
    dataset_spec : DatasetSpec
    dataset : RawDataset
    camera : CameraParams
    train, test : tuple of PipelineSpec
    conditions : tuple of Condition
    model : TaskModelSpec
    device : str
        Resolved torch device.
    folds : tuple of Fold
    fingerprint : str
        SHA-256 of every item's id, target and raw mosaic.
    """

    config: SynthesisConfig
    registry: Registry
    dataset_spec: DatasetSpec
    dataset: RawDataset
    camera: CameraParams
    train: tuple[PipelineSpec, ...]
    test: tuple[PipelineSpec, ...]
    conditions: tuple[Condition, ...]
    model: TaskModelSpec
    device: str
    folds: tuple[Fold, ...]
    fingerprint: str

    @property
    def task(self) -> str:
        return self.dataset_spec.task

    @property
    def metric(self) -> str:
        """The metric the cells record (the task's default)."""
        return task_metric_name(self.task)

    @property
    def headline_metric(self) -> str:
        """``[report].metric``, or the task's default: computed from per-item outcomes."""
        return self.config.report.metric or self.metric

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


def _conditions(
    names, severities, family: str, registry: Registry, where: str
) -> tuple[Condition, ...]:
    if names == "paper":
        names = list(PAPER_CORRUPTIONS)
    elif names == "all":
        names = registry.names("corruptions")
    elif isinstance(names, str):
        names = [names]
    out: list[Condition] = []
    for name in names:
        try:
            spec = get_corruption(name, registry, family=family)
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


def plan_synthesis(config: SynthesisConfig, registry: Registry) -> SynthesisPlan:
    """Check every name in ``config``, open the dataset, make the folds, check the weights.

    Returns
    -------
    SynthesisPlan

    Raises
    ------
    ConfigError
        Any unknown or incompatible name, with the closest valid one; a
        dataset that cannot be opened or split; an unavailable device;
        weights that do not fit.
    """
    dataset_spec, dataset = open_dataset(config.dataset, registry)
    model = resolve_model(config.model.name, dataset_spec, registry)
    train = resolve_pipelines(config.pipelines.train, "[pipelines].train", registry)
    test = resolve_pipelines(config.pipelines.test, "[pipelines].test", registry)
    co = config.corruptions
    conditions = _conditions(co.names, co.severities, co.family, registry, "[corruptions]")
    if config.report.metric is not None:
        try:
            get_metric(config.report.metric, dataset.spec.task)
        except ValueError as exc:
            raise ConfigError(f"[report].metric: {exc}") from None
    device = run_device(config.run.device)
    camera = dataset.spec.camera
    for spec in {s.name: s for s in (*train, *test)}.values():
        try:
            build_static(spec, camera, registry)
        except SpecError as exc:
            raise ConfigError(f"[pipelines]: {exc}") from None
    check_initial_weights(config.model, dataset.spec, registry, for_training=True)
    tr = config.training
    try:
        folds = tuple(dataset_folds(dataset, n_splits=tr.folds, seed=tr.seed))
    except DatasetError as exc:
        raise ConfigError(f"[training].folds: {exc}") from None
    return SynthesisPlan(
        config=config,
        registry=registry,
        dataset_spec=dataset.spec,
        dataset=dataset,
        camera=camera,
        train=train,
        test=test,
        conditions=conditions,
        model=model,
        device=device,
        folds=folds,
        fingerprint=data_fingerprint(dataset),
    )
