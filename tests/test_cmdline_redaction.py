"""Command lines read from memory are shown with secret-looking values redacted."""

from __future__ import annotations

import pytest

from kcheckpoint.inspect.criu.checkpoint import process_list
from kcheckpoint.inspect.reader.scan import scan_archive
from kcheckpoint.inspect.rules.secrets import redact_secrets

from .conftest import IDLE

SECRET = "hunter2-fixture-pw"


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (f"--db-password={SECRET}", "--db-password=", SECRET),
        ("API_TOKEN=sk_live_FIXTURE51c0ffee0123456789", "API_TOKEN=sk_live_", "FIXTURE51c0ffee"),
        ("ghp_F1xtureT0kenABCDEFGHIJKLMNOPQRSTUVWXYZ12", "ghp_", "F1xtureT0ken"),
    ],
)
def test_redact_secrets(text: str, kept: str, gone: str) -> None:
    out = redact_secrets(text)
    assert out.startswith(kept)
    assert gone not in out
    assert "[REDACTED" in out


@pytest.mark.parametrize("text", ["python3 /app/app.py", "--token", "sh -c 'sleep 1'", ""])
def test_ordinary_arguments_are_left_alone(text: str) -> None:
    assert redact_secrets(text) == text


def _argv_with_secret(pid: int, start: int, end: int) -> bytes:
    return f"python3\0/app/app.py\0--db-password={SECRET}\0".encode()


def test_process_command_lines_are_redacted_unless_asked() -> None:
    scan = scan_archive(IDLE, read_images=True)
    procs, _ = process_list(scan, _argv_with_secret)
    assert procs and all(SECRET not in " ".join(p.cmdline or []) for p in procs)
    assert procs[0].cmdline is not None and procs[0].cmdline[:2] == ["python3", "/app/app.py"]
    shown, _ = process_list(scan, _argv_with_secret, show_secrets=True)
    assert shown[0].cmdline is not None and shown[0].cmdline[2] == f"--db-password={SECRET}"
