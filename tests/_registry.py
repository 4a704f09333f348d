"""Debian's docker-registry on loopback for the image tests, with or without htpasswd auth, and
a proxy that cuts a connection mid-upload."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._fleet import free_port

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{auth}"""
AUTH = """\
auth:
  htpasswd:
    realm: kcheckpoint-test
    path: {htpasswd}
"""


def tools_missing(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


@dataclass
class Registry:
    port: int
    storage: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_file(self, digest: str) -> Path:
        hexdigest = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


@contextlib.contextmanager
def registry(
    directory: Path, user: str | None = None, password: str | None = None
) -> Iterator[Registry]:
    """A docker-registry of its own (storage in ``directory``), with htpasswd (basic) auth when
    ``user`` is given; stopped at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    auth = ""
    if user is not None:
        htpasswd = directory / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), user, password or ""],
            check=True,
            capture_output=True,
        )
        auth = AUTH.format(htpasswd=htpasswd)
    with _serve(directory, auth) as running:
        yield running


def registry_process(
    directory: Path, storage: Path, auth: str = "", *, detach: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Start docker-registry with its blobs under ``storage``, on a free loopback port, with
    ``auth`` (an ``auth:`` section: AUTH or TOKEN_AUTH) when given; its configuration goes to
    ``directory/registry.yml`` and its output to ``directory/registry.log``. Returns the process
    (not answering yet) and the port. ``detach``: in a session of its own, to outlive the caller,
    as the harness (scripts/cri_harness.py) runs it."""
    port = free_port()
    config = directory / "registry.yml"
    config.write_text(CONFIG.format(storage=storage, port=port, auth=auth))
    # docker-registry reads REGISTRY_* variables as configuration (REGISTRY_AUTH_FILE too)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with open(directory / "registry.log", "ab") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=detach,
        )
    return proc, port


@contextlib.contextmanager
def _serve(directory: Path, auth: str) -> Iterator[Registry]:
    storage = directory / "storage"
    proc, port = registry_process(directory, storage, auth)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "registry.log").read_text()[-2000:])
            time.sleep(0.05)
        yield Registry(port, storage)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def cutting_proxy(target_port: int, cut_after: int) -> Iterator[int]:
    """A TCP proxy to ``target_port`` that closes any connection which has sent ``cut_after``
    bytes upstream: an upload broken off in the middle."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    break
                dst.sendall(data)
                sent += len(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pipe, args=(client, upstream, cut_after), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, None), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        server.close()
        thread.join(5)


TOKEN_AUTH = """\
auth:
  token:
    realm: http://127.0.0.1:{token_port}/token
    service: kc-test-registry
    issuer: kc-test-issuer
    rootcertbundle: {bundle}
"""


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextlib.contextmanager
def token_registry(directory: Path, user: str, password: str) -> Iterator[Registry]:
    """A docker-registry that asks for a bearer token from a token service of our own, which
    grants one to ``user``/``password`` (basic auth) for the scope asked for."""
    import base64
    import json
    import secrets
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from .capture.certs import self_signed_ca

    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_ca("kc-test-token-signer", key)
    bundle = directory / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                repo, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
            stamp = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [der]}
            claims = {
                "iss": "kc-test-issuer",
                "sub": user,
                "aud": query.get("service", [""])[0],
                "exp": stamp + 600,
                "nbf": stamp - 60,
                "iat": stamp,
                "jti": secrets.token_hex(8),
                "access": access,
            }
            signing_input = ".".join(
                _b64url(json.dumps(part).encode()) for part in (header, claims)
            ).encode()
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            body = json.dumps({"token": signing_input.decode() + "." + _b64url(signature)})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        auth = TOKEN_AUTH.format(token_port=server.server_address[1], bundle=bundle)
        with _serve(directory, auth) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()
