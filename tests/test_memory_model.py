"""The memory model: pagemap runs and offsets, mappings, and attribution through pstree."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from kcheckpoint._proto.criu import pagemap_pb2
from kcheckpoint.inspect.criu.memory import (
    PE_LAZY,
    PE_PARENT,
    PE_PRESENT,
    MemoryReader,
    runs_of,
)
from kcheckpoint.inspect.criu.walk import memory_model
from kcheckpoint.inspect.memory.search import compile_needle, search_archive
from kcheckpoint.inspect.reader.scan import scan_archive

from .conftest import PODMAN_T1, WEBAPPS, fixture_id


def _entry(
    vaddr: int,
    pages: int,
    *,
    flags: int | None = None,
    in_parent: bool | None = None,
    v4: bool = True,
) -> pagemap_pb2.pagemap_entry:
    e = pagemap_pb2.pagemap_entry(vaddr=vaddr, compat_nr_pages=0 if v4 else pages)
    if v4:
        e.nr_pages = pages
    if flags is not None:
        e.flags = flags
    if in_parent is not None:
        e.in_parent = in_parent
    return e


def test_only_present_entries_take_room_in_the_pages_file() -> None:
    entries = [
        _entry(0x1000, 2, flags=PE_PRESENT),
        _entry(0x3000, 1, flags=PE_PARENT),
        _entry(0x4000, 3, flags=PE_LAZY | PE_PRESENT),
        _entry(0x8000, 4, flags=PE_LAZY),
        _entry(0x10000, 1, in_parent=True),
        _entry(0x20000, 1),  # no flags: present, as CRIU reads it
    ]
    runs = runs_of(entries, 4096)
    assert [(r.vaddr, r.length, r.source, r.offset) for r in runs] == [
        (0x1000, 8192, "present", 0),
        (0x3000, 4096, "parent", None),
        (0x4000, 12288, "present", 8192),
        (0x8000, 16384, "lazy", None),
        (0x10000, 4096, "parent", None),
        (0x20000, 4096, "present", 20480),
    ]


def test_criu3_compat_count_is_used_when_nr_pages_is_absent() -> None:
    runs = runs_of([_entry(0x1000, 5, flags=PE_PRESENT, v4=False)], 4096)
    assert runs[0].length == 5 * 4096
    # CRIU 4.2 writes 0 in the compat field and the real count in nr_pages
    assert runs_of([_entry(0x1000, 7, flags=PE_PRESENT)], 4096)[0].length == 7 * 4096


@pytest.mark.parametrize("archive", WEBAPPS, ids=fixture_id)
def test_fixture_page_counts_match_the_ground_truth(archive) -> None:  # type: ignore[no-untyped-def]
    _, model = memory_model(str(archive))
    procs = {p.pid: p for p in model.processes.values() if p.live}
    assert sorted(procs) == [1, 2]
    assert procs[1].pages_id == 1 and procs[1].present_bytes == 3554 * 4096
    assert procs[2].pages_id == 2 and procs[2].present_bytes == 692 * 4096
    assert procs[1].comm == "python3"
    assert model.pages_sizes == {
        "checkpoint/pages-1.img": 3554 * 4096,
        "checkpoint/pages-2.img": 692 * 4096,
    }
    assert model.stale_pages == []
    split = procs[1].split()
    assert sum(split.values()) == procs[1].present_bytes
    assert split["heap"] > 0 and split["stack"] > 0 and split["anonymous"] > split["heap"]


def test_mappings_are_sorted_labelled_and_hold_the_env_area() -> None:
    scan = scan_archive(str(PODMAN_T1), read_images=True)
    reader = MemoryReader.from_scan(str(PODMAN_T1), scan)
    pmem = reader.model.processes[1]
    starts = [v.start for v in pmem.vmas]
    assert starts == sorted(starts)
    assert any(v.backing == "[heap]" for v in pmem.vmas)
    assert any(v.backing.startswith("/usr/bin/python3") for v in pmem.vmas)
    from kcheckpoint.inspect.criu.images import read_image

    mm = read_image("mm-1.img", scan.images["checkpoint/mm-1.img"]).entries[0]
    env = reader.read(1, mm.mm_env_start, mm.mm_env_end)
    assert env is not None and b"DB_PASSWORD=hunter2-fixture-pw\x00" in env
    assert pmem.vma_at(mm.mm_env_start).kind == "stack"  # type: ignore[union-attr]
    assert reader.read(1, 0x10, 0x20) is None  # unmapped, not in the archive
    assert reader.read(99, 0, 4096) is None


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out = []
    with tarfile.open(path) as tf:
        for info in tf.getmembers():
            fh = tf.extractfile(info)
            out.append((info, fh.read() if fh is not None else None))
    return out


def _write(members: list[tuple[tarfile.TarInfo, bytes | None]], *, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buf.getvalue(), compresslevel=1) if gz else buf.getvalue()


def test_stale_pages_are_reported_and_never_attributed(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    members = _members(PODMAN_T1)
    stale = (b"\x00" * 100 + b"CHECKPOINT-FIXTURE-MARKER").ljust(8192, b"\x00")
    info = tarfile.TarInfo("checkpoint/pages-9.img")
    info.size = len(stale)
    members.append((info, stale))
    path = tmp_path / "stale.tar"
    path.write_bytes(_write(members))
    _, model = memory_model(str(path))
    assert model.stale_pages == ["checkpoint/pages-9.img"]
    hits = search_archive(str(path), compile_needle("CHECKPOINT-FIXTURE-MARKER")).hits
    stale_hits = [h for h in hits if h.member == "checkpoint/pages-9.img"]
    assert [(h.source, h.pid, h.address, h.offset) for h in stale_hits] == [
        ("stale-memory", None, None, 100)
    ]
    assert sum(1 for h in hits if h.pid == 1) == 3
    res = cli("memory", path)
    assert "stale: checkpoint/pages-9.img" in res.stdout
    assert "pages-9.img" in res.stderr


def test_pages_before_their_pagemap_in_a_stream_are_spooled(tmp_path: Path) -> None:
    members = _members(PODMAN_T1)
    pages = [m for m in members if m[0].name.startswith("checkpoint/pages-")]
    rest = [m for m in members if not m[0].name.startswith("checkpoint/pages-")]
    path = tmp_path / "reordered.tar.gz"
    path.write_bytes(_write(pages + rest, gz=True))
    needle = compile_needle("sk_live_")
    want = [
        (h.pid, h.address, h.member, h.offset) for h in search_archive(str(PODMAN_T1), needle).hits
    ]
    got = search_archive(str(path), needle)
    assert got.input.read_mode == "stream"
    assert [(h.pid, h.address, h.member, h.offset) for h in got.hits] == want
