"""The typer application: global options, and one module per command, loaded on demand."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Annotated

import typer

from kcheckpoint import __version__

from .output import set_debug, set_quiet
from .report import set_no_times

#: Every command: its module in cli/commands and the function. A run imports only the module of
#: the command it runs (all of them for --help), so start-up stays quick.
COMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("summary_cmd", "summary"),
    "list": ("list_cmd", "list_members"),
    "inspect": ("inspect_cmd", "inspect"),
    "memory": ("memory_cmd", "memory"),
    "search": ("search_cmd", "search"),
    "secrets": ("secrets_cmd", "secrets"),
    "diff": ("diff_cmd", "diff"),
    "manifest": ("manifest_cmd", "manifest"),
    "verify": ("manifest_cmd", "verify"),
    "extract": ("extract_cmd", "extract"),
    "serve": ("serve_cmd", "serve"),
    "capture": ("capture_cmd", "capture"),
}
#: Commands that run with no arguments (the others show their help instead).
_RUN_WITHOUT_ARGS = {"serve"}
_GLOBAL_FLAGS = {"--debug", "--quiet", "-q", "--no-times"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kcheckpoint {__version__}")
        raise typer.Exit(0)


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


def _command_in(argv: Sequence[str]) -> str | None:
    """The command a command line runs, or None (help, version, or an unknown name)."""
    for arg in argv:
        if arg in _GLOBAL_FLAGS:
            continue
        return arg if arg in COMMANDS else None
    return None


def build_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """The typer app, with only the command ``argv`` runs (every command when None or help)."""
    app = typer.Typer(
        name="kcheckpoint",
        help=(
            "Capture, inspect, diff and search Kubernetes container checkpoint archives.\n\n"
            "Archives may be plain or compressed (gzip, bzip2, xz, zstd; detected by content) and "
            "are read from a path or from '-' (stdin). Data goes to stdout; warnings and errors "
            "to stderr. Exit codes: 0 ok, 1 negative result, 2 usage, 3 input error, 4 format "
            "error, 5 capture error, 130 interrupted."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_global)
    wanted = _command_in(argv) if argv is not None else None
    for name, (module, function) in COMMANDS.items():
        if wanted is not None and name != wanted:
            continue
        loaded = importlib.import_module(f"{__package__}.commands.{module}")
        app.command(name, no_args_is_help=name not in _RUN_WITHOUT_ARGS)(getattr(loaded, function))
    return app


def __getattr__(name: str) -> typer.Typer:
    """``kcheckpoint.cli.app.app``: the app with every command, for tools that list them."""
    if name == "app":
        return build_app()
    raise AttributeError(name)
