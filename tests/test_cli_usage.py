"""The command line as people use it: start-up, pipes, signals, options, formats, completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import IDLE, PODMAN_T1, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
KCP = [sys.executable, "-m", "kcheckpoint"]


def _modules_after(*args: str) -> set[str]:
    """The modules a run of ``kcheckpoint ARGS`` imported (help goes to /dev/null)."""
    code = (
        "import sys, contextlib, io\n"
        "from kcheckpoint.cli import main\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        f"    main({list(args)!r})\n"
        "print('\\n'.join(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=ENV
    )
    return set(out.stdout.split())


HEAVY = ("google.protobuf", "hashlib", "ssl", "pydantic", "kcheckpoint.inspect", "tabulate")


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("-q", "--help")])
def test_version_and_help_stay_light(args: tuple[str, ...]) -> None:
    loaded = _modules_after(*args)
    assert not [m for m in loaded if m.startswith(HEAVY)]
    assert not [m for m in loaded if m.startswith("kcheckpoint.cli.commands.")]


def test_version_does_not_load_typer() -> None:
    assert not [m for m in _modules_after("--version") if m.startswith("typer")]


def test_command_help_loads_only_that_command() -> None:
    loaded = _modules_after("search", "--help")
    commands = {m for m in loaded if m.startswith("kcheckpoint.cli.commands.")}
    assert commands == {"kcheckpoint.cli.commands.search_cmd"}


def test_top_help_lists_every_command_and_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    from kcheckpoint.cli.app import COMMANDS

    result = cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout
    for code in (0, 1, 2, 3, 4, 5, 70, 120, 130):
        assert f" {code} " in result.stdout.replace("\n", " ")


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "--no-times", "--format", "json"),
        ("inspect", "-q", "--format", "json"),
        ("-q", "inspect", "--format", "json"),
        ("inspect", "--debug", "--format", "json"),
    ],
)
def test_global_options_on_either_side(cli, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args, IDLE)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    if "--no-times" in args:
        assert doc["provenance"]["started"] is None
    else:
        assert doc["provenance"]["started"] is not None
    if "-q" in args:
        assert result.stderr == ""
    else:
        assert "warning:" in result.stderr


def test_quiet_after_the_command_silences_warnings(cli) -> None:  # type: ignore[no-untyped-def]
    loud = cli("summary", IDLE)
    quiet = cli("summary", IDLE, "-q")
    assert "warning:" in loud.stderr
    assert quiet.stderr == "" and quiet.stdout == loud.stdout


FORMATS = {
    "summary": "text json jsonl csv bodyfile auto",
    "list": "text json jsonl csv bodyfile auto",
    "diff": "text json jsonl csv auto",
    "memory": "text json jsonl csv auto",
    "search": "text json jsonl csv auto",
    "secrets": "text json jsonl csv auto",
    "verify": "text json jsonl csv auto",
    "extract": "text json jsonl",
    "capture": "text json jsonl",
    "manifest": "sha256sum json jsonl",
    "inspect": "tree text json jsonl",
}


@pytest.mark.parametrize("command", sorted(FORMATS))
def test_help_lists_exactly_the_formats(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    text = cli(command, "--help").stdout
    listed = text.split("--format [", 1)[1].split("]", 1)[0].split("|")
    assert listed == FORMATS[command].split()


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (("extract", IDLE, "-d", "{tmp}"), "csv"),
        (("extract", IDLE, "-d", "{tmp}"), "bodyfile"),
        (("search", IDLE, "x"), "bodyfile"),
        (("diff", IDLE, IDLE), "bodyfile"),
        (("memory", IDLE), "bodyfile"),
        (("secrets", IDLE), "bodyfile"),
        (("capture", "http://127.0.0.1:9", "a/b/c"), "csv"),
        (("summary", IDLE), "tree"),
    ],
)
def test_a_format_a_command_does_not_produce_is_refused(cli, tmp_path: Path, args, refused) -> None:  # type: ignore[no-untyped-def]
    args = tuple(str(a).replace("{tmp}", str(tmp_path / "out")) for a in args)
    result = cli(*args, "--format", refused)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert refused in result.stderr.splitlines()[0]
    assert not (tmp_path / "out").exists()


def test_format_names_are_case_insensitive(cli) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(cli("summary", IDLE, "-q", "-o", "JSON").stdout)["archives"]


def test_search_pattern_option_takes_a_leading_dash(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    as_option = cli("search", IDLE, "-q", "-e", "-----BEGIN", "--format", "json")
    assert as_option.exit_code == 1  # searched, nothing found
    assert json.loads(as_option.stdout)["pattern"] == "-----BEGIN"
    found = cli("search", IDLE, "-q", "--pattern", "sleep", "--format", "json")
    positional = cli("search", IDLE, "-q", "sleep", "--format", "json")
    assert found.exit_code == positional.exit_code == 0
    assert json.loads(found.stdout)["hits"] == json.loads(positional.stdout)["hits"]


@pytest.mark.parametrize("args", [(), ("x", "-e", "y")])
def test_search_wants_exactly_one_pattern(cli, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    result = cli("search", IDLE, *args)
    assert result.exit_code == 2
    assert "-e PATTERN" in result.stderr.splitlines()[0]


def test_search_help_mentions_the_pattern_option(cli) -> None:  # type: ignore[no-untyped-def]
    assert "-e, --pattern PATTERN" in cli("search", "--help").stdout


def test_manifest_help_example_uses_the_output_dir_option(cli) -> None:  # type: ignore[no-untyped-def]
    text = cli("manifest", "--help").stdout
    assert "extract A -d DIR" in text
    assert "-o DIR" not in text


@pytest.mark.parametrize("command", ["summary", "search", "memory", "extract", "serve", "diff"])
def test_one_help_style(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    text = cli(command, "--help").stdout
    usage = text.splitlines()[0]
    assert "{" not in usage
    for label in ("<str>", "<int>", "<list[", "<path>", "<float", "<int range>", "['"):
        assert label not in text
    arguments = text.split("Arguments:", 1)[1] if "Arguments:" in text else ""
    for line in arguments.split("Options:", 1)[0].splitlines()[1:]:
        if line.strip() and not line.startswith(" " * 6):
            name = line.split()[0]
            assert name == name.upper()


def test_usage_errors_are_one_line_without_prefixes(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("search", "-C", "99999", IDLE, "x")
    assert result.exit_code == 2
    first, *rest = result.stderr.splitlines()
    assert first.startswith("error: ")
    assert "Value error" not in result.stderr
    assert rest == ["hint: 'kcheckpoint search --help' shows the usage"]


def test_a_value_error_from_a_callback_has_no_prefix(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("memory", IDLE, "--pid", "1", "--address", "zz")
    assert result.exit_code == 2
    assert "Value error" not in result.stderr


# -- pipes and signals -------------------------------------------------------------------------


def _closed_pipe_run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader has already gone away."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*KCP, *args], stdout=write_end, stderr=subprocess.PIPE, env=ENV, timeout=120
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ["summary", str(IDLE)],
        ["search", str(PODMAN_T1), "-q", "-e", "a", "--format", "jsonl"],
        ["list", str(IDLE), "--format", "csv"],
        ["--help"],
    ],
)
def test_a_closed_stdout_exits_120_quietly(args: list[str]) -> None:
    result = _closed_pipe_run(args)
    assert result.returncode == 120
    assert b"Traceback" not in result.stderr
    assert b"error" not in result.stderr.lower()


def test_output_stops_at_the_first_failed_write() -> None:
    """`search ... | head -1`: the reader takes one line, and the rest is never written."""
    proc = subprocess.Popen(
        [*KCP, "search", str(PODMAN_T1), "-q", "-e", "a", "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 120
    assert json.loads(first)["address"]
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_ctrl_c_prints_interrupted_and_exits_130() -> None:
    read_end, write_end = os.pipe()  # stdin that never ends: the command waits for data
    proc = subprocess.Popen(
        [*KCP, "summary", "-"],
        stdin=read_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    os.write(write_end, PODMAN_T1.read_bytes()[: 1 << 20])
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    os.close(read_end)
    os.close(write_end)
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1] == "error: interrupted"
    assert out == b""


# -- shell completion --------------------------------------------------------------------------


def _complete(shell: str, words: str) -> subprocess.CompletedProcess[str]:
    env = dict(ENV, _KCHECKPOINT_COMPLETE=f"complete_{shell}")
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (not words.endswith(" "))))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words, _TYPER_COMPLETE_FISH_ACTION="get-args")
    return subprocess.run(KCP, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(cli, shell: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("--show-completion", shell)
    assert result.exit_code == 0
    assert "_KCHECKPOINT_COMPLETE" in result.stdout


@pytest.mark.parametrize("instruction", ["source_bash", "bash_source"])
def test_completion_source_in_either_order(instruction: str) -> None:
    env = dict(ENV, _KCHECKPOINT_COMPLETE=instruction)
    result = subprocess.run(KCP, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "complete -o default" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_of_commands_and_format_values(shell: str) -> None:
    commands = _complete(shell, "kcheckpoint su")
    assert "summary" in commands.stdout
    formats = _complete(shell, "kcheckpoint search --format j")
    assert "json" in formats.stdout and "jsonl" in formats.stdout
    assert "bodyfile" not in _complete(shell, "kcheckpoint search --format ").stdout


def test_archive_arguments_complete_as_files() -> None:
    """No candidates for ARCHIVE: bash (complete -o default) and zsh (_files) list files."""
    assert _complete("bash", f"kcheckpoint summary {ROOT}/sam").stdout.strip() == ""
    assert _complete("zsh", f"kcheckpoint summary {ROOT}/sam").stdout.strip() == "_files"


def test_version_through_typer_too(capsys: pytest.CaptureFixture[str]) -> None:
    """cli.main answers --version first; the app answers it as well (the help lists it)."""
    from kcheckpoint import __version__
    from kcheckpoint.cli.app import build_app

    code = build_app()(args=["--version"], prog_name="kcheckpoint", standalone_mode=False)
    assert code == 0
    assert capsys.readouterr().out == f"kcheckpoint {__version__}\n"
