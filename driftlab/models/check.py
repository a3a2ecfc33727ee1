"""Check a user's model before anything is rendered: :func:`check_weights`.

Planners call it while validating a config, so that a bad weights file is a
one-line error naming the ``[model]`` key to change, raised before a run
directory, a rendering or a worker exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from driftlab.models.base import TASKS, TaskModelSpec
from driftlab.models.formats import WeightsError
from driftlab.models.loading import ExportedProgramModule, LoadedModel, _spec, load_model
from driftlab.registry import Registry

__all__ = ["PROBE_SIZE", "check_weights"]

PROBE_SIZE = 64
"""Height and width of the probe input when no input size is known (rounded up to the
architecture's ``size_multiple``)."""


def _probe_size(
    loaded: LoadedModel, spec: TaskModelSpec | None, input_size: tuple[int, int] | None
) -> tuple[int, int]:
    if input_size is not None:
        return int(input_size[0]), int(input_size[1])
    module = loaded.module
    if isinstance(module, ExportedProgramModule) and module.example_input_shapes:
        shape = module.example_input_shapes[0]
        if len(shape) == 4:
            return int(shape[2]), int(shape[3])
    multiple = spec.size_multiple if spec is not None else 1
    side = -(-PROBE_SIZE // multiple) * multiple
    return side, side


def _expected(task: str, num_classes: int, size: tuple[int, int]) -> tuple[int, ...]:
    return (2, num_classes) if task == "classification" else (2, num_classes, *size)


def check_weights(
    weights: str | os.PathLike[str] | None = None,
    *,
    num_classes: int,
    task: str,
    name: str | TaskModelSpec | None = None,
    options: Mapping[str, Any] | None = None,
    key: str | None = None,
    in_channels: int = 3,
    input_size: tuple[int, int] | None = None,
    for_training: bool = False,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
) -> LoadedModel:
    """Load a model as :func:`~driftlab.models.load_model` does and check it fits the task.

    Beyond :func:`~driftlab.models.load_model`'s checks (format, keys,
    shapes, class count of a state dict, finite weights), the model is run
    once on a constant probe batch ``(2, in_channels, H, W)`` of 0.5 and its
    output must have the task's shape: ``(2, num_classes)`` for
    classification, ``(2, num_classes, H, W)`` for segmentation, all finite.
    This catches TorchScript and exported models trained for another class
    count, models of the other task, and programs exported for another input
    size or a fixed batch size.

    Parameters
    ----------
    weights : str or os.PathLike, optional
        ``[model] weights`` (without it ``name`` is built at random).
    num_classes : int
        Outputs the dataset needs (its class count; 1 for binary segmentation).
    task : {"classification", "segmentation"}
        The dataset's task.
    name, options, key, in_channels, device, registry
        As :func:`~driftlab.models.load_model`.
    input_size : (int, int), optional
        ``(H, W)`` of the model's input (the input contract's ``size``);
        default: an exported program's example input size, else
        :data:`PROBE_SIZE` rounded up to the architecture's ``size_multiple``.
    for_training : bool
        The run fine-tunes the model (synthesis initial weights): TorchScript
        and exported archives are refused.

    Returns
    -------
    LoadedModel
        The loaded model (eval mode, on ``device``), reusable by the caller.

    Raises
    ------
    WeightsError
        Any error of :func:`~driftlab.models.load_model`; an archive with
        ``for_training``; a model that fails on the probe or gives another
        output shape or non-finite values. One line, naming the ``[model]``
        key (or input-contract ``size``) to change.
    TaskModelError, FileNotFoundError, driftlab.registry.RegistryError, DeviceError
        As :func:`~driftlab.models.load_model`; also for a ``task`` outside
        ``TASKS`` or a registered architecture of the other task.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    spec = None if name is None else _spec(name, registry)
    if spec is not None and spec.task != task:
        raise WeightsError(
            f"[model] name {spec.name!r} is a {spec.task} model but the dataset is a {task} "
            "dataset: choose a model of the dataset's task"
        )
    loaded = load_model(
        weights,
        name=spec,
        num_classes=num_classes,
        options=options,
        key=key,
        in_channels=in_channels,
        device=device,
        registry=registry,
    )
    if for_training:
        loaded.require_trainable("training (as initial weights)")
    size = _probe_size(loaded, spec, input_size)
    what = repr(str(loaded.source)) if loaded.source is not None else f"task model {spec.name!r}"
    probe = torch.full((2, in_channels, *size), 0.5, device=loaded.device)
    try:
        with torch.no_grad():
            out = loaded.view_model()(probe)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise WeightsError(
            f"{what} fails on a {tuple(probe.shape)} input ({type(exc).__name__}: {text}); "
            "set the input size the model expects in the input contract ([model] size), "
            "and export models with a dynamic batch dimension"
        ) from None
    expected = _expected(task, num_classes, size)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        if (
            isinstance(out, torch.Tensor)
            and out.dim() == len(expected)
            and out.shape[0] == 2
            and tuple(out.shape[2:]) == expected[2:]
        ):
            per = "image" if task == "classification" else "pixel"
            raise WeightsError(
                f"{what} gives {out.shape[1]} outputs per {per} but the dataset needs "
                f"{num_classes} (one per class): set [model] weights to a model trained on "
                "this dataset's classes"
            )
        raise WeightsError(
            f"{what} gives output {got} for a {tuple(probe.shape)} input; a {task} model "
            f"must give {expected}: set [model] weights to a {task} model"
        )
    if not bool(torch.isfinite(out).all()):
        raise WeightsError(f"{what} gives NaN or infinite outputs on a constant input")
    return loaded
