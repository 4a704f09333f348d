"""kcheckpoint memory: the table, mappings, a lossless hexdump checked independently, --output."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from .conftest import IDLE, PODMAN_T1, PODMAN_T2


def _crit_present_runs(pagemap: bytes, tmp_path: Path) -> list[tuple[int, int, int]]:
    """(vaddr, length, offset in pages-N.img) of each present entry, computed from crit's JSON."""
    img = tmp_path / "pagemap.img"
    img.write_bytes(pagemap)
    cmd = ["crit", "decode", "--pretty", "-i", str(img)]
    out = subprocess.run(cmd, check=True, capture_output=True)
    entries = json.loads(out.stdout)["entries"][1:]
    runs, offset = [], 0
    for e in entries:
        flags = e.get("flags", 4)
        present = "PE_PRESENT" in flags if isinstance(flags, str) else bool(flags & 4)
        length = int(e["nr_pages"]) * 4096
        if present:
            runs.append((int(e["vaddr"], 16), length, offset))
            offset += length
    return runs


@pytest.mark.reference
def test_hexdump_equals_the_bytes_at_the_pagemap_offset(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("crit") is None:
        pytest.skip("crit is not installed")
    with tarfile.open(PODMAN_T1) as tf:
        pagemap = tf.extractfile("checkpoint/pagemap-1.img").read()  # type: ignore[union-attr]
        pages = tf.extractfile("checkpoint/pages-1.img").read()  # type: ignore[union-attr]
    runs = _crit_present_runs(pagemap, tmp_path)
    vaddr, length, offset = max(runs, key=lambda r: r[1])  # the largest run
    start = vaddr + length // 2 - 40  # an unaligned range in the middle
    want = pages[offset + length // 2 - 40 : offset + length // 2 + 60]

    out = tmp_path / "range.bin"
    res = cli(
        "memory",
        PODMAN_T1,
        "--pid",
        "1",
        "--address",
        hex(start),
        "--length",
        "100",
        "--output",
        out,
    )
    assert res.exit_code == 0
    assert out.read_bytes() == want
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "memory may hold" in res.stderr

    dump = cli("memory", PODMAN_T1, "--pid", "1", "--address", hex(start), "--length", "100")
    rows = dump.stdout.splitlines()
    assert len(rows) == 7  # 100 bytes, 16 a row, every row shown
    got = bytes.fromhex("".join(r[18 : 18 + 47].replace(" ", "") for r in rows))
    assert got == want
    assert rows[0].startswith(f"{start:016x}  ")


def test_hexdump_shows_every_row_and_the_holes(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("memory", PODMAN_T1, "--pid", "1", "--format", "json")
    maps = json.loads(res.stdout)["mappings"]
    exe = next(m for m in maps if m["present"] == 0 and m["kind"] == "file")
    dump = cli("memory", PODMAN_T1, "--pid", "1", "--address", exe["start"], "--length", "64")
    assert dump.exit_code == 0
    lines = dump.stdout.splitlines()
    assert lines[0].startswith("# ") and "not in the archive" in lines[0]
    assert len([x for x in lines if not x.startswith("#")]) == 4  # zero rows are not collapsed


def test_process_table_and_mapping_list(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("memory", PODMAN_T1, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    rows = {p["pid"]: p for p in doc["processes"]}
    assert rows[1]["present"] == 3554 * 4096 and rows[2]["present"] == 692 * 4096
    for r in rows.values():
        assert (
            r["heap"] + r["stack"] + r["anonymous"] + r["file"] + r["shared"] + r["other"]
            == (r["present"])
        )
    assert "memory may hold" in res.stderr
    text = cli("memory", PODMAN_T2)
    assert "python3" in text.stdout and "HEAP" in text.stdout
    maps = cli("memory", IDLE, "--pid", "1")
    assert maps.exit_code == 0 and "[stack]" in maps.stdout


def test_mapping_dump_and_errors(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("memory", PODMAN_T1, "--pid", "2", "--format", "json")
    stack = next(m for m in json.loads(res.stdout)["mappings"] if m["kind"] == "stack")
    out = tmp_path / "stack.bin"
    ok = cli("memory", PODMAN_T1, "--pid", "2", "--mapping", stack["start"], "--output", out)
    assert ok.exit_code == 0
    assert out.stat().st_size == stack["size"]
    assert b"DB_PASSWORD=hunter2-fixture-pw" in out.read_bytes()
    again = cli("memory", PODMAN_T1, "--pid", "2", "--mapping", stack["start"], "--output", out)
    assert again.exit_code == 3  # never overwrites
    assert cli("memory", PODMAN_T1, "--pid", "77").exit_code == 3
    assert cli("memory", PODMAN_T1, "--address", "0x1000").exit_code == 2
    assert cli("memory", PODMAN_T1, "--pid", "1", "--mapping", "0x10").exit_code == 2
