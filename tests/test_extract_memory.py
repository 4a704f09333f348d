"""extract --memory: one file per mapping, the same bytes memory --output gives."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from .conftest import CONTAINERD, IDLE, PODMAN_T1


@pytest.mark.parametrize("path", [PODMAN_T1, CONTAINERD], ids=["podman", "containerd"])
def test_mapping_files_equal_memory_output(cli, tmp_path: Path, path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("extract", path, "--memory", "2", "-d", out)
    assert result.exit_code == 0, result.stderr
    directory = out / "memory-2"
    index = json.loads((directory / "index.json").read_text())
    files = [m for m in index["mappings"] if m["file"]]
    assert files, "pid 2 has pages in the archive"
    assert sum(m["present_bytes"] for m in index["mappings"]) == 692 * 4096  # FIXTURES.md
    for m in files[:6]:  # every kind of mapping is checked against the other command
        written = directory / m["file"]
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert written.stat().st_size == m["size"]
        raw = tmp_path / f"{m['start']}.raw"
        dump = cli(
            "memory",
            path,
            "--pid",
            "2",
            "--address",
            m["start"],
            "--length",
            str(m["size"]),
            "--output",
            raw,
        )
        assert dump.exit_code == 0, dump.stderr
        assert hashlib.sha256(raw.read_bytes()).hexdigest() == m["sha256"]
        assert hashlib.sha256(written.read_bytes()).hexdigest() == m["sha256"]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # what it printed is a sha256sum manifest of what it wrote
    assert all(line.split("  ")[1].startswith("memory-2/") for line in result.stdout.splitlines())


def test_refuses_to_overwrite_and_unknown_pid(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("extract", IDLE, "--memory", "1", "-d", tmp_path).exit_code == 0
    again = cli("extract", IDLE, "--memory", "1", "-d", tmp_path)
    assert again.exit_code == 3 and "--force" in again.stderr
    assert cli("extract", IDLE, "--memory", "1", "-d", tmp_path, "--force").exit_code == 0
    missing = cli("extract", IDLE, "--memory", "999", "-d", tmp_path / "x")
    assert missing.exit_code == 3 and "no live process 999" in missing.stderr
    piped = cli("extract", "-", "--memory", "1", "-d", tmp_path / "y", stdin=IDLE.read_bytes())
    assert piped.exit_code == 2
