"""Bad input gets one line on stderr, a distinct exit code and no traceback."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from ._archives import add_file, add_link, minimal_checkpoint, rewritten
from .conftest import IDLE, PODMAN_T1


def _assert_clean_error(result, code: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    assert needle in first


def test_missing_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _assert_clean_error(cli("list", tmp_path / "nope.tar"), 3, "no such file")


def test_directory_as_archive_for_list(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _assert_clean_error(cli("list", tmp_path), 3, "is a directory")


def test_empty_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    _assert_clean_error(cli("list", empty), 3, "empty")


def test_not_a_tar(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello, this is not an archive\n" * 100)
    _assert_clean_error(cli("list", junk), 3, "not a tar")


def test_compressed_but_not_a_tar(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"plain text, not a tar\n" * 100))
    _assert_clean_error(cli("list", junk), 3, "not a tar")


def test_lz4_is_named(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lz4 = tmp_path / "a.tar.lz4"
    lz4.write_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 600)
    _assert_clean_error(cli("list", lz4), 3, "lz4")


@pytest.mark.parametrize("cut", [700, 5000, 9000])
def test_truncated_plain_tar(cli, tmp_path: Path, cut: int) -> None:  # type: ignore[no-untyped-def]
    data = minimal_checkpoint(pages=4)
    short = tmp_path / "short.tar"
    short.write_bytes(data[:cut])
    _assert_clean_error(cli("list", short), 4, "truncated")


def test_truncated_between_members(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Cut exactly at a member boundary: tarfile alone would not notice."""
    data = minimal_checkpoint()
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        last = tf.getmembers()[-1]
        end = last.offset_data + ((last.size + 511) // 512) * 512
    short = tmp_path / "short.tar"
    short.write_bytes(data[:end])
    _assert_clean_error(cli("list", short), 4, "truncated")
    piped = cli("list", "-", stdin=data[:end])
    _assert_clean_error(piped, 4, "truncated")


def test_truncated_real_archive_in_every_compression(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = PODMAN_T1.read_bytes()[:9_000_000]
    for name, packed in (
        ("plain", raw),
        ("gz", gzip.compress(raw, 1)),
        ("zst", zstandard.ZstdCompressor().compress(raw)),
    ):
        path = tmp_path / f"cut.{name}"
        path.write_bytes(packed)
        _assert_clean_error(cli("list", path), 4, "truncated")


def test_truncated_zstd_stream(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = IDLE.read_bytes()
    short = tmp_path / "idle.tar.zst"
    short.write_bytes(data[: len(data) - 5])
    result = cli("list", short)
    # the tar inside is cut too, and that is usually what is noticed first
    _assert_clean_error(result, 4, "")
    assert "truncated" in result.stderr or "ends early" in result.stderr


def test_zstd_cut_after_the_tar_end_is_still_an_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Only the zstd frame check can notice a cut in the final padding of the tar."""
    import zstandard

    tar = minimal_checkpoint() + b"\0" * 20_000  # generous padding after the end marker
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(tar)
    short = tmp_path / "padded.tar.zst"
    short.write_bytes(packed[:-3])  # only the checksum is cut
    _assert_clean_error(cli("list", short), 4, "ends early")
    whole = tmp_path / "whole.tar.zst"
    whole.write_bytes(packed)
    assert cli("list", whole).exit_code == 0


def test_corrupt_gzip(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    packed = bytearray(gzip.compress(minimal_checkpoint(pages=20)))
    packed[len(packed) // 2] ^= 0xFF
    packed[len(packed) // 2 + 1] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(packed))
    _assert_clean_error(cli("list", bad), 4, "gzip")


def test_corrupt_zstd(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    packed = bytearray(IDLE.read_bytes())
    packed[5000] ^= 0xFF
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(bytes(packed))
    _assert_clean_error(cli("list", bad), 4, "zstd")


def test_corrupt_header_in_the_middle(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(minimal_checkpoint())
    import io

    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        third = tf.getmembers()[2]
    data[third.offset + 100 : third.offset + 108] = b"garbage!"
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    _assert_clean_error(cli("list", bad), 4, "damaged")


def test_a_tar_that_is_not_a_checkpoint(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        add_file(tf, "hello.txt", b"hi")
    path = tmp_path / "plain.tar"
    path.write_bytes(buf.getvalue())
    _assert_clean_error(cli("list", path), 4, "not a container checkpoint")


def test_missing_spec_dump_is_a_problem_not_a_crash(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        add_file(tf, "config.dump", json.dumps({"name": "x"}).encode())
    path = tmp_path / "nospec.tar"
    path.write_bytes(buf.getvalue())
    result = cli("summary", path)
    assert result.exit_code == 0
    assert "has no spec.dump" in result.stderr
    assert "checkpoint/ is absent" in result.stderr
    strict = cli("summary", "--strict", path)
    assert strict.exit_code == 4


def test_hostile_member_names_are_reported_not_followed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hostile.tar"
    with rewritten(minimal_checkpoint(), path) as tf:
        add_file(tf, "../../etc/evil", b"x")
        add_file(tf, "/abs/path", b"x")
        add_link(tf, "checkpoint/escape", "../../../etc/shadow")
        add_link(tf, "checkpoint/abs", "/etc/shadow")
    result = cli("list", "--format", "json", path)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    unsafe = {m["name"]: m["unsafe"] for m in doc["members"] if m["unsafe"]}
    assert set(unsafe) == {"../../etc/evil", "/abs/path", "checkpoint/escape", "checkpoint/abs"}
    assert {p["kind"] for p in doc["problems"]} == {"unsafe-name"}
    assert "path with '..'" in result.stderr
    assert cli("list", "--strict", path).exit_code == 4


def test_summary_keeps_going_after_a_bad_archive(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"nope" * 300)
    result = cli("summary", "--format", "json", bad, IDLE)
    assert result.exit_code == 3
    rows = json.loads(result.stdout)["archives"]
    assert [sorted(r) for r in rows] == [["error", "path", "summary"]] * 2
    assert rows[0]["error"]["exit_code"] == 3 and rows[0]["summary"] is None
    assert rows[1]["error"] is None and rows[1]["summary"]["container"]["name"] == "idle"
    text = cli("summary", bad, IDLE)
    assert "idle" in text.stdout and "error:" in text.stdout
    assert text.stderr.count("error: ") == 1


def test_usage_error_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", "--format", "yaml", str(IDLE))
    assert result.exit_code == 2
    assert result.stdout == ""


def test_empty_or_damaged_nested_tars_are_problems_not_failures(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = minimal_checkpoint(
        [("checkpoint/tmpfs-dev-48.tar.gz.img", b""), ("rootfs-diff.tar", b"not a tar at all" * 40)]
    )
    path = tmp_path / "nested.tar"
    path.write_bytes(data)
    for command in ("list", "summary", "inspect", "manifest"):
        result = cli(command, path)
        assert result.exit_code == 0, (command, result.stderr)
    listing = json.loads(cli("list", "--format", "json", path).stdout)
    assert [p["source"] for p in listing["problems"]] == ["rootfs-diff.tar"]
    assert cli("extract", path, "-d", tmp_path / "out").exit_code == 0
