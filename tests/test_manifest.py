"""manifest and verify: digests of every member and every rootfs-diff file."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from kcheckpoint.inspect.evidence.manifest import build_manifest, parse_sha256sum, sha256sum_lines

from .conftest import ALL_FIXTURES, CONTAINERD, IDLE, PODMAN_T1, fixture_id


def _plain_tar(path: Path) -> bytes:
    """The archive decompressed by the zstd or gzip command-line tools."""
    if path.suffix == ".zst":
        cmd = ["zstd", "-dc", str(path)]
    elif path.suffix == ".gz":
        cmd = ["gzip", "-dc", str(path)]
    else:
        return path.read_bytes()
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def _digests(data: bytes, prefix: str = "") -> dict[str, str]:
    """File digests of a tar held in memory, whiteouts left out."""
    digests: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for info in tf.getmembers():
            name = info.name.removeprefix("./")
            if info.isfile() and not name.rsplit("/", 1)[-1].startswith(".wh."):
                content = tf.extractfile(info)
                assert content is not None
                digests[prefix + name] = hashlib.sha256(content.read()).hexdigest()
    return digests


def _independent_digests(path: Path) -> dict[str, str]:
    """Digests computed with external decompressors and tarfile.extractfile."""
    plain = _plain_tar(path)
    digests = _digests(plain)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tf:
        rootfs = tf.extractfile("rootfs-diff.tar")
        assert rootfs is not None
        inner = rootfs.read()
    if inner[:2] == b"\x1f\x8b":
        import gzip

        inner = gzip.decompress(inner)
    digests.update(_digests(inner, "rootfs-diff/"))
    return digests


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=fixture_id)
def test_manifest_matches_independent_digests(path: Path) -> None:
    manifest = build_manifest(path)
    ours = {e.path: e.sha256 for e in manifest.entries}
    assert ours == _independent_digests(path)
    assert manifest.input.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256sum_format_round_trips() -> None:
    manifest = build_manifest(CONTAINERD)
    text = "".join(sha256sum_lines(manifest.entries))
    assert parse_sha256sum(text) == {e.path: e.sha256 for e in manifest.entries}
    assert "rootfs-diff/app/data/new.txt" in text


def test_verify_match_and_mismatch(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.sha256"
    result = cli("manifest", IDLE)
    assert result.exit_code == 0
    manifest.write_text(result.stdout)
    ok = cli("verify", IDLE, manifest)
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith("OK:")

    data = bytearray(PODMAN_T1.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        spec = tf.getmember("spec.dump")
    data[spec.offset_data + 10] ^= 0x01
    copy = tmp_path / "copy.tar"
    copy.write_bytes(bytes(data))
    m1 = tmp_path / "t1.json"
    m1.write_text(cli("manifest", "--format", "json", PODMAN_T1).stdout)
    bad = cli("verify", "--format", "json", copy, m1)
    assert bad.exit_code == 1
    doc = json.loads(bad.stdout)
    assert doc["match"] is False
    assert [(m["path"], m["status"]) for m in doc["mismatches"]] == [("spec.dump", "changed")]
    text = cli("verify", copy, m1)
    assert "spec.dump" in text.stdout and text.exit_code == 1


def test_verify_rejects_a_bad_manifest(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a manifest\n")
    result = cli("verify", IDLE, bad)
    assert result.exit_code == 4
    assert "sha256sum format" in result.stderr
