"""Plug a user's trained model in to be tested, without retraining it.

Three ways (DESIGN section 5):

(a) an architecture registered by a plugin (or a built-in) plus a state-dict
    file: the architecture is built and the weights are loaded with
    ``torch.load(weights_only=True)``, which executes no code from the file;
(b) a TorchScript file (``torch.jit.save``), loaded with ``torch.jit.load``;
(c) an exported program (``torch.export.save``), loaded with
    ``torch.export.load``.

(b) and (c) carry their own architecture. They unpickle no arbitrary Python
objects, but they run the graph they contain, so load only models you trust.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from driftlab.models.base import TaskModelError, TaskModelSpec
from driftlab.models.device import resolve_device
from driftlab.models.formats import WeightsError, detect_model_format
from driftlab.models.weights import load_weights
from driftlab.registry import Registry, get_registry

__all__ = ["ExportedProgramModule", "get_task_model", "load_task_model"]

_LABELS = {"torchscript": "a TorchScript archive", "exported": "an exported program"}


class ExportedProgramModule(nn.Module):
    """``nn.Module`` wrapper of a loaded ``torch.export`` program.

    The graph of an exported program is fixed at export time, including
    train/eval behaviour (batch norm, dropout): export models in eval mode.
    :meth:`train` and :meth:`eval` therefore only set :attr:`training` here,
    instead of raising as the bare graph module does. Input shapes are those
    the program was exported for, unless it was exported with dynamic shapes
    (e.g. a dynamic batch dimension).

    Parameters
    ----------
    program : torch.export.ExportedProgram
        Loaded program.
    """

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.graph_module = program.module()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the exported graph (same inputs and outputs as the exported model)."""
        return self.graph_module(*args, **kwargs)

    def train(self, mode: bool = True) -> ExportedProgramModule:
        """Record ``mode`` without touching the graph (see the class docstring)."""
        self.training = bool(mode)
        return self


def get_task_model(name: str | TaskModelSpec, registry: Registry | None = None) -> TaskModelSpec:
    """Look a task-model architecture up by name.

    Parameters
    ----------
    name : str or TaskModelSpec
        Registry key (e.g. ``"resnet18"``) or a declaration, returned as is.
    registry : Registry, optional
        Where to look (default: the process-wide registry).

    Returns
    -------
    TaskModelSpec

    Raises
    ------
    driftlab.registry.RegistryError
        Unknown name (with the closest installed one).
    TaskModelError
        If ``name`` is neither a string nor a :class:`TaskModelSpec`.
    """
    if isinstance(name, TaskModelSpec):
        return name
    if not isinstance(name, str):
        raise TaskModelError(
            f"architecture must be a name or a TaskModelSpec, got {type(name).__name__}"
        )
    return (registry or get_registry()).get("task_models", name)


def _load_archive(path: Path, kind: str) -> nn.Module:
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():
                # TorchScript is deprecated upstream; a user's existing file is still welcome.
                warnings.filterwarnings(
                    "ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning
                )
                return torch.jit.load(str(path), map_location="cpu")
        with path.open("rb") as handle:  # a file object: torch.export.load wants .pt2 names
            return ExportedProgramModule(torch.export.load(handle))
    except Exception as exc:
        raise WeightsError(
            f"{str(path)!r} looks like {_LABELS[kind]} but could not be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_task_model(
    path: str | os.PathLike[str] | None = None,
    *,
    architecture: str | TaskModelSpec | None = None,
    num_classes: int | None = None,
    in_channels: int = 3,
    options: Mapping[str, Any] | None = None,
    weights_key: str | None = None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
) -> nn.Module:
    """Build or load a task model, ready to be tested.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A state-dict file (needs ``architecture``), a TorchScript file or an
        exported program (no ``architecture``); the kind is recognised from
        the file (:func:`~driftlab.models.formats.detect_model_format`).
        Without ``path`` a randomly initialised ``architecture`` is returned.
    architecture : str or TaskModelSpec, optional
        Registered task model (e.g. ``"resnet18"``, or one a plugin declares).
    num_classes : int, optional
        Required with ``architecture`` (see :meth:`TaskModelSpec.build`).
    in_channels : int
        Input channels for ``architecture``.
    options : mapping, optional
        Architecture options for ``architecture`` (e.g. ``{"width": 32}``).
    weights_key : str, optional
        Checkpoint entry holding the state dict (see
        :func:`~driftlab.models.read_state_dict`).
    device : str or torch.device
        Where to put the model (see :func:`~driftlab.models.resolve_device`).
    registry : Registry, optional
        Where to look ``architecture`` up (default: the process-wide registry).

    Returns
    -------
    torch.nn.Module
        In eval mode on ``device``; maps views ``(B, 3, H, W)`` float to
        logits ``(B, num_classes)`` (classifiers) or ``(B, C, H, W)``
        (segmenters). Exported programs come wrapped in
        :class:`ExportedProgramModule`.

    Raises
    ------
    TaskModelError
        Neither ``path`` nor ``architecture``; ``architecture`` without
        ``num_classes``; ``num_classes``, ``options`` or ``weights_key``
        given where they have no meaning; or a build error.
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        A state dict without ``architecture``, a TorchScript or exported file
        with ``architecture``, or any error of
        :func:`~driftlab.models.load_weights`.
    driftlab.registry.RegistryError
        Unknown ``architecture``.
    driftlab.models.device.DeviceError
        Unavailable ``device``.
    """
    target = resolve_device(device)
    if architecture is None:
        if path is None:
            raise TaskModelError(
                "load_task_model: give a model file (path), an architecture, or both"
            )
        given = [
            name
            for name, value in (
                ("num_classes", num_classes),
                ("options", options),
                ("weights_key", weights_key),
            )
            if value is not None
        ]
        kind = detect_model_format(path)
        if kind == "state_dict":
            installed = ", ".join((registry or get_registry()).names("task_models")) or "none"
            raise WeightsError(
                f"{str(Path(path))!r} holds weights (torch.save) without their architecture: "
                f"pass architecture= (installed: {installed}) and num_classes="
            )
        if given:
            raise TaskModelError(
                f"{', '.join(given)} apply only with architecture=; "
                f"{_LABELS[kind]} carries its own architecture"
            )
        model = _load_archive(Path(path), kind)
    else:
        spec = get_task_model(architecture, registry)
        if num_classes is None:
            raise TaskModelError(f"task model {spec.name!r}: num_classes is required")
        model = spec.build(num_classes, in_channels=in_channels, **dict(options or {}))
        if path is not None:
            load_weights(model, path, key=weights_key)
        elif weights_key is not None:
            raise TaskModelError("weights_key applies only with a weights file (path)")
    return model.to(target).eval()
