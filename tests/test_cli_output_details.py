"""Output details of summary, list and inspect: wide table, stdin, sizes, times, paths, hints."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from ._archives import minimal_checkpoint
from .conftest import CRIO, IDLE, PODMAN_T1, PODMAN_T3, ROOT


def test_wide_summary_has_checkpointctl_columns(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("summary", "-q", "--wide", CRIO)
    header, _rule, row = result.stdout.splitlines()
    for column in ("ID", "RUNTIME", "CREATED", "IP", "SIZE"):
        assert f" {column} " in f" {header} "
    assert "10.244.1.17" in row and "crun" in row
    doc = json.loads(cli("summary", "-q", "--format", "json", CRIO).stdout)
    container = doc["archives"][0]["summary"]["container"]
    assert container["id"][:12] in row
    assert "IP" not in cli("summary", "-q", CRIO).stdout.splitlines()[0].split()


def test_stdin_is_named_and_sized_like_a_file(cli) -> None:  # type: ignore[no-untyped-def]
    data = IDLE.read_bytes()
    piped = cli("summary", "-q", "-", stdin=data)
    from_file = cli("summary", "-q", IDLE)
    size_cell = from_file.stdout.splitlines()[2].split("  ")
    assert "<stdin>" in piped.stdout
    # the same size cell (compressed, then the tar's size) for a pipe as for the file
    assert next(c for c in size_cell if "tar)" in c) in piped.stdout
    rows = list(csv.DictReader(io.StringIO(cli("summary", "-", "-o", "csv", stdin=data).stdout)))
    assert rows[0]["path"] == "<stdin>"
    assert rows[0]["archive_bytes"] == str(len(data))
    doc = json.loads(cli("summary", "-q", "-", "-o", "json", stdin=data).stdout)
    assert doc["archives"][0]["path"] == "<stdin>"
    assert doc["provenance"]["inputs"][0]["size"] == len(data)
    assert doc["archives"][0]["summary"]["input"]["size"] == len(data)


def test_gzip_archive_reads_through_the_fast_reader_and_agrees(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gz = tmp_path / "t1.tar.gz"
    gz.write_bytes(gzip.compress(PODMAN_T1.read_bytes(), compresslevel=1))
    plain = json.loads(cli("summary", "-q", "-o", "json", PODMAN_T1).stdout)
    packed = json.loads(cli("summary", "-q", "-o", "json", gz).stdout)
    assert packed["archives"][0]["summary"]["sizes"] == plain["archives"][0]["summary"]["sizes"]
    assert packed["archives"][0]["summary"]["input"]["compression"] == "gzip"


def test_corrupt_gzip_is_a_format_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(gzip.compress(minimal_checkpoint(pages=4)))
    data[-8] ^= 0xFF  # the CRC-32 of the trailer
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    result = cli("list", bad)
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: {bad}: ")


def test_a_directory_without_archives_is_a_negative_result(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "notes.txt").write_text("not an archive\n")
    result = cli("summary", tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no checkpoint-* archives" in result.stderr


@pytest.mark.parametrize("command", ["summary", "list", "inspect", "memory", "manifest"])
def test_truncated_zstd_gives_one_message_with_the_path(cli, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    short = tmp_path / "short.tar.zst"
    short.write_bytes(PODMAN_T3.read_bytes()[:1_500_000])
    result = cli(command, "-q", short)
    assert result.exit_code == 4
    assert result.stderr.splitlines()[0] == (
        f"error: {short}: the zstd stream ends early (the last frame is incomplete)"
    )


def test_times_keep_their_sub_second_digits(cli) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(cli("summary", "-q", "-o", "json", CRIO).stdout)
    container = doc["archives"][0]["summary"]["container"]
    assert container["created"] == "2026-11-25T17:46:41.127835902Z"  # config.dump's createdTime
    assert container["checkpointed"] == "2026-11-25T17:46:48Z"


def test_list_json_paths_all_start_with_a_slash(cli) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(cli("list", "-q", "-o", "json", PODMAN_T1).stdout)
    changed = [f["path"] for f in doc["rootfs"]["changed"]]
    deleted = [d["path"] for d in doc["rootfs"]["deleted"]]
    assert changed and deleted
    assert all(p.startswith("/") and not p.startswith("//") for p in changed + deleted)
    lines = cli("list", "-q", "-o", "jsonl", PODMAN_T1).stdout.splitlines()
    files = [json.loads(x)["file"]["path"] for x in lines if '"rootfs-changed"' in x]
    assert files == changed


def _synth():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kc_bench_synth", ROOT / "bench" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("criu", ["4.1", "4.2"])
def test_criu_hint_reads_the_pagemap_field(cli, tmp_path: Path, criu: str) -> None:  # type: ignore[no-untyped-def]
    """The synthetic inventory carries no version fields: only the pagemap tells 4.2 apart."""
    path = tmp_path / f"criu-{criu}.tar"
    _synth().write_archive(path, 1 << 20, criu=criu)
    doc = json.loads(cli("inspect", "-q", "--all", "-o", "json", path).stdout)
    hint = doc["inventory"]["criu_version_hint"]
    assert (hint == ">= 4.2") is (criu == "4.2")


#: network.status as Podman (netavark) writes it for a container on the default network.
NETWORK_STATUS = {
    "podman": {
        "interfaces": {
            "eth0": {
                "subnets": [
                    {"ipnet": "10.88.0.5/16", "gateway": "10.88.0.1"},
                    {"ipnet": "fd00::5/64", "gateway": "fd00::1"},
                ],
                "mac_address": "5a:1e:0b:63:2f:10",
            }
        },
        "dns_server_ips": ["10.88.0.1"],
    }
}


def test_podman_network_status_shows_interfaces(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "net.tar"
    archive.write_bytes(
        minimal_checkpoint([("network.status", json.dumps(NETWORK_STATUS).encode())])
    )
    doc = json.loads(cli("inspect", "-q", "--metadata", "-o", "json", archive).stdout)
    assert doc["metadata"]["network"] == [
        {
            "network": "podman",
            "interface": "eth0",
            "mac": "5a:1e:0b:63:2f:10",
            "ips": ["10.88.0.5/16", "fd00::5/64"],
            "gateways": ["10.88.0.1", "fd00::1"],
        }
    ]
    tree = cli("inspect", "-q", "--metadata", archive).stdout
    assert (
        "eth0 (podman): IP 10.88.0.5/16, fd00::5/64; MAC 5a:1e:0b:63:2f:10; "
        "gateway 10.88.0.1, fd00::1" in tree
    )


@pytest.mark.parametrize("status", [None, [], {"podman": None}, {"podman": {"interfaces": 3}}])
def test_other_network_status_shapes_give_no_interfaces(status: object) -> None:
    from kcheckpoint.inspect.criu.checkpoint import network_interfaces

    assert network_interfaces(status) == []


def test_json_valued_annotations_show_parsed_in_the_tree(cli) -> None:  # type: ignore[no-untyped-def]
    tree = cli("inspect", "-q", "--metadata", CRIO).stdout
    labels = tree.split("io.kubernetes.cri-o.Labels", 1)[1].splitlines()
    assert labels[0] == ""  # a node of its own, not "KEY: {...}"
    assert any(line.endswith('io.kubernetes.pod.namespace: "shop"') for line in labels[1:5])
    doc = json.loads(cli("inspect", "-q", "--metadata", "-o", "json", CRIO).stdout)
    assert json.loads(doc["metadata"]["annotations"]["io.kubernetes.cri-o.Labels"])  # JSON: text
