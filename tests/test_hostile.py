"""Hostile archives made from the real idle fixture: each bug found by the hostile-input review
stays fixed. The property tests (random mutations) are in test_hostile_properties.py."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from . import _mutate as M
from .conftest import IDLE

#: Every command the archive can be given to, with its arguments (ARCHIVE stands for the case).
COMMANDS: dict[str, list[str]] = {
    "summary": ["summary", "ARCHIVE"],
    "list": ["list", "ARCHIVE"],
    "inspect": ["inspect", "--all", "ARCHIVE"],
    "memory": ["memory", "ARCHIVE"],
    "search": ["search", "ARCHIVE", "zq-not-there-7"],
    "secrets": ["secrets", "ARCHIVE"],
    "diff": ["diff", "BASE", "ARCHIVE"],
    "manifest": ["manifest", "ARCHIVE"],
    "verify": ["verify", "ARCHIVE", "MANIFEST"],
    "extract": ["extract", "ARCHIVE", "-d", "OUT"],
}


@pytest.fixture(scope="module")
def base_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("base") / "idle.tar"
    path.write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(IDLE.read_bytes()))
    return path


@pytest.fixture(scope="module")
def base_members(base_tar: Path) -> list[M.Member]:
    return M.members_of(base_tar.read_bytes())


@pytest.fixture
def run_all(cli, tmp_path: Path, base_tar: Path):  # type: ignore[no-untyped-def]
    """Run every command on an archive; return {command: CliResult}."""
    manifest = tmp_path / "base.sha256"
    manifest.write_text(cli("manifest", base_tar).stdout)

    def run(data: bytes, only: list[str] | None = None) -> dict[str, object]:
        case = tmp_path / "case.tar"
        case.write_bytes(data)
        results = {}
        for name, args in COMMANDS.items():
            if only is not None and name not in only:
                continue
            out = tmp_path / f"out-{name}"
            argv = [
                {"ARCHIVE": str(case), "BASE": str(base_tar), "MANIFEST": str(manifest)}.get(
                    a, str(out) if a == "OUT" else a
                )
                for a in args
            ]
            results[name] = cli(*argv)
        return results

    return run


def _no_internal_error(results: dict[str, object]) -> None:
    for name, r in results.items():
        assert r.exit_code != 70, f"{name}: {r.stderr}"  # type: ignore[attr-defined]
        assert "Traceback" not in r.stderr, name  # type: ignore[attr-defined]


# --- 1, 2: pagemap page counts past the address space -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nr_pages", 0xFFFFFFFF),
        ("compat_nr_pages", 0xFFFFFFFF),
        ("nr_pages", 2**63),
        ("nr_pages", 2**64 - 1),
    ],
)
def test_huge_page_counts_are_problems(run_all, base_members, field: str, value: int) -> None:  # type: ignore[no-untyped-def]
    data = M.build(M.set_pagemap(field, value)(base_members))
    results = run_all(data)
    _no_internal_error(results)
    assert results["inspect"].exit_code == 0
    assert results["summary"].exit_code == 0


def test_huge_page_count_fails_under_strict(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build(M.set_pagemap("nr_pages", 2**63)(base_members)))
    r = cli("inspect", "--all", "--strict", "--format", "json", case)
    assert r.exit_code == 4, r.stderr
    plain = cli("inspect", "--all", "--format", "json", case)
    kinds = {p["kind"] for p in json.loads(plain.stdout)["problems"]}
    assert "bad-range" in kinds


# --- 3, 4: process trees that are not trees ------------------------------------------------------


@pytest.mark.parametrize("kind", ["self-parent", "duplicate", "cycle"])
def test_bad_process_trees_are_problems(cli, tmp_path, base_members, kind: str) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build(M.pstree_edit(kind)(base_members)))
    r = cli("inspect", "--format", "json", case)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(p["pid"] for p in doc["processes"]) == [1, 4]
    assert any(p["kind"] == "bad-tree" for p in doc["problems"])
    tree = cli("inspect", case)
    assert tree.exit_code == 0
    assert tree.stdout.count("[1]") == 1 and tree.stdout.count("[4]") == 1
    assert cli("inspect", "--pid", "1", case).exit_code == 0


def test_a_deep_process_chain_is_drawn_without_recursion(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build(M.pstree_edit("chain20000")(base_members)))
    r = cli("inspect", case)
    assert r.exit_code == 0, r.stderr[-500:]
    assert "[20099 (unknown)]" in r.stdout
    longest = max(len(line) for line in r.stdout.splitlines())
    assert longest < 400  # indentation stops growing
    # thousands of missing core images: a few lines each kind, then a count
    assert len(r.stderr.splitlines()) < 50
    assert "more problem(s) of kind missing" in r.stderr


# --- 5, 6: metadata JSON, deep or of the wrong shape ---------------------------------------------


@pytest.mark.parametrize("member", ["spec.dump", "config.dump", "network.status", "deleted.files"])
def test_deeply_nested_metadata_is_a_problem(run_all, base_members, member: str) -> None:  # type: ignore[no-untyped-def]
    deep = b"[" * 5000 + b"]" * 5000 if member == "deleted.files" else M.deep_json(5000)
    results = run_all(
        M.build(M.with_member(base_members, member, deep)),
        ["summary", "list", "inspect", "secrets", "diff"],
    )
    _no_internal_error(results)
    assert results["summary"].exit_code == 0
    assert member in results["summary"].stderr


@pytest.mark.parametrize("member", ["spec.dump", "config.dump"])
def test_metadata_of_the_wrong_shape_is_read_safely(run_all, base_members, member: str) -> None:  # type: ignore[no-untyped-def]
    mutate = M.json_edit(member, M.wrong_types)
    results = run_all(M.build(mutate(base_members)))
    _no_internal_error(results)
    assert results["secrets"].exit_code in (0, 1)


def test_annotations_that_are_not_strings(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    def edit(spec: object) -> object:
        assert isinstance(spec, dict)
        spec["annotations"] = {"io.container.manager": {"x": 1}, "n": 5}
        spec["process"] = {"env": "A=b"}
        return spec

    case = tmp_path / "c.tar"
    case.write_bytes(M.build(M.json_edit("spec.dump", edit)(base_members)))
    for cmd in (["summary"], ["inspect", "--all"], ["secrets"], ["search"]):
        r = cli(*cmd, case, *(["x"] if cmd == ["search"] else []))
        assert r.exit_code in (0, 1), r.stderr


# --- 7: names too long to create ----------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        M.Member(M.file_info("p" * 5000, 1), b"p"),
        M.Member(M.file_info("q" * 1_000_000, 1), b"q"),
        M.Member(M.file_info("/".join(["d"] * 3000) + "/f", 1), b"d"),
        M.Member(M.file_info("longlink", type_=tarfile.SYMTYPE, linkname="t" * 100_000), b""),
    ],
    ids=["pax-5000", "pax-1M", "3000-components", "symlink-100k"],
)
def test_extract_refuses_names_too_long_to_create(cli, tmp_path, base_members, member) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, member]))
    out = tmp_path / "out"
    r = cli("extract", case, "-d", out)
    assert r.exit_code == 4, r.stderr
    assert "unsafe" in r.stderr
    assert (out / "config.dump").is_file()  # the rest is extracted
    depth = max(len(p.relative_to(out).parts) for p in out.rglob("*"))
    assert depth < 10


def test_extract_refuses_gnu_long_names(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(
        M.build([*base_members, M.Member(M.file_info("g" * 10_000, 1), b"g")], tarfile.GNU_FORMAT)
    )
    r = cli("extract", case, "-d", tmp_path / "out")
    assert r.exit_code == 4, r.stderr


# --- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_damaged_first_header_with_tar_magic_is_corrupt(cli, tmp_path, base_tar, compress) -> None:  # type: ignore[no-untyped-def]
    data = M.poke(base_tar.read_bytes(), 148, b"0000000\0", fix_checksum=False)
    if compress:
        data = zstandard.ZstdCompressor().compress(data)
    case = tmp_path / "c.tar"
    case.write_bytes(data)
    for cmd in ("list", "summary", "manifest"):
        r = cli(cmd, case)
        assert r.exit_code == 4, (cmd, r.stderr)
        assert "damaged" in r.stderr


def test_text_without_tar_magic_stays_an_input_error(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(b"x" * 2048)
    assert cli("list", case).exit_code == 3


@pytest.mark.parametrize(
    "member",
    [
        M.Member(M.file_info("dev0", type_=tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        M.Member(M.file_info("fifo0", type_=tarfile.FIFOTYPE), b""),
        M.Member(M.file_info("hard", type_=tarfile.LNKTYPE, linkname="nope"), b""),
    ],
    ids=["device", "fifo", "dangling-hardlink"],
)
def test_extract_refusals_are_format_errors_with_a_fitting_hint(
    cli, tmp_path, base_members, member
) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, member]))
    r = cli("extract", case, "-d", tmp_path / "fresh")
    assert r.exit_code == 4, r.stderr
    assert "--force" not in r.stderr
    assert "never created" in r.stderr


def test_extract_over_existing_files_is_still_3_with_the_force_hint(
    cli, tmp_path, base_tar
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert cli("extract", base_tar, "-d", out).exit_code == 0
    r = cli("extract", base_tar, "-d", out)
    assert r.exit_code == 3
    assert "--force" in r.stderr


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_members_have_one_reading(run_all, base_tar, base_members, fmt) -> None:  # type: ignore[no-untyped-def]
    if fmt == "gnu":
        data = M.insert_before_end(base_tar.read_bytes(), M.sparse_member(1 << 40))
    else:
        data = M.build([*base_members, M.pax_sparse_member("checkpoint/pages-9.img", 1 << 40)])
    results = run_all(data)
    _no_internal_error(results)
    codes = {name: r.exit_code for name, r in results.items()}  # type: ignore[attr-defined]
    assert codes == {
        "summary": 0,
        "list": 0,
        "inspect": 0,
        "memory": 0,
        "search": 1,
        "secrets": 1,
        "diff": 1,
        "manifest": 0,
        "verify": 1,
        "extract": 4,
    }
    assert "sparse" in results["summary"].stderr
    assert "1.0 TiB" not in results["summary"].stdout


@pytest.mark.parametrize("extra", [512, 700, 1000])
def test_an_incomplete_end_marker_is_a_warning_everywhere(run_all, base_tar, extra) -> None:  # type: ignore[no-untyped-def]
    raw = base_tar.read_bytes()
    data = raw[: M.end_of_members(raw) + extra]
    results = run_all(data)
    _no_internal_error(results)
    for name, r in results.items():
        if name in ("summary", "list", "inspect", "memory", "manifest", "extract", "verify"):
            assert r.exit_code == 0, (name, r.stderr)  # type: ignore[attr-defined]
        assert "end-of-archive marker is incomplete" in r.stderr, name  # type: ignore[attr-defined]


def test_a_missing_end_marker_is_truncation(cli, tmp_path, base_tar) -> None:  # type: ignore[no-untyped-def]
    raw = base_tar.read_bytes()
    case = tmp_path / "c.tar"
    case.write_bytes(raw[: M.end_of_members(raw)])
    for cmd in ("list", "manifest"):
        assert cli(cmd, case).exit_code == 4


def test_incomplete_end_marker_fails_under_strict(cli, tmp_path, base_tar) -> None:  # type: ignore[no-untyped-def]
    raw = base_tar.read_bytes()
    case = tmp_path / "c.tar"
    case.write_bytes(raw[: M.end_of_members(raw) + 512])
    assert cli("inspect", "--strict", case).exit_code == 4


# --- verify: every member is listed or reported ---------------------------------------------------


def test_verify_reports_every_member_the_manifest_does_not_list(
    cli, tmp_path, base_tar, base_members
) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.sha256"
    manifest.write_text(cli("manifest", base_tar).stdout)
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, *M.unsafe_members()]))
    r = cli("verify", case, manifest, "--format", "json")
    assert r.exit_code == 1, r.stderr
    extra = {m["path"] for m in json.loads(r.stdout)["mismatches"] if m["status"] == "extra"}
    assert extra >= {"../x", "/tmp/x", "up", "rootlink", "dev0", "fifo0", "hard-dangling"}


def test_verify_of_an_unchanged_archive_still_matches(cli, tmp_path, base_tar) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.sha256"
    manifest.write_text(cli("manifest", base_tar).stdout)
    r = cli("verify", base_tar, manifest)
    assert r.exit_code == 0, r.stdout


def test_verify_refuses_a_deeply_nested_json_manifest(cli, tmp_path, base_tar) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.json"
    manifest.write_bytes(M.deep_json(100_000))
    r = cli("verify", base_tar, manifest)
    assert r.exit_code == 4, r.stderr


# --- diff: every member whose bytes differ is reported ------------------------------------------

_GARBLED = [
    "checkpoint/seccomp.img",
    "checkpoint/netns-10.img",
    "checkpoint/utsns-12.img",
    "checkpoint/cgroup.img",
    "stats-dump",
    "checkpoint/descriptors.json",
    "checkpoint/tmpfs-dev-48.tar.gz.img",
    "devshm-checkpoint.tar",
    "config.dump",
]


def _diff_members(cli, tmp_path, base_tar, data):  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(data)
    r = cli("diff", base_tar, case, "--format", "json")
    assert r.exit_code == 1, r.stderr
    return r, {m["name"]: m for m in json.loads(r.stdout)["members"]}


@pytest.mark.parametrize("name", _GARBLED)
def test_diff_reports_a_garbled_member(cli, tmp_path, base_tar, base_members, name) -> None:  # type: ignore[no-untyped-def]
    import random

    garbled = M.garble(M.get(base_members, name), random.Random(7))
    _, members = _diff_members(
        cli, tmp_path, base_tar, M.build(M.with_member(base_members, name, garbled))
    )
    change = members[name]
    assert change["status"] == "changed"
    assert change["sha256_a"] == hashlib.sha256(M.get(base_members, name)).hexdigest()
    assert change["sha256_b"] == hashlib.sha256(garbled).hexdigest()
    text = cli("diff", base_tar, tmp_path / "c.tar").stdout
    assert f"C {name} " in text


@pytest.mark.parametrize(
    ("mutate", "member"),
    [
        (M.set_pagemap("flags", 0xFFFFFFFF), "checkpoint/pagemap-1.img"),
        (M.pstree_edit("duplicate"), "checkpoint/pstree.img"),
        (M.mm_env(0, 2**63), "checkpoint/mm-1.img"),
    ],
    ids=["pagemap-flags", "pstree-duplicate", "mm-env"],
)
def test_diff_reports_damaged_images(cli, tmp_path, base_tar, base_members, mutate, member) -> None:  # type: ignore[no-untyped-def]
    _, members = _diff_members(cli, tmp_path, base_tar, M.build(mutate(base_members)))
    assert members[member]["status"] == "changed"


def test_diff_of_a_rebuilt_but_equal_archive_finds_nothing(
    cli, tmp_path, base_tar, base_members
) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build(base_members))
    assert cli("diff", base_tar, case).exit_code == 0


# --- terminal safety ------------------------------------------------------------------------------

_RAW = ("\x1b", "\x07", "\r")


def _assert_no_raw_controls(text: str) -> None:
    for ch in _RAW:
        assert ch not in text, repr(text[:200])
    for line in text.splitlines():
        assert not line.startswith("OK: line"), "a newline in a name forged a line"


@pytest.mark.parametrize("command", ["list", "verify", "diff", "extract"])
def test_control_characters_are_escaped_in_text_output(
    cli, tmp_path, base_tar, base_members, command
) -> None:  # type: ignore[no-untyped-def]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, *M.control_names()]))
    manifest = tmp_path / "m.sha256"
    manifest.write_text(cli("manifest", base_tar).stdout)
    argv = {
        "list": ["list", case],
        "verify": ["verify", case, manifest],
        "diff": ["diff", base_tar, case],
        "extract": ["extract", case, "-d", tmp_path / "out"],
    }[command]
    r = cli(*argv)
    assert r.exit_code in (0, 1), r.stderr
    _assert_no_raw_controls(r.stdout)
    _assert_no_raw_controls(r.stderr)
    assert "\\x1b[31mred\\x07" in r.stdout


def test_process_comm_with_controls_is_escaped(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    def edit(entries: list[object]) -> None:
        entries[0].tc.comm = b"sh\x1b]0;pwned\x07\nfake"  # type: ignore[attr-defined]

    case = tmp_path / "c.tar"
    case.write_bytes(M.build(M.edit_image(base_members, "checkpoint/core-1.img", edit)))
    for argv in (["inspect", case], ["memory", case], ["summary", case]):
        r = cli(*argv)
        assert r.exit_code == 0, r.stderr
        _assert_no_raw_controls(r.stdout)
        assert "\nfake" not in r.stdout
        if argv[0] != "summary":  # summary shows the command line, read from memory
            assert "sh\\x1b]0;pwned\\x07\\nfake" in r.stdout


# --- scale: many members ------------------------------------------------------------------------


def test_streamed_jsonl_listing_matches_the_json_document(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    many = [
        M.Member(M.file_info(f"extra/{i:05d}.txt", 2), b"%02d" % (i % 100)) for i in range(3000)
    ]
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, *many]))
    doc = json.loads(cli("list", case, "--format", "json").stdout)
    lines = [
        json.loads(line) for line in cli("list", case, "--format", "jsonl").stdout.splitlines()
    ]
    assert [r["member"] for r in lines if r["record"] == "member"] == doc["members"]
    assert len(doc["members"]) == len(base_members) + 3000
    manifest = tmp_path / "m.sha256"
    manifest.write_text(cli("manifest", case).stdout)
    assert cli("verify", case, manifest).exit_code == 0


def test_a_json_manifest_checks_links_and_directories(
    cli, tmp_path, base_tar, base_members
) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "m.json"
    manifest.write_text(cli("manifest", base_tar, "--format", "json").stdout)
    assert cli("verify", base_tar, manifest).exit_code == 0
    link = M.Member(M.file_info("a/b", type_=tarfile.SYMTYPE, linkname=".."), b"")
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, link]))
    r = cli("verify", case, manifest, "--format", "json")
    assert r.exit_code == 1
    assert [(m["path"], m["status"]) for m in json.loads(r.stdout)["mismatches"]] == [
        ("a/b", "extra")
    ]
    case.write_bytes(M.build([m for m in base_members if m.name != "artifacts"]))
    r = cli("verify", case, manifest, "--format", "json")
    assert [(m["path"], m["status"]) for m in json.loads(r.stdout)["mismatches"]] == [
        ("artifacts", "missing")
    ]


def test_the_last_of_two_members_of_one_name_counts(cli, tmp_path, base_tar, base_members) -> None:  # type: ignore[no-untyped-def]
    spec = next(m for m in base_members if m.name == "stats-dump")
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, M.Member(spec.info, b"X" * len(spec.data))]))
    r = cli("diff", base_tar, case, "--format", "json")
    assert r.exit_code == 1
    assert {m["name"] for m in json.loads(r.stdout)["members"]} == {"stats-dump"}
    manifest = tmp_path / "m.sha256"
    manifest.write_text(cli("manifest", base_tar).stdout)
    assert cli("verify", case, manifest).exit_code == 1


def test_a_pax_size_that_is_not_a_number_is_a_damaged_header(cli, tmp_path, base_members) -> None:  # type: ignore[no-untyped-def]
    info = M.file_info("pax.txt", 4)
    info.pax_headers = {"size": "\x1b[2J"}
    case = tmp_path / "c.tar"
    case.write_bytes(M.build([*base_members, M.Member(info, b"data")]))
    for cmd in ("summary", "list", "manifest"):
        r = cli(cmd, case)
        assert r.exit_code == 4, (cmd, r.stderr)
        assert "\x1b" not in r.stderr
