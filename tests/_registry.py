"""Debian's docker-registry on loopback for the image tests, with or without htpasswd auth, and
a proxy that cuts a connection mid-upload."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    """A docker-registry of its own (storage in ``directory``), stopped at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if user is not None:
        htpasswd = directory / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), user, password or ""],
            check=True,
            capture_output=True,
        )
        auth = AUTH.format(htpasswd=htpasswd)
    storage = directory / "storage"
    config = directory / "config.yml"
    config.write_text(CONFIG.format(storage=storage, port=port, auth=auth))
    log = open(directory / "registry.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
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
        log.close()


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
