"""Resolve an optimisation configuration against the plugins, before anything is created.

Unknown dataset, model or pipeline names, a pipeline without a
differentiable form (or without the paper's structure for a paper arm), a
model for the wrong task or without support for 4-channel input (raw mode),
a dataset that cannot be opened at one of the intensity levels or split into
folds, an impossible mis-calibration or an unavailable device all fail here,
before the run directory exists.
"""

from __future__ import annotations

import attrs

from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetSpec, RawDataset
from driftlab.datasets.splits import Fold
from driftlab.engine.planning import (
    DatasetTask,
    HeldOut,
    open_dataset,
    open_held_out,
    output_channels,
    plan_folds,
    resolve_model,
    resolve_pipeline,
    run_device,
)
from driftlab.errors import ConfigError
from driftlab.models.base import TaskModelSpec
from driftlab.naming import cell_key
from driftlab.optimize.config import ISP_MODES, OptimizeConfig
from driftlab.optimize.ispsetup import IspSetup, plan_isp
from driftlab.pipeline import PipelineSpec, SpecError, build_differentiable
from driftlab.registry import Registry

__all__ = ["OptimizePlan", "optimize_key", "plan_optimization"]


def optimize_key(intensity: float, mode: str, fold: int) -> str:
    """Key of a cell, e.g. ``i0.05__learned__fold1``."""
    return cell_key(f"i{intensity:g}", mode, f"fold{fold}")


@attrs.frozen
class OptimizePlan(DatasetTask):
    """A configuration resolved into plugin declarations and opened datasets.

    Attributes
    ----------
    config : OptimizeConfig
    registry : Registry
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
        The k folds, made on the first level's items (the same items at every level).
    isp : IspSetup
        Domains of the learned ISP per level, the (mis-calibrated) camera the
        data are rendered for and the values that camera calls for.
    held_out : HeldOut or None
        The first level's fixed test set of ``[test]``; each level's dataset
        then holds its training items followed by its test items.
    """

    config: OptimizeConfig
    registry: Registry
    dataset_spec: DatasetSpec
    datasets: dict[float, RawDataset]
    camera: CameraParams
    pipeline: PipelineSpec
    model: TaskModelSpec
    device: str
    folds: tuple[Fold, ...]
    isp: IspSetup
    held_out: HeldOut | None = None

    @property
    def modes(self) -> list[str]:
        return list(self.config.training.modes)

    def cell_identities(self) -> dict[str, tuple[float, str, int]]:
        """``{cell key: (intensity, mode, fold)}`` of every cell of the run."""
        return {
            optimize_key(i, m, f.index): (float(i), m, int(f.index))
            for i in self.datasets
            for m in self.modes
            for f in self.folds
        }

    def evaluation_epochs(self) -> list[int]:
        """Epochs at which every cell records its metric: multiples of ``eval_every`` and
        the last epoch (1-based, ascending)."""
        tr = self.config.training
        return [e for e in range(1, tr.epochs + 1) if e % tr.eval_every == 0 or e == tr.epochs]


def plan_optimization(config: OptimizeConfig, registry: Registry) -> OptimizePlan:
    """Check every name in ``config`` and open the dataset at every intensity level.

    Raises
    ------
    ConfigError
        Any unknown or incompatible name (with the closest valid one), a
        pipeline without a differentiable form, a dataset that cannot be
        opened, folds that cannot be made from its items, an unavailable device.
    """
    ds = config.dataset
    modes = config.training.modes
    datasets: dict[float, RawDataset] = {}
    spec = None
    held_outs: dict[float, HeldOut | None] = {}
    for intensity in ds.intensities:
        spec, datasets[intensity] = open_dataset(ds, registry, intensity=intensity)
        held = open_held_out(
            ds, config.test, registry, train=datasets[intensity], intensity=intensity
        )
        held_outs[intensity] = held
        if held is not None:
            if held.test.spec.camera != held.train.spec.camera:
                raise ConfigError(
                    f"[test]: the test set's camera ({held.test.spec.camera.name}) differs from "
                    f"the training set's ({held.train.spec.camera.name}); optimisation learns "
                    "one camera's ISP"
                )
            datasets[intensity] = held.joined()
    assert spec is not None
    model = resolve_model(config.model.name, spec, registry)
    pipeline = resolve_pipeline(config.pipeline.name, "[pipeline].name", registry)
    device = run_device(config.run.device)
    first, *others = datasets.values()
    for intensity, dataset in zip(ds.intensities[1:], others, strict=True):
        if dataset.ids != first.ids:
            raise ConfigError(
                f"[dataset]: items at intensity {intensity} differ from those at "
                f"{ds.intensities[0]}; folds need the same items at every level"
            )
    training = config.training
    held = held_outs[ds.intensities[0]]
    folds = plan_folds(first if held is None else held.train, held, training.folds, training.seed)
    camera = first.spec.camera
    if set(ISP_MODES) & set(modes):
        try:
            build_differentiable(pipeline, camera, registry)
        except SpecError as exc:
            raise ConfigError(f"[pipeline].name: {exc}") from None
    for in_channels in sorted({3 if m != "raw" else 4 for m in modes}):
        try:
            model.build(
                output_channels(first.spec), in_channels=in_channels, **config.model.options
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"[model].options: {model.name!r} with in_channels={in_channels}: {exc}"
            ) from None
    isp = plan_isp(config, camera, pipeline, registry, ds.intensities)
    return OptimizePlan(
        config=config,
        registry=registry,
        dataset_spec=first.spec,
        datasets=datasets,
        camera=camera,
        pipeline=pipeline,
        model=model,
        device=device,
        folds=tuple(folds),
        isp=isp,
        held_out=held,
    )
