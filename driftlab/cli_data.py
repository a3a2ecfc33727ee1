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


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Raw datasets: list installed ones, check a local copy."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def list_datasets(as_json: bool) -> None:
    """List installed datasets with task, classes, size and intensity levels."""
    registry = _registry()
    rows = [
        describe_dataset(spec, registry.owner("datasets", name), registry)
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
        depth = f"{camera['bit_depth']}-bit" if camera["bit_depth"] else "unresolved profile"
        click.echo(f"{row['name']}  [{row['task']}]  from {row['plugin']}")
        click.echo(f"  {row['description']}")
        if row["classes"]:
            click.echo(f"  classes ({len(row['classes'])}): {', '.join(row['classes'])}")
        if size:
            click.echo(f"  size: {size}")
        click.echo(f"  intensity levels: {', '.join(f'{v:g}' for v in row['intensities'])}")
        click.echo(
            f"  camera: {camera['name']} ({camera['cfa']}, {depth})"
            + ("; needs --data-root" if row["needs_data_root"] else "")
        )
        if row["options"]:
            click.echo("  options:")
            for key, text in row["options"].items():
                click.echo(f"    {key}: {text}")
        if row["reference"]:
            click.echo(f"  source: {row['reference']}")
    broken = [e for e in registry.errors if "dataset" in e.message or "datasets" in e.message]
    for error in broken:
        click.echo(f"warning: plugin {error.plugin}: {error.message}", err=True)


PROBLEMS_SHOWN = 10
"""``data check`` prints this many problems and writes all of them to a file when there are more."""


def _camera_line(camera: dict[str, Any]) -> str:
    return (
        f"camera {camera['name']} ({camera['cfa']}, {camera['bit_depth']}-bit, white level "
        f"{camera['white_level']}) from {camera['source']}; samples {camera['samples']}"
    )


def _echo_report(report: dict[str, Any], problems_file: Path | None = None) -> None:
    click.echo(f"{report['dataset']} at {report['data_root']}")
    cameras = []
    for level in report["levels"]:
        head = f"  intensity {level['intensity']:g}:"
        if "error" in level:
            click.echo(f"{head} cannot open")
            continue
        text = f"{head} {level['items']} items in {level['groups']} groups"
        if level.get("merged"):
            text += f" ({level['merged']} image(s) merged into groups of overlapping images)"
        counts = {k: v for k, v in level["classes"].items() if v}
        if counts:
            text += "; " + ", ".join(f"{k} {v}" for k, v in counts.items())
        click.echo(text)
        line = _camera_line(level["camera"])
        if line not in cameras:
            cameras.append(line)
    for line in cameras:
        click.echo(f"  {line}")
    for note in report["notes"]:
        click.echo(f"note: {note}")
    problems = report["problems"]
    for problem in problems[:PROBLEMS_SHOWN]:
        click.echo(f"problem: {problem}")
    n = len(problems)
    if n > PROBLEMS_SHOWN or (problems_file is not None and n):
        from driftlab.datasets.files import write_skip_list

        written = write_skip_list(problems, problems_file)
        more = f"{n - PROBLEMS_SHOWN} more problem(s) not shown; " if n > PROBLEMS_SHOWN else ""
        click.echo(f"{more}all {n} listed in {written}")
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
@click.option(
    "--problems-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Write every problem to this file (default: a temporary file when there are more "
    f"than {PROBLEMS_SHOWN}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(
    name: str,
    data_root: Path | None,
    intensities: tuple[float, ...],
    raw_options: tuple[str, ...],
    problems_file: Path | None,
    as_json: bool,
) -> None:
    """Verify a local copy of dataset NAME: layout, file counts per level and
    class, and every file opened. Exits with status 1 on any problem."""
    from driftlab.registry import RegistryError, suggest

    registry = _registry()
    try:
        spec = registry.get("datasets", name)
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
            f"{name} has no option {unexpected[0]!r}{suggest(unexpected[0], spec.options)}; "
            f"options: {', '.join(spec.options)}",
            param_hint="--option",
        )
    report = check_dataset(spec, data_root, list(intensities) or None, options, registry)
    if as_json:
        if problems_file is not None and report["problems"]:
            from driftlab.datasets.files import write_skip_list

            write_skip_list(report["problems"], problems_file)
        click.echo(json.dumps(report, indent=2))
    else:
        _echo_report(report, problems_file)
    if report["problems"]:
        raise click.exceptions.Exit(1)
