"""search on the real archives: every planted string, per pages file, pid and mapping."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kcheckpoint.inspect.memory.search import compile_needle, search_archive

from .conftest import CONTAINERD, CRIO, IDLE, PODMAN_T1, WEBAPPS, fixture_id

#: FIXTURES.md, "Planted strings in memory pages": (pages-1.img, pages-2.img) counts.
PLANTED = {
    "sk_live_": (3, 2),
    "hunter2-fixture-pw": (3, 2),
    "AKIAFIXTURE7EXAMPLE7Q": (1, 0),
    "ghp_F1xtureT0ken": (1, 0),
    "-----BEGIN PRIVATE KEY-----": (2, 0),
    "CHECKPOINT-FIXTURE-MARKER": (3, 0),
}


@pytest.mark.parametrize("archive", WEBAPPS, ids=fixture_id)
def test_every_planted_string_is_found_per_pages_file_and_pid(archive) -> None:  # type: ignore[no-untyped-def]
    for text, (in_1, in_2) in PLANTED.items():
        result = search_archive(str(archive), compile_needle(text))
        per_member = Counter(h.member for h in result.hits)
        assert per_member["checkpoint/pages-1.img"] == in_1, text
        assert per_member["checkpoint/pages-2.img"] == in_2, text
        for hit in result.hits:
            assert hit.source == "memory"
            assert hit.pid == (1 if hit.member.endswith("pages-1.img") else 2)
            assert hit.comm == "python3"
            assert hit.mapping is not None
            assert int(hit.mapping.start, 16) <= int(hit.address, 16) < int(hit.mapping.end, 16)
            assert "w" in hit.mapping.perms  # data, never code


def test_env_strings_sit_in_the_stack_mapping_of_each_process() -> None:
    result = search_archive(str(PODMAN_T1), compile_needle("DB_PASSWORD=hunter2-fixture-pw"))
    assert sorted((h.pid, h.mapping.backing) for h in result.hits if h.mapping) == [
        (1, "[stack]"),
        (2, "[stack]"),
    ]


def test_idle_has_two_stripe_like_tokens() -> None:
    result = search_archive(str(IDLE), compile_needle("sk_live_"))
    assert len(result.hits) == 2
    assert {h.comm for h in result.hits} <= {"sh", "sleep"}


@pytest.mark.parametrize("archive", [CRIO, CONTAINERD], ids=fixture_id)
def test_engine_layouts_give_the_same_hits_as_podman(archive) -> None:  # type: ignore[no-untyped-def]
    from .conftest import PODMAN_T2

    twin = PODMAN_T1 if archive == CRIO else PODMAN_T2
    needle = compile_needle("sk_live_")

    def key(path):  # type: ignore[no-untyped-def]
        hits = search_archive(str(path), needle).hits
        return [(h.pid, h.address, h.member, h.offset) for h in hits]

    assert key(archive) == key(twin)


def test_cli_exit_codes_follow_grep(cli) -> None:  # type: ignore[no-untyped-def]
    hit = cli("search", PODMAN_T1, "CHECKPOINT-FIXTURE-MARKER")
    assert hit.exit_code == 0
    assert hit.stdout.count("checkpoint/pages-1.img") == 3
    assert "memory may hold" in hit.stderr
    miss = cli("search", PODMAN_T1, "no-such-string-anywhere-0xdeadbeef")
    assert miss.exit_code == 1
    assert "0 hit(s)" in miss.stdout
    assert "memory may hold" in miss.stderr


def test_cli_pid_filter_regex_context_and_json(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli(
        "search",
        PODMAN_T1,
        r"hunter2-[a-z]+-pw",
        "--regex",
        "--pid",
        "2",
        "-C",
        "12",
        "--format",
        "json",
    )
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert {h["pid"] for h in doc["hits"]} == {2}
    assert len(doc["hits"]) == 2
    env_hit = next(h for h in doc["hits"] if h["mapping"]["backing"] == "[stack]")
    assert env_hit["context"] == "DB_PASSWORD=[hunter2-fixture-pw]\\x00PATH=/usr/l"


def test_cli_everywhere_also_searches_spec_env_and_files(cli) -> None:  # type: ignore[no-untyped-def]
    memory_only = cli("search", PODMAN_T1, "hunter2-fixture-pw", "-o", "json")
    everywhere = cli("search", PODMAN_T1, "hunter2-fixture-pw", "--everywhere", "-o", "json")
    hits = json.loads(everywhere.stdout)["hits"]
    assert len(hits) == len(json.loads(memory_only.stdout)["hits"]) + 1
    assert [h["path"] for h in hits if h["source"] == "file"] == ["process.env[2]"]
    log = cli("search", PODMAN_T1, "app/data/app.log", "--everywhere", "-o", "json")
    assert log.exit_code == 0


def test_cli_reads_stdin_and_compressed_streams(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("search", "-", "CHECKPOINT-FIXTURE-MARKER", stdin=IDLE.read_bytes())
    assert res.exit_code == 1  # the idle container holds no marker
    assert "memory may hold" in res.stderr


def test_cli_bad_regex_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("search", PODMAN_T1, "(", "--regex")
    assert res.exit_code == 2


def test_max_hits_bounds_what_is_kept_but_counts_everything(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("search", PODMAN_T1, "python3", "--max-hits", "3", "-o", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert len(doc["hits"]) == 3 and doc["truncated"] is True
    assert doc["total_hits"] > 3
    assert "only the first 3" in res.stderr
