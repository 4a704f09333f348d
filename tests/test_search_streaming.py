"""`search` writes each hit the moment it is found, named as the finished search names it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from . import _mutate as M
from .conftest import ALL_FIXTURES, PODMAN_T1, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
KCP = [sys.executable, "-m", "kcheckpoint"]
PATTERN = "hunter2"


def _first_hit_end(archive: Path) -> int:
    """The archive offset just past the first hit of PATTERN."""
    found = subprocess.run(
        [*KCP, "search", str(archive), PATTERN, "-q", "--format", "json"],
        capture_output=True,
        check=True,
        env=ENV,
    )
    hit = json.loads(found.stdout)["hits"][0]
    with tarfile.open(archive) as tf:
        return tf.getmember(hit["member"]).offset_data + hit["offset"] + hit["length"]


@pytest.mark.parametrize(
    ("fmt", "looks_like"),
    [("jsonl", b'{"address"'), ("csv", b"pid,comm,address"), ("text", b"PID ")],
)
def test_the_first_hit_is_written_while_the_archive_is_still_arriving(
    fmt: str, looks_like: bytes
) -> None:
    """Stdin stays open after the bytes that hold the first hit: a search that printed only at
    the end could not write anything yet."""
    data = PODMAN_T1.read_bytes()
    enough = _first_hit_end(PODMAN_T1) + (4 << 20)  # past the reader's buffers
    assert enough < len(data) - (1 << 20)
    proc = subprocess.Popen(
        [*KCP, "search", "-", PATTERN, "-q", "--format", fmt],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(data[:enough])
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no hit written while the rest of the archive was still to come"
        first = os.read(proc.stdout.fileno(), 1 << 16)
        assert first.startswith(looks_like)
        assert proc.poll() is None  # still reading the archive
        proc.stdin.write(data[enough:])
        proc.stdin.close()
        rest = proc.stdout.read()
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
    assert PATTERN.encode() not in first + rest  # the hit's place, never its bytes


@pytest.mark.parametrize("archive", ALL_FIXTURES, ids=lambda p: p.name)
def test_streamed_hits_are_the_hits_of_the_whole_search(archive: Path) -> None:
    """The rows written as found (named before pstree.img is read) equal the hits of the JSON
    document, which is written after the whole pass."""
    args = [*KCP, "search", str(archive), "-q", "-e", "bin/"]
    jsonl = subprocess.run([*args, "--format", "jsonl"], capture_output=True, env=ENV)
    whole = subprocess.run([*args, "--format", "json"], capture_output=True, env=ENV)
    assert jsonl.returncode == whole.returncode == 0
    streamed = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert streamed == json.loads(whole.stdout)["hits"]
    assert jsonl.stderr == b""


def test_a_hit_named_before_pstree_is_read_and_renamed_after_is_reported(tmp_path: Path) -> None:
    """pstree.img comes after the pages: a task it leaves out was named from its core image
    when its hits were written. The problem says so; the JSON document has the final names."""
    members = M.members_of(PODMAN_T1.read_bytes())
    only_first = M.edit_image(members, "checkpoint/pstree.img", lambda entries: entries[:1])
    archive = tmp_path / "pstree-leaves-one-out.tar"
    archive.write_bytes(M.build(only_first))
    args = [*KCP, "search", str(archive), PATTERN]
    streamed = subprocess.run([*args, "--format", "jsonl"], capture_output=True, env=ENV)
    whole = subprocess.run([*args, "--format", "json"], capture_output=True, env=ENV)
    early = [json.loads(line) for line in streamed.stdout.splitlines()]
    final = json.loads(whole.stdout)["hits"]
    assert len(early) == len(final)
    renamed = [e for e, f in zip(early, final, strict=True) if e != f]
    assert renamed and all(e["source"] == "memory" for e in renamed)
    assert {f["source"] for e, f in zip(early, final, strict=True) if e != f} == {"stale-memory"}
    assert f"{len(renamed)} hit(s) were shown before pstree.img was read".encode() in (
        streamed.stderr
    )
