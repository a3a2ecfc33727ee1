"""``driftlab new-plugin NAME``: write a working plugin distribution."""

from __future__ import annotations

from pathlib import Path

import click

from driftlab.cli.common import fail

__all__ = ["new_plugin"]


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    show_default=True, help="Folder the distribution folder NAME is written into.",
)  # fmt: skip
def new_plugin(name: str, folder: Path) -> None:
    """Write plugin distribution NAME: a stage, a camera profile, a pipeline and tests.

    The result passes its own tests (python -m pytest) and `driftlab verify`
    untouched; install it with `pip install -e NAME` or load it with
    `driftlab -p PACKAGE.plugin ...`.
    """
    from driftlab.errors import DriftlabError
    from driftlab.scaffold import package_name, write_plugin

    try:
        root = write_plugin(name, folder)
    except (DriftlabError, OSError) as exc:
        raise fail(exc) from None
    package = package_name(name)
    click.echo(f"plugin written: {root}")
    click.echo(f"  test it:    cd {root} && python -m pytest -q")
    click.echo(f"  verify it:  driftlab -p {package}.plugin verify --plugin {package}.plugin")
    click.echo(f"  install it: pip install -e {root}")
