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
from driftlab.datasets.base import DatasetSpec, RawDataset
from driftlab.datasets.splits import Fold
from driftlab.engine.planning import (
    Condition,
    DatasetTask,
    HeldOut,
    check_initial_weights,
    data_fingerprint,
    open_dataset,
    open_held_out,
    plan_folds,
    resolve_conditions,
    resolve_model,
    resolve_pipelines,
    run_device,
)
from driftlab.errors import ConfigError
from driftlab.models.base import TaskModelSpec
from driftlab.pipeline import PipelineSpec, SpecError, build_static
from driftlab.registry import Registry
from driftlab.synthesis.config import SynthesisConfig
from driftlab.train.metrics import get_metric

__all__ = ["Condition", "SynthesisPlan", "plan_synthesis"]


@attrs.frozen
class SynthesisPlan(DatasetTask):
    """A configuration resolved into plugin declarations and an opened dataset.

    Attributes
    ----------
    config : SynthesisConfig
    registry : Registry
        The plugins the run uses (travels with the cells).
    dataset_spec : DatasetSpec
    dataset : RawDataset
        Every item the run reads: with a ``[test]`` set, the training items
        followed by the fixed test items (a ``JoinedDataset``).
    camera : CameraParams
        The training set's camera (a held-out set renders with its own).
    train, test : tuple of PipelineSpec
    conditions : tuple of Condition
    model : TaskModelSpec
    device : str
        Resolved torch device.
    folds : tuple of Fold
    fingerprint : str
        SHA-256 of every item's id, target and raw mosaic.
    held_out : HeldOut or None
        The fixed test set of ``[test]`` (None: k-fold cross-validation).
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
    held_out: HeldOut | None = None

    @property
    def pipelines(self) -> tuple[PipelineSpec, ...]:
        """Train and test pipelines without repeats, train first."""
        seen: dict[str, PipelineSpec] = {}
        for spec in (*self.train, *self.test):
            seen.setdefault(spec.name, spec)
        return tuple(seen.values())


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
    conditions = resolve_conditions(co.names, co.severities, co.family, registry)
    if config.report.metric is not None:
        try:
            get_metric(config.report.metric, dataset.spec.task)
        except ValueError as exc:
            raise ConfigError(f"[report].metric: {exc}") from None
    device = run_device(config.run.device)
    camera = dataset.spec.camera
    held = open_held_out(config.dataset, config.test, registry, train=dataset)
    cameras = [camera] if held is None else [camera, held.test.spec.camera]
    for spec in {s.name: s for s in (*train, *test)}.values():
        for lens in cameras:
            try:
                build_static(spec, lens, registry)
            except SpecError as exc:
                raise ConfigError(f"[pipelines]: {exc}") from None
    check_initial_weights(config.model, dataset.spec, registry, for_training=True)
    tr = config.training
    if held is not None:
        dataset = held.joined()
    folds = plan_folds(dataset if held is None else held.train, held, tr.folds, tr.seed)
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
        held_out=held,
    )
