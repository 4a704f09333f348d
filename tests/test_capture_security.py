"""Security: tokens, namespaces, names and paths, and no credential in any log."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcheckpoint.capture.auth import TokenAuthenticator, parse_token_file
from kcheckpoint.capture.names import (
    InvalidName,
    check_container,
    check_namespace,
    check_pod,
    parse_archive_name,
)
from kcheckpoint.errors import InputError

from .capture.app_fixtures import ALICE, BOB, OPS, TOKENS, Capture, bearer, running_capture


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {ALICE}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {ALICE}x"},
    ],
)
def test_missing_or_invalid_token_is_401(cap: Capture, headers: dict[str, str]) -> None:
    response = cap.client.post("/checkpoint/default/web/app", headers=headers)
    assert (response.status_code, response.text) == (401, "Unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert cap.cri.service.calls == []
    for path in ("/checkpoints", "/checkpoints/x.tar"):
        assert cap.client.get(path, headers=headers).status_code == 401


def test_token_outside_its_namespaces_is_403(cap: Capture) -> None:
    response = cap.client.post("/checkpoint/other/web/app", headers=bearer(ALICE))
    assert response.status_code == 403
    assert response.text.startswith("Forbidden (user=alice, verb=create")
    assert cap.cri.service.calls == []
    assert cap.client.post("/checkpoint/default/web/app", headers=bearer(ALICE)).status_code == 200
    assert cap.client.post("/checkpoint/other/web/app", headers=bearer(BOB)).status_code == 200


def test_anonymous_is_off_unless_allowed(tmp_path: Path) -> None:
    with running_capture(tmp_path, allow_anonymous=True) as cap:
        assert cap.client.post("/checkpoint/default/web/app").status_code == 200
        # a presented but wrong credential still fails, as in the kubelet
        bad = cap.client.post("/checkpoint/default/web/app", headers=bearer("wrong"))
        assert bad.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/checkpoint/../web/app",
        "/checkpoint/default/../app",
        "/checkpoint/default/web/..",
        "/checkpoint/%2E%2E/web/app",
        "/checkpoint/default/%2e%2e/app",
        "/checkpoint/Default/web/app",
        "/checkpoint/default/web_1/app",
        "/checkpoint/default/-web/app",
        "/checkpoint/default/web./app",
        "/checkpoint/default/web..x/app",
        "/checkpoint/default/web/app%00",
        "/checkpoint/default/web/a%20b",
        "/checkpoint/default/web/" + "a" * 64,
        "/checkpoint/" + "n" * 64 + "/web/app",
        "/checkpoint/default/" + "p" * 254 + "/app",
    ],
)
def test_invalid_names_are_400_before_the_runtime(cap: Capture, path: str) -> None:
    response = _raw_post(cap, path)
    assert response.status_code == 400, response.text
    assert "invalid" in response.text
    assert cap.cri.service.calls == []
    assert cap.files() == []


@pytest.mark.parametrize(
    "path",
    [
        "/checkpoint/default/web%2Fapp/app",
        "/checkpoint/default%2F..%2F..%2Fetc/web/app",
        "/checkpoint/default/web/app%2F..%2F..",
        "/checkpoint/default/web/app/extra",
    ],
)
def test_encoded_slashes_never_reach_the_runtime(cap: Capture, path: str) -> None:
    response = _raw_post(cap, path)
    assert response.status_code in (400, 404)
    assert cap.cri.service.calls == []
    assert cap.files() == []


@dataclass
class RawResponse:
    status_code: int
    text: str


def _raw_post(cap: Capture, raw_path: str, method: str = "POST") -> RawResponse:
    """Send the path exactly as given, as a server receives it: no client normalises '..'.

    The request goes straight to the ASGI app, in the event loop its lifespan runs in.
    """
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {OPS}".encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await cap.client.app(scope, receive, send)

    cap.client.portal.call(call)  # type: ignore[union-attr]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(status, body.decode())


def test_archive_names_for_download_and_delete_are_validated(cap: Capture) -> None:
    outside = cap.settings.root_dir / "secret.tar"
    outside.write_text("not yours")
    names = ("..%2Fsecret.tar", "..", "%2E%2E", "secret.tar", "checkpoint-x.tar", ".tmp-x.tar")
    for name in names:
        for method in ("GET", "DELETE"):
            response = _raw_post(cap, f"/checkpoints/{name}", method)
            assert response.status_code in (400, 404), (method, name)
    assert outside.read_text() == "not yours"


def test_no_token_in_logs_or_audit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running_capture(tmp_path) as cap:
        cap.client.post("/checkpoint/default/web/app", headers=bearer(ALICE))
        cap.client.post("/checkpoint/other/web/app", headers=bearer(ALICE))
        cap.client.post("/checkpoint/default/web/app", headers=bearer(ALICE + "typo"))
        cap.client.get("/checkpoints", headers=bearer(OPS))
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"user": "alice"' in audit and '"status": 403' in audit and '"status": 401' in audit
    everything = audit + caplog.text
    for token in (ALICE, OPS, BOB, ALICE[:12]):
        assert token not in everything


def test_token_file_errors_name_the_line_never_the_token() -> None:
    secret = "s3cr3t-value-123"
    bad_lines = [
        f"{secret},alice",
        f"{secret},,1,*",
        f"{secret},alice,1,",
        f'{secret},alice,1,"a,b"\n{secret},bob,2,*',
        f'{secret},alice,1,"unterminated',
    ]
    for text in bad_lines:
        with pytest.raises(InputError) as info:
            parse_token_file(text, "tokens.csv")
        assert secret not in str(info.value)
        assert "tokens.csv:" in str(info.value)


def test_token_file_format() -> None:
    entries = dict(parse_token_file(TOKENS))
    assert entries[ALICE].namespaces == frozenset({"default", "team-a"})
    assert entries[OPS].namespaces == frozenset({"*"})
    assert entries[BOB].user == "bob" and entries[BOB].uid == "1003"
    auth = TokenAuthenticator(list(entries.items()), allow_anonymous=False)
    assert auth.authenticate(f"Bearer {BOB}").user == "bob"
    assert auth.authenticate(f"bearer  {OPS} ").user == "ops"


def test_tokens_are_compared_in_constant_time() -> None:
    import inspect

    from kcheckpoint.capture import auth

    source = inspect.getsource(auth.TokenAuthenticator.authenticate)
    assert "compare_digest" in source
    assert "==" not in source.split("presented = ")[1]


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_accepted_names_are_safe_path_components(text: str) -> None:
    for check in (check_namespace, check_pod, check_container):
        try:
            value = check(text)
        except InvalidName:
            continue
        assert value == text
        assert "/" not in value and ".." not in value and "\x00" not in value
        assert value not in (".", "") and value == value.lower()


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_archive_name_parser_accepts_only_plain_names(text: str) -> None:
    try:
        parsed = parse_archive_name(text)
    except InvalidName:
        return
    assert "/" not in parsed.name and not parsed.name.startswith(".")
    assert parsed.name.endswith(".tar") and ".." not in parsed.name


def test_anonymous_identity_never_matches_a_presented_token() -> None:
    auth = TokenAuthenticator([], allow_anonymous=True)
    assert auth.authenticate(None).user == "system:anonymous"
    from kcheckpoint.capture.auth import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        auth.authenticate("Bearer anything")


def test_runtime_is_not_touched_by_unauthenticated_floods(cap: Capture) -> None:
    async def flood() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=cap.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(
                *(client.post("/checkpoint/default/web/app") for _ in range(50))
            )
        return [r.status_code for r in responses]

    assert set(asyncio.run(flood())) == {401}
    assert cap.cri.service.calls == []
