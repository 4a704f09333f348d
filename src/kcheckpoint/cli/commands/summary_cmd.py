"""kcheckpoint summary: one row per archive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint import errors
from kcheckpoint.inspect import summarize_path
from kcheckpoint.inspect.model import Summary
from kcheckpoint.render.summary import error_row, summary_row, summary_table

from ..common import (
    HashOption,
    StrictOption,
    TimelineFormatOption,
    enforce_strict,
    report,
    stdin_for,
    want_hash,
)
from ..exit_codes import ExitCode
from ..output import OutputFormat, Progress, error, warn
from ..report import Report, TimelineEvent, emit, epoch


def expand_paths(paths: list[str]) -> list[str]:
    """Each path as given; a directory means each checkpoint-* archive in it, sorted."""
    expanded: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            found = sorted(
                str(c)
                for c in Path(p).iterdir()
                if c.name.startswith("checkpoint-") and c.is_file()
            )
            if not found:
                warn(f"{p}: no checkpoint-* archives in this directory")
            expanded.extend(found)
        else:
            expanded.append(p)
    return expanded


def summary(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Archives, '-' for stdin, or directories (each checkpoint-* archive in them).",
            show_default=False,
        ),
    ],
    fmt: TimelineFormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", "-w", help="Also show container ID, runtime, creation time and IP (text)."
        ),
    ] = False,
) -> int:
    """Summarise checkpoint archives, one row each.

    Shows namespace, pod, container, engine, image, checkpoint time, processes, memory, rootfs
    changes and archive size (and the tar's size, for a compressed archive); --wide adds the
    container ID, runtime, creation time and IP. An unreadable archive gets an error row; the
    others still print, and the exit code is that of the first failure. Exit 1 when a directory
    holds no checkpoint-* archive and nothing else was given.
    """
    rows: list[dict[str, object]] = []
    table_rows: list[list[str]] = []
    failure: ExitCode | None = None
    archives = expand_paths(paths)
    if not archives:
        return int(ExitCode.NEGATIVE)  # only directories without archives (warned about)
    for path in archives:
        progress = Progress(path)
        try:
            result = summarize_path(
                path,
                stdin=stdin_for(path),
                hash_input=want_hash(hash_input, fmt),
                progress=progress,
            )
            progress.done()
            report(result.input, result.problems, result.warnings)
            enforce_strict(strict, result.input.path, result.problems)
        except errors.KCheckpointError as exc:
            progress.done()
            from .. import exit_code_for

            code = exit_code_for(exc)
            failure = failure or code
            error(exc.message, hint=exc.hint)
            rows.append(_row(path, None, exc, code))
            table_rows.append(error_row(display_name(path), exc.message, wide=wide))
            continue
        rows.append(_row(path, result, None, None))
        table_rows.append(summary_row(result, wide=wide))

    summaries = [r["summary"] for r in rows if isinstance(r["summary"], Summary)]
    emit(
        Report(
            document={"archives": rows},
            inputs=[s.input for s in summaries],
            text=lambda: summary_table(table_rows, wide=wide) if table_rows else "",
            records=rows,
            csv_columns=CSV_COLUMNS,
            csv_rows=[_csv_row(r) for r in rows],
            timeline=[e for s in summaries for e in _timeline(s)],
        ),
        fmt,
    )
    return int(failure or ExitCode.OK)


CSV_COLUMNS = (
    "path",
    "namespace",
    "pod",
    "container",
    "engine",
    "image",
    "created",
    "checkpointed",
    "processes",
    "main_command",
    "memory_bytes",
    "rootfs_changed",
    "rootfs_deleted",
    "archive_bytes",
    "sha256",
    "error",
)


def _csv_row(row: dict[str, object]) -> list[object]:
    s = row["summary"]
    err = row["error"]
    if not isinstance(s, Summary):
        message = err.get("message") if isinstance(err, dict) else None
        return [row["path"], *([None] * (len(CSV_COLUMNS) - 2)), message]
    c = s.container
    return [
        row["path"],
        c.namespace,
        c.pod,
        c.name,
        c.engine,
        c.image,
        c.created,
        c.checkpointed,
        s.processes,
        s.main_command,
        s.sizes.memory_pages,
        s.rootfs_changed,
        s.rootfs_deleted,
        s.input.size,
        s.input.sha256,
        None,
    ]


def _timeline(s: Summary) -> list[TimelineEvent]:
    who = s.container.name or "container"
    events = []
    if created := epoch(s.container.created):
        events.append(TimelineEvent(f"{s.input.path}: {who} created", crtime=created))
    if checkpointed := epoch(s.container.checkpointed):
        events.append(TimelineEvent(f"{s.input.path}: {who} checkpointed", mtime=checkpointed))
    if dumped := epoch(s.container.dumped):
        events.append(TimelineEvent(f"{s.input.path}: {who} dumped by CRIU", mtime=dumped))
    return events


def _row(
    path: str, result: Summary | None, exc: errors.KCheckpointError | None, code: ExitCode | None
) -> dict[str, object]:
    """A JSON row; every row has the same keys, and exactly one of summary/error is set."""
    err = None
    if exc is not None:
        err = {"type": type(exc).__name__, "message": exc.message, "exit_code": int(code or 0)}
    return {"path": display_name(path), "summary": result, "error": err}


def display_name(path: str) -> str:
    """An input's name in every output: standard input is <stdin>, as in ``input.path``."""
    return "<stdin>" if path == "-" else path
