"""kcheckpoint diff: what changed between two checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kcheckpoint.inspect.diff import CheckpointDiff, DiffOptions, diff_archives
from kcheckpoint.inspect.diff.model import ProcessChange
from kcheckpoint.render.diff import diff_text
from kcheckpoint.render.jsonout import to_data

from ..common import (
    FormatOption,
    StrictOption,
    enforce_strict,
    report,
    stdin_for,
    want_hash,
)
from ..exit_codes import ExitCode
from ..output import OutputFormat, Progress, warn
from ..report import Report, emit

SECTIONS = ("metadata", "processes", "files", "sockets", "memory", "filesystem", "members")


def diff(
    path_a: Annotated[
        str, typer.Argument(metavar="A", help="Archive A (before), or '-' for stdin.")
    ],
    path_b: Annotated[
        str, typer.Argument(metavar="B", help="Archive B (after), or '-' for stdin.")
    ],
    fmt: FormatOption = OutputFormat.text,
    show_secrets: Annotated[
        bool,
        typer.Option(
            "--show-secrets", help="Show environment values that changed (they may hold secrets)."
        ),
    ] = False,
    ignore_time: Annotated[
        bool,
        typer.Option(
            "--ignore-time",
            help="Leave timestamps out: creation and checkpoint times, time-valued annotations.",
        ),
    ] = False,
    content: Annotated[
        bool,
        typer.Option(
            "--content",
            help="Show a unified diff of changed text files of the rootfs diff (files up to "
            "256 KiB, 400 lines each).",
        ),
    ] = False,
    hash_input: Annotated[
        bool | None,
        typer.Option(
            "--hash/--no-hash",
            help="Compute each input's SHA-256. Default: for --format json (provenance), and "
            "for both inputs when one is stdin; identical files are recognised byte for byte "
            "either way.",
            show_default=False,
        ),
    ] = None,
    strict: StrictOption = False,
) -> int:
    """Compare checkpoint A with checkpoint B: metadata, processes, open files, sockets, memory
    (per mapping, to the changed page), filesystem and members.

    Text output is grouped by section, counts first, each line marked A (added), D (removed or
    deleted), C (changed) or R (replaced: restarted under another pid). Exit 0 when nothing
    differs, 1 when something does. Environment values are redacted unless --show-secrets.
    """
    if path_a == "-" and path_b == "-":
        raise typer.BadParameter("only one of the two archives can be read from stdin ('-')")
    progress: dict[str, Progress] = {}

    def progress_for(path: str) -> Progress:
        progress[path] = Progress(path)
        return progress[path]

    try:
        result = diff_archives(
            path_a,
            path_b,
            stdin=stdin_for("-") if "-" in (path_a, path_b) else None,
            options=DiffOptions(
                show_secrets=show_secrets,
                ignore_time=ignore_time,
                content=content,
                hash_input=want_hash(hash_input, fmt),
            ),
            progress_for=progress_for,
        )
    finally:
        for p in progress.values():
            p.done()
    for label, side in (("a", result.a), ("b", result.b)):
        report(side.input, [p for p in result.problems if p.side == label], side.warnings)
    if show_secrets:
        warn("--show-secrets: changed environment values are shown; they may hold secrets")
    if content:
        warn("--content: file contents are shown; they may hold secrets")
    enforce_strict(strict, f"{result.a.input.path} / {result.b.input.path}", result.problems)
    emit(
        Report(
            document=result,
            inputs=[result.a.input, result.b.input],
            text=lambda: diff_text(result),
            records=records(result),
            csv_columns=CSV_COLUMNS,
            csv_rows=csv_rows(result),
        ),
        fmt,
    )
    return int(ExitCode.NEGATIVE if result.differences else ExitCode.OK)


def records(result: CheckpointDiff) -> list[dict[str, Any]]:
    """JSON Lines: a ``summary`` record, then one record per difference tagged by section."""
    head = to_data(result)
    summary = {"record": "summary"}
    summary.update({k: v for k, v in head.items() if k not in SECTIONS})
    out: list[dict[str, Any]] = [summary]
    for section in SECTIONS:
        for item in head[section]:
            out.append({"record": section, **item})
    return out


CSV_COLUMNS = ("section", "status", "what", "a", "b")


def csv_rows(result: CheckpointDiff) -> list[list[object]]:
    """One row per difference: section, status, what, A's value, B's value."""
    rows: list[list[object]] = []
    for m in result.metadata:
        rows.append(["metadata", m.status, m.key, m.a, m.b])
    for p in result.processes:
        rows.append(
            [
                "processes",
                p.status,
                _comm(p),
                p.a.pid if p.a else None,
                p.b.pid if p.b else None,
            ]
        )
    for f in result.files:
        rows.append(["files", f.status, f"{f.pid}:{f.fd} {f.description}", None, None])
    for s in result.sockets:
        rows.append(["sockets", s.status, f"{s.pid} {s.family} {s.local} -> {s.peer}", None, None])
    for mem in result.memory:
        rows.append(
            [
                "memory",
                mem.status,
                f"{mem.pid_a}/{mem.pid_b} {mem.comm_b or mem.comm_a}",
                mem.present_a,
                mem.present_b,
            ]
        )
    for c in result.filesystem:
        rows.append(
            [
                "filesystem",
                c.status,
                c.path,
                c.a.sha256 if c.a else None,
                c.b.sha256 if c.b else None,
            ]
        )
    for mb in result.members:
        rows.append(["members", mb.status, mb.name, mb.sha256_a, mb.sha256_b])
    return rows


def _comm(p: ProcessChange) -> str | None:
    ref = p.b or p.a
    return ref.comm if ref is not None else None
