"""Options and helpers shared by the inspection commands."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, BinaryIO

import typer

from kcheckpoint.errors import FormatError
from kcheckpoint.inspect.model import InputInfo, Problem, SecretsWarning

from .output import OutputFormat, warn

ArchiveArgument = Annotated[
    str,
    typer.Argument(metavar="ARCHIVE", help="The archive, or '-' for stdin.", show_default=False),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-o",
        case_sensitive=False,
        help="Output format: text (tables), json (one document with a provenance header, "
        "sorted keys), jsonl (a record a line), csv, bodyfile (a mactime timeline) or auto "
        "(text on a terminal, jsonl when piped).",
    ),
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


def want_hash(hash_input: bool | None, fmt: OutputFormat) -> bool | None:
    """JSON reports carry the input's SHA-256 in their provenance, so they hash by default."""
    if hash_input is None and fmt is OutputFormat.json:
        return True
    return hash_input


def stdin_for(path: str) -> BinaryIO | None:
    """Standard input's binary stream when the path is '-'."""
    return sys.stdin.buffer if path == "-" else None


def report(
    source: InputInfo | str, problems: Sequence[Problem], warnings: Sequence[SecretsWarning]
) -> None:
    """Problems and the secrets warning of one archive, on stderr."""
    path = source if isinstance(source, str) else source.path
    for w in warnings:
        warn(f"{path}: {w.message}")
    for p in problems:
        warn(f"{path}: {p.source}: {p.message}")


def enforce_strict(strict: bool, path: str, problems: Sequence[Problem]) -> None:
    """Under --strict, any problem is a format error."""
    if strict and problems:
        raise FormatError(f"{path}: {len(problems)} problem(s) found (--strict)")
