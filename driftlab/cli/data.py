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

from driftlab.datasets.check import check_dataset, describe_dataset

__all__ = ["data", "parse_option"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _registry():
    from driftlab.cli.common import get_registry_for

    return get_registry_for(click.get_current_context())


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
