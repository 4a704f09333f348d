"""secrets on the real archives: every planted class, nothing in clear, same findings everywhere."""

from __future__ import annotations

import json

import pytest

from kcheckpoint.inspect.memory.secrets import scan_archive_secrets

from .conftest import CONTAINERD, CRIO, IDLE, PODMAN_T1, PODMAN_T2, PODMAN_T3, fixture_id

#: The fixture secrets (FIXTURES.md, workload/app.py). None of them may appear in the output.
RAW_VALUES = [
    "sk_live_FIXTURE51c0ffee0123456789",
    "FIXTURE51c0ffee",
    "hunter2-fixture-pw",
    "AKIAFIXTURE7EXAMPLE7Q",
    "FIXTURE7EXAMPLE7",
    "ghp_F1xtureT0kenN0tReal0123456789abcdef",
    "F1xtureT0ken",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFIXTUREKEY",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAA",
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9",
    "c2lnbmF0dXJlLWZpeHR1cmU",
]
KEY = "00112233445566778899aabbccddeeff"


def _json(cli, *args: object) -> tuple[dict, str]:  # type: ignore[no-untyped-def,type-arg]
    res = cli("secrets", *args, "--fingerprint-key", KEY, "--format", "json")
    assert res.exit_code == 1, res.stderr
    return json.loads(res.stdout), res.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "csv"])
def test_webapp_reports_every_planted_class_and_no_secret_value(cli, fmt: str) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", PODMAN_T1, "--format", fmt)
    assert res.exit_code == 1
    for raw in RAW_VALUES:
        assert raw not in res.stdout, raw
        assert raw not in res.stderr, raw
    for rule in (
        "stripe-key",
        "secret-env-var",
        "aws-access-key-pair",
        "github-token",
        "private-key",
        "jwt",
    ):
        assert rule in res.stdout, rule
    assert "API_TOKEN" in res.stdout and "DB_PASSWORD" in res.stdout
    assert "memory may hold" in res.stderr


def test_findings_are_located_redacted_and_grouped(cli) -> None:  # type: ignore[no-untyped-def]
    doc, _ = _json(cli, PODMAN_T1)
    by_rule = doc["by_rule"]
    assert by_rule["private-key"] == 2 and by_rule["github-token"] == 1
    # the id is reported in its pair; the secret's second copy in memory is a copy of it
    assert "aws-access-key-id" not in by_rule and by_rule["jwt"] == 1
    assert by_rule["aws-access-key-pair"] == 2
    for f in doc["findings"]:
        assert f["secret"] is None
        assert "REDACTED" in f["preview"] and len(f["preview"]) < 80
        loc = f["location"]
        if loc["source"] == "memory":
            assert loc["pid"] in (1, 2) and loc["comm"] == "python3"
            assert loc["mapping"] is not None and loc["member"].startswith("checkpoint/pages-")
            start, end = int(loc["mapping"]["start"], 16), int(loc["mapping"]["end"], 16)
            assert start <= int(loc["address"], 16) < end
        else:
            assert loc["source"] == "file" and loc["member"] in ("spec.dump", "config.dump")
    stripe = [g for g in doc["groups"] if g["rules"] == ["stripe-key"]]
    # 5 in memory, spec.dump's env, config.dump's env and its create command
    assert len(stripe) == 1 and stripe[0]["count"] == 8 and stripe[0]["pids"] == [1, 2]
    assert stripe[0]["names"] == ["API_TOKEN"]
    env = next(g for g in doc["groups"] if "DB_PASSWORD" in g["names"])
    assert env["count"] == 8 and env["copies"] == 3
    assert doc["provenance"]["ruleset"]["digest"] == doc["ruleset"]["digest"]


def test_fingerprints_are_keyed(cli) -> None:  # type: ignore[no-untyped-def]
    a, _ = _json(cli, PODMAN_T1)
    b = cli("secrets", PODMAN_T1, "--fingerprint-key", "another key", "--format", "json")
    fps_a = {f["fingerprint"] for f in a["findings"]}
    fps_b = {f["fingerprint"] for f in json.loads(b.stdout)["findings"]}
    assert len(fps_a) == len(fps_b) and not fps_a & fps_b
    c = cli("secrets", PODMAN_T1, "--format", "json")  # the user's own key
    assert not fps_a & {f["fingerprint"] for f in json.loads(c.stdout)["findings"]}


def _findings(path: object, engine: str = "auto") -> list[tuple[object, ...]]:
    result = scan_archive_secrets(str(path), fingerprint_key=bytes.fromhex(KEY), engine=engine)
    return [
        (
            f.rule,
            f.location.source,
            f.location.pid,
            f.location.address,
            f.location.member,
            f.location.offset,
            f.location.path,
            f.fingerprint,
            f.length,
            f.name,
        )
        for f in result.findings
    ]


@pytest.mark.parametrize(
    ("layout", "podman"), [(CRIO, PODMAN_T1), (CONTAINERD, PODMAN_T2)], ids=["crio", "containerd"]
)
def test_engine_layouts_and_compressed_variants_give_the_same_findings(layout, podman) -> None:  # type: ignore[no-untyped-def]
    # the re-packaged layouts rewrote config.dump (no env there); everything else is the same
    podman_findings = [f for f in _findings(podman) if f[4] != "config.dump"]
    assert _findings(layout) == podman_findings


@pytest.mark.parametrize("archive", [PODMAN_T2, PODMAN_T3], ids=fixture_id)
def test_compressed_archives_find_every_class(archive) -> None:  # type: ignore[no-untyped-def]
    rules = {f[0] for f in _findings(archive)}
    assert {
        "stripe-key",
        "secret-env-var",
        "aws-access-key-pair",
        "github-token",
        "private-key",
    } <= rules


def test_python_fallback_finds_what_hyperscan_finds() -> None:
    pytest.importorskip("hyperscan")
    assert _findings(PODMAN_T1, "python") == _findings(PODMAN_T1, "hyperscan")


def test_idle_env_token_found_in_memory_and_spec(cli) -> None:  # type: ignore[no-untyped-def]
    doc, _ = _json(cli, IDLE)
    stripe = [f for f in doc["findings"] if f["rule"] == "stripe-key"]
    assert {f["location"]["source"] for f in stripe} == {"memory", "file"}
    assert {f["name"] for f in stripe} == {"API_TOKEN"}
    assert "sk_live_FAKE0123456789" not in json.dumps(doc)


def test_show_secrets_reveals_values_with_a_warning(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", IDLE, "--show-secrets")
    assert res.exit_code == 1
    assert "sk_live_FAKE0123456789" in res.stdout
    assert "--show-secrets" in res.stderr


def test_memory_only_skips_files_and_pid_filter(cli) -> None:  # type: ignore[no-untyped-def]
    doc, _ = _json(cli, PODMAN_T1, "--memory-only", "--pid", "2")
    assert {f["location"]["pid"] for f in doc["findings"]} == {2}
    assert doc["files_scanned"] is False


def test_list_rules(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("secrets", "--list-rules")
    assert res.exit_code == 0 and "aws-access-key-id" in res.stdout
    assert cli("secrets", "--memory-only").exit_code == 2  # no archive
