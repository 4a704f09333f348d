"""extract: safe by construction, and checkable with the manifest."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from ._archives import add_file, add_link, minimal_checkpoint, rewritten
from .conftest import ALL_FIXTURES, CONTAINERD, IDLE, PODMAN_T1, fixture_id


def _modes(root: Path) -> tuple[set[int], set[int]]:
    dirs, files = set(), set()
    for p in root.rglob("*"):
        st = p.lstat()
        if stat.S_ISDIR(st.st_mode):
            dirs.add(stat.S_IMODE(st.st_mode))
        elif stat.S_ISREG(st.st_mode):
            files.add(stat.S_IMODE(st.st_mode))
    return dirs, files


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=fixture_id)
def test_manifest_extract_sha256sum_c(cli, tmp_path: Path, path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "manifest.sha256"
    manifest.write_text(cli("manifest", path).stdout)
    out = tmp_path / "out"
    result = cli("extract", path, "-d", out)
    assert result.exit_code == 0, result.stderr
    check = subprocess.run(
        ["sha256sum", "-c", "--strict", str(manifest)], cwd=out, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # what extract printed is itself a valid manifest of what it wrote
    printed = tmp_path / "printed.sha256"
    printed.write_text(result.stdout)
    assert (
        subprocess.run(["sha256sum", "-c", str(printed)], cwd=out, capture_output=True).returncode
        == 0
    )
    dirs, files = _modes(out)
    assert dirs <= {0o700} and files == {0o600}


def _hostile(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.tar"
    with rewritten(minimal_checkpoint(), path) as tf:
        add_file(tf, "../escape.txt", b"evil")
        add_file(tf, "/tmp/absolute-evil.txt", b"evil")
        add_link(tf, "checkpoint/link-out", "../../outside")
        add_link(tf, "checkpoint/link-abs", "/etc/passwd")
        add_link(tf, "checkpoint/link-in", "core-1.img")
        add_file(tf, "checkpoint/link-out/through.txt", b"written through a link?")
    return path


def test_hostile_members_are_refused_and_the_rest_extracted(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = _hostile(tmp_path)
    work = tmp_path / "work"
    out = work / "out"
    result = cli("extract", archive, "-d", out)
    assert result.exit_code == 4
    assert "Traceback" not in result.stderr
    for name in (
        "../escape.txt",
        "/tmp/absolute-evil.txt",
        "checkpoint/link-out",
        "checkpoint/link-abs",
    ):
        assert f"refused {name}" in result.stderr
    # nothing outside the output directory
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/absolute-evil.txt").exists()
    # the rest is there, and the safe link too
    assert (out / "config.dump").is_file() and (out / "checkpoint" / "pages-1.img").is_file()
    assert os.readlink(out / "checkpoint" / "link-in") == "core-1.img"
    assert not (out / "checkpoint" / "link-out").is_symlink()
    assert (
        out / "checkpoint" / "link-out" / "through.txt"
    ).read_bytes() == b"written through a link?"


def test_no_overwrite_without_force(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.dump").write_text("mine")
    result = cli("extract", IDLE, "spec.dump", "config.dump", "-d", out)
    assert result.exit_code == 3
    assert (out / "spec.dump").read_text() == "mine"
    assert (out / "config.dump").is_file()
    assert "--force" in result.stderr
    forced = cli("extract", IDLE, "spec.dump", "-d", out, "--force")
    assert forced.exit_code == 0
    assert (out / "spec.dump").read_text() != "mine"


def test_selected_members_and_rootfs_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli(
        "extract", CONTAINERD, "rootfs-diff/app/data/new.txt", "checkpoint/pstree.img", "-d", out
    )
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["checkpoint/pstree.img", "rootfs-diff/app/data/new.txt"]
    missing = cli("extract", CONTAINERD, "no/such/member", "-d", tmp_path / "o2")
    assert missing.exit_code == 3
    assert "no/such/member" in missing.stderr


def test_truncated_archive_leaves_no_half_written_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = PODMAN_T1.read_bytes()
    with tarfile.open(PODMAN_T1) as tf:
        pages = tf.getmember("checkpoint/pages-1.img")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: pages.offset_data + 1_000_000])
    # a file on disk is indexed first: the truncation is found before anything is written
    out = tmp_path / "out"
    result = cli("extract", cut, "-d", out)
    assert result.exit_code == 4
    assert not [p for p in out.rglob("*") if p.is_file()]
    # a stream is written as it goes: complete members stay, the cut one is not left behind
    piped = tmp_path / "piped"
    result = cli("extract", "-", "-d", piped, stdin=cut.read_bytes())
    assert result.exit_code == 4
    assert "truncated" in result.stderr or "ends early" in result.stderr
    assert not (piped / "checkpoint" / "pages-1.img").exists()
    assert not [p for p in piped.rglob(".kcheckpoint-*")]
    assert (piped / "checkpoint" / "core-1.img").is_file()


def test_extract_from_stdin(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("extract", "-", "spec.dump", "-d", out, stdin=IDLE.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert (out / "spec.dump").is_file()
