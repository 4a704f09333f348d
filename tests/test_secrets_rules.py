"""The secret rules one by one, the keyword engines, chunking, redaction and fingerprints."""

from __future__ import annotations

import base64
import itertools
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.rules.secrets import (
    RULES,
    Fingerprinter,
    SecretMatcher,
    drop_shadowed,
    redacted_preview,
    scan_chunks,
)

from ._archives import rewritten
from .conftest import PODMAN_T1

ENGINES = ["python", "hyperscan"]


def _jwt(payload: dict[str, object]) -> str:
    def enc(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'RS256'})}.{enc(payload)}.c2lnbmF0dXJlLXRlc3QtdmFsdWU"


#: (text, rule expected, the secret part) -- made-up values that look like credentials.
CASES = [
    (b"key AKIAZZTESTEXAMPLE234 here", "aws-access-key-id", b"AKIAZZTESTEXAMPLE234"),
    (
        b"aws_secret_access_key = Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy",
        "aws-secret-access-key",
        b"Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy",
    ),
    (
        b"x ghs_abcdefghijklmnopqrstuvwxyz0123456789 y",
        "github-token",
        b"ghs_abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    (b"github_pat_" + b"A1" * 30, "github-fine-grained-token", b"github_pat_" + b"A1" * 30),
    (b"xoxb-123456789012-abcdefABCDEF", "slack-token", b"xoxb-123456789012-abcdefABCDEF"),
    (
        b"https://hooks.slack.com/services/T0000/B0000/abcdefghijklmnop",
        "slack-webhook",
        b"T0000/B0000/abcdefghijklmnop",
    ),
    (b"rk_test_abcdefABCDEF012345", "stripe-key", b"rk_test_abcdefABCDEF012345"),
    (
        b"-----BEGIN RSA PRIVATE KEY-----\n" + b"QUJD" * 16 + b"\n-----END RSA PRIVATE KEY-----",
        "private-key",
        b"QUJD" * 16 + b"\n",
    ),
    (_jwt({"sub": "u"}).encode(), "jwt", _jwt({"sub": "u"}).encode()),
    (
        _jwt(
            {"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "shop"}
        ).encode(),
        "kubernetes-service-account-token",
        None,
    ),
    (b"\x00SESSION_SECRET=s3cr3t-value\x00", "secret-env-var", b"s3cr3t-value"),
    (b"\x00REDIS_PASSWORD=Xy9-pass\x00", "secret-env-var", b"Xy9-pass"),
    (b'{"password": "Tr0ub4dor#3x"}', "password-assignment", b"Tr0ub4dor#3x"),
    (b"db.token=aB3dE5gH7jK9", "password-assignment", b"aB3dE5gH7jK9"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("text", "rule", "secret"), CASES, ids=[c[1] for c in CASES])
def test_each_rule_finds_its_secret(
    engine: str, text: bytes, rule: str, secret: bytes | None
) -> None:
    if engine == "hyperscan":
        pytest.importorskip("hyperscan")
    found = drop_shadowed(list(scan_chunks(SecretMatcher(engine=engine), [text])))
    assert [f.rule for f in found] == [rule]
    if secret is not None:
        assert found[0].value == secret


@pytest.mark.parametrize(
    "text",
    [
        b"password=None",
        b"token = self.token",
        b"PATH=/usr/local/bin",
        b"AKIA is a prefix",
        b"ghp_short",
        b"-----BEGIN PUBLIC KEY-----\nQUJDQUJDQUJDQUJDQUJDQUJD\n",
        b"eyJhbGciOi.notajwt",
        b"API_TOKEN=${TOKEN}",
    ],
)
def test_look_alikes_are_not_findings(text: bytes) -> None:
    assert drop_shadowed(list(scan_chunks(SecretMatcher(engine="python"), [text]))) == []


def test_specific_rule_wins_and_keeps_the_variable_name() -> None:
    found = drop_shadowed(
        list(
            scan_chunks(
                SecretMatcher(engine="python"), [b"\x00API_TOKEN=sk_live_abcdef0123456789\x00"]
            )
        )
    )
    assert [(f.rule, f.name) for f in found] == [("stripe-key", "API_TOKEN")]


@settings(max_examples=60, deadline=None)
@given(
    pad=st.integers(0, 3000),
    cuts=st.lists(st.integers(0, 5000), max_size=6),
)
def test_findings_do_not_depend_on_chunking(pad: int, cuts: list[int]) -> None:
    data = (
        b"\x00" * pad
        + b"AKIAZZTESTEXAMPLE234 "
        + b"x" * pad
        + b"\x00DB_PASSWORD=hunter3-pw\x00"
        + b"\xff" * 50
    )
    matcher = SecretMatcher(engine="python")
    whole = [(f.rule, f.start, f.value) for f in scan_chunks(matcher, [data])]
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    assert [(f.rule, f.start, f.value) for f in scan_chunks(matcher, chunks)] == whole
    assert len(drop_shadowed(list(scan_chunks(matcher, [data])))) == 2


def test_every_rule_is_literal_anchored_and_documented() -> None:
    for rule in RULES:
        assert rule.keywords and all(k for k in rule.keywords), rule.id
        assert "secret" in rule.regex.groupindex, rule.id
        assert rule.ere and rule.description


def test_previews_never_hold_more_than_the_public_prefix() -> None:
    assert redacted_preview("ghp_", 40) == "ghp_…[REDACTED 40 bytes]"
    assert redacted_preview("", 18) == "[REDACTED 18 bytes]"
    fp = Fingerprinter(b"k")
    assert fp(b"a") == Fingerprinter(b"k")(b"a") != Fingerprinter(b"j")(b"a")
    assert len(fp(b"a")) == 24


def test_an_archive_without_secrets_exits_0(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    def clean(name: str, data: bytes) -> bytes | None:
        if name.startswith("checkpoint/pages-"):
            return b"\x00" * len(data)
        if name == "spec.dump":
            spec = json.loads(data)
            spec["process"]["env"] = ["PATH=/usr/bin", "HOME=/root"]
            return json.dumps(spec).encode()
        if name == "config.dump":
            return b"{}"
        return None

    path = tmp_path / "clean.tar"
    with rewritten(PODMAN_T1.read_bytes(), path, clean, tar_format=tarfile.GNU_FORMAT):
        pass  # nothing to add
    res = cli("secrets", path)
    assert res.exit_code == 0, res.stdout
    assert "0 finding(s)" in res.stdout
    assert "memory may hold" in res.stderr
    assert cli("search", path, "sk_live_").exit_code == 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("size", [29_000, 31_000, 65_536, 100_003])
def test_large_chunks_scanned_in_place_give_the_same_findings(engine: str, size: int) -> None:
    if engine == "hyperscan":
        pytest.importorskip("hyperscan")
    import random

    rnd = random.Random(size)
    parts = []
    for i in range(60):
        parts.append(rnd.randbytes(rnd.randrange(100, 9000)))
        parts.append(CASES[i % len(CASES)][0])
    data = b"\x00".join(parts)
    matcher = SecretMatcher(engine=engine)
    whole = [(f.rule, f.start, f.value) for f in scan_chunks(matcher, [data])]
    chunks = [bytearray(data[i : i + size]) for i in range(0, len(data), size)]
    assert [(f.rule, f.start, f.value) for f in scan_chunks(matcher, chunks)] == whole
    assert len(whole) >= 60
