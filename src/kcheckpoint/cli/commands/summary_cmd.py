"""kcheckpoint summary: one row per archive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint import errors
from kcheckpoint.inspect import summarize_path
from kcheckpoint.inspect.model import Summary
from kcheckpoint.render.jsonout import dumps_lines
from kcheckpoint.render.summary import error_row, summary_row, summary_table

from ..common import (
    HashOption,
    StrictOption,
    TimelineFormatOption,
    positional,
    reading,
    settle,
    want_hash,
)
from ..exit_codes import ExitCode
from ..fleet import (
    SchedulerOption,
    TokenFileOption,
    WorkersOption,
    error_data,
    failure_code,
    outcomes,
    wants_fleet,
)
from ..output import OutputFormat, error, out, warn
from ..report import Report, TimelineEvent, emit, epoch, resolve_format


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
        positional(
            "PATH", "Archives, '-' for stdin, or directories (each checkpoint-* archive in them)."
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
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    token_file: TokenFileOption = None,
) -> int:
    """Summarise checkpoint archives, one row each.

    Shows namespace, pod, container, engine, image, checkpoint time, processes, memory, rootfs
    changes and archive size (and the tar's size, for a compressed archive); --wide adds the
    container ID, runtime, creation time and IP. An unreadable archive gets an error row; the
    others still print, and the exit code is that of the first failure. Exit 1 when a directory
    holds no checkpoint-* archive and nothing else was given. Archives may live elsewhere:
    http(s) and s3:// URLs, a capture service's https://NODE:10270/checkpoints, an
    s3://BUCKET/PREFIX/, @FILE (one input a line) and globs; --workers or --scheduler spread
    them over Dask.
    """
    rows: list[dict[str, object]] = []
    table_rows: list[list[str]] = []
    failure: ExitCode | None = None
    fleet = wants_fleet(paths, scheduler, workers, token_file, one_is_many=False)
    if fleet:
        options = {"hash_input": want_hash(hash_input, fmt)}
        streaming = resolve_format(fmt) is OutputFormat.jsonl
        for outcome in outcomes("summary", paths, options, scheduler, workers):
            if outcome.failure is not None:
                code = failure_code(outcome)
                failure = failure or code
                row = {"path": outcome.name, "summary": None, "error": error_data(outcome, code)}
                table_rows.append(error_row(outcome.name, outcome.failure.message, wide=wide))
            else:
                result = outcome.result
                try:
                    settle(result, strict)
                    row = _row(outcome.name, result, None, None)
                    table_rows.append(summary_row(result, wide=wide))
                except errors.KCheckpointError as exc:
                    code = _fail(exc)
                    failure = failure or code
                    row = _row(outcome.name, None, exc, code)
                    table_rows.append(error_row(outcome.name, exc.message, wide=wide))
            rows.append(row)
            if streaming:
                out(dumps_lines([row]))
        if streaming:
            return int(failure or ExitCode.OK)
    archives = [] if fleet else expand_paths(paths)
    if not fleet and not archives:
        return int(ExitCode.NEGATIVE)  # only directories without archives (warned about)
    for path in archives:
        try:
            with reading(path, hash_input, fmt) as how:
                result = summarize_path(path, **how)
            settle(result, strict)
        except errors.KCheckpointError as exc:
            code = _fail(exc)
            failure = failure or code
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


def _fail(exc: errors.KCheckpointError) -> ExitCode:
    from .. import exit_code_for

    error(exc.message, hint=exc.hint)
    return exit_code_for(exc)


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
