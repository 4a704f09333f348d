"""``inspect`` on the real fixtures: FIXTURES.md ground truth, the CLI, redaction, --pid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kcheckpoint.inspect.criu.checkpoint import inspect_path
from kcheckpoint.inspect.criu.model import Inspection

from .conftest import ALL_FIXTURES, IDLE, PODMAN_T1, PODMAN_T3, WEBAPPS, fixture_id

WEBAPP_FILES = {
    1: [
        ("0", "/dev/null"),
        ("1", "pipe[35775]"),
        ("2", "pipe[35776]"),
        ("3", "/app/data/app.log"),
        ("4", "unix[36568 (36569)]"),
        ("5", "unix[36569 (36568)]"),
        ("6", "unix[36570 (0) /tmp/app.sock]"),
        ("8", "pipe[36571]"),
        ("cwd", "/app"),
        ("root", "/"),
    ],
    2: [
        ("0", "pipe[36571]"),
        ("1", "pipe[35775]"),
        ("2", "pipe[35776]"),
        ("cwd", "/app"),
        ("root", "/"),
    ],
}
SPEC_ENV = ["MEM_MB", "API_TOKEN", "DB_PASSWORD", "PATH", "container", "HOME", "HOSTNAME"]

_cache: dict[tuple[Path, bool], Inspection] = {}


def inspected(path: Path, show_secrets: bool = False) -> Inspection:
    key = (path, show_secrets)
    if key not in _cache:
        _cache[key] = inspect_path(path, show_secrets=show_secrets)
    return _cache[key]


@pytest.mark.parametrize("archive", WEBAPPS, ids=fixture_id)
def test_webapp_ground_truth(archive: Path) -> None:
    result = inspected(archive)
    procs = {p.pid: p for p in result.processes}
    assert [(p.pid, p.ppid, p.comm, p.state, p.threads) for p in result.processes] == [
        (1, 0, "python3", "alive", [1]),
        (2, 1, "python3", "alive", [2]),
    ]
    assert procs[1].memory is not None and procs[2].memory is not None
    assert (procs[1].memory.present_pages, procs[1].memory.pages_id) == (3554, 1)
    assert (procs[2].memory.present_pages, procs[2].memory.pages_id) == (692, 2)
    assert result.sizes.memory_pages == 17_391_616
    for pid, files in WEBAPP_FILES.items():
        assert [(f.fd, f.description) for f in procs[pid].files] == files
    assert procs[1].cmdline == ["python3", "/app/app.py"]
    assert result.metadata.spec_env_names == SPEC_ENV
    assert result.unreferenced_images == []
    assert not [p for p in result.problems if p.kind != "missing"]


@pytest.mark.parametrize("archive", WEBAPPS, ids=fixture_id)
def test_env_of_pid_1_is_read_from_memory_and_redacted(archive: Path) -> None:
    env = inspected(archive).processes[0].env
    assert env is not None
    names = [e.name for e in env]
    for name in ("API_TOKEN", "DB_PASSWORD", "MEM_MB"):
        assert name in names
    assert all(e.value is None and e.redacted for e in env)


def test_env_values_with_show_secrets() -> None:
    env = {e.name: e.value for e in inspected(PODMAN_T1, True).processes[0].env or []}
    assert env["API_TOKEN"] is not None and env["API_TOKEN"].startswith("sk_live_")
    assert env["DB_PASSWORD"] == "hunter2-fixture-pw"
    assert env["MEM_MB"] is not None and env["MEM_MB"].isdigit()


def test_idle_ground_truth() -> None:
    result = inspected(IDLE, True)
    procs = {p.pid: p for p in result.processes}
    assert [(p.pid, p.ppid, p.comm) for p in result.processes] == [(1, 0, "sh"), (4, 1, "sleep")]
    assert procs[1].memory is not None and procs[4].memory is not None
    assert (procs[1].memory.present_pages, procs[4].memory.present_pages) == (19, 16)
    assert (procs[1].memory.pages_id, procs[4].memory.pages_id) == (1, 2)
    for pid in (1, 4):
        assert [(f.fd, f.description) for f in procs[pid].files][:3] == [
            ("0", "/dev/null"),
            ("1", "pipe[37652]"),
            ("2", "pipe[37653]"),
        ]
    assert procs[1].cmdline == [
        "sh",
        "-c",
        "echo hello > /tmp/state; while true; do sleep 1; done",
    ]
    assert procs[4].cmdline == ["sleep", "1"]
    env = {e.name: e.value for e in procs[1].env or []}
    assert env["API_TOKEN"] == "sk_live_FAKE0123456789"


def test_sockets_mounts_stats_namespaces() -> None:
    result = inspected(PODMAN_T1)
    unix = [s for s in result.sockets if s.family == "unix"]
    listening = [s for s in unix if s.state == "LISTEN"]
    assert [(s.local, s.holders) for s in listening] == [("/tmp/app.sock", ["1:6"])]
    pair = {s.ino: s.peer_ino for s in unix if s.state == "ESTABLISHED"}
    assert pair == {36568: 36569, 36569: 36568}
    points = {m.mountpoint: m for m in result.mounts}
    assert points["/proc"].fstype == "proc" and "/dev/shm" in points
    assert any(m.destination == "/proc" for m in result.spec_mounts)
    assert result.stats is not None and result.stats.pages_written == 3554 + 692
    uts = [n for n in result.namespaces if n.kind == "uts"]
    assert uts and uts[0].details["hostname"] and uts[0].pids == [1, 2]
    assert result.inventory is not None and result.inventory.img_version == 2


@pytest.mark.parametrize("archive", ALL_FIXTURES, ids=fixture_id)
def test_cli_inspect_every_fixture(cli, archive: Path) -> None:  # type: ignore[no-untyped-def]
    tree = cli("inspect", archive, "--all")
    assert tree.exit_code == 0, tree.stderr
    assert "Traceback" not in tree.stderr
    assert "Process tree" in tree.stdout
    as_json = cli("inspect", archive, "--all", "--format", "json")
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["processes"] and data["processes"][0]["pid"] == 1
    assert "memory pages" in as_json.stderr


def test_cli_tree_shows_the_command_line_and_no_env_values(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("inspect", PODMAN_T3, "--env")
    assert result.exit_code == 0
    assert "[1]  python3 /app/app.py" in result.stdout
    assert "API_TOKEN=<redacted>" in result.stdout
    assert "hunter2" not in result.stdout and "sk_live_" not in result.stdout
    assert "showing environment values" not in result.stderr


def test_cli_show_secrets_warns(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("inspect", PODMAN_T3, "--env", "--show-secrets", "-o", "json")
    assert result.exit_code == 0
    env = {e["name"]: e["value"] for e in json.loads(result.stdout)["processes"][0]["env"]}
    assert env["DB_PASSWORD"] == "hunter2-fixture-pw"
    assert "showing environment values" in result.stderr


def test_cli_json_sections_are_null_when_not_selected(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli("inspect", IDLE, "-o", "json").stdout)
    assert data["processes"][0]["env"] is None and data["processes"][0]["files"] is None
    assert data["sockets"] is None and data["mounts"] is None and data["stats"] is None
    assert data["processes"][0]["cmdline"][0] == "sh"


def test_cli_pid_limits_to_a_subtree(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli("inspect", PODMAN_T1, "--pid", "2", "--files", "-o", "json").stdout)
    assert [p["pid"] for p in data["processes"]] == [2]
    missing = cli("inspect", PODMAN_T1, "--pid", "99")
    assert missing.exit_code == 1
    assert "no process with PID 99" in missing.stderr


def test_cli_reads_stdin(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("inspect", "-", "-o", "json", stdin=IDLE.read_bytes())
    assert result.exit_code == 0
    assert json.loads(result.stdout)["processes"][1]["cmdline"] == ["sleep", "1"]


@pytest.mark.parametrize("archive", [PODMAN_T1, IDLE, PODMAN_T3], ids=fixture_id)
def test_one_pass_reader_agrees_with_the_memory_model(archive: Path) -> None:
    """The stream-mode argv/env capture and the memory model's reader give the same bytes."""
    from kcheckpoint.inspect.criu.images import read_image
    from kcheckpoint.inspect.criu.memory import MemoryReader
    from kcheckpoint.inspect.criu.sinks import ArgsReader
    from kcheckpoint.inspect.reader.scan import scan_archive

    args = ArgsReader()
    scan = scan_archive(archive, read_images=True, on_member=args.on_member, on_image=args.on_image)
    args.close()
    compared = 0
    for name, data in scan.images.items():
        if not name.startswith("checkpoint/mm-"):
            continue
        pid = int(name.split("-")[1].split(".")[0])
        mm = read_image(name.rsplit("/", 1)[1], data).entries[0]
        for start, end in ((mm.mm_arg_start, mm.mm_arg_end), (mm.mm_env_start, mm.mm_env_end)):
            ours = args.read(pid, start, end)
            assert ours is not None and len(ours) == end - start
            if scan.input.read_mode == "seekable":
                assert MemoryReader.from_scan(archive, scan).read(pid, start, end) == ours
            compared += 1
    assert compared == 4


def test_env_values_in_annotations_are_redacted() -> None:
    from kcheckpoint.inspect.criu.checkpoint import redact_env_values

    spec = json.dumps(
        {"spec": {"containers": [{"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}]}}
    )
    redacted = redact_env_values(spec)
    assert "hunter2" not in redacted and "DB_PASSWORD" in redacted
    assert redact_env_values("plain") == "plain"


def test_every_json_key_is_documented_in_the_readme(cli) -> None:  # type: ignore[no-untyped-def]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### `inspect --format json`", 1)[1]
    data = json.loads(cli("inspect", IDLE, "--all", "-o", "json").stdout)
    keys: set[str] = set()

    def collect(node: object, top: bool) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                shared = ("input", "container", "sizes", "problems", "warnings", "provenance")
                if not (top and k in shared):
                    keys.add(k)
                    collect(v, False)
        elif isinstance(node, list):
            for v in node:
                collect(v, False)

    collect(data, True)
    # Annotation names (dotted) and thread ids are data, not keys of the contract.
    undocumented = {
        k for k in keys if f'"{k}"' not in section and f"`{k}`" not in section and "." not in k
    }
    assert not undocumented, undocumented


def test_tree_escapes_control_characters(cli) -> None:  # type: ignore[no-untyped-def]
    from kcheckpoint.render.inspect_tree import printable

    assert printable("a\nb\x1b[31m\x9b") == "a\\nb\\x1b[31m\\x9b"
    out = cli("inspect", PODMAN_T1, "--pid", "2").stdout
    assert "-c 'import sys,time\\nwhile True:" in out  # pid 2's multi-line argv stays on one line
    assert "\x1b" not in out


def test_cli_bad_input_is_one_line_and_an_exit_code(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(PODMAN_T1.read_bytes()[:5_000_000])
    not_tar = tmp_path / "notes.txt"
    not_tar.write_text("hello\n")
    for path, code in ((cut, 4), (not_tar, 3), (tmp_path / "missing.tar", 3)):
        result = cli("inspect", path, "--all")
        assert result.exit_code == code, result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ")
