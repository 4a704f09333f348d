"""kcheckpoint summary: one row per archive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint import errors
from kcheckpoint.inspect import summarize_path
from kcheckpoint.inspect.model import Summary
from kcheckpoint.render.jsonout import dumps, dumps_lines
from kcheckpoint.render.summary import error_row, summary_row, summary_table

from ..common import FormatOption, HashOption, StrictOption, enforce_strict, report, stdin_for
from ..exit_codes import ExitCode
from ..output import OutputFormat, Progress, error, out, warn


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
            help="Archives, '-' for stdin, or directories (each checkpoint-* archive in them).",
            show_default=False,
        ),
    ],
    fmt: FormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
) -> int:
    """Summarise checkpoint archives, one row each.

    Shows namespace, pod, container, engine, image, checkpoint time, processes, memory, rootfs
    changes and archive size. An unreadable archive gets an error row; the others still print,
    and the exit code is that of the first failure.
    """
    rows: list[dict[str, object]] = []
    table_rows: list[list[str]] = []
    failure: ExitCode | None = None
    for path in expand_paths(paths):
        progress = Progress(path)
        try:
            result = summarize_path(
                path, stdin=stdin_for(path), hash_input=hash_input, progress=progress
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
            table_rows.append(error_row(path, exc.message))
            continue
        rows.append(_row(path, result, None, None))
        table_rows.append(summary_row(result))

    if fmt is OutputFormat.json:
        out(dumps({"archives": rows}))
    elif fmt is OutputFormat.jsonl:
        out(dumps_lines(rows))
    elif table_rows:
        out(summary_table(table_rows))
    return int(failure or ExitCode.OK)


def _row(
    path: str, result: Summary | None, exc: errors.KCheckpointError | None, code: ExitCode | None
) -> dict[str, object]:
    """A JSON row; every row has the same keys, and exactly one of summary/error is set."""
    err = None
    if exc is not None:
        err = {"type": type(exc).__name__, "message": exc.message, "exit_code": int(code or 0)}
    return {"path": path, "summary": result, "error": err}
