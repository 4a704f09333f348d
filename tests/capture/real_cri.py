"""Drive a real CRI runtime as the kubelet would: run labelled pods, then remove them.

Uses the generic method paths of runtime.v1 with the messages of proto/cri/lifecycle.proto.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from kcheckpoint._proto.cri import api_pb2, lifecycle_pb2

SERVICE = "/runtime.v1.RuntimeService/"
IMAGE = "localhost/kcheckpoint-test/busybox:1"
CGROUP_PARENT = "/kcheckpoint-test"


def call(
    channel: grpc.Channel, method: str, request: Any, response: type, timeout: float = 60
) -> Any:
    stub = channel.unary_unary(
        SERVICE + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    return stub(request, timeout=timeout)


@dataclass
class RunningPod:
    sandbox_id: str
    container_id: str
    namespace: str
    name: str
    container: str


def run_pod(
    channel: grpc.Channel, namespace: str, name: str, container: str, logs: Path
) -> RunningPod:
    """A sandbox and one running container, with the kubelet's labels."""
    uid = f"uid-{namespace}-{name}"
    labels = {
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.uid": uid,
    }
    options = lifecycle_pb2.NamespaceOption(
        network=lifecycle_pb2.NODE, pid=lifecycle_pb2.CONTAINER, ipc=lifecycle_pb2.POD
    )
    log_dir = logs / f"{namespace}_{name}"
    log_dir.mkdir(parents=True, exist_ok=True)
    sandbox_config = lifecycle_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=0),
        log_directory=str(log_dir),
        labels=labels,
        linux=lifecycle_pb2.LinuxPodSandboxConfig(
            cgroup_parent=CGROUP_PARENT,
            security_context=lifecycle_pb2.LinuxSandboxSecurityContext(namespace_options=options),
        ),
    )
    sandbox = call(
        channel,
        "RunPodSandbox",
        lifecycle_pb2.RunPodSandboxRequest(config=sandbox_config),
        lifecycle_pb2.RunPodSandboxResponse,
    ).pod_sandbox_id
    config = lifecycle_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=container),
        image=api_pb2.ImageSpec(image=IMAGE),
        labels={**labels, "io.kubernetes.container.name": container},
        log_path=f"{container}.log",
        linux=lifecycle_pb2.LinuxContainerConfig(
            security_context=lifecycle_pb2.LinuxContainerSecurityContext(namespace_options=options)
        ),
    )
    created = call(
        channel,
        "CreateContainer",
        lifecycle_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox, config=config, sandbox_config=sandbox_config
        ),
        lifecycle_pb2.CreateContainerResponse,
    ).container_id
    call(
        channel,
        "StartContainer",
        lifecycle_pb2.StartContainerRequest(container_id=created),
        lifecycle_pb2.StartContainerResponse,
    )
    return RunningPod(sandbox, created, namespace, name, container)


def remove_pod(channel: grpc.Channel, sandbox_id: str) -> None:
    containers = call(
        channel,
        "ListContainers",
        api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(pod_sandbox_id=sandbox_id)),
        api_pb2.ListContainersResponse,
    ).containers
    for ctr in containers:
        with contextlib.suppress(grpc.RpcError):
            call(
                channel,
                "StopContainer",
                lifecycle_pb2.StopContainerRequest(container_id=ctr.id, timeout=2),
                lifecycle_pb2.StopContainerResponse,
            )
    call(
        channel,
        "StopPodSandbox",
        lifecycle_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
        lifecycle_pb2.StopPodSandboxResponse,
    )
    call(
        channel,
        "RemovePodSandbox",
        lifecycle_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
        lifecycle_pb2.RemovePodSandboxResponse,
    )


def remove_all_pods(channel: grpc.Channel) -> None:
    sandboxes = call(
        channel, "ListPodSandbox", api_pb2.ListPodSandboxRequest(), api_pb2.ListPodSandboxResponse
    ).items
    for sandbox in sandboxes:
        remove_pod(channel, sandbox.id)


@contextlib.contextmanager
def pods(endpoint: str, logs: Path, *specs: tuple[str, str, str]) -> Iterator[list[RunningPod]]:
    """Run pods (namespace, name, container) for the duration, and always remove them."""
    with grpc.insecure_channel(endpoint) as channel:
        started: list[RunningPod] = []
        try:
            for namespace, name, container in specs:
                started.append(run_pod(channel, namespace, name, container, logs))
            yield started
        finally:
            for pod in started:
                with contextlib.suppress(grpc.RpcError):
                    remove_pod(channel, pod.sandbox_id)
