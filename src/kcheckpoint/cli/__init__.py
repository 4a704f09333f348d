"""The kcheckpoint command line: the only place that prints and chooses exit codes.

May import every other room: ``inspect``, ``render``, ``capture`` (lazily, for ``serve`` and
``capture``) and ``errors``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from kcheckpoint.errors import CaptureError, FormatError, InputError, KCheckpointError

from .exit_codes import ExitCode
from .output import error, is_debug
from .report import start_run


def exit_code_for(exc: KCheckpointError) -> ExitCode:
    """The exit code of one of our errors: the single mapping."""
    if isinstance(exc, InputError):
        return ExitCode.INPUT
    if isinstance(exc, FormatError):
        return ExitCode.FORMAT
    if isinstance(exc, CaptureError):
        return ExitCode.CAPTURE
    return ExitCode.INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    from .app import build_app

    args = list(sys.argv[1:] if argv is None else argv)
    start_run(args)
    try:
        result = build_app(args)(args=args, prog_name="kcheckpoint", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        error("interrupted")
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:
        # usage errors: unknown option, bad value, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            error(str(exc))
        return ExitCode.USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.BROKEN_STDOUT
    except KCheckpointError as exc:
        error(exc.message, hint=exc.hint)
        return exit_code_for(exc)
    except Exception as exc:
        if is_debug():
            raise
        error(
            f"internal error: {type(exc).__name__}: {exc}",
            hint="run again with --debug for a traceback",
        )
        return ExitCode.INTERNAL
    return int(result or 0)


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
