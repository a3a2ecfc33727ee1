"""What every ``driftlab`` command shares: the registry (with ``-p`` plugins), errors
and exit codes, logging to stderr, and tables that fit the terminal."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import click

from driftlab.errors import DriftlabError

__all__ = [
    "DriftlabClickError",
    "echo_table",
    "fail",
    "get_registry_for",
    "setup_logging",
]


class DriftlabClickError(click.ClickException):
    """A click error with driftlab's exit code (see :mod:`driftlab.errors`)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(exc: BaseException) -> DriftlabClickError:
    """The click error of a driftlab (or OS) error, with its documented exit code."""
    if isinstance(exc, DriftlabError):
        return DriftlabClickError(str(exc), exc.exit_code)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return DriftlabClickError(
            f"cannot read or write{where}: {exc.strerror or exc} (check the path, its "
            "permissions and free disk space)",
            3,
        )
    return DriftlabClickError(str(exc), 2 if isinstance(exc, ValueError) else 1)


def get_registry_for(ctx: click.Context):
    """The registry of this invocation: installed plugins plus ``-p MODULE`` ones."""
    from driftlab.registry import Registry, get_registry

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    modules = obj.get("plugins", ())
    if "registry" not in obj:
        if modules:
            registry = Registry.load(extra=[(m, m) for m in modules])
            failed = [e for e in registry.errors if e.plugin in modules]
            if failed:
                raise DriftlabClickError(
                    "; ".join(f"-p {e.plugin}: {e.message}" for e in failed), 2
                )
        else:
            registry = get_registry()
        obj["registry"] = registry
        root.obj = obj
    return obj["registry"]


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at emit time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(quiet: bool = False) -> None:
    """Log ``driftlab`` messages to stderr (INFO, or WARNING when quiet), once."""
    logger = logging.getLogger("driftlab")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def echo_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    """Print an aligned table that fits the terminal width.

    Columns keep their natural width when the table fits; otherwise the
    widest columns are narrowed (never below 12 characters) and their cells
    wrapped onto continuation lines. The width is ``COLUMNS`` when set, else
    the terminal's when standard output is one; output to a pipe or a file
    is never wrapped (one line per row, so ``grep`` finds whole rows).
    """
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        total = shutil.get_terminal_size((120, 24)).columns
    else:
        total = sum(widths) + 2 * len(widths)
    gap = 2 * (len(widths) - 1)
    while sum(widths) + gap > total:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 12:
            break
        widths[widest] -= 1
    for n, row in enumerate(cells):
        wrapped = [textwrap.wrap(c, w) or [""] for c, w in zip(row, widths, strict=True)]
        for line in range(max(len(w) for w in wrapped)):
            parts = [
                (w[line] if line < len(w) else "").ljust(width)
                for w, width in zip(wrapped, widths, strict=True)
            ]
            click.echo("  ".join(parts).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))
