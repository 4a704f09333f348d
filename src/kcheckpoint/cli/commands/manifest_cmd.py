"""kcheckpoint manifest and verify: per-member SHA-256, checkable with sha256sum -c."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint.errors import ArchiveNotFound, FormatError, InputError
from kcheckpoint.inspect.evidence.manifest import (
    Manifest,
    Structure,
    build_manifest,
    compare,
    parse_sha256sum,
    sha256sum_lines,
)
from kcheckpoint.render.text import table

from ..common import (
    ArchiveArgument,
    ArchivesArgument,
    FormatOption,
    positional,
    report,
    stdin_for,
)
from ..exit_codes import ExitCode
from ..fleet import (
    SchedulerOption,
    TokenFileOption,
    WorkersOption,
    outcomes,
    stream_rows,
    wants_fleet,
)
from ..output import OutputFormat, Progress, out, out_each
from ..report import Report, emit, json_report_pieces


class ManifestFormat(StrEnum):
    """Output formats of ``manifest``."""

    sha256sum = "sha256sum"
    json = "json"
    jsonl = "jsonl"


def manifest(
    archives: ArchivesArgument,
    fmt: Annotated[
        ManifestFormat,
        typer.Option(
            "--format",
            "-o",
            help="sha256sum (checkable with sha256sum -c), json, or jsonl (many archives: a "
            "row each).",
        ),
    ] = ManifestFormat.sha256sum,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    token_file: TokenFileOption = None,
) -> int:
    """Print the SHA-256 of every member, and of every file inside rootfs-diff.tar.

    Paths are where `kcheckpoint extract` writes each file (rootfs-diff.tar's files under
    rootfs-diff/), so `kcheckpoint extract A -d DIR && (cd DIR && sha256sum -c MANIFEST)` checks
    an extraction. Directories, links and devices are not hashed. With many archives, each
    one's lines follow a `# ARCHIVE` line.
    """
    fleet = wants_fleet(archives, scheduler, workers, token_file, one_is_many=True)
    if fleet or fmt is ManifestFormat.jsonl:
        return _many(archives, fmt, scheduler, workers)
    (archive,) = archives
    result = _build(archive)
    if fmt is ManifestFormat.json:
        out_each(json_report_pieces(result, [result.input]))
    else:
        out("".join(sha256sum_lines(result.entries)))
    return 0


def verify(
    archive: ArchiveArgument,
    manifest_file: Annotated[
        Path, positional("MANIFEST", "A manifest from `kcheckpoint manifest` (either format).")
    ],
    fmt: FormatOption = OutputFormat.text,
) -> int:
    """Check an archive against a manifest: exit 0 when every digest matches, 1 otherwise.

    Differing, missing and extra paths are listed. A JSON manifest also checks directories and
    links (added, removed or retargeted).
    """
    expected, structure = _read_manifest(manifest_file)
    result = _build(archive)
    mismatches = compare(expected, result, structure)

    def text() -> str:
        if mismatches:
            return table(("status", "path"), [[m.status, m.path] for m in mismatches])
        return f"OK: {len(result.entries)} files match {manifest_file}\n"

    emit(
        Report(
            document={"input": result.input, "match": not mismatches, "mismatches": mismatches},
            inputs=[result.input],
            text=text,
            records=mismatches,
            csv_columns=("path", "status", "expected", "actual"),
            csv_rows=[[m.path, m.status, m.expected, m.actual] for m in mismatches],
        ),
        fmt,
    )
    return int(ExitCode.NEGATIVE if mismatches else ExitCode.OK)


def _many(
    archives: list[str], fmt: ManifestFormat, scheduler: str | None, workers: int | None
) -> int:
    """One manifest per archive, streamed; the exit code is the first failure's."""
    formats = {
        ManifestFormat.sha256sum: OutputFormat.text,
        ManifestFormat.json: OutputFormat.json,
        ManifestFormat.jsonl: OutputFormat.jsonl,
    }
    failure, _ = stream_rows(
        outcomes("manifest", archives, {}, scheduler, workers),
        formats[fmt],
        "manifest",
        on_result=lambda r: report(r.input, r.problems, []),
        text_block=lambda r: "".join(sha256sum_lines(r.entries)),
        csv_columns=(),
        csv_rows=lambda r: [],
        header=lambda name: f"# {name}\n",
    )
    return int(failure or ExitCode.OK)


def _build(archive: str) -> Manifest:
    with Progress(archive) as progress:
        result = build_manifest(archive, stdin=stdin_for(archive), progress=progress)
    report(result.input, result.problems, [])
    return result


def _read_manifest(path: Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """Digests by path, and (JSON manifests only) the other members' types and link targets."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArchiveNotFound(f"{path}: no such manifest") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from exc
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
            digests = {str(e["path"]): str(e["sha256"]) for e in doc["entries"]}
            others = doc.get("structure")
            if others is None:  # a manifest written before it listed them
                return digests, None
            return digests, {
                str(o["path"]): Structure(o["path"], o["type"], o["linkname"]).key for o in others
            }
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise FormatError(f"{path}: not a kcheckpoint JSON manifest ({exc})") from exc
    return parse_sha256sum(text), None
