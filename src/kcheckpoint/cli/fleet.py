"""Many archives in one run for summary, secrets, search and manifest: their --scheduler,
--workers and --token-file options, and the rows they stream (one per archive, in input
order, as each is ready; a failed input is an error row and the run goes on)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from kcheckpoint.render.jsonout import dumps_lines

from .common import report
from .exit_codes import ExitCode
from .output import OutputFormat, error, is_quiet, out, out_each
from .report import json_report_pieces, resolve_format, to_csv

SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        help="Send the per-archive work to this Dask scheduler (tcp://HOST:8786); its workers "
        "read the archives where they live. Needs kcheckpoint[fleet].",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Start a local Dask cluster with N worker processes for the run. Needs "
        "kcheckpoint[fleet].",
        show_default=False,
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        metavar="FILE",
        help="The bearer token for http(s) inputs (a capture service). Default: "
        "$KCHECKPOINT_TOKEN. Never on the command line.",
        show_default=False,
    ),
]


def wants_fleet(
    arguments: Sequence[str],
    scheduler: str | None,
    workers: int | None,
    token_file: Path | None,
    *,
    one_is_many: bool,
) -> bool:
    """True when the run is over many archives, or on Dask. First the token in ``token_file``
    goes to the remote reader: one archive may be remote too.

    ``one_is_many``: the command took one archive until now, so more than one argument, or
    one that stands for many (a directory included), is a fleet run. summary always took many
    paths and directories; for it only @FILE, listings, prefixes and globs are.
    """
    if token_file is not None:
        from kcheckpoint.remote.inputs import read_token_file, set_token

        set_token(read_token_file(token_file))
    if scheduler is not None or workers is not None:
        return True
    from kcheckpoint.remote.expand import is_many

    if one_is_many:
        return len(arguments) > 1 or any(is_many(a) for a in arguments)
    return any(is_many(a) and not Path(a).is_dir() for a in arguments)


class FleetProgress:
    """One line on stderr (a terminal only) for the whole run: archives done, failed, left."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._done = 0
        self._failed = 0
        self._enabled = sys.stderr.isatty() and not is_quiet()
        self._last = 0.0

    def update(self, failed: bool) -> None:
        self._done += 1
        self._failed += failed
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self._done < self._total:
            return
        self._last = now
        sys.stderr.write(
            f"\r\033[Karchives: {self._done}/{self._total} done, {self._failed} failed"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self._enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def outcomes(
    command: str,
    arguments: Sequence[str],
    options: dict[str, Any],
    scheduler: str | None,
    workers: int | None,
) -> Iterator[Any]:
    """Every archive the arguments name, read where it lives, as Outcomes in input order."""
    from kcheckpoint.remote.expand import expand
    from kcheckpoint.remote.fanout import Cluster, run_dask, run_local
    from kcheckpoint.remote.inputs import current_token
    from kcheckpoint.remote.tasks import Failure, Job, Outcome, Token

    if scheduler is not None and workers is not None:
        raise typer.BadParameter("give --scheduler or --workers, not both")
    on_dask = scheduler is not None or workers is not None
    if on_dask and "-" in arguments:
        raise typer.BadParameter("standard input cannot be sent to Dask workers")
    token = current_token()
    targets = expand(list(arguments), token=token)
    names = [t.name for t in targets if t.error is None]
    job = Job(command, options, Token(token) if token and on_dask else None)
    if on_dask:
        results = run_dask(job, names, Cluster(scheduler, workers))
    else:
        results = run_local(job, names)
    progress = FleetProgress(len(targets))
    try:
        for index, target in enumerate(targets):
            if target.error is not None:
                outcome = Outcome(index, target.name, failure=Failure.of(target.error))
            else:
                outcome = next(results)
                outcome = Outcome(index, outcome.name, outcome.result, outcome.failure)
            progress.update(outcome.failure is not None)
            yield outcome
    finally:
        progress.done()
        close = getattr(results, "close", None)
        if close is not None:
            close()


def failure_code(outcome: Any) -> ExitCode:
    """The exit code of a failed archive (and its error line on stderr)."""
    from . import exit_code_for

    exc = outcome.failure.error()
    if exc is None:
        error(f"{outcome.name}: internal error: {outcome.failure.message}")
        return ExitCode.INTERNAL
    message = (
        exc.message if exc.message.startswith(outcome.name) else (f"{outcome.name}: {exc.message}")
    )
    error(message, hint=exc.hint)
    return exit_code_for(exc)


def error_data(outcome: Any, code: ExitCode) -> dict[str, Any]:
    failure = outcome.failure
    return {"type": failure.type, "message": failure.message, "exit_code": int(code)}


def stream_rows(
    rows: Iterator[Any],
    fmt: OutputFormat,
    key: str,
    *,
    on_result: Callable[[Any], None],
    text_block: Callable[[Any], str],
    csv_columns: Sequence[str],
    csv_rows: Callable[[Any], list[list[Any]]],
    extra_provenance: Callable[[list[Any]], dict[str, Any]] | None = None,
    header: Callable[[str], str] = lambda name: f"== {name}\n",
) -> tuple[ExitCode | None, list[Any]]:
    """Write each archive's row as it comes: text blocks, JSON lines or CSV rows stream; a JSON
    document is written at the end. Returns the first failure's exit code and the results."""
    fmt = resolve_format(fmt)
    if fmt is OutputFormat.bodyfile:
        raise typer.BadParameter("bodyfile is not available for this command")
    first_failure: ExitCode | None = None
    results: list[Any] = []
    documents: list[dict[str, Any]] = []
    if fmt is OutputFormat.csv:
        out(to_csv(["archive", *csv_columns, "error"], []))
    for outcome in rows:
        code = failure_code(outcome) if outcome.failure is not None else None
        if code is not None:
            first_failure = first_failure or code
        else:
            results.append(outcome.result)
            on_result(outcome.result)
        row = {
            "path": outcome.name,
            key: outcome.result,
            "error": error_data(outcome, code) if code is not None else None,
        }
        if fmt is OutputFormat.jsonl:
            out(dumps_lines([row]))
        elif fmt is OutputFormat.json:
            documents.append(row)
        elif fmt is OutputFormat.csv:
            if code is not None:
                lines = [[outcome.name, *([None] * len(csv_columns)), outcome.failure.message]]
            else:
                lines = [[outcome.name, *r, None] for r in csv_rows(outcome.result)]
            out(to_csv([], lines).split("\n", 1)[1])
        else:
            body = f"error: {outcome.failure.message}\n" if code is not None else None
            out(f"{header(outcome.name)}{body or text_block(outcome.result)}\n")
    if fmt is OutputFormat.json:
        extra = extra_provenance(results) if extra_provenance else {}
        out_each(json_report_pieces({"archives": documents}, [r.input for r in results], extra))
    return first_failure, results


def stream_checked(
    command: str,
    archives: Sequence[str],
    options: dict[str, Any],
    fmt: OutputFormat,
    strict: bool,
    scheduler: str | None,
    workers: int | None,
    *,
    warn_about: Callable[[Any], None],
    text_block: Callable[[Any], str],
    csv_columns: Sequence[str],
    csv_rows: Callable[[Any], list[list[Any]]],
    extra_provenance: Callable[[list[Any]], dict[str, Any]] | None = None,
) -> tuple[ExitCode | None, list[Any]]:
    """:func:`stream_rows` over every archive the arguments name. Each result's problems and
    warnings go to stderr as it comes, then whatever ``warn_about`` says of it; under --strict
    an archive with problems fails the run (exit 4) once every row is written, unless an archive
    failed first."""
    strict_failure: ExitCode | None = None

    def check(result: Any) -> None:
        nonlocal strict_failure
        report(result.input, result.problems, result.warnings)
        warn_about(result)
        if strict and result.problems:
            error(f"{result.input.path}: {len(result.problems)} problem(s) found (--strict)")
            strict_failure = ExitCode.FORMAT

    failure, results = stream_rows(
        outcomes(command, archives, options, scheduler, workers),
        fmt,
        command,
        on_result=check,
        text_block=text_block,
        csv_columns=csv_columns,
        csv_rows=csv_rows,
        extra_provenance=extra_provenance,
    )
    return failure or strict_failure, results
