"""Output formats: JSON provenance and determinism, CSV, bodyfile timelines, auto."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from .conftest import CRIO, IDLE, PODMAN_T1


@pytest.mark.parametrize("command", ["summary", "list"])
@pytest.mark.parametrize("path", [IDLE, PODMAN_T1], ids=["zstd", "plain"])
def test_json_reports_are_byte_identical_without_times(cli, command: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    runs = [cli("--no-times", command, "--format", "json", path) for _ in range(2)]
    assert runs[0].exit_code == 0
    assert runs[0].stdout == runs[1].stdout
    prov = json.loads(runs[0].stdout)["provenance"]
    assert prov["started"] is None and prov["finished"] is None


def test_provenance_header(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", "--format", "json", PODMAN_T1)
    prov = json.loads(result.stdout)["provenance"]
    assert prov["tool"] == "kcheckpoint"
    assert prov["command"] == ["kcheckpoint", "summary", "--format", "json", str(PODMAN_T1)]
    assert prov["started"] <= prov["finished"]
    assert prov["started"].endswith("Z")
    # a plain file on disk is hashed for a JSON report, in the same run
    [entry] = prov["inputs"]
    assert entry["sha256"] == hashlib.sha256(PODMAN_T1.read_bytes()).hexdigest()
    assert entry["size"] == PODMAN_T1.stat().st_size
    no_hash = json.loads(cli("summary", "--no-hash", "--format", "json", PODMAN_T1).stdout)
    assert no_hash["provenance"]["inputs"][0]["sha256"] is None


def test_csv_has_raw_values(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", "--format", "csv", CRIO, IDLE)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["container"] for r in rows] == ["webapp", "idle"]
    assert rows[0]["namespace"] == "shop"
    assert rows[0]["memory_bytes"] == "17391616"
    listing = list(csv.DictReader(io.StringIO(cli("list", "--format", "csv", CRIO).stdout)))
    scopes = {r["scope"] for r in listing}
    assert {"member", "rootfs-changed", "rootfs-deleted"} <= scopes
    pages = next(r for r in listing if r["path"] == "checkpoint/pages-1.img")
    assert pages["secrets"] == "memory pages" and pages["category"] == "memory"


def test_bodyfile_timeline(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("list", "--format", "bodyfile", CRIO)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line.split("|")) == 11 for line in lines)
    names = [line.split("|")[1] for line in lines]
    assert any(n.endswith(":rootfs-diff:/app/data/app.log") for n in names)
    assert any(n.endswith("webapp checkpointed") for n in names)
    checkpointed = next(line for line in lines if line.split("|")[1].endswith("checkpointed"))
    assert checkpointed.split("|")[8] == "1795628808"  # 2026-11-25T17:46:48Z, from config.dump


def test_auto_is_jsonl_when_piped(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", "--format", "auto", IDLE)
    [line] = result.stdout.splitlines()
    assert json.loads(line)["summary"]["container"]["name"] == "idle"


@pytest.mark.parametrize("command", [["inspect", "--all"], ["secrets"]], ids=["inspect", "secrets"])
def test_inspect_and_secrets_reports_repeat_byte_for_byte(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    runs = [cli("--no-times", *command, "--format", "json", PODMAN_T1) for _ in range(2)]
    assert runs[0].exit_code in (0, 1), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert json.loads(runs[0].stdout)["provenance"]["inputs"][0]["sha256"]


def test_fingerprint_key_file_is_private(cli) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    cli("secrets", "--format", "json", IDLE)
    key = Path(os.environ["XDG_CONFIG_HOME"]) / "kcheckpoint" / "fingerprint.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32


def test_csv_for_commands_without_declared_columns(cli) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.DictReader(io.StringIO(cli("memory", "--format", "csv", PODMAN_T1).stdout)))
    assert [r["pid"] for r in rows] == ["1", "2"]
    assert int(rows[0]["present"]) == 3554 * 4096  # FIXTURES.md: pid 1 has 3554 present pages
    empty = cli("verify", "--format", "csv", IDLE, "/dev/null")
    assert empty.stdout.splitlines()[0] == "path,status,expected,actual"
