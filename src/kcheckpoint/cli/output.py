"""Where output goes: data to stdout, warnings, progress and errors to stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kcheckpoint.render.text import printable

from .exit_codes import StdoutClosed

_state = {"debug": False, "quiet": False}
#: This run's command line, start time, and whether JSON provenance leaves times out.
run_state: dict[str, Any] = {"argv": [], "started": None, "no_times": False}


def start_run(argv: Sequence[str]) -> None:
    """Record the command line and start time of this run, and reset the global options."""
    run_state.update(argv=["kcheckpoint", *argv], started=datetime.now(UTC), no_times=False)
    _state.update(debug=False, quiet=False)


def set_no_times(value: bool) -> None:
    run_state["no_times"] = value


class OutputFormat(StrEnum):
    """--format values for commands whose output is data."""

    text = "text"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    bodyfile = "bodyfile"
    auto = "auto"


def set_debug(value: bool) -> None:
    _state["debug"] = value


def is_debug() -> bool:
    return _state["debug"]


def set_quiet(value: bool) -> None:
    _state["quiet"] = value


def is_quiet() -> bool:
    return _state["quiet"]


def out(text: str) -> None:
    """Write data to stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def out_each(pieces: Iterable[str]) -> None:
    """Write data to stdout a piece at a time (a record, a row): when the reader goes away, the
    first write that fails stops the output, and no more is built."""
    for piece in pieces:
        sys.stdout.write(piece)
    sys.stdout.flush()


def out_now(text: str, progress: Progress | None = None) -> None:
    """Write data found during a long pass at once (``search | head`` sees the first row while
    the search goes on). A reader that went away stops the pass: ``StdoutClosed``, not an
    ``OSError`` that a reader of the archive could take for its own."""
    if progress is not None:
        progress.done()  # the row replaces the progress line, not follows it
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError as exc:
        raise StdoutClosed() from exc


def error(message: str, *, hint: str | None = None) -> None:
    """One line on stderr (control characters escaped), and an optional hint."""
    sys.stderr.write(f"error: {printable(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {printable(hint)}\n")


def warn(message: str, *more: str) -> None:
    """A warning on stderr (silenced by --quiet); archive names in it cannot forge a line.

    ``more`` are continuation lines, indented under it."""
    if not _state["quiet"]:
        sys.stderr.write(f"warning: {printable(message)}\n")
        for line in more:
            sys.stderr.write(f"  {printable(line)}\n")


class Progress:
    """A one-line progress indicator on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._enabled = sys.stderr.isatty() and not _state["quiet"]
        self._shown = False
        self._last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        mib = done / (1 << 20)
        if total:
            pct = min(100.0, 100.0 * done / total)
            text = (
                f"\rreading {self._label}: {mib:,.0f} / {total / (1 << 20):,.0f} MiB ({pct:.0f}%)"
            )
        else:
            text = f"\rreading {self._label}: {mib:,.0f} MiB"
        sys.stderr.write(text)
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """The line is cleared however the read ends, before any message about it."""
        self.done()
