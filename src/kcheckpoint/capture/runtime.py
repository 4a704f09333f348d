"""The CRI client: find a container the way the kubelet does, and checkpoint it over gRPC.

Every gRPC failure goes through :func:`runtime_error` once, which turns a status code into one
of the ``CaptureError`` classes with the kubelet's wording (``rpc error: code = <Code> desc =
<details>``) and keeps the gRPC exception as ``__cause__``.

References:
    k8s.io/cri-api pkg/apis/runtime/v1/api.proto (RuntimeService);
    kubernetes pkg/kubelet/kuberuntime/labels.go (the io.kubernetes.* labels);
    crictl's --runtime-endpoint and its default endpoint list.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from kcheckpoint._proto.cri import api_pb2, api_pb2_grpc
from kcheckpoint.errors import (
    CaptureError,
    CheckpointFailed,
    CheckpointTimeout,
    CheckpointUnsupported,
    ContainerNotFound,
    ContainerNotRunning,
    PodNotFound,
    RuntimeUnavailable,
)

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"

#: Probed in this order when no --runtime-endpoint is given (crictl's list, minus dockershim).
DEFAULT_ENDPOINTS = (
    "unix:///run/containerd/containerd.sock",
    "unix:///run/crio/crio.sock",
    "unix:///var/run/crio/crio.sock",
    "unix:///var/run/cri-dockerd.sock",
)

#: The kubelet's CRI client: 16 MiB receive limit, authority "localhost".
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.default_authority", "localhost"),
)

#: gRPC codes as Go spells them, for messages that read like the kubelet's.
GO_CODE_NAMES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

#: The one error map. Codes not listed become CheckpointFailed (which keeps the code).
ERROR_CLASSES: dict[grpc.StatusCode, type[CaptureError]] = {
    grpc.StatusCode.NOT_FOUND: ContainerNotFound,
    grpc.StatusCode.FAILED_PRECONDITION: ContainerNotRunning,
    grpc.StatusCode.UNIMPLEMENTED: CheckpointUnsupported,
    grpc.StatusCode.DEADLINE_EXCEEDED: CheckpointTimeout,
    grpc.StatusCode.UNAVAILABLE: RuntimeUnavailable,
}


def runtime_error(exc: grpc.RpcError) -> CaptureError:
    """Translate a failed gRPC call into our error, worded as the kubelet words it."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    go_name = GO_CODE_NAMES.get(code, str(code))
    message = f"rpc error: code = {go_name} desc = {details or ''}"
    cls = ERROR_CLASSES.get(code, CheckpointFailed)
    error: CaptureError
    if cls is CheckpointFailed:
        error = CheckpointFailed(message, code=go_name)
    elif cls is RuntimeUnavailable:
        error = RuntimeUnavailable(
            message, hint="is the CRI runtime running? see --runtime-endpoint"
        )
    else:
        error = cls(message)
    error.__cause__ = exc
    return error


def from_runtime(exc: BaseException) -> bool:
    """True when the error is the runtime's own answer (a translated gRPC failure)."""
    return isinstance(exc.__cause__, grpc.RpcError)


def resolve_endpoint(endpoint: str | None, candidates: Sequence[str] = DEFAULT_ENDPOINTS) -> str:
    """The endpoint to use: the one given, else the first default socket that exists."""
    if endpoint:
        if not endpoint.startswith("unix://"):
            raise RuntimeUnavailable(
                f"unsupported runtime endpoint {endpoint!r}",
                hint="use unix:///path/to/cri.sock, as crictl does",
            )
        return endpoint
    for candidate in candidates:
        if os.path.exists(candidate.removeprefix("unix://")):
            return candidate
    raise RuntimeUnavailable(
        "no CRI runtime socket found (tried " + ", ".join(candidates) + ")",
        hint="pass --runtime-endpoint unix:///path/to/cri.sock",
    )


@dataclass(frozen=True)
class RuntimeVersion:
    """What the runtime says about itself."""

    runtime_name: str
    runtime_version: str
    runtime_api_version: str


@dataclass(frozen=True)
class ContainerRef:
    """A running container, found by namespace, pod and container name."""

    id: str
    pod_sandbox_id: str
    namespace: str
    pod: str
    name: str


class CriClient:
    """An asynchronous client of the CRI RuntimeService on a unix socket.

    Create it inside the event loop that uses it (the app's lifespan does).
    """

    def __init__(self, endpoint: str, *, request_timeout: float = 120.0) -> None:
        self.endpoint = endpoint
        self.request_timeout = request_timeout
        self._channel = grpc.aio.insecure_channel(endpoint, options=list(CHANNEL_OPTIONS))
        self._stub = api_pb2_grpc.RuntimeServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return await getattr(self._stub, method)(
                request, timeout=timeout or self.request_timeout
            )
        except grpc.RpcError as exc:
            raise runtime_error(exc) from exc

    async def version(self, timeout: float | None = None) -> RuntimeVersion:
        response = await self._call("Version", api_pb2.VersionRequest(version="0.1.0"), timeout)
        return RuntimeVersion(
            response.runtime_name, response.runtime_version, response.runtime_api_version
        )

    async def list_sandboxes(
        self, labels: dict[str, str], *, ready_only: bool
    ) -> list[api_pb2.PodSandbox]:
        flt = api_pb2.PodSandboxFilter(label_selector=labels)
        if ready_only:
            flt.state.state = api_pb2.SANDBOX_READY
        response = await self._call("ListPodSandbox", api_pb2.ListPodSandboxRequest(filter=flt))
        return list(response.items)

    async def list_containers(
        self, labels: dict[str, str], *, sandbox_id: str = "", running_only: bool
    ) -> list[api_pb2.Container]:
        flt = api_pb2.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=labels)
        if running_only:
            flt.state.state = api_pb2.CONTAINER_RUNNING
        response = await self._call("ListContainers", api_pb2.ListContainersRequest(filter=flt))
        return list(response.containers)

    async def container_status(self, container_id: str) -> api_pb2.ContainerStatus:
        request = api_pb2.ContainerStatusRequest(container_id=container_id)
        response = await self._call("ContainerStatus", request)
        status: api_pb2.ContainerStatus = response.status
        return status

    async def find_container(self, namespace: str, pod: str, container: str) -> ContainerRef:
        """The running container, chosen as the kubelet chooses it.

        The newest ready sandbox labelled with the pod's namespace and name, then its running
        container labelled with the container name. Without the kubelet's pod manager, its 404s
        are approximated from the runtime: no sandbox at all means PodNotFound, no container of
        that name in any state ContainerNotFound, and one that is not running
        ContainerNotRunning (the kubelet's 500 ``container <name> not found``).
        """
        pod_labels = {POD_NAMESPACE: namespace, POD_NAME: pod}
        # Both lists at once (one round trip of latency): the ready sandboxes of the pod, and
        # the running containers of that name carrying the pod's labels, as the kubelet sets
        # them on every container. The join keeps the kubelet's choice: the newest ready
        # sandbox, then its newest running container.
        sandboxes, running = await asyncio.gather(
            self.list_sandboxes(pod_labels, ready_only=True),
            self.list_containers({**pod_labels, CONTAINER_NAME: container}, running_only=True),
        )
        if sandboxes:
            newest = max(sandboxes, key=lambda s: s.created_at)
            mine = [c for c in running if c.pod_sandbox_id == newest.id]
            if mine:
                chosen = max(mine, key=lambda c: c.created_at)
                return ContainerRef(chosen.id, newest.id, namespace, pod, container)
        if not sandboxes and not await self.list_sandboxes(pod_labels, ready_only=False):
            raise PodNotFound("pod does not exist")
        anywhere = await self.list_containers(
            {**pod_labels, CONTAINER_NAME: container}, running_only=False
        )
        if not anywhere:
            raise ContainerNotFound(f"container {container} does not exist")
        raise ContainerNotRunning(f"container {container} not found")

    async def checkpoint(
        self, container_id: str, location: str, *, timeout_field: int, deadline: float
    ) -> None:
        """CheckpointContainer: the runtime writes the archive to ``location``."""
        request = api_pb2.CheckpointContainerRequest(
            container_id=container_id, location=location, timeout=timeout_field
        )
        await self._call("CheckpointContainer", request, timeout=deadline)
