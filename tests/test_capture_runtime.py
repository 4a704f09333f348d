"""The CRI client against a real gRPC server on a unix socket: lookup, error map, endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from kcheckpoint import errors
from kcheckpoint.capture.runtime import (
    ERROR_CLASSES,
    GO_CODE_NAMES,
    ContainerRef,
    CriClient,
    from_runtime,
    resolve_endpoint,
)

from .capture.fake_cri import FakeCri, running_fake_cri

T = TypeVar("T")


def run(endpoint: str, call: Callable[[CriClient], Awaitable[T]], timeout: float = 5) -> T:
    async def main() -> T:
        client = CriClient(endpoint, request_timeout=timeout)
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.fixture
def cri(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_fake_cri(tmp_path) as fake:
        yield fake


def test_version(cri: FakeCri) -> None:
    version = run(cri.endpoint, lambda c: c.version())
    assert version.runtime_name == "kcheckpoint-demo"
    assert version.runtime_api_version == "v1"


def test_finds_labelled_container_and_not_the_decoy(cri: FakeCri) -> None:
    ref = run(cri.endpoint, lambda c: c.find_container("default", "web", "app"))
    assert ref == ContainerRef("ctr-app", "sb-web", "default", "web", "app")
    decoy = run(cri.endpoint, lambda c: c.find_container("other", "web", "app"))
    assert decoy.id == "ctr-decoy"


def test_prefers_the_newest_ready_sandbox(cri: FakeCri) -> None:
    ref = run(cri.endpoint, lambda c: c.find_container("default", "twice", "app"))
    assert (ref.pod_sandbox_id, ref.id) == ("sb-twice-2", "ctr-t2")


@pytest.mark.parametrize(
    ("namespace", "pod", "container", "error", "message"),
    [
        ("default", "nope", "app", errors.PodNotFound, "pod does not exist"),
        ("nope", "web", "app", errors.PodNotFound, "pod does not exist"),
        ("default", "web", "nope", errors.ContainerNotFound, "container nope does not exist"),
        ("default", "web", "sidecar", errors.ContainerNotRunning, "container sidecar not found"),
        ("default", "old", "app", errors.ContainerNotRunning, "container app not found"),
        ("default", "old", "nope", errors.ContainerNotFound, "container nope does not exist"),
    ],
)
def test_lookup_misses_follow_the_kubelet(
    cri: FakeCri, namespace: str, pod: str, container: str, error: type, message: str
) -> None:
    with pytest.raises(error) as info:
        run(cri.endpoint, lambda c: c.find_container(namespace, pod, container))
    assert info.value.message == message
    assert not from_runtime(info.value)


def test_checkpoint_sends_id_location_and_timeout(cri: FakeCri, tmp_path: Path) -> None:
    out = tmp_path / "a.tar"
    run(
        cri.endpoint,
        lambda c: c.checkpoint("ctr-app", str(out), timeout_field=120, deadline=5),
    )
    (request,) = cri.service.checkpoint_requests
    assert (request.container_id, request.location, request.timeout) == ("ctr-app", str(out), 120)
    assert out.stat().st_mode & 0o777 == 0o600


def test_container_status(cri: FakeCri) -> None:
    status = run(cri.endpoint, lambda c: c.container_status("ctr-app"))
    assert status.metadata.name == "app"
    with pytest.raises(errors.ContainerNotFound, match="code = NotFound"):
        run(cri.endpoint, lambda c: c.container_status("missing"))


EXPECTED = {
    grpc.StatusCode.NOT_FOUND: errors.ContainerNotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.ContainerNotRunning,
    grpc.StatusCode.UNIMPLEMENTED: errors.CheckpointUnsupported,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.CheckpointTimeout,
    grpc.StatusCode.UNAVAILABLE: errors.RuntimeUnavailable,
}


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
def test_every_grpc_status_code_maps_once(cri: FakeCri, code: grpc.StatusCode) -> None:
    cri.service.fail["CheckpointContainer"] = (code, "the runtime said no")
    with pytest.raises(errors.CaptureError) as info:
        run(cri.endpoint, lambda c: c.checkpoint("ctr-app", "/x", timeout_field=1, deadline=5))
    exc = info.value
    assert type(exc) is EXPECTED.get(code, errors.CheckpointFailed)
    assert exc.message == f"rpc error: code = {GO_CODE_NAMES[code]} desc = the runtime said no"
    assert isinstance(exc.__cause__, grpc.RpcError)
    assert from_runtime(exc)
    if isinstance(exc, errors.CheckpointFailed):
        assert exc.code == GO_CODE_NAMES[code]


def test_error_map_covers_only_real_codes() -> None:
    assert set(GO_CODE_NAMES) == set(grpc.StatusCode)
    assert set(ERROR_CLASSES) <= set(grpc.StatusCode)


def test_real_deadline_becomes_checkpoint_timeout(cri: FakeCri, tmp_path: Path) -> None:
    cri.service.delay = 1.0
    with pytest.raises(errors.CheckpointTimeout, match="code = DeadlineExceeded"):
        run(
            cri.endpoint,
            lambda c: c.checkpoint("ctr-app", str(tmp_path / "x"), timeout_field=1, deadline=0.2),
        )


def test_unknown_method_on_a_server_without_it(tmp_path: Path) -> None:
    # a gRPC server that serves nothing: every CRI call is UNIMPLEMENTED, as on containerd 1.6
    from concurrent import futures

    from .capture.fake_cri import socket_dir

    sock = socket_dir(tmp_path) / "empty.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    try:
        with pytest.raises(errors.CheckpointUnsupported, match="code = Unimplemented"):
            run(f"unix://{sock}", lambda c: c.checkpoint("x", "/x", timeout_field=1, deadline=5))
    finally:
        server.stop(0)


def test_runtime_down_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.RuntimeUnavailable, match="code = Unavailable"):
        run(f"unix://{tmp_path}/none.sock", lambda c: c.version(), timeout=1)


def test_resolve_endpoint(tmp_path: Path) -> None:
    assert resolve_endpoint("unix:///x.sock") == "unix:///x.sock"
    with pytest.raises(errors.RuntimeUnavailable, match="unsupported"):
        resolve_endpoint("tcp://localhost:1")
    sock = tmp_path / "crio.sock"
    sock.touch()
    candidates = (f"unix://{tmp_path}/containerd.sock", f"unix://{sock}")
    assert resolve_endpoint(None, candidates) == f"unix://{sock}"
    sock.unlink()
    with pytest.raises(errors.RuntimeUnavailable, match="no CRI runtime socket"):
        resolve_endpoint(None, candidates)
