"""``driftlab data``: list installed raw datasets and check a local copy.

``driftlab data list`` shows every dataset the plugins declare (task,
classes, published size, intensity levels, camera, loader options).
``driftlab data check NAME --data-root PATH`` verifies a local copy: the
dataset's own layout checker (:attr:`DatasetSpec.checker`), then every
intensity level is opened and every file read; each problem is printed with
its path, and the exit status is 1 if there is any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset

__all__ = ["check_dataset", "data", "describe_dataset", "parse_option"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _registry():
    from driftlab.registry import get_registry

    return get_registry()


def describe_dataset(spec: DatasetSpec, plugin: str = "") -> dict[str, Any]:
    """JSON-ready summary of a dataset declaration.

    Parameters
    ----------
    spec : DatasetSpec
    plugin : str
        Name of the plugin that declared it.

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
        "camera": {
            "name": spec.camera.name,
            "cfa": spec.camera.cfa,
            "bit_depth": spec.camera.bit_depth,
        },
        "needs_data_root": spec.needs_data_root,
        "options": dict(spec.options),
        "description": spec.description,
        "reference": spec.reference,
        "plugin": plugin,
    }


def parse_option(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` from the command line.

    The value is read as a TOML value when it is one (``12``, ``true``,
    ``[256, 256]``, ``"x"``), else kept as a string (``labels.csv``).

    Raises
    ------
    click.BadParameter
        If there is no ``=`` or the key is empty.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--option")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


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


def check_dataset(
    spec: DatasetSpec,
    data_root: Path | None,
    intensities: list[float] | None = None,
    options: dict[str, Any] | None = None,
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

    Returns
    -------
    dict
        ``levels``: one entry per level with ``intensity``, ``items``,
        ``groups``, ``classes`` (name -> count) or ``error``; ``notes``
        (entries left out by design); ``problems`` (each naming its path),
        in order of discovery and without repeats.
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
            dataset = spec.open(data_root, intensity=level, **options)
        except (DatasetError, OSError, TypeError) as exc:
            problems.append(str(exc))
            levels.append({"intensity": level, "error": str(exc)})
            continue
        problems.extend(dataset.skipped)
        notes.extend(dataset.notes)
        if not (skip_bad and getattr(dataset, "verified", False)):
            problems.extend(_read_every_item(dataset))
        levels.append(
            {
                "intensity": level,
                "items": len(dataset),
                "groups": len(set(dataset.groups)),
                "classes": _class_counts(dataset),
            }
        )
    return {
        "dataset": spec.name,
        "data_root": str(data_root) if data_root is not None else None,
        "levels": levels,
        "notes": list(dict.fromkeys(notes)),
        "problems": list(dict.fromkeys(problems)),
    }


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Raw datasets: list installed ones, check a local copy."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def list_datasets(as_json: bool) -> None:
    """List installed datasets with task, classes, size and intensity levels."""
    registry = _registry()
    rows = [
        describe_dataset(spec, registry.owner("datasets", name))
        for name, spec in sorted(registry.items("datasets").items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no datasets installed")
    for row in rows:
        size = ""
        if row["n_items"]:
            size = f"{row['n_items']} items"
        if row["image_shape"]:
            size += f" of {row['image_shape'][0]}x{row['image_shape'][1]}"
        camera = row["camera"]
        click.echo(f"{row['name']}  [{row['task']}]  from {row['plugin']}")
        click.echo(f"  {row['description']}")
        if row["classes"]:
            click.echo(f"  classes ({len(row['classes'])}): {', '.join(row['classes'])}")
        if size:
            click.echo(f"  size: {size}")
        click.echo(f"  intensity levels: {', '.join(f'{v:g}' for v in row['intensities'])}")
        click.echo(
            f"  camera: {camera['name']} ({camera['cfa']}, {camera['bit_depth']}-bit)"
            + ("; needs --data-root" if row["needs_data_root"] else "")
        )
        if row["options"]:
            click.echo(f"  options: {', '.join(row['options'])}")
        if row["reference"]:
            click.echo(f"  source: {row['reference']}")
    broken = [e for e in registry.errors if "dataset" in e.message or "datasets" in e.message]
    for error in broken:
        click.echo(f"warning: plugin {error.plugin}: {error.message}", err=True)


def _echo_report(report: dict[str, Any]) -> None:
    click.echo(f"{report['dataset']} at {report['data_root']}")
    for level in report["levels"]:
        head = f"  intensity {level['intensity']:g}:"
        if "error" in level:
            click.echo(f"{head} cannot open")
            continue
        text = f"{head} {level['items']} items in {level['groups']} groups"
        counts = {k: v for k, v in level["classes"].items() if v}
        if counts:
            text += "; " + ", ".join(f"{k} {v}" for k, v in counts.items())
        click.echo(text)
    for note in report["notes"]:
        click.echo(f"note: {note}")
    for problem in report["problems"]:
        click.echo(f"problem: {problem}")
    n = len(report["problems"])
    click.echo("OK: no problems found" if n == 0 else f"FAILED: {n} problem(s)")


@data.command("check")
@click.argument("name")
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    help="Local copy of the dataset's files.",
)
@click.option(
    "--intensity",
    "intensities",
    type=float,
    multiple=True,
    help="Check only this intensity level (repeatable); default: all levels.",
)
@click.option(
    "-o",
    "--option",
    "raw_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Loader option (repeatable), e.g. -o labels_csv=labels.csv -o shape=[256,256].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(
    name: str,
    data_root: Path | None,
    intensities: tuple[float, ...],
    raw_options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify a local copy of dataset NAME: layout, file counts per level and
    class, and every file opened. Exits with status 1 on any problem."""
    from driftlab.registry import RegistryError

    try:
        spec = _registry().get("datasets", name)
    except RegistryError as exc:
        raise click.UsageError(str(exc)) from None
    if spec.needs_data_root and data_root is None:
        raise click.UsageError(f"dataset {name!r} needs --data-root (a local copy of its files)")
    unknown = [v for v in intensities if not any(abs(v - w) < 1e-9 for w in spec.intensities)]
    if unknown:
        raise click.BadParameter(
            f"{name} has no captured level {unknown[0]:g}; levels: "
            + ", ".join(f"{v:g}" for v in spec.intensities),
            param_hint="--intensity",
        )
    options = dict(parse_option(text) for text in raw_options)
    unexpected = sorted(set(options) - set(spec.options))
    if spec.options and unexpected:
        raise click.BadParameter(
            f"{name} has no option {unexpected[0]!r}; options: {', '.join(spec.options)}",
            param_hint="--option",
        )
    report = check_dataset(spec, data_root, list(intensities) or None, options)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _echo_report(report)
    if report["problems"]:
        raise click.exceptions.Exit(1)
