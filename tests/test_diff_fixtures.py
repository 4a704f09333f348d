"""``kcheckpoint diff`` on the real archives, checked against FIXTURES.md and against a
brute-force comparison of the two archives' memory read another way (MemoryReader)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from functools import cache
from pathlib import Path

import pytest

from kcheckpoint.inspect.criu.memory import MemoryReader
from kcheckpoint.inspect.diff import CheckpointDiff, DiffOptions, diff_archives
from kcheckpoint.inspect.reader.scan import scan_archive

from .conftest import CONTAINERD, CRIO, IDLE, PODMAN_T1, PODMAN_T2

PAGE = 4096


@cache
def t1_t2() -> CheckpointDiff:
    return diff_archives(str(PODMAN_T1), str(PODMAN_T2))


@pytest.fixture(scope="module")
def plain_t2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """webapp-t2 decompressed: a seekable copy, to read its memory at offsets."""
    out = tmp_path_factory.mktemp("diff") / "webapp-t2.tar"
    with gzip.open(PODMAN_T2, "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _rootfs_digests(path: Path) -> dict[str, str]:
    """SHA-256 of each file in rootfs-diff.tar, read with tarfile alone."""
    with tarfile.open(path, "r:*") as outer:
        member = outer.extractfile("rootfs-diff.tar")
        assert member is not None
        data = member.read()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as inner:
        for m in inner:
            if m.isfile():
                fh = inner.extractfile(m)
                assert fh is not None
                out["/" + m.name.removeprefix("./")] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_t1_t2_filesystem_matches_fixtures() -> None:
    d = t1_t2()
    by_path = {c.path: c for c in d.filesystem}
    # FIXTURES.md: new.txt and /var/tmp/x/y written, cache.bin removed, app.log appended to
    assert by_path["/app/data/new.txt"].status == "added"
    assert by_path["/var/tmp/x/y"].status == "added"
    assert by_path["/var/tmp/x"].status == "added" and by_path["/var/tmp/x"].b.type == "dir"  # type: ignore[union-attr]
    gone = by_path["/app/data/cache.bin"]
    assert gone.status == "deleted" and gone.a is not None and gone.b is None
    log = by_path["/app/data/app.log"]
    assert log.status == "changed"
    # the deleted.files entries are the same on both sides: not a difference
    assert "/app/README" not in by_path and "/app/.fixture_key.pem" not in by_path
    digests_a, digests_b = _rootfs_digests(PODMAN_T1), _rootfs_digests(PODMAN_T2)
    assert log.a.sha256 == digests_a["/app/data/app.log"]  # type: ignore[union-attr]
    assert log.b.sha256 == digests_b["/app/data/app.log"]  # type: ignore[union-attr]
    assert by_path["/app/data/new.txt"].b.sha256 == digests_b["/app/data/new.txt"]  # type: ignore[union-attr]
    assert set(by_path) == {
        "/app/data/new.txt",
        "/var/tmp/x",
        "/var/tmp/x/y",
        "/app/data/cache.bin",
        "/app/data/app.log",
    }
    assert d.counts["filesystem"].added == 3 and d.counts["filesystem"].removed == 1


def test_t1_t2_dump_times_and_runs() -> None:
    """Podman archives carry no checkpoint time: CRIU's dump time is inventory.img's mtime."""
    d = t1_t2()
    changes = {m.key: (m.a, m.b) for m in d.metadata}
    # FIXTURES.md: t2 was taken after t1 (the tar headers say 17:46:48 and 17:46:55)
    assert changes["dumped"] == ("2026-11-25T17:46:48Z", "2026-11-25T17:46:55Z")
    assert "criu-run-id" in changes
    quiet = diff_archives(str(PODMAN_T1), str(PODMAN_T2), options=DiffOptions(ignore_time=True))
    assert "dumped" not in {m.key for m in quiet.metadata}


def test_t1_t2_same_two_processes() -> None:
    d = t1_t2()
    assert d.processes == [] and d.files == [] and d.sockets == []
    assert d.a.processes == d.b.processes == 2
    assert d.same_container and d.note is None
    # the same members; those whose bytes differ (CRIU images, rootfs-diff.tar) are changed
    assert {m.status for m in d.members} == {"changed"}
    assert "checkpoint/pages-1.img" not in {m.name for m in d.members}
    assert all(m.sha256_a and m.sha256_b and m.sha256_a != m.sha256_b for m in d.members)


def test_t1_t2_memory_located_per_mapping(plain_t2: Path) -> None:
    """Every changed page the diff reports differs, and every other common page is equal."""
    d = t1_t2()
    assert {(m.pid_a, m.pid_b) for m in d.memory} == {(1, 1), (2, 2)}
    a_scan = scan_archive(PODMAN_T1, read_images=True)
    b_scan = scan_archive(plain_t2, read_images=True)
    ra, rb = MemoryReader.from_scan(PODMAN_T1, a_scan), MemoryReader.from_scan(plain_t2, b_scan)
    for mem in d.memory:
        assert mem.compared
        pid = mem.pid_a
        assert pid is not None
        pa, pb = ra.model.processes[pid], rb.model.processes[pid]
        # FIXTURES.md: pid 1 has 3554 present pages, pid 2 has 692, on both sides
        assert mem.present_a // PAGE == mem.present_b // PAGE == {1: 3554, 2: 692}[pid]
        common = _present_pages(pa) & _present_pages(pb)
        expected = {v for v in common if ra.read(pid, v, v + PAGE) != rb.read(pid, v, v + PAGE)}
        reported: set[int] = set()
        for m in mem.mappings:
            assert m.start_a is not None and m.end_a is not None
            for r in m.changed_ranges:
                assert m.start_a <= r.start < r.end <= m.end_a  # located inside its mapping
                reported |= set(range(r.start, r.end, PAGE))
            assert m.changed_pages * PAGE == m.changed_bytes
            assert m.changed_ranges_total == len(m.changed_ranges)  # few enough to list all
        assert expected and reported == expected
        assert mem.changed_pages == len(expected)
        assert sum(m.changed_pages for m in mem.mappings) == len(expected)


def _present_pages(pmem) -> set[int]:  # type: ignore[no-untyped-def]
    out: set[int] = set()
    for r in pmem.runs:
        if r.source == "present":
            out |= set(range(r.vaddr, r.vaddr + r.length, PAGE))
    return out


def test_digest_path_agrees_with_offset_path(tmp_path: Path) -> None:
    """Both streamed (digests, two passes) finds exactly what reading at offsets finds."""
    t1_gz = tmp_path / "t1.tar.gz"
    with open(PODMAN_T1, "rb") as src, gzip.open(t1_gz, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    streamed = diff_archives(str(t1_gz), str(PODMAN_T2))
    assert streamed.a.input.read_mode == streamed.b.input.read_mode == "stream"
    assert streamed.memory == t1_t2().memory
    assert streamed.filesystem == t1_t2().filesystem


def test_t1_t2_cli_text_and_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, PODMAN_T2)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("A: ") and lines[1].startswith("B: ")
    assert "  A /app/data/new.txt" in "\n".join(lines)
    assert any(line.startswith("  D /app/data/cache.bin") for line in lines)
    assert any(line.startswith("  C /app/data/app.log") for line in lines)
    # counts come before the first section
    first_section = lines.index("Memory")
    assert any(line.strip().startswith("Filesystem  A 3") for line in lines[:first_section])
    # the memory warning, once per archive
    assert result.stderr.count("memory may hold passwords") == 2


def test_json_keys_are_stable(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--no-times", "diff", PODMAN_T1, PODMAN_T2, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert set(doc) == {
        "a",
        "b",
        "counts",
        "differences",
        "files",
        "filesystem",
        "identical",
        "ignore_time",
        "members",
        "memory",
        "metadata",
        "note",
        "problems",
        "processes",
        "provenance",
        "same_container",
        "sockets",
    }
    assert [i["sha256"] is not None for i in doc["provenance"]["inputs"]] == [True, True]
    mapping = doc["memory"][0]["mappings"][0]
    assert set(mapping) == {
        "backing",
        "changed_bytes",
        "changed_pages",
        "changed_ranges",
        "changed_ranges_total",
        "end_a",
        "end_b",
        "kind",
        "pages_only_a",
        "pages_only_b",
        "perms_a",
        "perms_b",
        "present_a",
        "present_b",
        "start_a",
        "start_b",
        "status",
    }
    assert doc["differences"] == sum(sum(c.values()) for c in doc["counts"].values())
    again = cli("--no-times", "diff", PODMAN_T1, PODMAN_T2, "--format", "json")
    assert again.stdout == result.stdout
    lines = cli("diff", PODMAN_T1, PODMAN_T2, "--format", "jsonl").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["record"] == "summary"
    assert {r["record"] for r in records[1:]} == {"memory", "filesystem", "metadata", "members"}


def test_against_itself_short_circuits(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, PODMAN_T1, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    digest = hashlib.sha256(PODMAN_T1.read_bytes()).hexdigest()
    assert doc["identical"] and doc["differences"] == 0
    assert doc["a"]["input"]["sha256"] == doc["b"]["input"]["sha256"] == digest
    assert result.stderr.count("memory may hold passwords") == 2


def test_against_a_copy_short_circuits(tmp_path: Path) -> None:
    copy = tmp_path / "copy.tar"
    shutil.copyfile(PODMAN_T1, copy)
    d = diff_archives(str(PODMAN_T1), str(copy))
    assert d.identical and d.differences == 0


def test_against_a_recompressed_copy(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    import zstandard

    copy = tmp_path / "t1.tar.zst"
    copy.write_bytes(zstandard.ZstdCompressor().compress(PODMAN_T1.read_bytes()))
    for a, b in ((PODMAN_T1, copy), (copy, PODMAN_T1)):
        d = diff_archives(str(a), str(b))
        assert not d.identical and d.differences == 0
        assert d.processes == d.memory == d.filesystem == d.members == d.metadata == []
    result = cli("diff", copy, PODMAN_T1)
    assert result.exit_code == 0 and "no differences" in result.stdout


def test_against_its_crio_repackaging() -> None:
    """crio/ is webapp-t1 in CRI-O's layout: same CRIU images and rootfs, other metadata."""
    for a, b in ((PODMAN_T1, CRIO), (CRIO, PODMAN_T1)):
        d = diff_archives(str(a), str(b))
        assert d.processes == [] and d.memory == [] and d.filesystem == []
        assert d.files == [] and d.sockets == []
        assert d.same_container and d.note is None
        keys = {m.key for m in d.metadata}
        assert {"engine", "image"} <= keys  # the engine metadata was rewritten
        assert {m.name for m in d.members} >= {"bind.mounts", "network.status"}


def test_containerd_whiteouts_equal_deleted_files() -> None:
    """containerd/ is webapp-t2 with whiteouts in place of deleted.files: no file difference."""
    d = diff_archives(str(PODMAN_T2), str(CONTAINERD))
    assert d.filesystem == [] and d.processes == [] and d.memory == []


def test_ignore_time_leaves_out_checkpoint_times() -> None:
    keys = {m.key for m in diff_archives(str(CRIO), str(CONTAINERD)).metadata}
    assert "checkpointed" in keys
    quiet = diff_archives(str(CRIO), str(CONTAINERD), options=DiffOptions(ignore_time=True))
    assert "checkpointed" not in {m.key for m in quiet.metadata}
    assert quiet.ignore_time


def test_different_containers_are_said_at_the_top(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", IDLE, PODMAN_T1)
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("NOTE: checkpoints of different containers") and "idle" in first
    # env by name; a changed value is shown as changed, both values redacted
    assert "env/API_TOKEN: value changed (redacted)" in result.stdout
    assert "sk_live_" not in result.stdout and "hunter2" not in result.stdout
    assert "--show-secrets" not in result.stderr


def test_show_secrets_shows_values_and_warns(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", IDLE, PODMAN_T1, "--show-secrets")
    assert "env/API_TOKEN: sk_live_FAKE0123456789 -> sk_live_" in result.stdout
    assert "--show-secrets" in result.stderr and "secrets" in result.stderr


def test_content_shows_a_unified_diff(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, PODMAN_T2, "--content")
    text = result.stdout
    assert "--- a/app/data/app.log" in text and "+++ b/app/data/app.log" in text
    assert "+++ b/app/data/new.txt" in text
    assert "(binary file: not shown)" in text  # cache.bin
    assert "file contents are shown" in result.stderr


def test_stdin_side(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, "-", "--format", "json", stdin=PODMAN_T2.read_bytes())
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["b"]["input"]["path"] == "<stdin>"
    assert doc["counts"]["filesystem"]["added"] == 3


def test_piped_copy_is_identical(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, "-", stdin=PODMAN_T1.read_bytes())
    assert result.exit_code == 0 and "identical: both archives have SHA-256" in result.stdout


def test_errors_have_exit_codes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = cli("diff", PODMAN_T1, tmp_path / "nope.tar")
    assert missing.exit_code == 3 and "Traceback" not in missing.stderr
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar" * 100)
    assert cli("diff", junk, PODMAN_T1).exit_code == 3
    truncated = tmp_path / "cut.tar"
    truncated.write_bytes(PODMAN_T1.read_bytes()[: 1 << 20])
    assert cli("diff", PODMAN_T1, truncated).exit_code == 4
    assert cli("diff", "-", "-", stdin=b"").exit_code == 2


def test_csv_and_bodyfile(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("diff", PODMAN_T1, PODMAN_T2, "--format", "csv")
    assert result.exit_code == 1
    rows = result.stdout.splitlines()
    assert rows[0] == "section,status,what,a,b"
    assert any(r.startswith("filesystem,added,/app/data/new.txt,,") for r in rows)
    assert sum(r.startswith("memory,") for r in rows) == 2
    # a diff has no timeline: bodyfile is a usage error
    assert cli("diff", PODMAN_T1, PODMAN_T2, "--format", "bodyfile").exit_code == 2


def test_strict_turns_problems_into_exit_4(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from .test_inspect_problems import rebuild

    def edit(member: str, blob: bytes) -> bytes | None:
        return blob[: len(blob) // 2] if member.endswith("pages-1.img") else blob

    damaged = rebuild(tmp_path, IDLE, edit)
    loose = cli("diff", IDLE, damaged)
    assert loose.exit_code == 1 and "pages-1.img" in loose.stderr
    assert cli("diff", IDLE, damaged, "--strict").exit_code == 4


def _restarted_worker(tmp_path: Path) -> Path:
    """webapp-t1 with its worker (pid 2) renumbered to pid 7: a restart, as diff sees it."""
    import re

    from kcheckpoint.inspect.criu.images import read_image, write_image

    from .test_inspect_problems import rebuild

    per_pid = re.compile(r"^checkpoint/(core|ids|mm|fs|pagemap|creds)-2\.img$")
    moved: list[tuple[str, bytes]] = []

    def edit(member: str, blob: bytes) -> bytes | None:
        name = member.removeprefix("./")
        if per_pid.match(name):
            moved.append((name.replace("-2.img", "-7.img"), blob))
            return None
        if name == "checkpoint/pstree.img":
            tree = read_image("pstree.img", blob).entries
            for e in tree:
                if e.pid == 2:
                    e.pid = 7
                    del e.threads[:]
                    e.threads.append(7)
            return write_image("PSTREE", list(tree))
        return blob

    return rebuild(tmp_path, PODMAN_T1, edit, add=moved)  # moved is filled during the walk


def test_restarted_worker_is_replaced_not_unrelated(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    restarted = _restarted_worker(tmp_path)
    d = diff_archives(str(PODMAN_T1), str(restarted))
    assert [(p.status, p.a.pid, p.b.pid) for p in d.processes] == [("replaced", 2, 7)]  # type: ignore[union-attr]
    assert d.processes[0].a.cmdline == d.processes[0].b.cmdline  # type: ignore[union-attr]
    (mem,) = d.memory
    assert (mem.status, mem.pid_a, mem.pid_b, mem.compared) == ("replaced", 2, 7, False)
    assert mem.present_a == mem.present_b == 692 * PAGE and mem.mappings == []
    assert d.counts["processes"].replaced == 1
    text = cli("diff", PODMAN_T1, restarted).stdout
    assert "  R [2 -> 7] /usr/bin/python3 -c" in text
    assert "pages not compared (different processes)" in text
