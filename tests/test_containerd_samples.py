"""The real containerd 2.1.9 archives in samples/ (scripts/make_containerd_samples.py made them).

What these archives show, and no repackaged fixture does: rootfs-diff.tar is gzip, status.dump
holds the CRI state as an integer, dump.log and descriptors.json are members, deletions are
whiteouts, every diff holds runc's three empty mount points, and a checkpoint of a restored
container names the container "containerd" in spec.dump while status.dump has its name.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any

import pytest

from .conftest import SAMPLES

WEBAPP = SAMPLES / "containerd-webapp.tar"
RESTORED = SAMPLES / "containerd-restored.tar"
SAMPLE_PASSWORD = "hunter2-sample-pw"
#: As list's JSON writes rootfs paths: the container's, with a leading '/'.
RUNC_MOUNT_POINTS = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]


def member(archive: Any, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


@pytest.mark.parametrize("archive", [WEBAPP, RESTORED], ids=["webapp", "restored"])
def test_summary_reads_who_and_what(cli: Any, archive: Any) -> None:
    result = cli("--no-times", "summary", "--format", "json", archive)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["archives"][0]["summary"]
    container = summary["container"]
    assert container["engine"] == "containerd"
    assert (container["namespace"], container["name"]) == ("kcp-sample", "app")
    assert container["state"] == "running"
    assert summary["processes"] == 3  # sh, nc, and the counter's sleep
    assert summary["problems"] == []
    # the workload's changes, apart from runc's empty mount points
    assert summary["rootfs_changed"] == 3
    assert summary["rootfs_mount_points"] == 3
    assert summary["rootfs_deleted"] == 1


def test_a_restored_containers_checkpoint_is_named_from_status_dump(cli: Any) -> None:
    spec = json.loads(member(RESTORED, "spec.dump"))
    assert spec["annotations"]["io.kubernetes.cri.container-name"] == "containerd"  # the bug
    status = json.loads(member(RESTORED, "status.dump"))
    assert status["state"] == 1 and status["metadata"]["name"] == "app"

    result = cli("--no-times", "summary", "--format", "json", RESTORED)
    container = json.loads(result.stdout)["archives"][0]["summary"]["container"]
    assert container["name"] == "app"
    assert container["pod"] == "webapp-restored"
    # times keep the source's sub-second digits
    assert container["restored_from"] == status["annotations"]["checkpointedAt"]
    tree = cli("inspect", RESTORED)
    assert "Restored from a checkpoint of: " in tree.stdout
    # a container that was started, not restored, says nothing of the kind
    fresh = cli("--no-times", "summary", "--format", "json", WEBAPP)
    assert json.loads(fresh.stdout)["archives"][0]["summary"]["container"]["restored_from"] is None


def test_list_separates_runc_mount_points_from_the_workloads_changes(cli: Any) -> None:
    raw = member(WEBAPP, "rootfs-diff.tar")
    assert raw[:2] == b"\x1f\x8b"  # gzip, despite the name
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as inner:
        whiteout = inner.getmember("etc/.wh.group")
    assert whiteout.mode == 0 and whiteout.mtime == 0

    result = cli("list", "--format", "json", WEBAPP)
    assert result.exit_code == 0, result.stderr
    rootfs = json.loads(result.stdout)["rootfs"]
    assert rootfs["compression"] == "gzip"
    assert sorted(f["path"] for f in rootfs["mount_points"]) == RUNC_MOUNT_POINTS
    changed = {f["path"] for f in rootfs["changed"] if f["type"] == "file"}
    assert changed == {"/tmp/state", "/tmp/counter", "/root/x/y"}
    assert rootfs["deleted"] == [{"path": "/etc/group", "source": "whiteout"}]
    members = {m["name"]: m for m in json.loads(result.stdout)["members"]}
    assert members["dump.log"]["category"] == "log"
    assert members["checkpoint/descriptors.json"]["category"] == "metadata"

    text = cli("list", WEBAPP).stdout
    assert "Empty mount points the runtime created, not the workload's changes (3)" in text
    summary = cli("summary", WEBAPP).stdout
    assert "3 changed, 1 deleted (+3 mount points)" in summary


def test_a_file_with_content_at_a_mount_destination_is_the_workloads(tmp_path: Any) -> None:
    from kcheckpoint.inspect.model import FileEntry, RootfsDiff
    from kcheckpoint.inspect.reader.engines import Metadata, split_mount_points

    def entry(path: str, size: int) -> FileEntry:
        return FileEntry(path, "file", size, "0644", "1970-01-01T00:00:00Z", None)

    meta = Metadata(spec={"mounts": [{"destination": "/etc/hosts"}, {"destination": "/data"}]})
    rootfs = RootfsDiff("gzip", [entry("etc/hosts", 12), entry("etc/hostname", 0)])
    split = split_mount_points(rootfs, meta)
    # etc/hosts has content (the workload wrote it); etc/hostname is not mounted here
    assert [f.path for f in split.changed] == ["etc/hosts", "etc/hostname"]
    assert split.mount_points == []
    empty = split_mount_points(RootfsDiff("gzip", [entry("etc/hosts", 0)]), meta)
    assert [f.path for f in empty.mount_points] == ["etc/hosts"]


def test_inspect_shows_the_tcp_listener_and_redacts_the_planted_password(cli: Any) -> None:
    result = cli("inspect", "--sockets", "--env", WEBAPP)
    assert result.exit_code == 0, result.stderr
    assert "LISTEN" in result.stdout and ":17777" in result.stdout
    assert "DB_PASSWORD" in result.stdout
    assert SAMPLE_PASSWORD not in result.stdout + result.stderr
