"""Resolve an audit configuration against the plugins, before anything is created.

Everything that can be wrong with an audit (unknown dataset, pipeline or
corruption; a model file that cannot be read, does not fit its
architecture, the dataset's task or class count, or the input contract's
size; a contract that would normalise twice; a held-out set whose classes
the model does not know) is found here, so an audit fails before its run
directory exists.
"""

from __future__ import annotations

import attrs

from driftlab.audit.config import AuditConfig
from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetSpec, RawDataset
from driftlab.engine.planning import (
    Condition,
    DatasetTask,
    HeldOut,
    data_fingerprint,
    open_dataset,
    open_held_out,
    output_channels,
    resolve_conditions,
    resolve_pipeline,
    resolve_pipelines,
    run_device,
)
from driftlab.errors import ConfigError
from driftlab.models.contract import InputContract, InputContractError
from driftlab.pipeline import PipelineSpec, SpecError, build_static
from driftlab.registry import Registry, RegistryError

__all__ = ["AuditModel", "AuditPlan", "plan_audit"]


@attrs.frozen
class AuditModel:
    """The audited model as the report names it.

    Attributes
    ----------
    name : str
        The registered architecture, or the file name of an archive.
    description : str
        :meth:`driftlab.models.LoadedModel.describe` (format, file, entry,
        stored normalisation).
    format : str
        One of :data:`driftlab.models.LOADED_FORMATS`.
    """

    name: str
    description: str
    format: str


@attrs.frozen
class AuditPlan(DatasetTask):
    """An audit configuration resolved into plugin declarations and opened data.

    Attributes
    ----------
    config : AuditConfig
    registry : Registry
    dataset_spec : DatasetSpec
        Of the audited items; its classes are the model's outputs' order
        (``[dataset]``'s classes; a ``[test]`` set is matched by name).
    dataset : RawDataset
        The audited items (``[test]`` when given, else every ``[dataset]`` item).
    camera : CameraParams
        The camera the audited items are rendered with.
    reference : PipelineSpec
        ``[model] train_pipeline``: the pipeline the model was trained on.
    test : tuple of PipelineSpec
        Every test pipeline, the reference included.
    conditions : tuple of Condition
        Corruptions x severities of the reference views.
    contract : InputContract
    model : AuditModel
    device : str
    fingerprint : str
        SHA-256 of the audited items' ids, targets and mosaics.
    held_out : HeldOut or None
    """

    config: AuditConfig
    registry: Registry
    dataset_spec: DatasetSpec
    dataset: RawDataset
    camera: CameraParams
    reference: PipelineSpec
    test: tuple[PipelineSpec, ...]
    conditions: tuple[Condition, ...]
    contract: InputContract
    model: AuditModel
    device: str
    fingerprint: str
    held_out: HeldOut | None = None

    @property
    def train(self) -> tuple[PipelineSpec, ...]:
        """``(reference,)``: the one "train pipeline" of the drift verdicts."""
        return (self.reference,)

    @property
    def pipelines(self) -> tuple[PipelineSpec, ...]:
        """Reference first, then the other test pipelines."""
        return (self.reference, *(p for p in self.test if p.name != self.reference.name))


def plan_audit(config: AuditConfig, registry: Registry) -> AuditPlan:
    """Check every name in ``config``, open the audited items, load and probe the model.

    Returns
    -------
    AuditPlan

    Raises
    ------
    ConfigError
        Any unknown or incompatible name (with the closest valid one), data
        that cannot be opened, a model file that cannot be read or does not
        fit (one line naming the ``[model]`` key to set), an invalid input
        contract, an unavailable device.
    """
    from driftlab.models.check import check_weights

    _, dataset = open_dataset(config.dataset, registry)
    held = open_held_out(config.dataset, config.test, registry, train=dataset)
    audited = dataset if held is None else held.test
    if len(audited) == 0:
        raise ConfigError("[test]: the test set has no items")
    mo = config.model
    reference = resolve_pipeline(mo.train_pipeline, "[model].train_pipeline", registry)
    tests = resolve_pipelines(config.pipelines.test, "[pipelines].test", registry)
    if reference.name not in {p.name for p in tests}:
        tests = (reference, *tests)
    else:
        same = next(p for p in tests if p.name == reference.name)
        if same.fingerprint() != reference.fingerprint():
            raise ConfigError(
                f"[pipelines].test: pipeline {reference.name!r} differs from [model] "
                "train_pipeline of the same name; rename one"
            )
    co = config.corruptions
    conditions = resolve_conditions(co.names, co.severities, co.family, registry)
    device = run_device(config.run.device)
    camera = audited.spec.camera
    for spec in (reference, *tests):
        try:
            build_static(spec, camera, registry)
        except SpecError as exc:
            raise ConfigError(f"[pipelines]: {exc}") from None
    table = {**mo.contract_table(), "train_pipeline": reference.name}
    try:
        contract = InputContract.from_dict(table, where="[model]")
    except InputContractError as exc:
        raise ConfigError(str(exc)) from None
    if mo.name is not None:
        try:
            declared = registry.get("task_models", mo.name)
        except RegistryError as exc:
            raise ConfigError(f"[model].name: {exc}") from None
        if declared.task != audited.spec.task:
            raise ConfigError(
                f"[model].name: {declared.name!r} is a {declared.task} model but dataset "
                f"{audited.spec.name!r} is a {audited.spec.task} dataset"
            )
    view_size = tuple(int(v) for v in audited[0].raw.shape)
    try:
        loaded = check_weights(
            mo.weights,
            num_classes=output_channels(audited.spec),
            task=audited.spec.task,
            name=mo.name,
            options=mo.options or None,
            key=mo.key,
            input_size=contract.output_size(*view_size),
            registry=registry,
        )
        contract.check_model(loaded)
    except ConfigError:
        raise
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"[model].weights: {first}") from None
    from pathlib import Path

    model = AuditModel(
        name=loaded.architecture or Path(mo.weights).name,
        description=loaded.describe(),
        format=str(loaded.format),
    )
    return AuditPlan(
        config=config,
        registry=registry,
        dataset_spec=audited.spec,
        dataset=audited,
        camera=camera,
        reference=reference,
        test=tests,
        conditions=conditions,
        contract=contract,
        model=model,
        device=device,
        fingerprint=data_fingerprint(audited),
        held_out=held,
    )
