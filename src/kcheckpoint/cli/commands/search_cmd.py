"""kcheckpoint search: a literal or a regex across every process's memory."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kcheckpoint.inspect.memory.search import Hit, SearchResult, compile_needle, search_archive
from kcheckpoint.render.jsonout import dump_line
from kcheckpoint.render.search import (
    CSV_COLUMNS,
    csv_row,
    csv_rows,
    hit_line,
    hits_foot,
    hits_head,
    search_text,
)

from ..common import (
    FormatOption,
    HashOption,
    StrictOption,
    enforce_strict,
    positional,
    report,
    stdin_for,
    want_hash,
)
from ..exit_codes import ExitCode
from ..fleet import SchedulerOption, TokenFileOption, WorkersOption, stream_checked, wants_fleet
from ..output import OutputFormat, Progress, out_now, warn
from ..report import Report, csv_line, emit, resolve_format

PidOption = Annotated[
    list[int] | None,
    typer.Option("--pid", "-p", help="Search only this process (repeatable). Default: all."),
]


def search(
    arguments: Annotated[
        list[str],
        positional(
            "ARCHIVE... PATTERN",
            "The archive ('-' for stdin), then what to look for; a pattern that starts with "
            "'-' goes after -e instead. Many archives: URLs, a capture service's "
            "https://NODE:10270/checkpoints, s3://BUCKET/PREFIX/, @FILE, globs (with -e, one "
            "such argument).",
        ),
    ],
    pattern_option: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            "-e",
            metavar="PATTERN",
            help="What to look for, even when it starts with '-' (as grep -e).",
        ),
    ] = None,
    regex: Annotated[
        bool, typer.Option("--regex", "-E", help="PATTERN is a Python regular expression.")
    ] = False,
    utf16: Annotated[
        bool, typer.Option("--utf16", help="Also find UTF-16LE text (JVM, .NET, Windows).")
    ] = False,
    ignore_case: Annotated[
        bool, typer.Option("--ignore-case", "-i", help="Match ASCII letters in any case.")
    ] = False,
    pid: PidOption = None,
    everywhere: Annotated[
        bool,
        typer.Option(
            "--everywhere",
            help="Also search rootfs-diff files, logs, spec.dump env and tmpfs/shm tarballs.",
        ),
    ] = False,
    context: Annotated[
        int,
        typer.Option(
            "--context",
            "-C",
            min=0,
            max=4096,
            help="Show N bytes on each side of a hit (non-printables escaped).",
        ),
    ] = 0,
    max_match: Annotated[
        int,
        typer.Option("--max-match", min=1, help="The longest regex match found across chunks."),
    ] = 4096,
    max_hits: Annotated[
        int,
        typer.Option("--max-hits", min=1, help="Report at most N hits (all are counted)."),
    ] = 100_000,
    fmt: FormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    token_file: TokenFileOption = None,
) -> int:
    """Search process memory for a literal (bytes) or, with --regex, a regular expression.

    The pattern is the second argument, or -e PATTERN when it starts with '-'
    (kcheckpoint search A -e -----BEGIN).

    Every process is searched unless --pid is given. Each hit shows pid, comm, virtual address,
    mapping (range, perms, backing), and the archive member and offset. Matches that cross
    chunk or pagemap-entry boundaries are found where memory is contiguous. Exit 0 with hits,
    1 without (as grep).

    Hits are written as they are found in text, jsonl and csv, so search ... | head stops the
    search early; --format json and --strict write once, at the end.
    """
    if (pattern_option is None and len(arguments) < 2) or (pattern_option and len(arguments) != 1):
        raise typer.BadParameter("give PATTERN or -e PATTERN (exactly one)", param_hint="PATTERN")
    archives = arguments if pattern_option is not None else arguments[:-1]
    wanted = pattern_option if pattern_option is not None else arguments[-1]
    try:
        needle = compile_needle(
            wanted, regex=regex, utf16=utf16, ignore_case=ignore_case, max_match=max_match
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATTERN") from exc
    if wants_fleet(archives, scheduler, workers, token_file, one_is_many=True):
        options = {
            "pattern": wanted,
            "regex": regex,
            "utf16": utf16,
            "ignore_case": ignore_case,
            "max_match": max_match,
            "pids": set(pid) if pid else None,
            "everywhere": everywhere,
            "context": context,
            "hash_input": want_hash(hash_input, fmt),
            "max_hits": max_hits,
        }
        return _many(archives, options, fmt, strict, scheduler, workers)
    (archive,) = archives
    progress = Progress(archive)
    stream = None if strict else HitStream.for_format(resolve_format(fmt), context > 0, progress)
    try:
        result = search_archive(
            archive,
            needle,
            stdin=stdin_for(archive),
            pids=set(pid) if pid else None,
            everywhere=everywhere,
            context=context,
            hash_input=want_hash(hash_input, fmt),
            progress=progress,
            max_hits=max_hits,
            on_hit=None if stream is None else stream.hit,
        )
    finally:
        progress.done()
    report(result.input, result.problems, result.warnings)
    if result.truncated:
        warn(f"{result.input.path}: {result.total_hits} hits; only the first {max_hits} are shown")
    enforce_strict(strict, result.input.path, result.problems)
    if stream is not None:
        stream.finish(result)
        return int(ExitCode.OK if result.hits else ExitCode.NEGATIVE)
    emit(
        Report(
            document=result,
            inputs=[result.input],
            text=lambda: search_text(result, context > 0),
            records=result.hits,
            csv_columns=CSV_COLUMNS,
            csv_rows=csv_rows(result),
        ),
        fmt,
    )
    return int(ExitCode.OK if result.hits else ExitCode.NEGATIVE)


def _many(
    archives: list[str],
    options: dict[str, Any],
    fmt: OutputFormat,
    strict: bool,
    scheduler: str | None,
    workers: int | None,
) -> int:
    """One row per archive, streamed; exit as a failure first, else 0 when any archive has a
    hit and 1 when none has."""

    def warn_truncated(result: SearchResult) -> None:
        if result.truncated:
            warn(
                f"{result.input.path}: {result.total_hits} hits; only the first "
                f"{options['max_hits']} are shown"
            )

    failure, results = stream_checked(
        "search",
        archives,
        options,
        fmt,
        strict,
        scheduler,
        workers,
        warn_about=warn_truncated,
        text_block=lambda r: search_text(r, options["context"] > 0),
        csv_columns=CSV_COLUMNS,
        csv_rows=csv_rows,
    )
    if failure is not None:
        return int(failure)
    return int(ExitCode.OK if any(r.hits for r in results) else ExitCode.NEGATIVE)


class HitStream:
    """Writes each hit the moment it is found (text rows, JSON Lines or CSV), so that
    ``search … | head`` answers at once and stops the search when it has read enough."""

    def __init__(self, fmt: OutputFormat, context: bool, progress: Progress) -> None:
        self.fmt = fmt
        self.context = context
        self.progress = progress
        self.started = False

    @classmethod
    def for_format(cls, fmt: OutputFormat, context: bool, progress: Progress) -> HitStream | None:
        """A stream for the formats written a record at a time; None for one JSON document."""
        if fmt in (OutputFormat.text, OutputFormat.jsonl, OutputFormat.csv):
            return cls(fmt, context, progress)
        return None

    def hit(self, found: Hit) -> None:
        if self.fmt is OutputFormat.jsonl:
            text = dump_line(found)
        elif self.fmt is OutputFormat.csv:
            text = csv_line(csv_row(found))
        else:
            text = hit_line(found, self.context)
        if not self.started and self.fmt is not OutputFormat.jsonl:
            text = self._head() + text
        self.started = True
        out_now(text, self.progress)

    def finish(self, result: SearchResult) -> None:
        """What follows the last hit: the count line of the text table, a CSV header alone."""
        if self.fmt is OutputFormat.text:
            out_now(hits_foot(result))
        elif self.fmt is OutputFormat.csv and not self.started:
            out_now(self._head())

    def _head(self) -> str:
        if self.fmt is OutputFormat.csv:
            return csv_line(CSV_COLUMNS)
        return hits_head(self.context)
