"""Read user-supplied weights safely and fit them to an architecture.

Files are read with ``torch.load(weights_only=True)`` (no code from the file
runs; pickles that name other Python objects are refused) or with
``safetensors`` (no pickle at all). :func:`fit_state_dict` matches a state
dict to a model's keys and shapes, recognising three common wrappings:
``Normalized`` (``driftlab.train.normalize``: ``mean``/``std`` buffers and the
model under ``model.``, as synthesis saves ``models/*.pt``), and one common
key prefix such as DataParallel's ``module.`` or a training wrapper's
``model.``, used only when the stripped keys fit exactly.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import attrs
import torch
from torch import nn

from driftlab.models.formats import (
    WeightsError,
    check_legacy_sizes,
    detect_model_format,
    format_label,
)

__all__ = [
    "StateDictFit",
    "WeightsError",
    "describe_misfit",
    "fit_state_dict",
    "load_weights",
    "read_state_dict",
    "read_weights",
    "save_weights",
]

_PREVIEW = 3
Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def _preview(items: list[str] | tuple[str, ...], count: int = _PREVIEW) -> str:
    shown = ", ".join(repr(k) for k in items[:count])
    return shown + (f" and {len(items) - count} more" if len(items) > count else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _torch_load(path: Path, legacy: bool) -> object:
    where = str(path)
    if legacy:
        check_legacy_sizes(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        needs = f" (it needs {found.group(1)})" if found else ""
        raise WeightsError(
            f"{where!r} holds pickled Python objects other than tensors{needs}, for example a "
            "whole model saved with torch.save(model); driftlab does not unpickle them because "
            "that can run arbitrary code: save model.state_dict() (or a TorchScript or "
            "torch.export archive) and point [model] weights at that file"
        ) from None
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise WeightsError(
            f"{where!r} could not be read by torch.load: {type(exc).__name__}: {text[:300]}"
        ) from None


def _safetensors_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsError(
            f"{str(path)!r} is a safetensors file; reading it needs the 'safetensors' package "
            "(pip install safetensors)"
        ) from None
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"{str(path)!r} could not be read as safetensors: {type(exc).__name__}: {exc}"
        ) from None


def _entries(obj: Mapping) -> str:
    return _preview([str(k) for k in obj], 8)


def read_weights(
    path: str | os.PathLike[str], *, key: str | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """Read a state dict and say which format held it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.save`` file of a state dict or of a checkpoint dict holding
        one (see ``key``), or a safetensors file.
    key : str, optional
        Entry of a checkpoint dict that holds the state dict (the config key
        ``[model] key``; e.g. ``"state_dict"`` for PyTorch Lightning).

    Returns
    -------
    state : dict of str to torch.Tensor
        Tensors on the CPU, dtypes as stored.
    format : str
        ``"state_dict"``, ``"checkpoint"`` (read from entry ``key``) or
        ``"safetensors"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        The file is a TorchScript or torch.export archive, is not a model file,
        is truncated or forged, holds pickled Python objects other than
        tensors and containers (refused: unpickling them can run code), lacks
        ``key`` (the message lists the entries), is a checkpoint without
        ``key`` (the message names the entry that holds a state dict), or is
        not a non-empty mapping of names to tensors. Each message is one line
        and names the config key to change.
    """
    kind = detect_model_format(path, "weights file")
    path = Path(path)
    where = str(path)
    if kind in ("torchscript", "exported"):
        raise WeightsError(
            f"{where!r} is {format_label(kind)}, not a state dict: it carries its own "
            "architecture, so leave [model] name and [model] options unset"
        )
    if kind == "safetensors":
        if key is not None:
            raise WeightsError(
                f"{where!r} is a safetensors file, which holds one flat state dict: "
                f"remove [model] key (set to {key!r})"
            )
        state = _safetensors_load(path)
        if not state:
            raise WeightsError(f"{where!r}: the safetensors file holds no tensors")
        return state, "safetensors"
    obj = _torch_load(path, legacy=not zipfile.is_zipfile(path))
    fmt = "state_dict"
    if key is not None:
        if not isinstance(obj, Mapping):
            raise WeightsError(
                f"{where!r} holds a {type(obj).__name__}, not a checkpoint dict: remove [model] key"
            )
        if key not in obj:
            if _is_state_dict(obj):
                raise WeightsError(
                    f"{where!r} is a state dict itself ({_plural(len(obj), 'tensor')}), "
                    f"it has no entry {key!r}: remove [model] key"
                )
            raise WeightsError(
                f"{where!r} has no entry {key!r} (entries: {_entries(obj)}): set [model] key "
                "to the entry that holds the state dict"
            )
        obj, fmt = obj[key], "checkpoint"
        where = f"{where}[{key!r}]"
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"{where!r}: expected a state dict (a mapping of parameter names to tensors), "
            f"got {type(obj).__name__}"
        )
    if not obj:
        raise WeightsError(f"{where!r}: the state dict is empty")
    if not _is_state_dict(obj):
        nested = [str(k) for k, v in obj.items() if _is_state_dict(v)]
        if nested:
            raise WeightsError(
                f"{where!r} is a checkpoint (entries: {_entries(obj)}), not a state dict: "
                f"set [model] key = {nested[0]!r} (the entry that holds the weights)"
            )
        bad = [
            f"{k!r} ({type(v).__name__})"
            for k, v in obj.items()
            if not isinstance(k, str) or not isinstance(v, torch.Tensor)
        ]
        shown = ", ".join(bad[:_PREVIEW]) + (" ..." if len(bad) > _PREVIEW else "")
        raise WeightsError(
            f"{where!r} is not a state dict: entries {shown} are not tensors named by strings"
        )
    return dict(obj), fmt


def read_state_dict(
    path: str | os.PathLike[str], *, key: str | None = None
) -> dict[str, torch.Tensor]:
    """Read a state dict without executing code from the file.

    As :func:`read_weights`, returning only the state dict.
    """
    return read_weights(path, key=key)[0]


@attrs.frozen
class StateDictFit:
    """How a state dict matches a model (result of :func:`fit_state_dict`).

    Attributes
    ----------
    state : dict of str to torch.Tensor
        The state dict with any wrapping removed (keys as the model names them).
    normalization : (tuple of float, tuple of float) or None
        ``(mean, std)`` per input channel stored by a ``Normalized`` wrapper.
    prefix : str
        Key prefix that was removed (``""``, ``"model."``, ``"module."``, ...).
    missing, unexpected : tuple of str
        Model keys absent from the file; file keys the model does not have.
    mismatched : tuple of (str, tuple, tuple)
        ``(key, file shape, model shape)`` where the shapes differ, in the
        model's key order.
    """

    state: dict[str, torch.Tensor] = attrs.field(eq=False, repr=False)
    normalization: Normalization | None
    prefix: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]

    @property
    def fits(self) -> bool:
        """Every key present with the model's shape."""
        return not (self.missing or self.unexpected or self.mismatched)


def _normalization(state: Mapping[str, torch.Tensor], where: str) -> Normalization:
    values = []
    for name in ("mean", "std"):
        tensor = state[name]
        if not tensor.is_floating_point() or tensor.dim() not in (1, 4) or tensor.numel() < 1:
            raise WeightsError(
                f"{where!r}: stored normalisation {name!r} must be a float tensor of shape (C,) "
                f"or (1, C, 1, 1), got {tuple(tensor.shape)} {tensor.dtype}"
            )
        values.append(tuple(float(v) for v in tensor.reshape(-1).tolist()))
    mean, std = values
    if len(mean) != len(std) or not all(math.isfinite(v) for v in (*mean, *std)):
        raise WeightsError(f"{where!r}: stored normalisation is invalid (mean {mean}, std {std})")
    if min(std) <= 0:
        raise WeightsError(f"{where!r}: stored normalisation has std <= 0 ({std})")
    return mean, std


def _compare(
    expected: Mapping[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    normalization: Normalization | None,
    prefix: str,
) -> StateDictFit:
    return StateDictFit(
        state=state,
        normalization=normalization,
        prefix=prefix,
        missing=tuple(k for k in expected if k not in state),
        unexpected=tuple(k for k in state if k not in expected),
        mismatched=tuple(
            (k, tuple(state[k].shape), tuple(want.shape))
            for k, want in expected.items()
            if k in state and tuple(state[k].shape) != tuple(want.shape)
        ),
    )


def fit_state_dict(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], where: str = "weights"
) -> StateDictFit:
    """Match a state dict to a model's, undoing a known wrapping.

    Candidates, in order: the keys as they are; a ``Normalized`` wrapper
    (``mean`` and ``std`` plus every other key under ``model.``: the inner
    keys, with the stored normalisation); one common first key segment
    (``module.`` of DataParallel, ``model.`` of many training wrappers)
    removed. The first candidate whose keys equal the model's is taken; if
    none has, the one sharing the most keys with the model is returned so
    that its differences can be reported.

    Parameters
    ----------
    expected : mapping of str to torch.Tensor
        ``model.state_dict()``.
    state : mapping of str to torch.Tensor
        What the file holds.
    where : str
        How error messages name the file.

    Returns
    -------
    StateDictFit
        Check :attr:`StateDictFit.fits`.

    Raises
    ------
    WeightsError
        A ``Normalized`` wrapper whose ``mean``/``std`` are not finite float
        vectors of equal length with ``std > 0``.
    """
    state = dict(state)
    candidates = [_compare(expected, state, None, "")]
    rest = [k for k in state if k not in ("mean", "std")]
    if "mean" in state and "std" in state and rest and all(k.startswith("model.") for k in rest):
        inner = {k.removeprefix("model."): state[k] for k in rest}
        candidates.append(_compare(expected, inner, _normalization(state, where), "model."))
    first = {k.split(".", 1)[0] for k in state}
    if len(first) == 1 and all("." in k for k in state):
        prefix = f"{next(iter(first))}."
        candidates.append(
            _compare(expected, {k.removeprefix(prefix): v for k, v in state.items()}, None, prefix)
        )
    for candidate in candidates:
        if not (candidate.missing or candidate.unexpected):
            return candidate
    return max(candidates, key=lambda c: len(expected) - len(c.missing))


def describe_misfit(fit: StateDictFit) -> str:
    """One-line summary of what does not match (empty when :attr:`~StateDictFit.fits`)."""
    parts = []
    if fit.missing:
        parts.append(f"{_plural(len(fit.missing), 'missing key')} ({_preview(fit.missing)})")
    if fit.unexpected:
        parts.append(
            f"{_plural(len(fit.unexpected), 'unexpected key')} ({_preview(fit.unexpected)})"
        )
    if fit.mismatched:
        shown = ", ".join(
            f"{k!r} (file {file_shape}, model {model_shape})"
            for k, file_shape, model_shape in fit.mismatched[:_PREVIEW]
        )
        more = len(fit.mismatched) - _PREVIEW
        parts.append(
            f"shapes differ for {_plural(len(fit.mismatched), 'tensor')}, first {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    note = f" (after removing the key prefix {fit.prefix!r})" if fit.prefix and parts else ""
    return "; ".join(parts) + note


def check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse floating-point tensors holding NaN or infinity.

    Raises
    ------
    WeightsError
        Naming the first such tensor and how many there are.
    """
    bad = [
        k
        for k, v in state.items()
        if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise WeightsError(
            f"{where!r}: {_plural(len(bad), 'tensor')} {'holds' if len(bad) == 1 else 'hold'} "
            "NaN or infinite values "
            f"({_preview(bad)}); these weights cannot give meaningful predictions"
        )


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], *, key: str | None = None
) -> nn.Module:
    """Load a state dict into ``model``, checking every key and shape first.

    A ``Normalized`` wrapper's inner weights are loaded (its stored
    normalisation is dropped here: :func:`driftlab.models.load_model`
    reports it), and one common key prefix is removed when the stripped keys
    fit exactly (see :func:`fit_state_dict`).

    Parameters
    ----------
    model : torch.nn.Module
        Model whose architecture the weights were trained with.
    path : str or os.PathLike
        State-dict, checkpoint or safetensors file (see :func:`read_weights`).
    key : str, optional
        Checkpoint entry holding the state dict (``[model] key``).

    Returns
    -------
    torch.nn.Module
        ``model`` itself, with the weights copied in (converted to the dtype
        and device of its parameters and buffers).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    WeightsError
        As :func:`read_weights`; when keys are missing or unexpected or a
        shape differs (one line naming the first few); when a tensor holds
        NaN or infinity. Nothing is loaded in that case.
    """
    state, _ = read_weights(path, key=key)
    where = str(Path(path)) + (f"[{key!r}]" if key is not None else "")
    fit = fit_state_dict(model.state_dict(), state, where)
    if not fit.fits:
        raise WeightsError(
            f"{where!r} does not fit {type(model).__name__}: {describe_misfit(fit)}; "
            "check [model] name and [model] options"
        )
    check_finite(fit.state, where)
    model.load_state_dict(fit.state, strict=True)
    return model


def save_weights(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model.state_dict()`` so that :func:`load_weights` can read it back.

    Parameters
    ----------
    model : torch.nn.Module
        Model to save.
    path : str or os.PathLike
        Destination file; its folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} for the weights file does not exist")
    torch.save(model.state_dict(), path)
    return path
