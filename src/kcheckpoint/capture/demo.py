"""A demo CRI runtime: a real gRPC server on a unix socket, in process, with pods kept in memory.

``kcheckpoint serve --demo`` runs one with the pod ``webapp`` in namespace ``demo`` (container
``webapp``); its CheckpointContainer writes what a real runtime writes, a plain ``.tar``
archive, decompressed from a bundled sample. It is a DEMO: it checkpoints nothing. The tests and
the benchmark use the same server with their own pods and hooks.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from kcheckpoint._proto.cri import api_pb2, api_pb2_grpc

from .runtime import CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID

#: The sample the demo copies; a zstd-compressed Podman export of a small web app. It is package
#: data, so that `serve --demo` works from a wheel (samples/webapp-t3.tar.zst links to it).
SAMPLE = Path(__file__).resolve().parent / "data" / "webapp-t3.tar.zst"

#: Writes the archive for a CheckpointContainer call: (container, location) -> None.
ArchiveWriter = Callable[["FakeContainer", str], None]


@dataclass
class FakeContainer:
    """A container of a fake pod."""

    id: str
    name: str
    state: int = api_pb2.CONTAINER_RUNNING
    created_at: int = field(default_factory=time.time_ns)


@dataclass
class FakePod:
    """A pod sandbox with its containers, labelled as the kubelet labels them."""

    id: str
    name: str
    namespace: str
    uid: str
    containers: list[FakeContainer]
    state: int = api_pb2.SANDBOX_READY
    created_at: int = field(default_factory=time.time_ns)

    def labels(self) -> dict[str, str]:
        return {POD_NAME: self.name, POD_NAMESPACE: self.namespace, POD_UID: self.uid}


def _matches(labels: dict[str, str], selector: Any) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class FakeRuntimeService(api_pb2_grpc.RuntimeServiceServicer):  # type: ignore[misc]
    """RuntimeService over in-memory pods; CheckpointContainer calls ``writer``.

    Lookups honour the filters (id, state, sandbox id, label selector) as a runtime does.
    """

    runtime_name = "kcheckpoint-demo"

    def __init__(self, pods: Iterable[FakePod], writer: ArchiveWriter) -> None:
        self.pods = list(pods)
        self.writer = writer
        self.checkpoint_requests: list[api_pb2.CheckpointContainerRequest] = []
        self._lock = threading.Lock()

    def _containers(self) -> Iterable[tuple[FakePod, FakeContainer]]:
        for pod in self.pods:
            for ctr in pod.containers:
                yield pod, ctr

    def _container_message(self, pod: FakePod, ctr: FakeContainer) -> api_pb2.Container:
        return api_pb2.Container(
            id=ctr.id,
            pod_sandbox_id=pod.id,
            metadata=api_pb2.ContainerMetadata(name=ctr.name),
            image=api_pb2.ImageSpec(image="localhost/kcheckpoint/demo:1"),
            state=ctr.state,  # type: ignore[arg-type]
            created_at=ctr.created_at,
            labels={**pod.labels(), CONTAINER_NAME: ctr.name},
        )

    def Version(self, request: Any, context: Any) -> api_pb2.VersionResponse:
        return api_pb2.VersionResponse(
            version="0.1.0",
            runtime_name=self.runtime_name,
            runtime_version="0.1.0",
            runtime_api_version="v1",
        )

    def ListPodSandbox(self, request: Any, context: Any) -> api_pb2.ListPodSandboxResponse:
        flt = request.filter
        items = []
        for pod in self.pods:
            if flt.id and pod.id != flt.id:
                continue
            if flt.HasField("state") and pod.state != flt.state.state:
                continue
            if not _matches(pod.labels(), flt.label_selector):
                continue
            items.append(
                api_pb2.PodSandbox(
                    id=pod.id,
                    metadata=api_pb2.PodSandboxMetadata(
                        name=pod.name, uid=pod.uid, namespace=pod.namespace
                    ),
                    state=pod.state,  # type: ignore[arg-type]
                    created_at=pod.created_at,
                    labels=pod.labels(),
                )
            )
        return api_pb2.ListPodSandboxResponse(items=items)

    def ListContainers(self, request: Any, context: Any) -> api_pb2.ListContainersResponse:
        flt = request.filter
        found = []
        for pod, ctr in self._containers():
            message = self._container_message(pod, ctr)
            if flt.id and ctr.id != flt.id:
                continue
            if flt.pod_sandbox_id and pod.id != flt.pod_sandbox_id:
                continue
            if flt.HasField("state") and ctr.state != flt.state.state:
                continue
            if not _matches(dict(message.labels), flt.label_selector):
                continue
            found.append(message)
        return api_pb2.ListContainersResponse(containers=found)

    def ContainerStatus(self, request: Any, context: Any) -> api_pb2.ContainerStatusResponse:
        for pod, ctr in self._containers():
            if ctr.id == request.container_id:
                message = self._container_message(pod, ctr)
                status = api_pb2.ContainerStatus(
                    id=ctr.id,
                    metadata=message.metadata,
                    state=ctr.state,  # type: ignore[arg-type]
                    created_at=ctr.created_at,
                    labels=message.labels,
                )
                return api_pb2.ContainerStatusResponse(status=status)
        context.abort(grpc.StatusCode.NOT_FOUND, f'container "{request.container_id}" not found')
        raise AssertionError("unreachable")

    def CheckpointContainer(
        self, request: Any, context: Any
    ) -> api_pb2.CheckpointContainerResponse:
        with self._lock:
            self.checkpoint_requests.append(request)
        for _pod, ctr in self._containers():
            if ctr.id == request.container_id:
                if ctr.state != api_pb2.CONTAINER_RUNNING:
                    context.abort(grpc.StatusCode.UNKNOWN, f"container {ctr.id} is not running")
                self.writer(ctr, request.location)
                return api_pb2.CheckpointContainerResponse()
        context.abort(
            grpc.StatusCode.NOT_FOUND, f'could not find container "{request.container_id}"'
        )
        raise AssertionError("unreachable")


def open_like_runtime(location: str) -> int:
    """Open the output file as CRI-O and containerd do: O_RDWR|O_CREAT, mode 0600, no O_TRUNC."""
    return os.open(location, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def bytes_writer(payload: bytes) -> ArchiveWriter:
    """A writer that writes the same bytes for every checkpoint (tests, benchmark)."""

    def write(_ctr: FakeContainer, location: str) -> None:
        fd = open_like_runtime(location)
        with os.fdopen(fd, "wb") as out:
            out.write(payload)

    return write


def sample_writer(sample: Path = SAMPLE) -> ArchiveWriter:
    """A writer that decompresses ``sample`` into the location: a plain tar, as runtimes write."""
    from kcheckpoint.inspect.reader.source import open_input

    def write(_ctr: FakeContainer, location: str) -> None:
        fd = open_like_runtime(location)
        with os.fdopen(fd, "wb") as out, open_input(sample, hash_input=False) as opened:
            shutil.copyfileobj(opened.stream, out, 1 << 20)

    return write


def demo_pods() -> list[FakePod]:
    """The demo's pods: ``demo/webapp`` with container ``webapp``."""
    return [
        FakePod(
            id="demo-sandbox-webapp",
            name="webapp",
            namespace="demo",
            uid="00000000-0000-4000-8000-00000000d3e0",
            containers=[FakeContainer(id="demo-container-webapp", name="webapp")],
        )
    ]


def start_runtime_server(service: FakeRuntimeService, socket_path: Path) -> grpc.Server:
    """Serve ``service`` on a unix socket (0600) in this process; stop it with ``.stop(0)``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(service, server)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    os.chmod(socket_path, 0o600)
    return server
