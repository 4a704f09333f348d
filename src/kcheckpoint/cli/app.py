"""The typer application: global options, and one module per command, loaded on demand.

A run imports only the module of the command it runs. The top-level ``--help`` lists the commands
from :data:`COMMANDS` without importing any of them, and ``--version`` is answered before typer
is imported at all (see ``cli.main``).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .commandstyle import KCommand, UsageStyle
from .exit_codes import Interrupted, StdoutClosed
from .output import set_debug, set_no_times, set_quiet


@dataclass(frozen=True, slots=True)
class CommandEntry:
    """Where a command's code lives, and the one line the top-level help shows for it."""

    module: str
    function: str
    short_help: str
    #: Runs with no arguments (the others show their help instead).
    runs_without_args: bool = False


COMMANDS: dict[str, CommandEntry] = {
    "summary": CommandEntry("summary_cmd", "summary", "One row per archive (or directory)."),
    "list": CommandEntry("list_cmd", "list_members", "Every member, rootfs-diff file and dump."),
    "inspect": CommandEntry("inspect_cmd", "inspect", "Process tree, files, sockets, mounts."),
    "memory": CommandEntry("memory_cmd", "memory", "Memory per process and mapping; hexdumps."),
    "search": CommandEntry("search_cmd", "search", "A literal or regex across process memory."),
    "secrets": CommandEntry("secrets_cmd", "secrets", "A redacted secret scan of the archive."),
    "diff": CommandEntry("diff_cmd", "diff", "What changed between two checkpoints."),
    "manifest": CommandEntry("manifest_cmd", "manifest", "SHA-256 of every member and file."),
    "verify": CommandEntry("manifest_cmd", "verify", "Check an archive against a manifest."),
    "extract": CommandEntry("extract_cmd", "extract", "Extract members, files or memory safely."),
    "image": CommandEntry("image_cmd", "image", "Build a checkpoint OCI image; write or push it."),
    "serve": CommandEntry("serve_cmd", "serve", "Run the capture service.", runs_without_args=True),
    "capture": CommandEntry("capture_cmd", "capture", "Checkpoint a container through a service."),
}

APP_HELP = (
    "Capture, inspect, diff and search Kubernetes container checkpoint archives.\n\n"
    "Archives may be plain or compressed (gzip, bzip2, xz, zstd; detected by content) and are "
    "read from a path or from '-' (stdin). Data goes to stdout; warnings and errors to stderr. "
    "-q, --debug and --no-times may also follow the command.\n\n"
    "Exit codes: 0 ok, 1 negative result, 2 usage, 3 input error, 4 format error, 5 capture "
    "error, 70 internal error, 120 stdout closed by the reader, 130 interrupted.\n\n"
    "Shell completion (bash, zsh, fish): kcheckpoint --show-completion SHELL, or "
    "--install-completion SHELL."
)


def load_command(name: str) -> KCommand:
    """Import one command's module and build its click command."""
    entry = COMMANDS[name]
    module = importlib.import_module(f"{__package__}.commands.{entry.module}")
    single = typer.Typer(add_completion=False, rich_markup_mode=None)
    single.command(
        name,
        cls=KCommand,
        short_help=entry.short_help,
        no_args_is_help=not entry.runs_without_args,
    )(getattr(module, entry.function))
    command = typer.main.get_command(single)
    assert isinstance(command, KCommand)
    command.finish()
    return command


class LazyGroup(UsageStyle, TyperGroup):
    """A group whose commands are imported when they run (or when their help is shown)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.short_help) for name, entry in COMMANDS.items()])

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """Command names from the table (no command is imported), then the options."""
        from typer._click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=entry.short_help)
            for name, entry in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        return items + super(TyperGroup, self).shell_complete(ctx, incomplete)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _as_our_exceptions():  # --help writes while parsing
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with _as_our_exceptions():
            return super().invoke(ctx)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in COMMANDS:
            # typer suggests close names from the loaded commands; offer them all
            for name in COMMANDS:
                self.commands.setdefault(name, typer.core.TyperCommand(name))
        return super().resolve_command(ctx, args)


@contextlib.contextmanager
def _as_our_exceptions() -> Iterator[None]:
    """A closed stdout or Ctrl-C leaves as our own exceptions: typer would turn them into exit
    codes of its own (1 for a broken pipe, 130 without a word)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted() from exc
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise StdoutClosed() from exc
        raise


class Shell(StrEnum):
    """Shells with completion."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def _show_completion(ctx: Any, value: Shell | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import get_completion_script

    sys.stdout.write(
        get_completion_script(
            prog_name="kcheckpoint", complete_var="_KCHECKPOINT_COMPLETE", shell=value.value
        )
        + "\n"
    )
    raise typer.Exit(0)


def _install_completion(ctx: Any, value: Shell | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import install

    shell, path = install(
        shell=value.value, prog_name="kcheckpoint", complete_var="_KCHECKPOINT_COMPLETE"
    )
    sys.stderr.write(f"{shell} completion installed in {path}; it works in new shells\n")
    raise typer.Exit(0)


def _print_version(value: bool) -> None:
    """--version where cli.main did not answer it first (after another option, say)."""
    if value:
        from kcheckpoint import __version__

        sys.stdout.write(f"kcheckpoint {__version__}\n")
        raise typer.Exit(0)


def _at_once(name: str, callback: Callable[..., None], help: str) -> Any:
    """An option that does its work while the arguments are parsed (and then exits), before
    the others are looked at; its value is not passed on."""
    return typer.Option(name, callback=callback, is_eager=True, expose_value=False, help=help)


def _global(
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
    version: Annotated[
        bool, _at_once("--version", _print_version, "Print the version and exit.")
    ] = False,
    show_completion: Annotated[
        Shell | None,
        _at_once("--show-completion", _show_completion, "Print the completion script for SHELL."),
    ] = None,
    install_completion: Annotated[
        Shell | None,
        _at_once(
            "--install-completion",
            _install_completion,
            "Install completion for SHELL (in its start-up file).",
        ),
    ] = None,
) -> None:
    if debug:
        set_debug(True)
    if quiet:
        set_quiet(True)
    if no_times:
        set_no_times(True)


def build_app() -> typer.Typer:
    """The typer app; commands are imported only when used."""
    app = typer.Typer(
        name="kcheckpoint",
        help=APP_HELP,
        cls=LazyGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    app.callback()(_global)
    return app


def __getattr__(name: str) -> typer.Typer:
    """``kcheckpoint.cli.app.app``: the app, for tools that list its commands."""
    if name == "app":
        return build_app()
    raise AttributeError(name)
