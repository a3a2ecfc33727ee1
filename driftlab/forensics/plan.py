"""Resolve a forensics configuration before any work: model, data items,
base pipeline, attacks and target sets are all checked here."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.attacks.base import AttackSpec
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.space import AttackTargetError, select_targets
from driftlab.configtools import ConfigError
from driftlab.datasets.base import DatasetError, RawDataset
from driftlab.datasets.splits import dataset_folds
from driftlab.forensics.config import ForensicsConfig
from driftlab.forensics.model import file_sha256, load_normalized, read_run_config, run_model_path
from driftlab.models.loading import get_task_model
from driftlab.pipeline import (
    PipelineSpec,
    ResolvedPipeline,
    SpecError,
    expand_pipeline_names,
    resolve,
)
from driftlab.registry import Registry, RegistryError, get_registry
from driftlab.synthesis.plan import output_channels
from driftlab.train.metrics import task_metric_name

__all__ = ["ForensicsPlan", "data_fingerprint", "plan_forensics", "select_items"]


@attrs.define
class ForensicsPlan:
    """A forensics configuration resolved into objects.

    Attributes
    ----------
    config : ForensicsConfig
    problem : AttackProblem
        Frozen model, base pipeline, raw items and targets.
    attacks : tuple of AttackSpec
    target_sets : tuple of tuple of str
        Each target set as given (validated).
    model_path : Path
        Weights file examined.
    model_info : dict
        ``name``, ``options``, ``weights``, ``sha256`` (and ``run``,
        ``train_pipeline``, ``fold`` when from a synthesis run).
    data_info : dict
        Dataset name, options, split and the item ids used, with fingerprints.
    metric : str
    """

    config: ForensicsConfig
    problem: AttackProblem
    attacks: tuple[AttackSpec, ...]
    target_sets: tuple[tuple[str, ...], ...]
    model_path: Path
    model_info: dict[str, Any]
    data_info: dict[str, Any]
    metric: str


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
    seeded folds as the synthesis runner), or all items; the first
    ``max_items`` of them in index order.

    Raises
    ------
    ConfigError
        ``fold`` out of range.
    """
    if part == "all":
        index = np.arange(len(dataset))
    else:
        splits = dataset_folds(dataset, n_splits=folds, seed=seed)
        if fold >= len(splits):
            raise ConfigError(f"[split].fold: expected 0..{len(splits) - 1}, got {fold}")
        index = np.sort(getattr(splits[fold], part))
    return index[:max_items]


def _dataset_section(config: ForensicsConfig, run_cfg: dict[str, Any] | None) -> dict[str, Any]:
    ds = dict(run_cfg.get("dataset", {})) if run_cfg else {}
    ds.update(config.section("dataset"))
    ds.setdefault("intensity", 1.0)
    ds.setdefault("options", {})
    if "name" not in ds:
        raise ConfigError("[dataset]: missing required key 'name'")
    return ds


def _base_pipeline(name: str) -> PipelineSpec:
    try:
        specs = expand_pipeline_names([name])
    except (SpecError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"[pipeline].base: {exc}") from None
    if len(specs) != 1:
        raise ConfigError(f"[pipeline].base: expected one pipeline, {name!r} gives {len(specs)}")
    return specs[0]


def plan_forensics(config: ForensicsConfig, registry: Registry | None = None) -> ForensicsPlan:
    """Check every name in ``config``, open the data and load the model.

    Returns
    -------
    ForensicsPlan

    Raises
    ------
    ConfigError
        Unknown dataset, model, pipeline, attack or target (with the closest
        valid name), a missing run/model/weights file, weights that do not fit
        the model, or a gradient attack on a pipeline with static-only stages.
    """
    registry = registry or get_registry()
    mo, sp, at = config.section("model"), config.section("split"), config.section("attacks")
    run_cfg = read_run_config(mo["run"]) if "run" in mo else None
    attacks = []
    for name in at["names"]:
        try:
            attacks.append(registry.get("attacks", name))
        except RegistryError as exc:
            raise ConfigError(f"[attacks].names: {exc}") from None
    ds_cfg = _dataset_section(config, run_cfg)
    try:
        dataset_spec = registry.get("datasets", ds_cfg["name"])
    except RegistryError as exc:
        raise ConfigError(f"[dataset].name: {exc}") from None
    if run_cfg is not None:
        model_name = run_cfg["model"]["name"]
        options = {**run_cfg["model"].get("options", {}), **mo["options"]}
        model_path = run_model_path(mo["run"], mo["train_pipeline"], mo["fold"])
        folds = sp.get("folds", run_cfg["training"]["folds"])
        seed = sp.get("seed", run_cfg["training"]["seed"])
        fold = sp.get("fold", mo["fold"])
    else:
        model_name, options = mo["name"], dict(mo["options"])
        model_path = Path(mo["weights"])
        if not model_path.is_file():
            raise ConfigError(f"[model].weights: {model_path}: no such file")
        folds, seed, fold = sp.get("folds", 5), sp.get("seed", 0), sp.get("fold", 0)
    try:
        model_spec = get_task_model(model_name, registry)
    except (RegistryError, ValueError) as exc:
        raise ConfigError(f"[model].name: {exc}") from None
    if model_spec.task != dataset_spec.task:
        raise ConfigError(
            f"[model].name: {model_name!r} is a {model_spec.task} model but dataset "
            f"{dataset_spec.name!r} is a {dataset_spec.task} dataset"
        )
    base_name = config.section("pipeline").get("base") or mo.get("train_pipeline")
    if not base_name:
        raise ConfigError("[pipeline].base: missing (no [model].train_pipeline to default to)")
    base = _base_pipeline(base_name)
    try:
        dataset = dataset_spec.open(
            ds_cfg.get("data_root"),
            intensity=float(ds_cfg["intensity"]),
            registry=registry,
            **ds_cfg["options"],
        )
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"[dataset]: {exc}") from None
    try:
        resolved: ResolvedPipeline = resolve(base, dataset.spec.camera, registry)
    except SpecError as exc:
        raise ConfigError(f"[pipeline].base: {exc}") from None
    differentiable = all(s.spec.differentiable is not None for s in resolved.stages)
    for spec in attacks:
        if spec.needs_gradients and not differentiable:
            raise ConfigError(
                f"[attacks].names: {spec.name!r} needs gradients but pipeline {base.name!r} has "
                "static-only stages; use 'search'"
            )
    try:
        net = load_normalized(
            model_spec.build(output_channels(dataset.spec), **options), model_path
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[model]: {exc}") from None
    index = select_items(dataset, sp["part"], folds, fold, seed, sp["max_items"])
    if len(index) == 0:
        raise ConfigError("[split]: no items selected")
    samples = [dataset[int(i)] for i in index]
    raw = np.stack([s.raw for s in samples]).astype(np.float32)
    targets = np.stack([np.asarray(s.target) for s in samples])
    ids = [dataset.ids[int(i)] for i in index]
    problem = AttackProblem(net, resolved, raw, targets, dataset_spec.task)
    available = problem.space().keys
    target_sets = []
    for i, targets_set in enumerate(at["targets"]):
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
    if run_cfg is not None:
        model_info.update(run=mo["run"], train_pipeline=mo["train_pipeline"], fold=mo["fold"])
    data_info = {
        "name": dataset_spec.name,
        "data_root": ds_cfg.get("data_root"),
        "intensity": float(ds_cfg["intensity"]),
        "options": dict(ds_cfg["options"]),
        "split": {"part": sp["part"], "folds": folds, "fold": fold, "seed": seed},
        "max_items": sp["max_items"],
        "items": len(ids),
        "ids": ids,
        **data_fingerprint(ids, raw, targets),
    }
    return ForensicsPlan(
        config=config,
        problem=problem,
        attacks=tuple(attacks),
        target_sets=tuple(target_sets),
        model_path=model_path,
        model_info=model_info,
        data_info=data_info,
        metric=task_metric_name(dataset_spec.task),
    )
