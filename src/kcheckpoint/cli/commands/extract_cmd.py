"""kcheckpoint extract: write members, or files from rootfs-diff.tar, safely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint.errors import MemberNotFound
from kcheckpoint.inspect.evidence.extract import ExtractResult, check_output_dir, extract_archive
from kcheckpoint.inspect.evidence.manifest import ManifestEntry, sha256sum_lines
from kcheckpoint.inspect.memory.extract import extract_memory
from kcheckpoint.render.jsonout import dumps, dumps_lines
from kcheckpoint.render.text import printable

from ..common import ArchiveArgument, DocumentFormatOption, positional, report, stdin_for
from ..exit_codes import ExitCode
from ..output import OutputFormat, Progress, error, out, out_each, warn
from ..report import json_report_pieces


def extract(
    archive: ArchiveArgument,
    paths: Annotated[
        list[str] | None,
        positional(
            "MEMBER|PATH",
            "Members or directories (checkpoint/), or rootfs-diff/PATH for files inside "
            "rootfs-diff.tar. Default: everything.",
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output-dir", "-d", help="Where to write (created 0700 if missing).")
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    memory: Annotated[
        int | None,
        typer.Option(
            "--memory",
            metavar="PID",
            help="Write this process's memory instead: one file per mapping, named by its "
            "address range, in DIR/memory-PID/, with index.json beside them.",
        ),
    ] = None,
    fmt: DocumentFormatOption = OutputFormat.text,
) -> int:
    """Extract archive members, or files from inside rootfs-diff.tar, safely.

    Names with '..', absolute names and links pointing outside the output directory are refused;
    nothing is written through a link; existing files are kept unless --force; directories are
    created 0700 and files 0600, because these bytes may be secrets. Each file is written whole or
    not at all. Prints what it wrote in sha256sum format (text) or as JSON.

    Exit codes: 0 all written; 3 a selected path is not in the archive or a file exists; 4 the
    archive holds members that are refused (unsafe names or links, devices, FIFOs, dangling hard
    links); the others are still extracted.
    """
    check_output_dir(output)
    if memory is not None:
        return _extract_memory(archive, output, memory, bool(paths), force, fmt)
    with Progress(archive) as progress:
        result = extract_archive(
            archive, output, paths or [], force=force, stdin=stdin_for(archive), progress=progress
        )
    report(result.input, result.problems, [])
    _print(result, fmt)
    for refused in result.refused:
        warn(f"refused {refused.path}: {refused.message}")
    held = [r for r in result.refused if r.reason != "exists"]
    if held:
        kinds = sorted({r.reason for r in held})
        error(
            f"{result.input.path}: refused {len(held)} member(s) the archive holds "
            f"({', '.join(kinds)}); the rest was extracted",
            hint=_REFUSAL_HINTS[kinds[0]] if len(kinds) == 1 else None,
        )
        return int(ExitCode.FORMAT)
    if result.unmatched:
        exc = MemberNotFound(f"not in the archive: {', '.join(result.unmatched)}")
        error(exc.message, hint="`kcheckpoint list ARCHIVE` shows every member")
        return int(ExitCode.INPUT)
    if result.refused:
        error(
            f"refused {len(result.refused)} member(s) that already exist",
            hint="--force overwrites existing files",
        )
        return int(ExitCode.INPUT)
    return int(ExitCode.OK)


#: Why a kind of refusal happened, for the hint line.
_REFUSAL_HINTS = {
    "unsafe": "names with '..', absolute names, links leaving the output and names too long "
    "to create are never extracted",
    "unsupported": "devices, FIFOs, sparse files and hard links to members that were not "
    "extracted are never created",
}


def _print(result: ExtractResult, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        out_each(json_report_pieces(result, [result.input]))
    elif fmt is OutputFormat.jsonl:
        out(dumps_lines(result.written))
    else:
        files = [ManifestEntry(w.path, w.size, w.sha256 or "") for w in result.written if w.sha256]
        # sha256sum's own escaping covers '\\' and newlines; other controls are escaped too
        out("".join(printable(line.rstrip("\n")) + "\n" for line in sha256sum_lines(files)))


def _extract_memory(
    archive: str, output: Path, pid: int, has_paths: bool, force: bool, fmt: OutputFormat
) -> int:
    if has_paths:
        raise typer.BadParameter("--memory writes a process's memory; give no member names")
    if archive == "-":
        raise typer.BadParameter("--memory reads the archive twice; give a file, not '-'")
    with Progress(archive) as progress:
        result = extract_memory(archive, output, pid, force=force, progress=progress)
    report(result.input, result.problems, [])
    warn(f"{result.directory}: process memory may hold passwords, keys and tokens (files are 0600)")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    with os.fdopen(os.open(result.index, flags, 0o600), "w", encoding="utf-8") as fh:
        fh.write(dumps(result))
    prefix = os.path.relpath(result.directory, output)
    if fmt is OutputFormat.json:
        out_each(json_report_pieces(result, [result.input]))
    elif fmt is OutputFormat.jsonl:
        out(dumps_lines(result.mappings))
    else:
        files = [
            ManifestEntry(f"{prefix}/{m.file}", m.size, m.sha256)
            for m in result.mappings
            if m.file and m.sha256
        ]
        out("".join(sha256sum_lines(files)))
    return int(ExitCode.OK)
