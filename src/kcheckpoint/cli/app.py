"""The typer application: global options, and one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from kcheckpoint import __version__

from .commands import (
    capture_cmd,
    diff_cmd,
    extract_cmd,
    inspect_cmd,
    list_cmd,
    manifest_cmd,
    memory_cmd,
    search_cmd,
    secrets_cmd,
    serve_cmd,
    summary_cmd,
)
from .output import set_debug, set_quiet
from .report import set_no_times

app = typer.Typer(
    name="kcheckpoint",
    help=(
        "Capture, inspect, diff and search Kubernetes container checkpoint archives.\n\n"
        "Archives may be plain or compressed (gzip, bzip2, xz, zstd; detected by content) and "
        "are read from a path or from '-' (stdin). Data goes to stdout; warnings and errors to "
        "stderr. Exit codes: 0 ok, 1 negative result, 2 usage, 3 input error, 4 format error, "
        "5 capture error, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kcheckpoint {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Hide warnings and progress.")
    ] = False,
    no_times: Annotated[
        bool,
        typer.Option(
            "--no-times",
            help="Leave the start and end times out of JSON provenance, so that two reports of "
            "the same input compare equal byte for byte.",
        ),
    ] = False,
) -> None:
    set_debug(debug)
    set_quiet(quiet)
    set_no_times(no_times)


app.command("summary", no_args_is_help=True)(summary_cmd.summary)
app.command("list", no_args_is_help=True)(list_cmd.list_members)
app.command("manifest", no_args_is_help=True)(manifest_cmd.manifest)
app.command("verify", no_args_is_help=True)(manifest_cmd.verify)
app.command("extract", no_args_is_help=True)(extract_cmd.extract)
app.command("inspect", no_args_is_help=True)(inspect_cmd.inspect)
app.command("diff", no_args_is_help=True)(diff_cmd.diff)
app.command("serve")(serve_cmd.serve)
app.command("capture", no_args_is_help=True)(capture_cmd.capture)
app.command("memory", no_args_is_help=True)(memory_cmd.memory)
app.command("search", no_args_is_help=True)(search_cmd.search)
app.command("secrets", no_args_is_help=True)(secrets_cmd.secrets)
