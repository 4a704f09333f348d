"""The inspection core against every real archive in the shared fixtures (FIXTURES.md)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
from pathlib import Path

import pytest
import zstandard

from kcheckpoint.inspect import list_path, summarize_path
from kcheckpoint.render.jsonout import to_data

from .conftest import (
    ALL_FIXTURES,
    CONTAINERD,
    CRIO,
    IDLE,
    PODMAN_T1,
    PODMAN_T2,
    PODMAN_T3,
    WEBAPPS,
    fixture_id,
)

POD = "webapp-7d9f8c6b5-x2kq4"


@pytest.mark.parametrize(
    ("path", "engine", "pod", "namespace", "container"),
    [
        (IDLE, "podman", None, None, "idle"),
        (PODMAN_T1, "podman", None, None, "webapp"),
        (PODMAN_T2, "podman", None, None, "webapp"),
        (PODMAN_T3, "podman", None, None, "webapp"),
        (CRIO, "cri-o", POD, "shop", "webapp"),
        (CONTAINERD, "containerd", POD, "shop", "webapp"),
    ],
    ids=fixture_id,
)
def test_identity(
    path: Path, engine: str, pod: str | None, namespace: str | None, container: str
) -> None:
    s = summarize_path(path)
    assert s.container.engine == engine
    assert s.container.pod == pod
    assert s.container.namespace == namespace
    assert s.container.name == container
    assert s.problems == []


def _gnu_tar_sizes(path: Path) -> dict[str, int]:
    """Member sizes as GNU tar lists them: an independent reading of the headers."""
    out = subprocess.run(
        ["tar", "-tvf", str(path)], check=True, capture_output=True, text=True
    ).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        if line.startswith("-"):
            name = fields[5].removeprefix("./")
            sizes[name] = int(fields[2])
    return sizes


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=fixture_id)
def test_sizes_equal_tar_headers(path: Path) -> None:
    sizes = _gnu_tar_sizes(path)
    s = summarize_path(path)
    assert s.sizes.total == sum(sizes.values())
    assert s.sizes.checkpoint == sum(v for k, v in sizes.items() if k.startswith("checkpoint/"))
    assert s.sizes.memory_pages == sum(
        v for k, v in sizes.items() if k.startswith("checkpoint/pages-")
    )
    assert s.sizes.rootfs_diff == sizes.get("rootfs-diff.tar", 0)
    if path != IDLE:
        assert s.sizes.memory_pages == 17_391_616  # FIXTURES.md: pages-1 + pages-2


ROOTFS_T1 = ["app/data/app.log", "app/data/cache.bin"]
ROOTFS_T2 = ["app/data/app.log", "app/data/new.txt", "var/tmp/x", "var/tmp/x/y"]
DELETED = ["/app/.fixture_key.pem", "/app/README"]


@pytest.mark.parametrize(
    ("path", "changed", "deleted", "deleted_source"),
    [
        (IDLE, ["tmp/state"], [], None),
        (PODMAN_T1, ROOTFS_T1, DELETED, "deleted.files"),
        (PODMAN_T2, ROOTFS_T2, DELETED, "deleted.files"),
        (PODMAN_T3, ROOTFS_T2, DELETED, "deleted.files"),
        (CRIO, ROOTFS_T1, DELETED, "deleted.files"),
        (CONTAINERD, ROOTFS_T2, DELETED, "whiteout"),
    ],
    ids=fixture_id,
)
def test_rootfs_and_deleted(
    path: Path, changed: list[str], deleted: list[str], deleted_source: str | None
) -> None:
    listing = list_path(path)
    assert sorted(f.path for f in listing.rootfs.changed) == changed
    assert sorted(d.path for d in listing.rootfs.deleted) == deleted
    assert {d.source for d in listing.rootfs.deleted} == (
        {deleted_source} if deleted_source else set()
    )
    assert listing.rootfs.compression == ("gzip" if path == CONTAINERD else "none")


def test_tmpfs_and_shm_tarballs_are_listed() -> None:
    listing = list_path(PODMAN_T1)
    kinds = {(n.member, n.kind) for n in listing.nested}
    assert ("devshm-checkpoint.tar", "devshm") in kinds
    tmpfs = [n for n in listing.nested if n.kind == "tmpfs"]
    assert {n.mount_id for n in tmpfs} == {48, 51, 52, 53}
    dev = next(n for n in tmpfs if n.mount_id == 48)
    assert {"null", "zero", "urandom", "pts", "shm"} <= {e.path for e in dev.entries}


def test_secret_flags_and_categories() -> None:
    members = {m.name: m for m in list_path(PODMAN_T1).members}
    assert members["checkpoint/pages-1.img"].category == "memory"
    assert members["checkpoint/pages-1.img"].secrets == "memory pages"
    assert members["spec.dump"].secrets == "environment variables"
    assert members["rootfs-diff.tar"].secrets is not None
    assert members["checkpoint/tmpfs-dev-48.tar.gz.img"].secrets == "tmpfs contents"
    assert members["devshm-checkpoint.tar"].secrets is not None
    assert members["ctr.log"].category == "log"
    assert members["checkpoint/netdev-10.img"].category == "network"
    assert members["checkpoint/core-1.img"].category == "process"
    assert members["checkpoint/core-1.img"].secrets is None
    assert members["config.dump"].category == "metadata"


@pytest.mark.parametrize("path", WEBAPPS, ids=fixture_id)
def test_memory_warning(path: Path) -> None:
    s = summarize_path(path)
    assert len(s.warnings) == 1
    assert s.warnings[0].memory_bytes == 17_391_616
    assert s.warnings[0].processes == 2


def _without_input(obj: object) -> object:
    data = to_data(obj)
    assert isinstance(data, dict)
    data.pop("input")
    return data


COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_same_result_from_file_stdin_and_compressed(tmp_path: Path, compression: str) -> None:
    raw = PODMAN_T1.read_bytes()
    packed = tmp_path / "archive.bin"  # the name says nothing: detection is by content
    packed.write_bytes(COMPRESSORS[compression](raw))
    from_file = list_path(PODMAN_T1)
    from_packed = list_path(packed)
    import io

    from_stdin = list_path("-", stdin=io.BytesIO(packed.read_bytes()))
    assert from_packed.input.compression == compression
    assert from_packed.input.read_mode == "stream"
    assert _without_input(from_file) == _without_input(from_packed) == _without_input(from_stdin)
    assert to_data(summarize_path(PODMAN_T1))["sizes"] == to_data(summarize_path(packed))["sizes"]


def test_stream_sha256_is_the_input_digest() -> None:
    import hashlib

    s = summarize_path(PODMAN_T3)
    assert s.input.sha256 == hashlib.sha256(PODMAN_T3.read_bytes()).hexdigest()
    plain = summarize_path(PODMAN_T1)
    assert plain.input.sha256 is None and plain.input.read_mode == "seekable"
    hashed = summarize_path(PODMAN_T1, hash_input=True)
    assert hashed.input.sha256 == hashlib.sha256(PODMAN_T1.read_bytes()).hexdigest()


def test_json_is_sorted_and_stable(cli) -> None:  # type: ignore[no-untyped-def]
    first = cli("--no-times", "summary", "--format", "json", str(PODMAN_T3))
    second = cli("--no-times", "summary", "--format", "json", str(PODMAN_T3))
    assert first.exit_code == 0
    assert first.stdout == second.stdout
    doc = json.loads(first.stdout)
    assert list(doc["archives"][0]) == sorted(doc["archives"][0])
