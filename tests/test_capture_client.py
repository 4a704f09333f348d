"""`kcheckpoint capture` and `serve` against a real uvicorn server: download, SHA-256, TLS."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kcheckpoint.capture.app import create_app
from kcheckpoint.capture.client import Target, download
from kcheckpoint.capture.demo import SAMPLE
from kcheckpoint.capture.names import InvalidName
from kcheckpoint.errors import TransferError

from ._fleet import free_port, wait_for
from .capture.app_fixtures import ALICE, OPS, Capture, bearer, running_capture
from .capture.certs import make_pki
from .capture.fake_cri import PAYLOAD
from .capture.server import serving
from .conftest import CliResult


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Capture]]:
    # a second app on the same settings: each app's lifespan owns its own gRPC channel
    with running_capture(tmp_path) as cap, serving(create_app(cap.settings)) as url:
        yield url, cap


def test_capture_and_download_verified(
    served: tuple[str, Capture], tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cap = served
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    dest = tmp_path / "dl"
    dest.mkdir()
    result: CliResult = cli("capture", url, "default/web/app", "--download", dest)
    assert result.exit_code == 0, result.stderr
    remote, local = result.stdout.splitlines()
    assert Path(remote).parent == cap.directory
    assert Path(local) == dest / Path(remote).name
    assert Path(local).read_bytes() == PAYLOAD
    assert os.stat(local).st_mode & 0o777 == 0o600
    assert os.listdir(dest) == [Path(remote).name]
    assert OPS not in result.stderr + result.stdout
    assert "handle it as a secret" in result.stderr


def test_capture_json_output(
    served: tuple[str, Capture], tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = served
    token_file = tmp_path / "token"
    token_file.write_text(ALICE + "\n")
    result: CliResult = cli(
        "capture", url, "default/web/app", "--token-file", token_file, "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert row["size"] == len(PAYLOAD) and row["downloaded"] is None


@pytest.mark.parametrize(
    ("target", "token", "message"),
    [
        ("default/nope/app", OPS, "pod does not exist"),
        ("default/web/nope", OPS, "container nope does not exist"),
        ("other/web/app", ALICE, "HTTP 403"),
        ("default/web/app", "wrong", "HTTP 401"),
        ("default/web/sidecar", OPS, "HTTP 500: checkpointing of default/web/sidecar failed"),
    ],
)
def test_capture_failures_exit_5(
    served: tuple[str, Capture],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    token: str,
    message: str,
) -> None:
    url, _ = served
    monkeypatch.setenv("KCHECKPOINT_TOKEN", token)
    result: CliResult = cli("capture", url, target)
    assert result.exit_code == 5
    assert message in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert token not in result.stderr


def test_capture_usage_errors_exit_2(cli: Any) -> None:
    assert cli("capture", "http://127.0.0.1:1", "default/web").exit_code == 2
    assert cli("capture", "http://127.0.0.1:1", "../web/app").exit_code == 2
    assert cli("capture", "ftp://x", "default/web/app").exit_code == 2


def test_unreachable_service_exits_5(cli: Any) -> None:
    result: CliResult = cli("capture", "http://127.0.0.1:9", "default/web/app")
    assert result.exit_code == 5
    assert "cannot reach the capture service" in result.stderr


def test_sha256_mismatch_exits_5_and_leaves_nothing(
    served: tuple[str, Capture], tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cap = served
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    response = httpx.post(f"{url}/checkpoint/default/web/app", headers=bearer(OPS))
    name = Path(json.loads(response.text)["items"][0]).name
    sidecar = cap.directory / f".{name}.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "sha256": "0" * 64}))  # the service now lies
    dest = tmp_path / "dl"
    dest.mkdir()
    with (
        httpx.Client(base_url=url, headers=bearer(OPS)) as client,
        pytest.raises(TransferError, match="SHA-256 mismatch"),
    ):
        download(client, name, dest)
    assert os.listdir(dest) == []
    # a fresh capture has a truthful digest, and the CLI verifies it
    result: CliResult = cli("capture", url, "default/web/app", "--download", dest)
    assert result.exit_code == 0, result.stderr
    assert len(os.listdir(dest)) == 1


class FlakyTransport(httpx.BaseTransport):
    """Cuts the first download after ``cut`` bytes, as a dropped connection would."""

    def __init__(self, inner: httpx.BaseTransport, cut: int) -> None:
        self.inner = inner
        self.cut = cut
        self.ranges: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "GET" or not request.url.path.startswith("/checkpoints/"):
            return response
        self.ranges.append(request.headers.get("range"))
        if len(self.ranges) > 1:
            return response
        body = response.read()[: self.cut]

        class Broken(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                yield body
                raise httpx.ReadError("connection reset")

        return httpx.Response(response.status_code, headers=response.headers, stream=Broken())


def test_download_resumes_with_range(cap_app: Capture, tmp_path: Path) -> None:
    response: Any = cap_app.post("default/web/app")
    name = Path(json.loads(response.text)["items"][0]).name
    flaky = FlakyTransport(cap_app.client._transport, cut=300)
    with httpx.Client(transport=flaky, base_url="http://testserver", headers=bearer(OPS)) as c:
        path, digest = download(c, name, tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert flaky.ranges == [None, "bytes=300-"]


def test_download_gives_up_and_cleans_up(cap_app: Capture, tmp_path: Path) -> None:
    response: Any = cap_app.post("default/web/app")
    name = Path(json.loads(response.text)["items"][0]).name
    flaky = FlakyTransport(cap_app.client._transport, cut=300)
    with (
        httpx.Client(transport=flaky, base_url="http://testserver", headers=bearer(OPS)) as c,
        pytest.raises(TransferError, match="after 1 attempts"),
    ):
        download(c, name, tmp_path, attempts=1)
    assert [p for p in tmp_path.iterdir() if name in p.name] == []


@pytest.fixture
def cap_app(tmp_path: Path) -> Iterator[Capture]:
    (tmp_path / "svc").mkdir()
    with running_capture(tmp_path / "svc") as cap:
        yield cap


def test_target_parsing() -> None:
    assert str(Target.parse("default/web/app")) == "default/web/app"
    for bad in ("a/b", "a/b/c/d", "A/b/c", "a/../c", "a/b/"):
        with pytest.raises(InvalidName):
            Target.parse(bad)


def test_tls_requires_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with (
        running_capture(tmp_path) as cap,
        serving(create_app(cap.settings), **pki.server_ssl()) as url,
    ):

        def context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
            tls = ssl.create_default_context(cafile=str(pki.ca))
            if cert and key:
                tls.load_cert_chain(str(cert), str(key))
            return tls

        target = f"{url}/checkpoint/default/web/app"
        good = context(pki.client_cert, pki.client_key)
        assert httpx.post(target, headers=bearer(OPS), verify=good).status_code == 200
        for cert, key in ((None, None), (pki.other_client_cert, pki.other_client_key)):
            with pytest.raises(httpx.TransportError):
                httpx.post(target, headers=bearer(OPS), verify=context(cert, key))
    assert len(cap.archives()) == 1


def test_capture_cli_over_tls(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(tmp_path)
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    with (
        running_capture(tmp_path) as cap,
        serving(create_app(cap.settings), **pki.server_ssl()) as url,
    ):
        tls = ["--cacert", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key]
        good: CliResult = cli("capture", url, "default/web/app", *tls)
        assert good.exit_code == 0, good.stderr
        bare: CliResult = cli("capture", url, "default/web/app", "--cacert", pki.ca)
        assert bare.exit_code == 5


def test_serve_flag_errors_exit_2(cli: Any, tmp_path: Path) -> None:
    assert cli("serve", "--client-ca", tmp_path / "ca.pem").exit_code == 2
    assert cli("serve", "--tls-cert-file", tmp_path / "c.pem").exit_code == 2
    assert cli("serve", "--max-total-size", "lots").exit_code == 2
    assert cli("serve", "--feature-gates", "Other=true", "--allow-anonymous").exit_code == 2
    assert cli("serve", "--root-dir", tmp_path).exit_code == 2  # neither tokens nor anonymous
    missing = cli("serve", "--allow-anonymous", "--runtime-endpoint", "tcp://x:1")
    assert missing.exit_code == 5 and "unsupported runtime endpoint" in missing.stderr
    bad_tokens = tmp_path / "t.csv"
    bad_tokens.write_text("onlyonefield\n")
    result = cli("serve", "--token-auth-file", bad_tokens, "--runtime-endpoint", "unix:///x")
    assert result.exit_code == 3 and "t.csv:1" in result.stderr


def test_serve_demo_as_the_readme_shows(tmp_path: Path) -> None:
    """`kcheckpoint serve --demo`, then `curl -X POST .../checkpoint/demo/webapp/webapp`."""
    port = free_port()
    root = tmp_path / "root"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcheckpoint", "serve", "--demo", "--port", str(port),
         "--root-dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", proc)
        health = httpx.get(f"{base}/healthz").json()
        assert health["demo"] is True
        response = httpx.post(f"{base}/checkpoint/demo/webapp/webapp")
        assert response.status_code == 200, response.text
        (path,) = response.json()["items"]
        assert Path(path).parent == root / "checkpoints"
        with tarfile.open(path, "r:") as archive:  # a plain tar, as a runtime writes
            names = archive.getnames()
        assert any(n.endswith("spec.dump") for n in names)
        listed = httpx.get(f"{base}/checkpoints").json()["items"]
        assert [i["namespace"] for i in listed] == ["demo"]
        assert httpx.post(f"{base}/checkpoint/demo/nope/webapp").status_code == 404
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "DEMO MODE" in err
    assert proc.returncode == 0  # SIGTERM stops it cleanly...
    socket_path = Path(health["runtime_endpoint"].removeprefix("unix://"))
    assert not socket_path.parent.exists()  # ...and the demo runtime's socket is gone


def test_sample_is_bundled() -> None:
    assert SAMPLE.is_file()


def test_capture_passes_the_timeout(
    served: tuple[str, Capture], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cap = served
    monkeypatch.setenv("KCHECKPOINT_TOKEN", OPS)
    result: CliResult = cli("capture", url, "default/web/app", "--timeout", "300")
    assert result.exit_code == 0, result.stderr
    (request,) = cap.cri.service.checkpoint_requests
    assert request.timeout == 300  # longer than the service's default, so sent unchanged
