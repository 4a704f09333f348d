"""The package layout keeps its promises: inspect/ is pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "kcheckpoint"


def test_inspect_imports_no_cli_or_server_framework() -> None:
    code = (
        "import sys, kcheckpoint.inspect, kcheckpoint.inspect.summary;"
        "names = ('typer', 'fastapi', 'grpc', 'tabulate', 'uvicorn');"
        "bad = [m for m in names if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_inspect_never_prints_or_exits() -> None:
    for path in (SRC / "inspect").rglob("*.py"):
        text = path.read_text()
        assert "print(" not in text, path
        assert "sys.exit" not in text, path


def test_a_command_imports_only_its_own_module() -> None:
    """Start-up cost: `summary` must not import the capture service or the diff engine."""
    code = (
        "import sys; from kcheckpoint.cli.app import build_app;"
        "build_app(['summary', 'x.tar']);"
        "names = ('fastapi', 'grpc', 'uvicorn', 'kcheckpoint.cli.commands.diff_cmd',"
        " 'kcheckpoint.cli.commands.serve_cmd', 'kcheckpoint.inspect.secrets');"
        "print(','.join(m for m in names if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
