"""The README's command, exit-code and format tables say what the CLI's help says."""

from __future__ import annotations

import itertools
import re

import pytest

from kcheckpoint.cli.app import COMMANDS
from kcheckpoint.cli.exit_codes import ExitCode

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    rest = README[start + len(title) + 2 :]
    end = re.search(r"\n#{2,3} ", rest)
    return rest[: end.start()] if end else rest


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with ``header``."""
    lines = text[text.index(header) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([c.strip() for c in cells])
    return rows


def test_command_table_matches_the_help(cli) -> None:  # type: ignore[no-untyped-def]
    rows = _table_rows(_section("## Commands"), "| command | what it does |")
    documented = [re.match(r"`kcheckpoint (\w+)", row[0]).group(1) for row in rows]  # type: ignore[union-attr]
    help_text = cli("--help").stdout
    listed = re.findall(r"^  (\w+)\s{2,}", help_text.split("Commands:", 1)[1], re.MULTILINE)
    assert documented == listed == list(COMMANDS)


def test_command_table_shows_each_commands_arguments(cli) -> None:  # type: ignore[no-untyped-def]
    rows = _table_rows(_section("## Commands"), "| command | what it does |")
    for row in rows:
        words = row[0].strip("`").replace("\\|", "|").split()
        name = words[1]
        usage = cli(name, "--help").stdout.splitlines()[0]
        arguments = usage.split("[OPTIONS]", 1)[1].split()
        documented = list(itertools.takewhile(lambda w: not w.startswith("-"), words[2:]))
        assert arguments == documented, (row[0], usage)


def test_exit_code_table_matches_the_help_and_the_code(cli) -> None:  # type: ignore[no-untyped-def]
    rows = _table_rows(_section("### Exit codes"), "| code | meaning |")
    documented = [int(row[0]) for row in rows]
    help_text = " ".join(cli("--help").stdout.split())
    in_help = [int(c) for c in re.findall(r"(\d+) [a-z]", help_text.split("Exit codes:", 1)[1])]
    assert documented == sorted(int(c) for c in ExitCode)
    assert in_help[: len(documented)] == documented


def _format_table() -> dict[str, list[str]]:
    rows = _table_rows(_section("## Commands"), "| command | `--format` |")
    table: dict[str, list[str]] = {}
    for commands, formats in rows:
        for command in re.findall(r"`(\w+)`", commands):
            table[command] = [f.strip() for f in formats.split(",")]
    return table


def test_format_table_names_every_command_with_a_format_option(cli) -> None:  # type: ignore[no-untyped-def]
    with_format = [c for c in COMMANDS if "--format [" in cli(c, "--help").stdout]
    assert sorted(_format_table()) == sorted(with_format)


@pytest.mark.parametrize("command", sorted(_format_table()))
def test_format_table_matches_the_help(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    text = cli(command, "--help").stdout
    listed = text.split("--format [", 1)[1].split("]", 1)[0].split("|")
    assert listed == _format_table()[command]
