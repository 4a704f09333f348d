"""Turn a command's result into the chosen output format, with provenance on JSON reports.

Every command whose output is data builds a :class:`Report` and calls :func:`emit`. Formats:
text (tables or trees), json (one document with a ``provenance`` header), jsonl (one record a
line), csv (the table's raw values), bodyfile (a mactime timeline, where the data has times), and
auto (text on a terminal, jsonl when piped).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from kcheckpoint import __version__
from kcheckpoint.render.jsonout import dump_line, dump_pieces, lazy_data, to_data

from .output import OutputFormat, out, out_each, run_state

if TYPE_CHECKING:
    from kcheckpoint.inspect.model import InputInfo


def _iso(moment: datetime | None) -> str | None:
    if moment is None or run_state["no_times"]:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of a mactime bodyfile: a path and the times known for it (epoch seconds)."""

    name: str
    mtime: int | None = None
    atime: int | None = None
    ctime: int | None = None
    crtime: int | None = None
    size: int = 0
    mode: str = "0"


@dataclass
class Report:
    """A command's data, ready for any format."""

    #: The JSON document: a model object, or a dict of model objects and plain values. It
    #: becomes plain data only as it is written.
    document: Any
    #: Inputs the report is about, for the provenance header.
    inputs: Sequence[InputInfo]
    #: Human text for --format text.
    text: Callable[[], str]
    #: JSON Lines records; defaults to none.
    records: Iterable[Any] = ()
    #: CSV: column names and rows of raw values.
    csv_columns: Sequence[str] = ()
    csv_rows: Iterable[Sequence[Any]] = ()
    #: Timeline events for --format bodyfile; None when the data has no times.
    timeline: Iterable[TimelineEvent] | None = None
    #: Extra provenance fields, e.g. the rule-set digest of a secret scan.
    extra_provenance: dict[str, Any] = field(default_factory=dict)


def provenance(inputs: Sequence[InputInfo], extra: dict[str, Any]) -> dict[str, Any]:
    """Who made this report, from what, and when (times left out under --no-times)."""
    data: dict[str, Any] = {
        "tool": "kcheckpoint",
        "version": __version__,
        "command": list(run_state["argv"]),
        "started": _iso(run_state["started"]),
        "finished": _iso(datetime.now(UTC)),
        "inputs": [
            {"path": i.path, "size": i.size, "compression": i.compression, "sha256": i.sha256}
            for i in inputs
        ],
    }
    data.update(extra)
    return data


def json_report_pieces(
    document: Any, inputs: Sequence[InputInfo], extra: dict[str, Any] | None = None
) -> Iterator[str]:
    """A JSON document with the provenance header added, in pieces for ``out_each``: a large
    report is never held as one string."""
    data = lazy_data(document)
    data["provenance"] = provenance(inputs, extra or {})
    return dump_pieces(data)


def resolve_format(fmt: OutputFormat) -> OutputFormat:
    """``auto`` is text on a terminal and jsonl when stdout is piped or redirected."""
    if fmt is OutputFormat.auto:
        return OutputFormat.text if sys.stdout.isatty() else OutputFormat.jsonl
    return fmt


def emit(report: Report, fmt: OutputFormat) -> None:
    """Write the report to stdout in the chosen format."""
    fmt = resolve_format(fmt)
    if fmt is OutputFormat.json:
        out_each(json_report_pieces(report.document, report.inputs, report.extra_provenance))
    elif fmt is OutputFormat.jsonl:
        out_each(dump_line(r) for r in report.records)
    elif fmt is OutputFormat.csv:
        if report.csv_columns:
            out_each(csv_lines(report.csv_columns, report.csv_rows))
        else:
            out_each(csv_lines(*records_as_table(report.records)))
    elif fmt is OutputFormat.bodyfile:
        if report.timeline is None:
            raise typer.BadParameter(
                "this command's output has no times; bodyfile is not available"
            )
        out(to_bodyfile(report.timeline))
    else:
        out(report.text())


def records_as_table(records: Iterable[Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows from JSON-ready records: nested objects flatten to dotted names, lists
    become JSON text. Used for CSV when a command declares no columns of its own."""
    flat = [_flatten(to_data(r)) for r in records]
    columns: list[str] = []
    for row in flat:
        columns.extend(k for k in row if k not in columns)
    return columns, [[row.get(c) for c in columns] for row in flat]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix or "value": data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, sort_keys=True)
        else:
            out[name] = value
    return out


def csv_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """RFC 4180 CSV with a header row, a line at a time; None is an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in _with_header(columns, rows):
        writer.writerow(["" if v is None else v for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def csv_line(values: Sequence[Any]) -> str:
    """One RFC 4180 CSV line; None is an empty cell."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _with_header(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    yield columns
    yield from rows


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV with a header row; None is an empty cell."""
    return "".join(csv_lines(columns, rows))


def to_bodyfile(events: Iterable[TimelineEvent]) -> str:
    """The Sleuth Kit bodyfile for mactime (3.x).

    Each line: MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime.
    """
    lines = []
    for e in events:
        name = e.name.replace("|", "\\|")
        times = [e.atime, e.mtime, e.ctime, e.crtime]
        fields = ["0", name, "0", e.mode, "0", "0", str(e.size), *[str(t or 0) for t in times]]
        lines.append("|".join(fields) + "\n")
    return "".join(lines)


def epoch(iso: str | None) -> int | None:
    """An ISO 8601 UTC time as epoch seconds."""
    if not iso:
        return None
    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
