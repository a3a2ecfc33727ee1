"""One live progress display in the driver, fed by the cells of any executor.

Cells send events (``start``, ``progress``, ``end``) through their executor's
queue; steps that run in the driver (rendering views, building a signature)
report through :meth:`Progress.step`. Three behaviours:

* a terminal (stderr is a TTY): one rich live panel with the overall bar
  (cells done / total, elapsed, ETA) and one line per running cell;
* not a terminal (a log file, CI): plain lines, one per finished cell and a
  status line at most every ``interval`` seconds, never bars;
* quiet: nothing.

The ETA extrapolates the mean wall time per cell finished in this session
over the cells left.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["Progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Progress of one run (see module docstring).

    Parameters
    ----------
    title : str
        E.g. ``"synthesis"``.
    quiet : bool
        Show nothing.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    interval : float
        Seconds between plain status lines.
    live : bool, optional
        Force (True) or forbid (False) the live panel; default: when
        ``stream`` is a terminal.
    """

    def __init__(
        self,
        title: str,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = 30.0,
        live: bool | None = None,
    ) -> None:
        self.title = title
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = interval
        self.live_mode = (not quiet) and (
            live if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        )
        self.total = 0
        self.reused = 0
        self.done = 0
        self.failed = 0
        self.running: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}
        self.started = time.monotonic()
        self._last_line = 0.0
        self._step: tuple[str, int, int] | None = None
        self._live: Any = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if self.live_mode:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._live = Live(self._render(), console=console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    # -- cells ---------------------------------------------------------------------------------
    def begin_cells(self, total: int, reused: int, labels: dict[str, str]) -> None:
        """Start counting: ``total`` cells of which ``reused`` were already finished."""
        self.total, self.reused, self.labels = total, reused, dict(labels)
        self.done = 0
        self.started = time.monotonic()
        self._step = None
        if reused:
            self._line(f"{self.title}: {reused} of {total} cells already finished, reused")
        self._refresh()

    def event(self, event: tuple[Any, ...]) -> None:
        """Handle one event sent by a cell."""
        kind, key = event[0], event[1]
        if kind == "start":
            self.running[key] = {"label": event[2], "text": "", "since": time.monotonic()}
        elif kind == "progress" and key in self.running:
            done, total, text = event[2], event[3], event[4]
            share = f"{100 * done / total:.0f}%" if total else ""
            self.running[key]["text"] = " ".join(t for t in (text, share) if t)
        elif kind == "end":
            self.running.pop(key, None)
        self._refresh()
        self._maybe_status()

    def cell_finished(self, key: str, ok: bool, seconds: float, device: str = "") -> None:
        """A cell's outcome reached the driver."""
        self.running.pop(key, None)
        if ok:
            self.done += 1
        else:
            self.failed += 1
        label = self.labels.get(key, key)
        where = f", {device}" if device else ""
        state = "done" if ok else "FAILED"
        position = self.reused + self.done + self.failed
        self._line(
            f"cell {position}/{self.total} {state}: {label} ({seconds:.1f} s{where}); "
            f"{self.eta_text()}"
        )
        self._refresh()

    def eta_text(self) -> str:
        """``"elapsed 1:02, ETA 3:10"`` (ETA unknown until a cell finished)."""
        elapsed = time.monotonic() - self.started
        left = self.total - self.reused - self.done - self.failed
        if self.done and left > 0:
            eta = format_seconds(elapsed / self.done * left)
        else:
            eta = "0:00" if left <= 0 else "?"
        return f"elapsed {format_seconds(elapsed)}, ETA {eta}"

    def _maybe_status(self) -> None:
        if self._live is not None or self.quiet or not self.running:
            return
        now = time.monotonic()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        running = "; ".join(
            f"{r['label']}{' ' + r['text'] if r['text'] else ''}" for r in self.running.values()
        )
        self._line(f"running: {running}")

    # -- driver steps --------------------------------------------------------------------------
    def step(self, name: str, done: int, total: int) -> None:
        """Progress of a step run by the driver (views, signature ...)."""
        self._step = (name, done, total)
        if self._live is not None:
            self._refresh()
            return
        now = time.monotonic()
        if done >= total or now - self._last_line >= self.interval:
            self._last_line = now
            self._line(f"{name}: {done}/{total}")

    def message(self, text: str) -> None:
        """A one-line notice (shown unless quiet)."""
        self._line(text)

    # -- rendering -----------------------------------------------------------------------------
    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        if self._step is not None and self.total == 0:
            name, done, total = self._step
            table.add_row(
                f"{name}", ProgressBar(total=max(total, 1), completed=done, width=30),
                f"{done}/{total}",
            )  # fmt: skip
            return table
        finished = self.reused + self.done + self.failed
        table.add_row(
            f"{self.title} cells",
            ProgressBar(total=max(self.total, 1), completed=finished, width=30),
            f"{finished}/{self.total}  {self.eta_text()}",
        )
        for item in list(self.running.values())[:12]:
            table.add_row("  " + item["label"], "", item["text"])
        return table
