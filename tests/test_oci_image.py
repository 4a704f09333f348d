"""kcheckpoint image: the layer, the documents, reproducible digests; images read back as inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kcheckpoint.oci.spec import CRIU_NAME, MARKERS, REF_NAME

from .conftest import CONTAINERD, CRIO, PODMAN_T1, PODMAN_T3

pytestmark = pytest.mark.skipif(not CONTAINERD.exists(), reason="fixtures missing")


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def documents(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(index, manifest, config) of ``tag`` in a layout written by kcheckpoint."""
    top = json.loads((layout / "index.json").read_text())
    entry = next(e for e in top["manifests"] if e["annotations"][REF_NAME] == tag)
    index = json.loads(blob(layout, entry["digest"]))
    manifest = json.loads(blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    return index, manifest, config


def build(cli: Any, archive: Path | str, layout: Path, *extra: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    result = cli("image", str(archive), "ckpt:1", "--oci-layout", str(layout), *extra, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    return result


def test_one_layer_holds_the_archives_members_as_they_were(cli: Any, tmp_path: Path) -> None:
    build(cli, CONTAINERD, tmp_path / "lay")
    _, manifest, config = documents(tmp_path / "lay", "1")
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    data = blob(tmp_path / "lay", layer["digest"])
    assert hashlib.sha256(data).hexdigest() == layer["digest"].split(":")[1]
    plain = gzip.decompress(data)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(plain).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(plain)) as image, tarfile.open(CONTAINERD) as original:
        got = {m.name: m for m in image.getmembers()}
        want = {m.name.removeprefix("./"): m for m in original.getmembers()}
        assert sorted(got) == sorted(want)  # top level: checkpoint/..., config.dump, ...
        for name, member in want.items():
            assert (got[name].type, got[name].mode, got[name].mtime) == (
                member.type,
                member.mode,
                member.mtime,
            )
            if member.isfile():
                inner, outer = image.extractfile(got[name]), original.extractfile(member)
                assert inner is not None and outer is not None
                assert inner.read() == outer.read(), name


@pytest.mark.parametrize(
    ("archive", "engine", "pod", "namespace"),
    [
        (CONTAINERD, "containerd", "webapp-7d9f8c6b5-x2kq4", "shop"),
        (CRIO, "cri-o", "webapp-7d9f8c6b5-x2kq4", "shop"),
        (PODMAN_T1, "podman", None, None),
    ],
)
def test_index_and_manifest_carry_every_engines_annotations(
    cli: Any, tmp_path: Path, archive: Path, engine: str, pod: str | None, namespace: str | None
) -> None:
    build(cli, archive, tmp_path / "lay")
    index, manifest, config = documents(tmp_path / "lay", "1")
    assert index["annotations"] == manifest["annotations"]
    notes = manifest["annotations"]
    for key in MARKERS:
        assert notes[key] == "webapp", key
    assert notes["org.criu.checkpoint.engine.name"] == engine
    assert notes.get("org.criu.checkpoint.pod.name") == pod
    assert notes.get("org.criu.checkpoint.pod.namespace") == namespace
    with tarfile.open(archive) as tar:
        config_dump = json.loads(tar.extractfile("config.dump").read())  # type: ignore[union-attr]
    assert notes["org.criu.checkpoint.rootfsImageName"] == config_dump["rootfsImageName"]
    if "rootfsImageRef" in config_dump:
        assert notes["org.criu.checkpoint.rootfsImageID"] == config_dump["rootfsImageRef"]
    assert index["manifests"][0]["platform"]["os"] == "linux"
    assert config["os"] == "linux"


def test_digests_depend_on_the_archives_bytes_not_their_compression(
    cli: Any, tmp_path: Path
) -> None:
    packed = tmp_path / "t1.tar.gz"
    packed.write_bytes(gzip.compress(PODMAN_T1.read_bytes(), compresslevel=1))
    first = build(cli, PODMAN_T1, tmp_path / "a").stdout.split()[0]
    again = build(cli, PODMAN_T1, tmp_path / "b").stdout.split()[0]
    gz = build(cli, packed, tmp_path / "c").stdout.split()[0]
    piped = build(cli, "-", tmp_path / "d", stdin=packed.read_bytes()).stdout.split()[0]
    assert first == again == gz == piped
    zstd = build(cli, PODMAN_T1, tmp_path / "e", "--compression", "zstd").stdout.split()[0]
    assert zstd != first
    _, manifest, _ = documents(tmp_path / "e", "1")
    assert manifest["layers"][0]["mediaType"].endswith("+zstd")


def test_the_oci_archive_is_reproducible_and_holds_the_same_image(cli: Any, tmp_path: Path) -> None:
    for name in ("a.tar", "b.tar"):
        result = cli("image", CRIO, "ckpt:1", "--oci-archive", tmp_path / name)
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
    assert names[:2] == ["oci-layout", "index.json"]  # a stream reader meets the documents first


def test_a_non_checkpoint_is_refused_with_exit_4_and_nothing_written(
    cli: Any, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"web"))
    result = cli(
        "image", plain, "x:1", "--oci-layout", tmp_path / "lay", "--oci-archive", tmp_path / "a"
    )
    assert result.exit_code == 4
    assert result.stdout == ""
    assert "not a container checkpoint" in result.stderr
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "lay").exists()


def test_no_output_named_is_a_usage_error(cli: Any) -> None:
    result = cli("image", CRIO, "x:1")
    assert result.exit_code == 2
    assert result.stdout == ""


# --- images as inputs -----------------------------------------------------------------------------
def rows(cli: Any, *names: str) -> list[dict[str, Any]]:
    result = cli("--no-times", "summary", "--format", "json", *names)
    assert result.exit_code == 0, result.stderr
    return [r["summary"] for r in json.loads(result.stdout)["archives"]]


def test_every_form_of_an_image_reads_as_the_archive_does(cli: Any, tmp_path: Path) -> None:
    lay, arc = tmp_path / "lay", tmp_path / "img.tar"
    result = cli("image", CRIO, "ckpt:7", "--oci-layout", lay, "--oci-archive", arc)
    assert result.exit_code == 0, result.stderr
    [original] = rows(cli, str(CRIO))
    images = rows(cli, f"oci:{lay}:7", f"oci:{lay}", f"oci-archive:{arc}:7", str(arc))
    _, manifest, _ = documents(lay, "7")
    for row in images:
        assert row["container"] == original["container"]
        assert row["sizes"] == original["sizes"]
        assert row["rootfs_changed"] == original["rootfs_changed"]
        # the input is the layer: its SHA-256 is the layer's digest
        assert "sha256:" + row["input"]["sha256"] == manifest["layers"][0]["digest"]


@pytest.mark.parametrize("command", ["list", "inspect", "memory", "secrets", "manifest"])
def test_reading_commands_take_an_image(cli: Any, tmp_path: Path, command: str) -> None:
    build(cli, CRIO, tmp_path / "lay")
    from_image = cli(command, f"oci:{tmp_path / 'lay'}:1")
    from_archive = cli(command, str(CRIO))
    assert from_image.exit_code == from_archive.exit_code
    assert from_image.stdout.replace(f"oci:{tmp_path / 'lay'}:1", "X") == (
        from_archive.stdout.replace(str(CRIO), "X")
    )


def test_search_and_diff_take_images(cli: Any, tmp_path: Path) -> None:
    build(cli, CRIO, tmp_path / "lay")
    image = f"oci:{tmp_path / 'lay'}:1"
    assert cli("search", image, "app.py").exit_code == 0
    assert cli("diff", image, str(CRIO)).exit_code == 0  # the same checkpoint: no difference


def test_a_damaged_layer_fails_its_digest_and_prints_nothing(cli: Any, tmp_path: Path) -> None:
    build(cli, CRIO, tmp_path / "lay")
    _, manifest, _ = documents(tmp_path / "lay", "1")
    path = tmp_path / "lay" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the gzip trailer's CRC: decompression alone may not notice early
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    result = cli("summary", f"oci:{tmp_path / 'lay'}:1")
    assert result.exit_code == 4
    assert result.stdout.count("\n") <= 3  # the error row, no summary
    assert "webapp-7d9f8c6b5" not in result.stdout


def test_an_unknown_tag_or_a_missing_layout_is_an_input_error(cli: Any, tmp_path: Path) -> None:
    build(cli, CRIO, tmp_path / "lay")
    build(cli, CONTAINERD, tmp_path / "lay", "--oci-archive", tmp_path / "x.tar")
    missing = cli("list", f"oci:{tmp_path / 'lay'}:nope")
    assert (missing.exit_code, missing.stdout) == (3, "")
    assert "no image tagged 'nope'" in missing.stderr
    absent = cli("list", f"oci:{tmp_path / 'absent'}")
    assert (absent.exit_code, absent.stdout) == (3, "")


def test_a_tag_moves_to_the_newest_image_and_others_stay(cli: Any, tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    assert cli("image", CRIO, "a:1", "--oci-layout", lay).exit_code == 0
    assert cli("image", CONTAINERD, "a:2", "--oci-layout", lay).exit_code == 0
    assert cli("image", PODMAN_T3, "a:1", "--oci-layout", lay).exit_code == 0
    tags = [
        e["annotations"][REF_NAME]
        for e in json.loads((lay / "index.json").read_text())["manifests"]
    ]
    assert sorted(tags) == ["1", "2"]
    [one, two] = rows(cli, f"oci:{lay}:1", f"oci:{lay}:2")
    assert (one["container"]["engine"], two["container"]["engine"]) == ("podman", "containerd")
    several = cli("list", f"oci:{lay}")
    assert several.exit_code == 4 and "name one" in several.stderr


def test_json_output_names_digests_and_outputs(cli: Any, tmp_path: Path) -> None:
    result = cli(
        "--no-times", "image", CRIO, "ckpt:1", "--oci-layout", tmp_path / "l", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    image = doc["image"]
    assert image["annotations"][CRIU_NAME] == "webapp"
    assert image["outputs"] == [
        {"kind": "oci-layout", "location": f"oci:{tmp_path / 'l'}:1", "blobs": None}
    ]
    assert doc["provenance"]["inputs"][0]["sha256"] == hashlib.sha256(CRIO.read_bytes()).hexdigest()
    assert "memory may hold passwords" in result.stderr


def test_a_layer_swapped_for_other_valid_bytes_fails_its_digest(cli: Any, tmp_path: Path) -> None:
    """Bytes the decompressor accepts but the digest does not: only the digest check sees it."""
    build(cli, CRIO, tmp_path / "lay")
    _, manifest, _ = documents(tmp_path / "lay", "1")
    path = tmp_path / "lay" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    path.chmod(0o600)
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    result = cli("list", f"oci:{tmp_path / 'lay'}:1")
    assert (result.exit_code, result.stdout) == (4, "")
    assert "bytes" in result.stderr and manifest["layers"][0]["digest"] in result.stderr


def test_a_full_reference_is_recorded_for_ctr_import(cli: Any, tmp_path: Path) -> None:
    named = cli("image", CRIO, "reg.example.com:5000/shop/web:2", "--oci-archive", tmp_path / "a")
    bare = cli("image", CRIO, "web:2", "--oci-archive", tmp_path / "b")
    assert named.exit_code == bare.exit_code == 0
    entries = []
    for name in ("a", "b"):
        with tarfile.open(tmp_path / name) as tar:
            entries.append(json.load(tar.extractfile("index.json"))["manifests"][0])  # type: ignore[arg-type]
    assert entries[0]["annotations"] == {
        REF_NAME: "2",
        "io.containerd.image.name": "reg.example.com:5000/shop/web:2",
    }
    assert entries[1]["annotations"] == {REF_NAME: "2"}
    assert entries[0]["digest"] == entries[1]["digest"]  # the name is not part of the image
