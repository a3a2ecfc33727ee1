"""The ``driftlab`` command line (a package: one module per group of commands).

Exit codes are documented in :mod:`driftlab.errors` and the user guide.
"""

from __future__ import annotations

import click

from driftlab import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="driftlab")
@click.option(
    "-p",
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Load an importable module as an in-process plugin, as pytest -p does (repeatable).",
)
@click.pass_context
def main(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """driftlab: test ML models against camera hardware drift.

    Raw sensor data is rendered through explicit ISP pipelines (static and
    differentiable) so that a model can be trained under one camera
    processing and tested under others (Oala et al., TMLR 2023).
    """
    import os
    import sys

    # deterministic cuBLAS for cells on a GPU (driftlab.engine.cell.isolated_state); read
    # when CUDA starts, so set before any command touches it, unless the user set it
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    from driftlab.workers import tune_allocator

    tune_allocator()  # reuse freed memory: the render path allocates a lot (see its doc)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # -p MODULE finds modules in the current folder, like python -m
    ctx.obj = {"plugins": plugins}


def _attach() -> None:
    from driftlab.cli.catalog import pipelines, plugins, render, stages, verify
    from driftlab.cli.data import data
    from driftlab.cli.runs import RUN_COMMANDS, report
    from driftlab.cli.scaffold import new_plugin
    from driftlab.cli.signature import signature

    for command in (plugins, stages, pipelines, verify, render, *RUN_COMMANDS, report, data,
                    signature, new_plugin):  # fmt: skip
        main.add_command(command)


_attach()
