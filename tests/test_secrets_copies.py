"""secrets: every copy of a flagged value, AWS pairs, UTF-16LE and shared memory, on the real
archives and on archives rewritten from them (planted bytes at known places)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kcheckpoint._proto.criu import files_pb2, mm_pb2, pagemap_pb2
from kcheckpoint.inspect.criu.images import read_image, write_image
from kcheckpoint.inspect.criu.walk import SegmentInfo
from kcheckpoint.inspect.memory.copies import propagatable
from kcheckpoint.inspect.memory.pairs import PAIR_DISTANCE, PAIR_RULE, pair_secrets
from kcheckpoint.inspect.memory.search import compile_needle, search_archive
from kcheckpoint.inspect.memory.secrets import Finding, scan_archive_secrets
from kcheckpoint.inspect.rules.engine import wide
from kcheckpoint.inspect.rules.secrets import (
    AWS_SECRET_CANDIDATE,
    CANDIDATE_RULES,
    RULES,
    SecretMatcher,
    drop_shadowed,
    scan_chunks,
)

from ._archives import add_file, rewritten
from .conftest import CONTAINERD, CRIO, PODMAN_T1, PODMAN_T2, PODMAN_T3, fixture_id

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
PASSWORD = "hunter2-fixture-pw"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFIXTUREKEY"
ALIBABA = b"Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy"


def _scan(path: object, **kw: object) -> list[Finding]:
    return scan_archive_secrets(str(path), fingerprint_key=KEY, **kw).findings  # type: ignore[arg-type]


def _addresses(path: object, literal: str, utf16: bool = False) -> set[tuple[int | None, str]]:
    """Where ``search`` (an independent literal search) finds ``literal`` in memory."""
    result = search_archive(str(path), compile_needle(literal, utf16=utf16))
    return {(h.pid, h.address) for h in result.hits if h.address is not None}


def _at(f: Finding) -> tuple[int | None, str | None]:
    return (f.location.pid, f.location.address)


@pytest.mark.parametrize("archive", [PODMAN_T1, PODMAN_T2, PODMAN_T3], ids=fixture_id)
def test_every_copy_of_the_env_password_is_one_group(archive: Path) -> None:
    findings = _scan(archive)
    group = [f for f in findings if f.name == "DB_PASSWORD"]
    assert len({f.fingerprint for f in group}) == 1
    in_memory = {_at(f) for f in group if f.location.source == "memory"}
    # the copies search finds: every one, whether or not a name stands beside it
    expected = _addresses(archive, PASSWORD)
    assert len(expected) == 5
    # a rule match starts at the name (DB_PASSWORD=), a copy at the value
    named = {_at(f) for f in group if f.copy_of is None and f.location.source == "memory"}
    copies = {_at(f) for f in group if f.copy_of is not None}
    assert len(named) == 2 and copies <= expected and len(copies) == 3
    assert len(in_memory) == 5
    for f in group:
        if f.copy_of is not None:
            assert f.copy_of.source == "file" and f.copy_of.member in ("spec.dump", "config.dump")
            assert f.rule == "secret-env-var" and f.confidence == "medium"


@pytest.mark.parametrize("archive", [PODMAN_T1, CRIO, CONTAINERD], ids=fixture_id)
def test_the_aws_secret_is_paired_with_its_key_id_and_every_copy_found(archive: Path) -> None:
    findings = _scan(archive)
    aws = [f for f in findings if f.rule == PAIR_RULE]
    assert {_at(f) for f in aws} == _addresses(archive, AWS_SECRET)
    pairs = [f for f in aws if f.key_id is not None]
    assert len(pairs) == 1  # one finding per pair; the other is a copy of its secret
    key = pairs[0].key_id
    assert key is not None and key.rule == "aws-access-key-id"
    assert (key.location.pid, key.location.address) in _addresses(archive, "AKIAFIXTURE7EXAMPLE7Q")
    assert "aws-access-key-id" not in {f.rule for f in findings}
    assert len({f.fingerprint for f in aws}) == 1
    assert [f.copy_of is not None for f in aws].count(True) == 1


def test_pairs_need_an_id_and_in_a_file_a_short_distance() -> None:
    matcher = SecretMatcher((*RULES, AWS_SECRET_CANDIDATE), engine="python")

    def pairs(text: bytes) -> tuple[list[str], int]:
        info = SegmentInfo("rootfs-diff.tar", None, None, 0, len(text), "app/creds")
        raw = [(info, f) for f in drop_shadowed(list(scan_chunks(matcher, [text])))]
        kept, paired = pair_secrets(raw)
        return sorted(f.rule for _, f in kept), len(paired)

    near = b"id AKIAIOSFODNN7EXAMPLE\nkey " + AWS_SECRET.encode() + b"\n"
    assert pairs(near) == ([], 1)
    far = b"id AKIAIOSFODNN7EXAMPLE\n" + b"x" * PAIR_DISTANCE + b"\nkey " + AWS_SECRET.encode()
    assert pairs(far) == (["aws-access-key-id"], 0)
    assert pairs(b"just " + AWS_SECRET.encode() + b" alone") == ([], 0)
    # a JWT segment, lower-case hex and a 41-character run are no candidates
    jwt_head = b"eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9"
    hexes = b"0123456789abcdef" * 2 + b"01234567"
    for text in (jwt_head, hexes, AWS_SECRET.encode() + b"Z"):
        assert pairs(b"AKIAIOSFODNN7EXAMPLE " + text + b" ") == (["aws-access-key-id"], 0)


def test_an_alibaba_secret_pairs_with_its_ltai_id() -> None:
    matcher = SecretMatcher((*RULES, *CANDIDATE_RULES), engine="python")
    text = b'{"AccessKeyId": "LTAI5tFixtureAlibaba7Q", "AccessKeySecret": "' + ALIBABA + b'"}'
    info = SegmentInfo("rootfs-diff.tar", None, None, 0, len(text), "app/aliyun.json")
    raw = [(info, f) for f in drop_shadowed(list(scan_chunks(matcher, [text])))]
    kept, paired = pair_secrets(raw)
    assert [p.rule for p in paired] == ["alibaba-access-key-pair"]
    assert paired[0].secret[1].value == ALIBABA
    assert paired[0].key_id[1].value == b"LTAI5tFixtureAlibaba7Q"
    assert all(f.rule != "alibaba-access-key-id" for _, f in kept)
    # an AWS id does not take an Alibaba-shaped secret, nor the other way round
    swapped = b"AKIAIOSFODNN7EXAMPLE " + ALIBABA + b" LTAI5tFixtureAlibaba7Q " + AWS_SECRET.encode()
    info = SegmentInfo("rootfs-diff.tar", None, None, 0, len(swapped), "x")
    raw = [(info, f) for f in drop_shadowed(list(scan_chunks(matcher, [swapped])))]
    assert sorted((p.rule, p.secret[1].value) for p in pair_secrets(raw)[1]) == [
        ("alibaba-access-key-pair", ALIBABA),
        ("aws-access-key-pair", AWS_SECRET.encode()),
    ]


def test_short_and_common_values_are_not_propagated() -> None:
    assert propagatable(PASSWORD.encode())
    assert not propagatable(b"Xy7#a1")  # shorter than 8
    assert not propagatable(b"postgres") and not propagatable(b"Changeme")
    assert not propagatable(b"abababab")


# --- archives rewritten from webapp-t1 ------------------------------------------------------


def _rewrite(
    out: Path,
    edit: dict[str, Callable[[bytes], bytes]],
    add: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> Path:
    def change(name: str, data: bytes) -> bytes | None:
        return edit[name](data) if name in edit else None

    with rewritten(PODMAN_T1.read_bytes(), out, change, tar_format=tarfile.GNU_FORMAT) as dst:
        for name, data in add:
            add_file(dst, name, data, mtime=1_764_092_815)
    return out


def _poke(offset: int, data: bytes) -> Callable[[bytes], bytes]:
    return lambda old: old[:offset] + data + old[offset + len(data) :]


GHP = "ghp_" + "Wide0Token1Planted2For3Utf16Test4567"
DB_ENV = "DB_PASSWORD=" + PASSWORD


def test_utf16_secrets_and_copies_in_memory(tmp_path: Path) -> None:
    planted = wide(b"GITHUB_TOKEN=" + GHP.encode()) + b"\0\0" + wide(PASSWORD.encode())
    path = _rewrite(tmp_path / "wide.tar", {"checkpoint/pages-2.img": _poke(8192 + 64, planted)})
    findings = _scan(path)
    token = [f for f in findings if f.rule == "github-token" and f.encoding == "utf-16le"]
    assert len(token) == 1 and token[0].length == len(GHP)
    assert {_at(token[0])} == _addresses(path, GHP, utf16=True)
    assert token[0].name == "GITHUB_TOKEN" or token[0].name is None
    wide_copies = [f for f in findings if f.encoding == "utf-16le" and f.name == "DB_PASSWORD"]
    assert len(wide_copies) == 1 and wide_copies[0].copy_of is not None
    pw_group = {f.fingerprint for f in findings if f.name == "DB_PASSWORD"}
    assert len(pw_group) == 1  # the UTF-16 copy joins the ASCII group
    assert GHP not in json.dumps([str(f) for f in findings])


def test_no_copies_from_stdin_and_a_warning(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", "-", "--format", "json", stdin=PODMAN_T1.read_bytes())
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["copies_searched"] is False
    assert all(f["copy_of"] is None for f in doc["findings"])
    # one pass: the AWS candidates are looked for in it, so the pair is still made
    pairs = [f for f in doc["findings"] if f["rule"] == PAIR_RULE and f["key_id"] is not None]
    assert len(pairs) == 1
    assert "copies of flagged values not searched" in res.stderr


def test_pid_filter_and_memory_only_limit_the_copies(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", PODMAN_T1, "--pid", "2", "--memory-only", "--format", "json")
    doc = json.loads(res.stdout)
    assert {f["location"]["pid"] for f in doc["findings"]} == {2}
    # pid 2's env flags the password; its unnamed copy in pid 2's heap is a copy of it
    copies = [f for f in doc["findings"] if f["copy_of"] is not None]
    assert copies and all(f["copy_of"]["pid"] == 2 for f in copies)


# shared memory: VMA status bits and mmap flags (criu/include/image.h)
VMA_REGULAR, VMA_FILE_SHARED, VMA_ANON_SHARED = 1, 1 << 7, 1 << 8
MAP_SHARED, MAP_ANONYMOUS = 0x1, 0x20
SLACK = "xoxb-" + "1234567890-shared0memory0token"


def _add_vma(start: int, status: int, flags: int, shmid: int, pgoff: int = 0) -> Callable:  # type: ignore[type-arg]
    def edit(data: bytes) -> bytes:
        mm = read_image("mm-1.img", data).entries[0]
        mm.vmas.append(
            mm_pb2.vma_entry(
                start=start,
                end=start + 2 * 4096,
                pgoff=pgoff,
                shmid=shmid,
                prot=3,
                flags=flags,
                status=status,
                fd=-1,
            )
        )
        return write_image("MM", [mm])

    return edit


def _add_file(data: bytes) -> bytes:
    entries = list(read_image("files.img", data).entries)
    for fid, name in ((999, b"/dev/shm/kc"), (998, b"/dev/kc2")):
        entries.append(
            files_pb2.file_entry(
                type=1, id=fid, reg=files_pb2.reg_file_entry(id=fid, flags=2, pos=0, name=name)
            )
        )
    return write_image("FILES", entries)


def _devshm(content: bytes, name: str = "kc", mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tf:  # type: ignore[call-overload]
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_shared_memory_is_attributed_to_every_process_that_maps_it(tmp_path: Path) -> None:
    page = bytearray(4096)
    page[300 : 300 + len(SLACK)] = SLACK.encode()
    pagemap = write_image(
        "PAGEMAP",
        [
            pagemap_pb2.pagemap_head(pages_id=9),
            pagemap_pb2.pagemap_entry(vaddr=4096, compat_nr_pages=1, flags=4),
        ],
    )
    shm = 0x7E00_0000_0000
    shm2 = 0x7E10_0000_0000
    anon = VMA_REGULAR | VMA_ANON_SHARED
    filed = VMA_REGULAR | VMA_FILE_SHARED
    path = _rewrite(
        tmp_path / "shm.tar",
        {
            "checkpoint/mm-1.img": lambda d: _add_vma(0x7D00_0000_0000, filed, MAP_SHARED, 999)(
                _add_vma(shm, anon, MAP_SHARED | MAP_ANONYMOUS, 77)(d)
            ),
            # tmpfs-dev-48 is the tmpfs whose root_dev is 48: mounted at /dev in this archive
            "checkpoint/tmpfs-dev-48.tar.gz.img": lambda _: _devshm(
                f"\n{SLACK}".encode(), "./kc2", "w:gz"
            ),
            "checkpoint/mm-2.img": lambda d: _add_vma(0x7C00_0000_0000, filed, MAP_SHARED, 998)(
                _add_vma(shm2, anon, MAP_SHARED | MAP_ANONYMOUS, 77, 4096)(d)
            ),
            "checkpoint/files.img": _add_file,
            "devshm-checkpoint.tar": lambda _: _devshm(b"\n" * 40 + f"T={SLACK}\n".encode()),
        },
        [("checkpoint/pagemap-shmem-77.img", pagemap), ("checkpoint/pages-9.img", bytes(page))],
    )
    result = scan_archive_secrets(str(path), fingerprint_key=KEY)
    assert not [p for p in result.problems if p.member == "checkpoint/pages-9.img"]
    slack = [f for f in result.findings if f.rule == "slack-token"]
    shared = [f for f in slack if f.location.source == "shared-memory"]
    assert len(shared) == 1
    loc = shared[0].location
    assert (loc.member, loc.offset) == ("checkpoint/pages-9.img", 300)
    # segment offset 4096 + 300: pid 1 maps offset 0 at shm, pid 2 maps offset 4096 at shm2
    assert [(m.pid, m.address) for m in loc.mapped_by] == [
        (1, f"0x{shm + 4096 + 300:x}"),
        (2, f"0x{shm2 + 300:x}"),
    ]
    in_devshm = [f for f in slack if f.location.member == "devshm-checkpoint.tar"]
    assert len(in_devshm) == 1 and in_devshm[0].location.path == "kc"
    assert [(m.pid, m.address) for m in in_devshm[0].location.mapped_by] == [
        (1, f"0x{0x7D00_0000_0000 + 42:x}")  # after "T="
    ]
    in_tmpfs = [f for f in slack if f.location.member == "checkpoint/tmpfs-dev-48.tar.gz.img"]
    assert len(in_tmpfs) == 1
    assert [(m.pid, m.address) for m in in_tmpfs[0].location.mapped_by] == [
        (2, f"0x{0x7C00_0000_0000 + 1:x}")
    ]
    group = next(g for g in result.groups if g.rules == ["slack-token"])
    assert group.pids == [1, 2] and group.count == 3


def test_entropy_is_opt_in_and_low_confidence(tmp_path: Path) -> None:
    line = b"client_key = 'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lm'\n"
    path = _rewrite(tmp_path / "ent.tar", {"checkpoint/pages-2.img": _poke(8192 + 64, line)})
    assert not [f for f in _scan(path) if f.rule == "high-entropy-assignment"]
    found = [f for f in _scan(path, entropy=True) if f.rule == "high-entropy-assignment"]
    assert len(found) == 1 and found[0].confidence == "low" and found[0].name == "client_key"
    assert all(f.confidence in ("high", "medium") for f in _scan(path) if f.copy_of is None)


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "csv"])
def test_no_secret_value_in_any_default_output(cli, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    planted = wide(b"GITHUB_TOKEN=" + GHP.encode())
    path = _rewrite(tmp_path / "w.tar", {"checkpoint/pages-2.img": _poke(8192 + 64, planted)})
    res = cli("secrets", path, "--entropy", "--format", fmt)
    assert res.exit_code == 1
    for raw in (PASSWORD, AWS_SECRET, GHP, "sk_live_FIXTURE51c0ffee0123456789", "FIXTURE7EXAMPLE"):
        assert raw not in res.stdout and raw not in res.stderr
    assert "copy" in res.stdout


def test_copies_past_the_limit_are_counted_not_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    from kcheckpoint.inspect.memory import copies

    full = scan_archive_secrets(str(PODMAN_T1), fingerprint_key=KEY)
    monkeypatch.setattr(copies, "MAX_COPIES_PER_VALUE", 2)
    capped = scan_archive_secrets(str(PODMAN_T1), fingerprint_key=KEY)
    assert full.copies_dropped == 0 and capped.copies_dropped > 0
    listed = len([f for f in full.findings if f.copy_of is not None])
    assert len([f for f in capped.findings if f.copy_of is not None]) < listed


def test_text_output_marks_copies_pairs_and_confidence(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", PODMAN_T1)
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert "CONF" in lines[0] and "VIA" in lines[0]
    pair_rows = [line for line in lines if line.startswith(PAIR_RULE)]
    assert len(pair_rows) == 2
    assert sum("pair AKIA" in line for line in pair_rows) == 1
    assert sum(" copy " in line for line in pair_rows) == 1
    assert "copies not searched" not in res.stdout
    assert "memory may hold" in res.stderr and "copies" not in res.stderr
    listed = cli("secrets", "--list-rules")
    for rule in ("alibaba-access-key-id", "aws-secret-candidate", "high-entropy-assignment"):
        assert rule in listed.stdout
