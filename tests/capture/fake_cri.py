"""A fake CRI runtime: the demo's gRPC server with scripted failures, delays and partial writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from kcheckpoint._proto.cri import api_pb2
from kcheckpoint.capture.demo import (
    FakeContainer,
    FakePod,
    FakeRuntimeService,
    bytes_writer,
    open_like_runtime,
    start_runtime_server,
)

#: What the fake runtime writes as an archive: a tiny, valid, plain tar.
PAYLOAD = b"kcheckpoint fake archive\n" + b"\0" * 1000


def _may_fail(method: str) -> Callable[[ScriptedRuntime, Any, Any], Any]:
    """A servicer method that is recorded and fails as ``fail`` says, else answers as the demo
    runtime does."""
    answer = getattr(FakeRuntimeService, method)

    def handle(self: ScriptedRuntime, request: Any, context: Any) -> Any:
        self._maybe_fail(method, context)
        return answer(self, request, context)

    handle.__name__ = method
    return handle


class ScriptedRuntime(FakeRuntimeService):
    """The demo runtime, plus: fail a method with a status code, sleep, write half then fail."""

    def __init__(self, pods: list[FakePod], payload: bytes = PAYLOAD) -> None:
        super().__init__(pods, bytes_writer(payload))
        self.fail: dict[str, tuple[grpc.StatusCode, str]] = {}
        self.delay = 0.0
        self.partial_then: tuple[grpc.StatusCode, str] | None = None
        self.mode = 0o600
        self.write_nothing = False
        self.active = 0
        self.max_active = 0
        self._count_lock = threading.Lock()
        #: every RPC received, by method name
        self.calls: list[str] = []

    def _maybe_fail(self, method: str, context: Any) -> None:
        self.calls.append(method)
        if method in self.fail:
            code, details = self.fail[method]
            context.abort(code, details)

    Version = _may_fail("Version")
    ListPodSandbox = _may_fail("ListPodSandbox")
    ListContainers = _may_fail("ListContainers")
    ContainerStatus = _may_fail("ContainerStatus")

    def CheckpointContainer(self, request: Any, context: Any) -> Any:
        self.calls.append("CheckpointContainer")
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.partial_then is not None:
                fd = open_like_runtime(request.location)
                os.write(fd, PAYLOAD[:100])
                os.close(fd)
                context.abort(*self.partial_then)
            if self.delay:
                # write part of the archive first, as a slow runtime would
                fd = open_like_runtime(request.location)
                os.write(fd, PAYLOAD[:100])
                os.close(fd)
                time.sleep(self.delay)
            if "CheckpointContainer" in self.fail:
                context.abort(*self.fail["CheckpointContainer"])
            if self.write_nothing:
                return api_pb2.CheckpointContainerResponse()
            result = super().CheckpointContainer(request, context)
            if self.mode != 0o600:
                os.chmod(request.location, self.mode)
            return result
        finally:
            with self._count_lock:
                self.active -= 1


def default_pods() -> list[FakePod]:
    """``default/web`` (containers ``app`` running, ``sidecar`` exited), a decoy ``other/web``,
    a not-ready ``default/old`` and a multi-sandbox ``default/twice``."""
    return [
        FakePod(
            "sb-web",
            "web",
            "default",
            "uid-web",
            [
                FakeContainer("ctr-app", "app"),
                FakeContainer("ctr-sidecar", "sidecar", state=2),
            ],
        ),
        FakePod("sb-decoy", "web", "other", "uid-decoy", [FakeContainer("ctr-decoy", "app")]),
        FakePod("sb-old", "old", "default", "uid-old", [FakeContainer("ctr-old", "app", 2)], 1),
        FakePod("sb-twice-1", "twice", "default", "u1", [FakeContainer("ctr-t1", "app")], 0, 1000),
        FakePod("sb-twice-2", "twice", "default", "u2", [FakeContainer("ctr-t2", "app")], 0, 2000),
    ]


@dataclass
class FakeCri:
    """A running fake runtime: its service (to script) and its endpoint (to connect to)."""

    service: ScriptedRuntime
    endpoint: str
    socket: Path


def socket_dir(tmp_path: Path) -> Path:
    """``tmp_path``, unless a socket path there would exceed the 108-byte sun_path limit."""
    if len(str(tmp_path / "cri.sock")) < 100:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="kcp-"))


@contextlib.contextmanager
def running_fake_cri(tmp_path: Path, pods: list[FakePod] | None = None) -> Iterator[FakeCri]:
    """Serve a ScriptedRuntime on a unix socket under ``tmp_path`` for the duration."""
    directory = socket_dir(tmp_path)
    sock = directory / "cri.sock"
    service = ScriptedRuntime(default_pods() if pods is None else pods)
    server = start_runtime_server(service, sock)
    try:
        yield FakeCri(service, f"unix://{sock}", sock)
    finally:
        server.stop(0).wait()
        if directory != tmp_path:
            shutil.rmtree(directory, ignore_errors=True)
