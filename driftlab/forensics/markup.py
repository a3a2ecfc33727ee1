"""A small Markdown-to-HTML converter for driftlab's own reports (headings,
paragraphs, pipe tables, images, inline code); not a general Markdown parser."""

from __future__ import annotations

import html
import re

__all__ = ["markdown_to_html"]

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_to_html(markdown: str, title: str = "driftlab") -> str:
    """Convert the Markdown subset written by driftlab reports to a standalone page.

    Parameters
    ----------
    markdown : str
        Lines of ``#`` headings, ``|``-tables (second row ``|---|``),
        images ``![alt](src)`` and paragraphs.
    title : str
        Page title (already HTML-escaped).

    Returns
    -------
    str
        A complete HTML document.
    """
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *body = table
            rows = [
                "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>",
                *("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body),
            ]
            out.append("<table>" + "".join(rows) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                table.append(cells)
            continue
        flush()
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        if heading:
            n = len(heading.group(1))
            out.append(f"<h{n}>{_inline(heading.group(2))}</h{n}>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    flush()
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
