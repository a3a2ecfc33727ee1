"""Describe installed datasets and check a local copy of one (layout, counts, every file).

Used by ``driftlab data list`` / ``driftlab data check`` and importable from
Python: :func:`describe_dataset` summarises a declaration,
:func:`check_dataset` verifies a local copy and returns a report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset

__all__ = ["check_dataset", "describe_dataset"]


def _camera_summary(spec: DatasetSpec, registry: Any | None) -> dict[str, Any]:
    try:
        camera = spec.resolve_camera(registry)
    except DatasetError:
        return {"name": spec.camera_name, "cfa": None, "bit_depth": None}
    return {"name": camera.name, "cfa": camera.cfa, "bit_depth": camera.bit_depth}


def describe_dataset(
    spec: DatasetSpec, plugin: str = "", registry: Any | None = None
) -> dict[str, Any]:
    """JSON-ready summary of a dataset declaration.

    Parameters
    ----------
    spec : DatasetSpec
    plugin : str
        Name of the plugin that declared it.
    registry : Registry, optional
        Resolves a camera declared by profile name (else its CFA and bit
        depth are None).

    Returns
    -------
    dict
        ``name``, ``task``, ``classes``, ``n_items``, ``image_shape``,
        ``intensities``, ``camera`` (name, CFA, bit depth), ``needs_data_root``,
        ``options``, ``description``, ``reference``, ``plugin``.
    """
    return {
        "name": spec.name,
        "task": spec.task,
        "classes": list(spec.classes),
        "n_items": spec.n_items,
        "image_shape": list(spec.image_shape) if spec.image_shape else None,
        "intensities": list(spec.intensities),
        "camera": _camera_summary(spec, registry),
        "needs_data_root": spec.needs_data_root,
        "options": dict(spec.options),
        "description": spec.description,
        "reference": spec.reference,
        "plugin": plugin,
    }


def _class_counts(dataset: RawDataset) -> dict[str, int]:
    labels = dataset.labels
    if labels is None:
        return {}
    counts = np.bincount(np.asarray(labels), minlength=len(dataset.spec.classes))
    names = list(dataset.spec.classes)
    return {names[i] if i < len(names) else str(i): int(c) for i, c in enumerate(counts)}


def _read_every_item(dataset: RawDataset) -> list[str]:
    problems = []
    for index in range(len(dataset)):
        try:
            dataset[index]
        except (DatasetError, OSError, ValueError) as exc:
            problems.append(str(exc))
    return problems


def _camera_used(dataset: RawDataset) -> dict[str, Any]:
    camera = dataset.spec.camera
    read = getattr(dataset, "read", None)
    bits = getattr(read, "bits", None)
    decoded = (
        f"decoded as {bits}-bit integers"
        if bits is not None
        else ("decoded as the stored integer width")
    )
    if getattr(read, "float_scale", None):
        decoded += f"; float samples / {read.float_scale:g}"
    return {
        "name": camera.name,
        "cfa": camera.cfa,
        "bit_depth": camera.bit_depth,
        "white_level": camera.saturation,
        "source": dataset.camera_source,
        "samples": decoded
        if read is not None
        else "made by the loader (not decoded from raw files)",
    }


def _merged_images(dataset: RawDataset) -> int:
    report = getattr(dataset, "overlap", None)
    return int(report.merged_images) if report is not None else 0


def check_dataset(
    spec: DatasetSpec,
    data_root: Path | None,
    intensities: list[float] | None = None,
    options: dict[str, Any] | None = None,
    registry: Any | None = None,
) -> dict[str, Any]:
    """Verify a local copy of a dataset: layout, counts, every file.

    Parameters
    ----------
    spec : DatasetSpec
        Dataset to check.
    data_root : pathlib.Path or None
        Local copy.
    intensities : list of float, optional
        Levels to open (default: all of :attr:`DatasetSpec.intensities`).
    options : dict, optional
        Loader options passed to :meth:`DatasetSpec.open`.
    registry : Registry, optional
        Passed to :meth:`DatasetSpec.open` (camera profiles).

    Returns
    -------
    dict
        ``levels``: one entry per level with ``intensity``, ``items``,
        ``groups``, ``merged`` (images whose group was merged with another
        image's by ``group_overlapping``), ``classes`` (name -> count) and
        ``camera`` (name, CFA, bit depth, white level, where it came from
        and how samples were decoded), or ``error``; ``notes`` (entries
        left out by design); ``problems`` (each naming its path), in order
        of discovery and without repeats.
    """
    options = dict(options or {})
    problems: list[str] = []
    notes: list[str] = []
    if spec.checker is not None and data_root is not None:
        try:
            problems.extend(spec.checker(spec, data_root))
        except Exception as exc:  # a plugin's checker must not hide the rest of the report
            problems.append(f"{spec.name} checker failed: {type(exc).__name__}: {exc}")
    skip_bad = "skip_bad" in spec.options
    if skip_bad:
        options["skip_bad"] = True
    levels = []
    for level in intensities if intensities is not None else spec.intensities:
        try:
            dataset = spec.open(data_root, intensity=level, registry=registry, **options)
        except (DatasetError, OSError, TypeError) as exc:
            problems.append(str(exc))
            levels.append({"intensity": level, "error": str(exc)})
            continue
        problems.extend(str(s) for s in dataset.skipped)
        notes.extend(str(n) for n in dataset.notes)
        if not (skip_bad and getattr(dataset, "verified", False)):
            problems.extend(_read_every_item(dataset))
        levels.append(
            {
                "intensity": level,
                "items": len(dataset),
                "groups": len(set(dataset.groups)),
                "merged": _merged_images(dataset),
                "classes": _class_counts(dataset),
                "camera": _camera_used(dataset),
            }
        )
    return {
        "dataset": spec.name,
        "data_root": str(data_root) if data_root is not None else None,
        "levels": levels,
        "notes": list(dict.fromkeys(notes)),
        "problems": list(dict.fromkeys(problems)),
    }
