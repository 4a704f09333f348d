"""Options and helpers shared by the inspection commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Protocol, TypedDict

import typer

from kcheckpoint.errors import FormatError
from kcheckpoint.inspect.model import InputInfo, Problem, SecretsWarning
from kcheckpoint.oci.inputs import register as _register_image_inputs

from .output import OutputFormat, Progress, warn

if TYPE_CHECKING:
    from kcheckpoint.oci.spec import Reference

# Every command that reads an archive imports this module, and then also opens images
# (oci:, oci-archive:, docker://). Done here, not at start-up, so that --help stays light.
_register_image_inputs()


def positional(metavar: str, help: str) -> Any:
    """A positional argument, shown in help by its metavar and never with a default."""
    return typer.Argument(metavar=metavar, help=help, show_default=False)


ArchiveArgument = Annotated[str, positional("ARCHIVE", "The archive, or '-' for stdin.")]
_ARCHIVES = positional(
    "ARCHIVE...",
    "The archive, or '-' for stdin. Many: URLs, a capture service's "
    "https://NODE:10270/checkpoints, s3://BUCKET/PREFIX/, @FILE, globs.",
)
#: One archive or many, where they live (see ``fleet``).
ArchivesArgument = Annotated[list[str], _ARCHIVES]
#: The same, for a command that also runs without one.
OptionalArchivesArgument = Annotated[list[str] | None, _ARCHIVES]
_FORMAT_HELP = {
    "text": "text (for people)",
    "json": "json (one document with a provenance header, sorted keys)",
    "jsonl": "jsonl (a record a line)",
    "csv": "csv (raw values)",
    "bodyfile": "bodyfile (a mactime timeline)",
    "auto": "auto (text on a terminal, jsonl when piped)",
}


def format_choice(*allowed: OutputFormat) -> Any:
    """--format that takes exactly the formats a command produces and refuses the rest (exit 2)."""
    names = [f.value for f in allowed]

    def parse(value: str | OutputFormat) -> OutputFormat:
        text = str(getattr(value, "value", value)).lower()
        if text not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
        return OutputFormat(text)

    def complete(incomplete: str) -> list[str]:
        return [n for n in names if n.startswith(incomplete)]

    described = [_FORMAT_HELP[n] for n in names]
    return typer.Option(
        "--format",
        "-o",
        parser=parse,
        metavar="[" + "|".join(names) + "]",
        autocompletion=complete,
        help="Output format: " + ", ".join(described[:-1]) + " or " + described[-1] + ".",
    )


#: The formats of every table.
_TABLE_FORMATS = (OutputFormat.text, OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv)
#: Tables that have times: every format, a mactime timeline too.
TimelineFormatOption = Annotated[
    OutputFormat, format_choice(*_TABLE_FORMATS, OutputFormat.bodyfile, OutputFormat.auto)
]
#: Tables without times.
FormatOption = Annotated[OutputFormat, format_choice(*_TABLE_FORMATS, OutputFormat.auto)]
#: Outputs that are not tables (a tree, a file list, a status line).
DocumentFormatOption = Annotated[
    OutputFormat, format_choice(OutputFormat.text, OutputFormat.json, OutputFormat.jsonl)
]
HashOption = Annotated[
    bool | None,
    typer.Option(
        "--hash/--no-hash",
        help=(
            "Compute the input's SHA-256. Default: yes for compressed or piped input (read whole "
            "anyway) and for JSON reports (their provenance carries it), no otherwise for a "
            "plain file on disk (read only where needed)."
        ),
        show_default=False,
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Treat problems found in the archive as errors (exit 4)."),
]
#: --insecure of the commands that push an image.
InsecureOption = Annotated[
    bool,
    typer.Option("--insecure", help="Push over plain http; only to a registry on loopback."),
]


def authfile_option(help: str) -> Any:
    """--authfile FILE of the commands that push an image: the registry credentials."""
    return typer.Option("--authfile", metavar="FILE", dir_okay=False, help=help)


def push_reference(text: str, insecure: bool, param_hint: str) -> Reference:
    """Where an image is pushed, checked before any work: a registry reference, and one on
    loopback under --insecure."""
    from kcheckpoint.oci.spec import Reference

    try:
        ref = Reference.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from exc
    if insecure and not ref.loopback:
        raise typer.BadParameter("--insecure is only for a registry on loopback")
    return ref


def want_hash(hash_input: bool | None, fmt: OutputFormat) -> bool | None:
    """JSON reports carry the input's SHA-256 in their provenance, so they hash by default."""
    if hash_input is None and fmt is OutputFormat.json:
        return True
    return hash_input


def stdin_for(path: str) -> BinaryIO | None:
    """Standard input's binary stream when the path is '-'."""
    return sys.stdin.buffer if path == "-" else None


class ReadOptions(TypedDict):
    """The keyword arguments with which the library reads an archive for a command."""

    stdin: BinaryIO | None
    hash_input: bool | None
    progress: Progress


@contextlib.contextmanager
def reading(archive: str, hash_input: bool | None, fmt: OutputFormat) -> Iterator[ReadOptions]:
    """How a command reads its archive: standard input for '-', hashed as :func:`want_hash`
    says, with a progress line that is cleared however the read ends."""
    with Progress(archive) as progress:
        yield ReadOptions(
            stdin=stdin_for(archive), hash_input=want_hash(hash_input, fmt), progress=progress
        )


def report(
    source: InputInfo | str, problems: Sequence[Problem], warnings: Sequence[SecretsWarning]
) -> None:
    """Problems and the secrets warning of one archive, on stderr."""
    path = source if isinstance(source, str) else source.path
    for w in warnings:
        warn(f"{path}: {w.message}")
    shown: dict[str, int] = {}
    for p in problems:
        shown[p.kind] = shown.get(p.kind, 0) + 1
        if shown[p.kind] <= PROBLEMS_PER_KIND:
            warn(f"{path}: {p.source}: {p.message}")
    for kind, count in shown.items():
        if count > PROBLEMS_PER_KIND:
            more = count - PROBLEMS_PER_KIND
            warn(f"{path}: {more} more problem(s) of kind {kind} (all of them are in JSON output)")


#: Problems of one kind shown on stderr; a hostile archive may hold thousands.
PROBLEMS_PER_KIND = 20


def enforce_strict(strict: bool, path: str, problems: Sequence[Problem]) -> None:
    """Under --strict, any problem is a format error."""
    if strict and problems:
        raise FormatError(f"{path}: {len(problems)} problem(s) found (--strict)")


class ArchiveResult(Protocol):
    """What reading one archive gives every command: the input, problems and warnings."""

    @property
    def input(self) -> InputInfo: ...
    @property
    def problems(self) -> Sequence[Problem]: ...
    @property
    def warnings(self) -> Sequence[SecretsWarning]: ...


def settle(result: ArchiveResult, strict: bool) -> None:
    """A result's problems and warnings on stderr; under --strict, its problems fail the run."""
    report(result.input, result.problems, result.warnings)
    enforce_strict(strict, result.input.path, result.problems)
