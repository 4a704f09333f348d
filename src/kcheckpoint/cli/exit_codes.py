"""Exit codes: the one place they are defined."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the kcheckpoint CLI."""

    OK = 0
    NEGATIVE = 1  # differences found, nothing found, secrets found (diff(1)/grep(1) convention)
    USAGE = 2
    INPUT = 3
    FORMAT = 4
    CAPTURE = 5
    INTERNAL = 70  # sysexits EX_SOFTWARE
    BROKEN_STDOUT = 120
    INTERRUPTED = 130


class StdoutClosed(Exception):
    """The reader of stdout went away (a broken pipe): exit 120."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) while a command ran: exit 130."""
