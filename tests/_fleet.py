"""Real parts for the fleet tests, on loopback: capture services (`kcheckpoint serve --demo`),
moto's standalone S3 server, and the command line run as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[Any], seconds: float = 60) -> None:
    """Until ``url`` answers 2xx; fails when ``proc`` exits first or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("KCHECKPOINT_TOKEN", None)
    env.update(extra)
    return env


@dataclass
class Node:
    """One capture service with its archives."""

    url: str
    proc: subprocess.Popen[bytes]
    token: str | None

    def request(self, method: str, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(self.url + path, method=method)
        if token or self.token:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        with urllib.request.urlopen(req, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def capture(self) -> None:
        self.request("POST", "/checkpoint/demo/webapp/webapp")

    def listing(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/checkpoints")["items"])

    def urls(self) -> list[str]:
        return [f"{self.url}/checkpoints/{item['name']}" for item in self.listing()]


@contextlib.contextmanager
def capture_service(workdir: Path, token: str | None, archives: int) -> Iterator[Node]:
    """`kcheckpoint serve --demo` on a free port, with ``archives`` checkpoints taken."""
    port = free_port()
    args = [sys.executable, "-m", "kcheckpoint", "serve", "--demo", "--port", str(port)]
    args += ["--root-dir", str(workdir)]
    if token is not None:
        tokens = workdir / "tokens.csv"
        tokens.write_text(f'{token},fleet,1000,"*"\n')
        args += ["--token-auth-file", str(tokens)]
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=base_env())
    node = Node(f"http://127.0.0.1:{port}", proc, token)
    try:
        wait_for(node.url + "/healthz", proc)
        for _ in range(archives):
            node.capture()
        yield node
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def moto_s3(workdir: Path) -> Iterator[dict[str, str]]:
    """moto's standalone S3 server; yields the AWS environment that points at it."""
    port = free_port()
    log = (workdir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        wait_for(env["AWS_ENDPOINT_URL"] + "/moto-api/", proc)
        yield env
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kcheckpoint(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """The command line, as a user runs it: exit code, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "kcheckpoint", *args],
        capture_output=True,
        text=True,
        env=env or base_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
