"""Resolve a forensics configuration before anything is created: model, data items,
base pipeline, attacks and target sets are all checked here."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.attacks.base import AttackSpec
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import AttackTargetError, select_targets
from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetError, RawDataset
from driftlab.datasets.splits import dataset_folds
from driftlab.engine.planning import (
    open_dataset,
    output_channels,
    resolve_model,
    resolve_pipeline,
    run_device,
)
from driftlab.errors import ConfigError
from driftlab.forensics.config import ForensicsConfig
from driftlab.forensics.crossfit import Reachability, safe_reachability
from driftlab.forensics.model import (
    file_sha256,
    load_view_model,
    read_run_config,
    run_model_path,
)
from driftlab.pipeline import PipelineSpec, ResolvedPipeline, SpecError, resolve
from driftlab.registry import Registry, RegistryError, suggest
from driftlab.train.metrics import task_metric_name

__all__ = ["ForensicsPlan", "data_fingerprint", "plan_forensics", "select_items"]

log = logging.getLogger("driftlab.forensics")


@attrs.define
class ForensicsPlan:
    """A forensics configuration resolved into objects.

    Attributes
    ----------
    config : ForensicsConfig
    registry : Registry
    problem : AttackProblem
        Frozen model, base pipeline, raw items and targets.
    attacks : tuple of AttackSpec
    target_sets : tuple of tuple of str
        Each target set as given (validated).
    model_path : Path
        Weights file examined.
    model_name : str
    model_options : dict
    model_key : str or None
        Checkpoint key of the state dict.
    base : PipelineSpec
    camera : CameraParams
    model_info : dict
        ``name``, ``options``, ``weights``, ``sha256`` (and ``run``,
        ``train_pipeline``, ``fold`` when from a synthesis run).
    data_info : dict
        Dataset name, options, split and the item ids used, with fingerprints.
    metric : str
    device : str
    output_channels : int
        Outputs of the task model (classes, or 1 for binary segmentation).
    attack_options : dict
        Checked ``[attacks.options.NAME]`` tables.
    reachability : Reachability or None
        Whether the signature's settings can declare any box safe on these
        items (None when the signature is disabled).
    """

    config: ForensicsConfig
    registry: Registry
    problem: AttackProblem
    attacks: tuple[AttackSpec, ...]
    target_sets: tuple[tuple[str, ...], ...]
    model_path: Path
    model_name: str | None
    model_options: dict[str, Any]
    model_key: str | None
    base: PipelineSpec
    camera: CameraParams
    model_info: dict[str, Any]
    data_info: dict[str, Any]
    metric: str
    device: str
    output_channels: int
    attack_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    reachability: Reachability | None = None


def data_fingerprint(ids: list[str], raw: np.ndarray, targets: np.ndarray) -> dict[str, str]:
    """SHA-256 fingerprints of the item ids, and of ids + raw float32 bytes + targets.

    Parameters
    ----------
    ids : list of str
    raw : numpy.ndarray
        ``(N, H, W)`` mosaics (hashed as little-endian float32).
    targets : numpy.ndarray
        ``(N,)`` or ``(N, H, W)`` (hashed as int64).
    """
    ids_sha = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    digest = hashlib.sha256(ids_sha.encode())
    digest.update(np.ascontiguousarray(raw, dtype="<f4").tobytes())
    digest.update(np.ascontiguousarray(targets, dtype="<i8").tobytes())
    return {"ids_sha256": ids_sha, "sha256": digest.hexdigest()}


def select_items(
    dataset: RawDataset, part: str, folds: int, fold: int, seed: int, max_items: int
) -> np.ndarray:
    """Indices of the examined items: a fold's test or train part (the same
    seeded folds as a synthesis run), or all items; the first ``max_items``
    of them in index order.

    Raises
    ------
    ConfigError
        ``fold`` out of range or folds that cannot be made.
    """
    if part == "all":
        index = np.arange(len(dataset))
    else:
        try:
            splits = dataset_folds(dataset, n_splits=folds, seed=seed)
        except DatasetError as exc:
            raise ConfigError(f"[split].folds: {exc}") from None
        if fold >= len(splits):
            raise ConfigError(f"[split].fold: expected 0..{len(splits) - 1}, got {fold}")
        index = np.sort(getattr(splits[fold], part))
    return index[:max_items]


def _dataset_section(config: ForensicsConfig, run_cfg: dict[str, Any] | None):
    """The ``[dataset]`` section: keys given in the config, the synthesis run's
    dataset for keys left out (None), when it is the same dataset.

    A different dataset name inherits nothing of the run's dataset (its
    options belong to another loader).
    """
    from driftlab.forensics.config import ForensicsDatasetSection

    own = config.dataset
    base = dict(run_cfg.get("dataset", {})) if run_cfg else {}
    if own.name is not None and own.name != base.get("name"):
        base = {}
    given = {
        f.name: getattr(own, f.name)
        for f in attrs.fields(ForensicsDatasetSection)
        if getattr(own, f.name) is not None
    }
    merged = {**base, **given}
    if not merged.get("name"):
        raise ConfigError("[dataset]: missing required key 'name'")
    return attrs.evolve(
        own,
        name=merged["name"],
        data_root=merged.get("data_root"),
        intensity=float(merged.get("intensity", 1.0)),
        options=dict(merged.get("options", {})),
        camera=merged.get("camera"),
    )


def plan_forensics(config: ForensicsConfig, registry: Registry) -> ForensicsPlan:
    """Check every name in ``config``, open the data and load the model.

    Raises
    ------
    ConfigError
        Unknown dataset, model, pipeline, attack or target (with the closest
        valid name), a missing run/model/weights file, weights that do not fit
        the model, or a gradient attack on a pipeline with static-only stages.

    Notes
    -----
    When the signature is enabled but its settings cannot declare any box
    safe on the selected items (too few held-out items for the bound at the
    threshold, :func:`driftlab.forensics.crossfit.safe_reachability`), a
    warning naming both numbers is logged and kept in ``reachability``; the
    run goes on, since the envelope, ranking and bounds are still informative.
    For IoU, a warning is also logged when the bootstrap's lower bounds rest
    on the most extreme resamples (``reachability.bootstrap_warning``).
    """
    mo, sp, at = config.model, config.split, config.attacks
    run_cfg = read_run_config(mo.run) if mo.run else None
    attacks = []
    for name in at.names:
        try:
            attacks.append(registry.get("attacks", name))
        except RegistryError as exc:
            raise ConfigError(f"[attacks].names: {exc}") from None
    attack_options: dict[str, dict[str, Any]] = {}
    for name, options in at.options.items():
        if name not in at.names:
            raise ConfigError(
                f"[attacks.options].{name}: options for an attack that is not run "
                f"(names: {', '.join(at.names)}){suggest(name, at.names)}"
            )
        try:
            attack_options[name] = registry.get("attacks", name).check_options(
                options, where=f"[attacks.options].{name}"
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if at.method == "cma" and any(not a.needs_gradients for a in attacks):
        from driftlab.errors import require_extra

        require_extra("cma", "cma", "the CMA-ES search ([attacks] method = 'cma')")
    ds_cfg = _dataset_section(config, run_cfg)
    if run_cfg is not None:
        model_name = run_cfg["model"]["name"]
        options = {**run_cfg["model"].get("options", {}), **mo.options}
        model_path = run_model_path(mo.run, mo.train_pipeline, mo.fold)
        folds = sp.folds or int(run_cfg["training"].get("folds", 5))
        seed = sp.seed if sp.seed is not None else int(run_cfg["training"].get("seed", 0))
        fold = sp.fold if sp.fold is not None else mo.fold
        weights_key = None
    else:
        model_name, options = mo.name, dict(mo.options)
        model_path = Path(str(mo.weights))
        folds, seed = sp.folds or 5, sp.seed or 0
        fold = sp.fold or 0
        weights_key = mo.key
    dataset_spec, dataset = open_dataset(ds_cfg, registry)
    if model_name is not None:
        resolve_model(model_name, dataset_spec, registry)
    base_name = config.pipeline.base or mo.train_pipeline
    if not base_name:
        raise ConfigError("[pipeline].base: missing (no [model].train_pipeline to default to)")
    base = resolve_pipeline(base_name, "[pipeline].base", registry)
    device = run_device(config.run.device)
    camera = dataset.spec.camera
    try:
        resolved: ResolvedPipeline = resolve(base, camera, registry)
    except SpecError as exc:
        raise ConfigError(f"[pipeline].base: {exc}") from None
    differentiable = all(s.spec.differentiable is not None for s in resolved.stages)
    for spec in attacks:
        if spec.needs_gradients and not differentiable:
            raise ConfigError(
                f"[attacks].names: {spec.name!r} needs gradients but pipeline {base.name!r} has "
                "static-only stages; use 'search'"
            )
    channels = output_channels(dataset.spec)
    net = load_view_model(model_name, options, model_path, weights_key, dataset.spec, registry)
    index = select_items(dataset, sp.part, folds, fold, seed, sp.max_items)
    if len(index) == 0:
        raise ConfigError("[split]: no items selected")
    reachability = None
    sg = config.signature
    if sg.enabled:
        if len(index) < 2:
            raise ConfigError(
                f"[split]: the signature needs at least 2 examined items (half are held "
                f"out), got {len(index)}; raise max_items or set [signature] enabled = false"
            )
        reachability = safe_reachability(
            dataset_spec.task,
            len(index),
            sg.threshold,
            sg.confidence,
            sg.shrink_steps,
            sg.resamples,
            sg.seed,
        )
        if not reachability.reachable:
            log.warning("[signature]: %s", reachability.message)
        if reachability.bootstrap_warning:
            log.warning("[signature]: %s", reachability.bootstrap_warning)
    samples = [dataset[int(i)] for i in index]
    raw = np.stack([s.raw for s in samples]).astype(np.float32)
    targets = np.stack([np.asarray(s.target) for s in samples])
    ids = [dataset.ids[int(i)] for i in index]
    problem = AttackProblem(net, resolved, raw, targets, dataset_spec.task)
    available = problem.space().keys
    target_sets = []
    for i, targets_set in enumerate(at.targets):
        try:
            select_targets(available, targets_set, where=f"[attacks].targets[{i}]")
        except AttackTargetError as exc:
            raise ConfigError(str(exc)) from None
        target_sets.append(tuple(targets_set))
    model_info: dict[str, Any] = {
        "name": model_name,
        "options": options,
        "weights": str(model_path),
        "sha256": file_sha256(model_path),
    }
    if weights_key is not None:
        model_info["key"] = weights_key
    if run_cfg is not None:
        model_info.update(run=mo.run, train_pipeline=mo.train_pipeline, fold=mo.fold)
    data_info = {
        "name": dataset_spec.name,
        "data_root": ds_cfg.data_root,
        "intensity": float(ds_cfg.intensity),
        "options": dict(ds_cfg.options),
        "split": {"part": sp.part, "folds": folds, "fold": fold, "seed": seed},
        "max_items": sp.max_items,
        "items": len(ids),
        "ids": ids,
        **data_fingerprint(ids, raw, targets),
    }
    return ForensicsPlan(
        config=config,
        registry=registry,
        problem=problem,
        attacks=tuple(attacks),
        target_sets=tuple(target_sets),
        model_path=model_path,
        model_name=model_name,
        model_options=options,
        model_key=weights_key,
        base=base,
        camera=camera,
        model_info=model_info,
        data_info=data_info,
        metric=task_metric_name(dataset_spec.task),
        device=device,
        output_channels=channels,
        attack_options=attack_options,
        reachability=reachability,
    )
