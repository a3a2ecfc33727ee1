"""One way in for a user's model: :func:`load_model`.

Every runner (audit, synthesis initial weights, forensics, ``signature
verify``) loads a model through :func:`load_model`, which reads every format
the documentation promises and says which one it found:

======================  ========================================  ==========================
``format``              file                                      needs
======================  ========================================  ==========================
``"state_dict"``        ``torch.save(model.state_dict(), f)``     ``[model] name``
``"checkpoint"``        ``torch.save({..., key: state_dict}, f)``  ``[model] name``, ``key``
``"safetensors"``       ``safetensors.torch.save_file(sd, f)``    ``[model] name``
``"torchscript"``       ``torch.jit.save``                        nothing (own architecture)
``"exported"``          ``torch.export.save`` (``.pt2``)          nothing (own architecture)
======================  ========================================  ==========================

State dicts are read with ``torch.load(weights_only=True)`` or safetensors,
which run no code from the file; pickles that name other Python objects are
refused. A state dict saved by synthesis (``models/*.pt``: the state dict of
``driftlab.train.normalize.Normalized(model)``) is recognised: the inner
model is loaded and the stored normalisation is reported in
:attr:`LoadedModel.normalization` for the caller to apply
(:meth:`LoadedModel.view_model`).

TorchScript and exported programs carry their own architecture and are
returned frozen (parameters do not require gradients): they serve evaluation
(audit, forensics) and cannot be fine-tuned (:meth:`LoadedModel.require_trainable`).
They unpickle no arbitrary Python objects, but they run the graph they
contain, so load only models you trust.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from driftlab.models.base import TaskModelError, TaskModelSpec
from driftlab.models.device import resolve_device
from driftlab.models.formats import WeightsError, detect_model_format, format_label
from driftlab.models.weights import (
    Normalization,
    StateDictFit,
    check_finite,
    describe_misfit,
    fit_state_dict,
    read_weights,
)
from driftlab.registry import Registry, RegistryError, get_registry

__all__ = [
    "ARCHIVE_FORMATS",
    "LOADED_FORMATS",
    "ExportedProgramModule",
    "LoadedModel",
    "get_task_model",
    "load_model",
    "load_task_model",
]

LOADED_FORMATS: tuple[str, ...] = (
    "state_dict",
    "checkpoint",
    "safetensors",
    "torchscript",
    "exported",
)
"""Values of :attr:`LoadedModel.format` (``None`` for a randomly initialised model)."""

ARCHIVE_FORMATS: tuple[str, ...] = ("torchscript", "exported")
"""Formats that carry their own architecture; evaluation only."""

PLUGIN_ADVICE = "an architecture declared in your own module is loaded with -p MODULE"


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

    Attributes
    ----------
    example_input_shapes : tuple of tuple of int
        Shapes of the example inputs the program was exported with (empty
        when the archive holds none), e.g. ``((1, 3, 64, 64),)``.
    """

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.graph_module = program.module()
        examples = getattr(program, "example_inputs", None)
        args = examples[0] if examples else ()
        self.example_input_shapes = tuple(
            tuple(a.shape) for a in args if isinstance(a, torch.Tensor)
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the exported graph (same inputs and outputs as the exported model)."""
        return self.graph_module(*args, **kwargs)

    def train(self, mode: bool = True) -> ExportedProgramModule:
        """Record ``mode`` without touching the graph (see the class docstring)."""
        self.training = bool(mode)
        return self


def _floats(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


@attrs.frozen
class LoadedModel:
    """A task model loaded by :func:`load_model`, and what was found in the file.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode on :attr:`device`. Maps ``(B, C, H, W)`` float inputs
        (already normalised, see :attr:`normalization`) to logits
        ``(B, num_classes)`` or ``(B, num_classes, H, W)``. For
        ``"exported"`` an :class:`ExportedProgramModule`; for
        ``"torchscript"`` a ``torch.jit.ScriptModule``; both frozen.
    format : str or None
        One of :data:`LOADED_FORMATS`; ``None`` for a randomly initialised
        architecture (no file).
    normalization : (tuple of float, tuple of float) or None
        Per-channel ``(mean, std)`` stored with the weights by a
        ``Normalized`` wrapper (synthesis' ``models/*.pt``); the model
        expects ``(x - mean) / std``. ``None`` when the file stores none.
    source : pathlib.Path or None
        The file read.
    architecture : str or None
        Registered task-model name; ``None`` for TorchScript and exported
        programs, which carry their own.
    key : str or None
        Checkpoint entry the state dict came from (``[model] key``).
    prefix : str
        Key prefix removed from the file's keys (``"model."`` of the
        normalisation wrapper, ``"module."`` of DataParallel, ...), or ``""``.
    device : torch.device
        Where :attr:`module` lives.
    """

    module: nn.Module = attrs.field(eq=False, repr=False)
    format: str | None
    normalization: Normalization | None = None
    source: Path | None = None
    architecture: str | None = None
    key: str | None = None
    prefix: str = ""
    device: torch.device = attrs.field(factory=lambda: torch.device("cpu"))

    @property
    def trainable(self) -> bool:
        """Whether the model can be fine-tuned (not a TorchScript or exported archive)."""
        return self.format not in ARCHIVE_FORMATS

    def require_trainable(self, purpose: str = "training") -> None:
        """Raise unless the model can be fine-tuned.

        Raises
        ------
        WeightsError
            For TorchScript and exported archives, naming what to give instead.
        """
        if not self.trainable:
            raise WeightsError(
                f"{str(self.source)!r} is {format_label(str(self.format))}: it can be evaluated "
                f"(audit, forensics) but not used for {purpose}; set [model] weights to a state "
                "dict or safetensors file of a registered architecture ([model] name)"
            )

    def view_model(self) -> nn.Module:
        """The model with its stored normalisation applied, for views in [0, 1].

        Returns
        -------
        torch.nn.Module
            ``Normalized(module, mean, std)`` (``driftlab.train.normalize``)
            when :attr:`normalization` is set, else :attr:`module`; eval mode,
            on :attr:`device`. Maps ``(B, C, H, W)`` views to logits.
        """
        if self.normalization is None:
            return self.module
        from driftlab.train.normalize import Normalized

        mean, std = (np.asarray(v, dtype=np.float32) for v in self.normalization)
        return Normalized(self.module, mean, std).to(self.device).eval()

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``small-cnn, state dict 'w.pt'``."""
        what = self.architecture or "model"
        if self.format is None:
            return f"{what}, random initialisation"
        text = f"{what}, {self.format.replace('_', ' ')} {str(self.source)!r}"
        if self.key is not None:
            text += f" entry {self.key!r}"
        if self.normalization is not None:
            mean, std = self.normalization
            text += f", stored normalisation mean {_floats(mean)} std {_floats(std)}"
        return text


def get_task_model(name: str | TaskModelSpec, registry: Registry | None = None) -> TaskModelSpec:
    """Look a task-model architecture up by name.

    Parameters
    ----------
    name : str or TaskModelSpec
        Registry key (e.g. ``"resnet18"``) or a declaration, returned as is.
    registry : Registry, optional
        Where to look (default: the process-wide registry; code below the
        runners' entry points passes its own).

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


def _spec(name: str | TaskModelSpec, registry: Registry | None) -> TaskModelSpec:
    if isinstance(name, TaskModelSpec):
        return name
    if not isinstance(name, str):
        raise TaskModelError(f"[model] name must be a task-model name, got {type(name).__name__}")
    if registry is None:
        raise TaskModelError(
            f"looking up task model {name!r} needs a registry (pass registry=Registry.load())"
        )
    try:
        return registry.get("task_models", name)
    except RegistryError as exc:
        raise RegistryError(f"{exc}; {PLUGIN_ADVICE}") from None


def _load_archive(path: Path, kind: str, device: torch.device) -> nn.Module:
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():
                # TorchScript is deprecated upstream; a user's existing file is still welcome.
                warnings.filterwarnings("ignore", category=FutureWarning)
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                module = torch.jit.load(str(path), map_location=device)
        else:
            with path.open("rb") as handle:  # a file object: torch.export.load wants .pt2 names
                program = torch.export.load(handle)
            if device.type != "cpu":
                from torch.export.passes import move_to_device_pass

                program = move_to_device_pass(program, device)
            module = ExportedProgramModule(program)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise WeightsError(
            f"{str(path)!r} looks like {format_label(kind)} but could not be loaded: "
            f"{type(exc).__name__}: {text[:300]}"
        ) from None
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    check_finite(dict(module.state_dict()), str(path))
    return module


def _class_count_message(fit: StateDictFit, num_classes: int) -> str | None:
    """Explain a misfit that only the number of outputs causes, else ``None``."""
    if fit.missing or fit.unexpected or not fit.mismatched:
        return None
    found = set()
    for _key, file_shape, model_shape in fit.mismatched:
        if (
            len(file_shape) != len(model_shape)
            or file_shape[1:] != model_shape[1:]
            or model_shape[0] != num_classes
        ):
            return None
        found.add(file_shape[0])
    if len(found) != 1:
        return None
    layer, file_shape, _ = fit.mismatched[0]
    return (
        f"the weights give {found.pop()} outputs (layer {layer!r}, shape {file_shape}) but "
        f"the dataset needs {num_classes} (one per class): set [model] weights to weights "
        "trained on this dataset's classes"
    )


def _load_state(
    path: Path,
    spec: TaskModelSpec,
    model: nn.Module,
    key: str | None,
    num_classes: int,
    options: Mapping[str, Any],
) -> tuple[str, StateDictFit]:
    state, fmt = read_weights(path, key=key)
    where = str(path) + (f"[{key!r}]" if key is not None else "")
    fit = fit_state_dict(model.state_dict(), state, where)
    if not fit.fits:
        head = f"{where!r} does not fit task model {spec.name!r}"
        classes = _class_count_message(fit, num_classes)
        if classes is not None:
            raise WeightsError(f"{head}: {classes}")
        shown = ", ".join(f"{k}={v!r}" for k, v in {**spec.option_defaults, **options}.items())
        raise WeightsError(
            f"{head}: {describe_misfit(fit)}; check [model] name (the architecture the weights "
            f"were trained with; {PLUGIN_ADVICE}) and [model] options"
            + (f" (now {shown})" if shown else "")
        )
    check_finite(fit.state, where)
    model.load_state_dict(fit.state, strict=True)
    return fmt, fit


def load_model(
    weights: str | os.PathLike[str] | None = None,
    *,
    name: str | TaskModelSpec | None = None,
    num_classes: int | None = None,
    options: Mapping[str, Any] | None = None,
    key: str | None = None,
    in_channels: int = 3,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
) -> LoadedModel:
    """Load a user's task model from any supported file, or build one at random.

    Parameter names follow the ``[model]`` config keys (``weights``,
    ``name``, ``options``, ``key``) so that error messages name what to set.

    Parameters
    ----------
    weights : str or os.PathLike, optional
        The model file (``[model] weights``); its format is recognised from
        its content (:func:`~driftlab.models.formats.detect_model_format`).
        Without it, ``name`` is built with random initialisation.
    name : str or TaskModelSpec, optional
        Registered architecture (``[model] name``), required for state dicts,
        checkpoints and safetensors; must be unset for TorchScript and
        exported archives.
    num_classes : int, optional
        Outputs per image (classification) or logit channels (segmentation)
        the architecture is built with; required with ``name``. Not used for
        archives (:func:`~driftlab.models.check_weights` runs them to check).
    options : mapping, optional
        Architecture options (``[model] options``, e.g. ``{"width": 32}``).
    key : str, optional
        Checkpoint entry holding the state dict (``[model] key``).
    in_channels : int
        Input channels of ``name`` (3 for RGB views).
    device : str or torch.device
        Where to put the model (see :func:`~driftlab.models.resolve_device`).
    registry : Registry, optional
        Where ``name`` is looked up (needed when ``name`` is a string);
        plugin architectures come from ``Registry.load(extra=[(name, "module")])``
        (the ``-p MODULE`` command-line option).

    Returns
    -------
    LoadedModel
        Its ``module`` in eval mode on ``device``.

    Raises
    ------
    TaskModelError
        Neither ``weights`` nor ``name``; ``name`` without ``num_classes``;
        a string ``name`` without ``registry``; a build error (unknown
        option, listed).
    FileNotFoundError
        If ``weights`` does not exist.
    WeightsError
        Unrecognised, damaged or forged file; a state dict without ``name``;
        an archive with ``name``, ``options`` or ``key``; a checkpoint without
        ``key`` or lacking it; pickled objects other than tensors; weights that
        do not fit ``name`` (missing/unexpected keys or shapes, one line, or
        a class count other than ``num_classes``); NaN or infinite weights.
        Every message names the ``[model]`` key to change.
    driftlab.registry.RegistryError
        Unknown ``name`` (closest installed name, and the ``-p`` advice).
    driftlab.models.device.DeviceError
        Unavailable ``device``.
    """
    target = resolve_device(device)
    if weights is None:
        if name is None:
            raise TaskModelError("no model given: set [model] weights, [model] name, or both")
        if key is not None:
            raise TaskModelError("[model] key applies only with [model] weights (a checkpoint)")
    path = None if weights is None else Path(weights)
    kind = None if path is None else detect_model_format(path, "model file")
    if kind in ARCHIVE_FORMATS:
        assert path is not None
        given = [
            f"[model] {label}"
            for label, value in (("name", name), ("options", options or None), ("key", key))
            if value is not None
        ]
        if given:
            raise WeightsError(
                f"{str(path)!r} is {format_label(kind)}, which carries its own architecture: "
                f"remove {' and '.join(given)}"
            )
        module = _load_archive(path, kind, target)
        return LoadedModel(module.eval(), kind, source=path, device=target)
    if name is None:
        installed = (
            ", ".join(registry.names("task_models")) if registry is not None else "see plugins"
        )
        raise WeightsError(
            f"{str(path)!r} holds weights without their architecture: set [model] name "
            f"(installed: {installed}; {PLUGIN_ADVICE})"
        )
    spec = _spec(name, registry)
    if num_classes is None:
        raise TaskModelError(f"task model {spec.name!r}: num_classes is required")
    options = dict(options or {})
    model = spec.build(num_classes, in_channels=in_channels, **options)
    if path is None:
        return LoadedModel(model.to(target).eval(), None, architecture=spec.name, device=target)
    fmt, fit = _load_state(path, spec, model, key, num_classes, options)
    return LoadedModel(
        model.to(target).eval(),
        fmt,
        normalization=fit.normalization,
        source=path,
        architecture=spec.name,
        key=key,
        prefix=fit.prefix,
        device=target,
    )


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
    """Load a model ready for views in [0, 1]: ``load_model(...).view_model()``.

    Kept for scripts; the runners use :func:`load_model`. Parameters map to
    :func:`load_model`'s (``path`` -> ``weights``, ``architecture`` ->
    ``name``, ``weights_key`` -> ``key``); without ``registry`` a string
    ``architecture`` is looked up in the process-wide registry.

    Returns
    -------
    torch.nn.Module
        :meth:`LoadedModel.view_model`: eval mode on ``device``, the stored
        normalisation (if any) applied.

    Raises
    ------
    As :func:`load_model`.
    """
    if isinstance(architecture, str) and registry is None:
        registry = get_registry()
    return load_model(
        path,
        name=architecture,
        num_classes=num_classes,
        options=options,
        key=weights_key,
        in_channels=in_channels,
        device=device,
        registry=registry,
    ).view_model()
