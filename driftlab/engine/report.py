"""The one report writer of every experiment: a document model rendered by Jinja2.

An experiment describes its report as a :class:`Report` (sections of
paragraphs, notices, key-value tables, tables, definition lists and
figures); :func:`write_report` renders it twice from the templates in
``driftlab/engine/templates``:

* ``report.md``: Markdown, figures referenced by relative path;
* ``report.html``: one self-contained page (figures embedded as base64 PNG
  data, no external file), so it opens from an e-mail attachment.

Text is escaped for HTML; inline ``code`` and ``**bold**`` are the only
markup the paragraph text may use.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import jinja2
from markupsafe import Markup, escape

from driftlab.atomic import write_text_atomic

__all__ = [
    "Definitions",
    "Figure",
    "KeyValues",
    "Notice",
    "Paragraph",
    "Report",
    "Section",
    "Table",
    "render_report",
    "write_report",
]


@attrs.frozen
class Paragraph:
    """A paragraph; inline ``code`` and ``**bold**`` are rendered."""

    text: str
    kind: str = "paragraph"


@attrs.frozen
class Notice:
    """A highlighted paragraph (``level``: ``"warning"`` or ``"info"``)."""

    text: str
    level: str = "warning"
    kind: str = "notice"


@attrs.frozen
class KeyValues:
    """A two-column table of labelled values."""

    items: Sequence[tuple[str, str]]
    kind: str = "keyvalues"


@attrs.frozen
class Table:
    """A table of pre-formatted cells (strings), with an optional caption."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    kind: str = "table"


@attrs.frozen
class Definitions:
    """Terms and their definitions."""

    items: Sequence[tuple[str, str]]
    kind: str = "definitions"


@attrs.frozen
class Figure:
    """A PNG figure of the run directory (path relative to the run directory)."""

    path: str
    caption: str
    kind: str = "figure"


@attrs.frozen
class Section:
    """A titled section of blocks."""

    title: str
    blocks: Sequence[Any]


@attrs.frozen
class Report:
    """A whole report.

    Attributes
    ----------
    title : str
    intro : sequence of blocks
        Blocks before the first section (e.g. warnings, protocol).
    sections : sequence of Section
    files : sequence of str
        Files of the run directory listed at the end.
    citation : str
        Source of the method, printed at the end.
    """

    title: str
    intro: Sequence[Any] = ()
    sections: Sequence[Section] = ()
    files: Sequence[str] = ()
    citation: str = ""


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> Markup:
    escaped = str(escape(text))
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return Markup(_BOLD.sub(r"<strong>\1</strong>", escaped))


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("driftlab.engine", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["inline"] = _inline_html
    env.filters["mdcell"] = _md_cell
    return env


def _embed(run_dir: Path, relative: str) -> str:
    data = (run_dir / relative).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_report(report: Report, run_dir: Path) -> tuple[str, str]:
    """Render ``report`` to ``(markdown, html)`` strings.

    Raises
    ------
    FileNotFoundError
        A figure named by the report is missing from ``run_dir``.
    """
    env = _environment()
    markdown = env.get_template("report.md.j2").render(report=report)
    html = env.get_template("report.html.j2").render(
        report=report, embed=lambda rel: _embed(run_dir, rel)
    )
    return markdown, html


def write_report(report: Report, run_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir`` (atomically).

    Returns
    -------
    dict
        ``{"report_md": path, "report_html": path}``.
    """
    run_dir = Path(run_dir)
    markdown, html = render_report(report, run_dir)
    return {
        "report_md": write_text_atomic(markdown, run_dir / "report.md"),
        "report_html": write_text_atomic(html, run_dir / "report.html"),
    }
