"""The kcheckpoint command line: the only place that prints and chooses exit codes.

May import every other room: ``inspect``, ``render``, ``capture`` (lazily, for ``serve`` and
``capture``), ``remote`` (remote inputs; Dask only for --scheduler/--workers), ``oci`` (image
inputs, registered by ``common``; ``image`` and ``capture --push``) and ``errors``. Nothing heavy
is imported here: ``--version`` is answered before typer is loaded, and each command's module is
imported only when it runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from kcheckpoint import __version__
from kcheckpoint.errors import CaptureError, FormatError, InputError, KCheckpointError

from .exit_codes import ExitCode, Interrupted, StdoutClosed
from .output import error, is_debug, start_run

#: Options that may come before the command without changing what runs.
GLOBAL_FLAGS = frozenset({"--debug", "--quiet", "-q", "--no-times"})
COMPLETE_VAR = "_KCHECKPOINT_COMPLETE"


def exit_code_for(exc: KCheckpointError) -> ExitCode:
    """The exit code of one of our errors: the single mapping."""
    if isinstance(exc, InputError):
        return ExitCode.INPUT
    if isinstance(exc, FormatError):
        return ExitCode.FORMAT
    if isinstance(exc, CaptureError):
        return ExitCode.CAPTURE
    return ExitCode.INTERNAL


def _asks_version(args: Sequence[str]) -> bool:
    for arg in args:
        if arg == "--version":
            return True
        if arg not in GLOBAL_FLAGS:
            return False
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(args):
        sys.stdout.write(f"kcheckpoint {__version__}\n")
        return ExitCode.OK
    try:
        return _run(args)
    except KeyboardInterrupt:
        error("interrupted")
        return ExitCode.INTERRUPTED


def _run(args: list[str]) -> int:
    start_run(args)
    _register_remote_inputs(args)
    try:
        from .app import build_app

        _prepare_completion()
        result = build_app()(args=args, prog_name="kcheckpoint", standalone_mode=False)
    except (Interrupted, KeyboardInterrupt):
        error("interrupted")
        return ExitCode.INTERRUPTED
    except (StdoutClosed, BrokenPipeError):
        _silence_stdout()
        return ExitCode.BROKEN_STDOUT
    except KCheckpointError as exc:
        error(exc.message, hint=exc.hint)
        return exit_code_for(exc)
    except Exception as exc:
        return _other_error(exc, args)
    if result == ExitCode.INTERRUPTED:
        # typer turns a Ctrl-C during parsing into exit 130, silently
        error("interrupted")
    return int(result or 0)


def _other_error(exc: Exception, args: Sequence[str]) -> int:
    """typer's own exits and usage errors, or a bug."""
    import typer

    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, typer.Abort):
        error("interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(exc, typer.TyperException):
        return _usage_error(exc, args)
    if is_debug() or "--debug" in args:
        raise exc
    error(
        f"internal error: {type(exc).__name__}: {exc}",
        hint="run again with --debug for a traceback",
    )
    return ExitCode.INTERNAL


def _usage_error(exc: Any, args: Sequence[str]) -> int:
    """One line for a usage error (unknown option, bad value, missing argument), and a hint."""
    from typer import _click

    if isinstance(exc, _click.exceptions.NoArgsIsHelpError):
        exc.show()
        return ExitCode.USAGE
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = " ".join(message.replace("Value error, ", "").split())
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "kcheckpoint"
    error(message, hint=f"'{where} --help' shows the usage")
    return ExitCode.USAGE


def _prepare_completion() -> None:
    """Shell completion requests: typer's scripts and their protocol, either instruction order."""
    instruction = os.environ.get(COMPLETE_VAR)
    if not instruction:
        return
    from typer._completion_classes import completion_init

    completion_init()
    first, _, second = instruction.partition("_")
    if first in {"bash", "zsh", "fish"}:  # click's order (bash_source) to typer's (source_bash)
        os.environ[COMPLETE_VAR] = f"{second}_{first}"


def _register_remote_inputs(args: Sequence[str]) -> None:
    """Every reading command also opens http(s)://, s3:// and other fsspec URLs; the reader is
    told so only when the command line names one (fsspec is imported only to open it)."""
    from kcheckpoint.remote.names import remote_protocol

    if any(remote_protocol(a) or a.startswith("@") for a in args):
        from kcheckpoint.remote.inputs import register

        register()


def _silence_stdout() -> None:
    """The reader went away: point stdout at devnull so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
