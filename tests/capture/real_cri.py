"""Drive a real CRI runtime as the kubelet would: pull, run labelled pods, exec, restore, remove.

Uses the generic method paths of runtime.v1 with the messages of proto/cri/lifecycle.proto, so
the capture client's own interface stays the five calls in api.proto.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from kcheckpoint._proto.cri import api_pb2, lifecycle_pb2

HARNESS_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cri_harness.py"
#: the env.json of the harness's containerd (``cri_harness.py start`` prints it), when one runs
ENV_FILE = os.environ.get("KCHECKPOINT_TEST_CRI")
#: a shell that counts in a variable and writes it to /tmp/counter every 0.2 s (read_counter())
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done"
RUNTIME = "/runtime.v1.RuntimeService/"
IMAGES = "/runtime.v1.ImageService/"
CGROUP_PARENT = "/kcheckpoint-cri"


def call(
    channel: grpc.Channel,
    method: str,
    request: Any,
    response: type,
    timeout: float = 60,
    service: str = RUNTIME,
) -> Any:
    stub = channel.unary_unary(
        service + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    return stub(request, timeout=timeout)


@dataclass(frozen=True)
class Harness:
    """What ``scripts/cri_harness.py start`` wrote to env.json."""

    endpoint: str
    share: Path
    image: str
    dir: Path
    containerd_pid: int
    versions: Mapping[str, str]
    criu_variant: str
    cgroup_parent: str

    @classmethod
    def load(cls, env_file: str | os.PathLike[str]) -> Harness:
        env = json.loads(Path(env_file).read_text())
        return cls(
            endpoint=env["endpoint"],
            share=Path(env["share"]),
            image=env["image"],
            dir=Path(env["dir"]),
            containerd_pid=int(env["containerd_pid"]),
            versions=env["versions"],
            criu_variant=env["criu_variant"],
            cgroup_parent=env["cgroup_parent"],
        )

    def reload(self) -> Harness:
        return Harness.load(self.dir / "env.json")

    def pod(
        self,
        namespace: str,
        name: str,
        container: str,
        command: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> PodSpec:
        """A pod of the harness's image, below its cgroup parent."""
        return PodSpec(
            namespace, name, container, self.image, command, env or {}, self.cgroup_parent
        )


@contextlib.contextmanager
def harness_from_env(prefix: str = "kcp-cri-") -> Iterator[Harness]:
    """The harness KCHECKPOINT_TEST_CRI names, else one started (and stopped) for the duration."""
    if os.environ.get("KCHECKPOINT_TEST_CRI"):
        yield Harness.load(os.environ["KCHECKPOINT_TEST_CRI"])
        return
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    script = [sys.executable, str(HARNESS_SCRIPT)]
    try:
        done = subprocess.run(
            [*script, "start", str(directory)], check=True, capture_output=True, text=True
        )
        yield Harness.load(done.stdout.strip().split("=", 1)[1])
    finally:
        subprocess.run([*script, "stop", str(directory)], check=False)


def restart_containerd(harness_dir: Path) -> None:
    """Start the harness's containerd again: a no-op unless a test left it dead."""
    command = [sys.executable, str(HARNESS_SCRIPT), "restart-containerd", str(harness_dir)]
    subprocess.run(command, check=True)


def pull_image(endpoint: str, image: str) -> str:
    """PullImage over CRI, as the kubelet does before a pod starts."""
    with grpc.insecure_channel(endpoint) as channel:
        request = lifecycle_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image))
        response = call(channel, "PullImage", request, lifecycle_pb2.PullImageResponse, 120, IMAGES)
        return str(response.image_ref)


@dataclass
class PodSpec:
    """A pod with one container, labelled as the kubelet labels them."""

    namespace: str
    name: str
    container: str
    image: str
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cgroup_parent: str = CGROUP_PARENT

    @property
    def uid(self) -> str:
        return f"uid-{self.namespace}-{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return {
            "io.kubernetes.pod.name": self.name,
            "io.kubernetes.pod.namespace": self.namespace,
            "io.kubernetes.pod.uid": self.uid,
        }


@dataclass
class RunningPod:
    sandbox_id: str
    container_id: str
    namespace: str
    name: str
    container: str


#: host network (no CNI here), a pid namespace of the container's own (the kubelet's default)
NAMESPACES = lifecycle_pb2.NamespaceOption(
    network=lifecycle_pb2.NODE, pid=lifecycle_pb2.CONTAINER, ipc=lifecycle_pb2.POD
)


def _sandbox_config(spec: PodSpec, logs: Path) -> Any:
    log_dir = logs / f"{spec.namespace}_{spec.name}_{spec.uid}"
    log_dir.mkdir(parents=True, exist_ok=True)  # the kubelet creates it; restore needs it
    return lifecycle_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(
            name=spec.name, namespace=spec.namespace, uid=spec.uid, attempt=0
        ),
        log_directory=str(log_dir),
        labels=spec.labels,
        linux=lifecycle_pb2.LinuxPodSandboxConfig(
            cgroup_parent=spec.cgroup_parent,
            security_context=lifecycle_pb2.LinuxSandboxSecurityContext(
                namespace_options=NAMESPACES
            ),
        ),
    )


def run_pod(
    channel: grpc.Channel, spec: PodSpec, logs: Path, image: str | None = None
) -> RunningPod:
    """A sandbox and one running container. ``image``: what CreateContainer gets instead of the
    spec's image (a checkpoint archive's path or a checkpoint image: containerd restores)."""
    sandbox_config = _sandbox_config(spec, logs)
    sandbox = call(
        channel,
        "RunPodSandbox",
        lifecycle_pb2.RunPodSandboxRequest(config=sandbox_config),
        lifecycle_pb2.RunPodSandboxResponse,
    ).pod_sandbox_id
    config = lifecycle_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=spec.container),
        image=api_pb2.ImageSpec(image=image or spec.image),
        command=list(spec.command),
        envs=[lifecycle_pb2.KeyValue(key=k, value=v) for k, v in spec.env.items()],
        labels={**spec.labels, "io.kubernetes.container.name": spec.container},
        log_path=f"{spec.container}/0.log",
        linux=lifecycle_pb2.LinuxContainerConfig(
            security_context=lifecycle_pb2.LinuxContainerSecurityContext(
                namespace_options=NAMESPACES
            )
        ),
    )
    (Path(sandbox_config.log_directory) / spec.container).mkdir(exist_ok=True)
    try:
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
    except grpc.RpcError:
        with contextlib.suppress(grpc.RpcError):
            remove_pod(channel, sandbox)
        raise
    return RunningPod(sandbox, created, spec.namespace, spec.name, spec.container)


def container_status(channel: grpc.Channel, container_id: str) -> Any:
    return call(
        channel,
        "ContainerStatus",
        api_pb2.ContainerStatusRequest(container_id=container_id),
        api_pb2.ContainerStatusResponse,
    ).status


def container_state(channel: grpc.Channel, container_id: str) -> int:
    return int(container_status(channel, container_id).state)


def wait_state(channel: grpc.Channel, container_id: str, state: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while container_state(channel, container_id) != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"container {container_id} never reached state {state}")
        time.sleep(0.1)


def exec_sync(channel: grpc.Channel, container_id: str, *cmd: str) -> str:
    """Run a command in the container; its stdout (raises on a non-zero exit)."""
    response = call(
        channel,
        "ExecSync",
        lifecycle_pb2.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=20),
        lifecycle_pb2.ExecSyncResponse,
    )
    if response.exit_code:
        raise RuntimeError(f"{cmd} exited {response.exit_code}: {response.stderr!r}")
    return bytes(response.stdout).decode()


def read_counter(channel: grpc.Channel, container_id: str, path: str = "/tmp/counter") -> int:
    """A number the container rewrites in place (``echo $i > FILE``): read again while a
    read falls between the shell's truncation and its write."""
    for _ in range(50):
        text = exec_sync(channel, container_id, "cat", path).strip()
        if text:
            return int(text)
        time.sleep(0.02)
    raise RuntimeError(f"{path} stayed empty")


@dataclass
class Restored:
    """A counter (COUNTER) restored from a checkpoint: its value read twice, 1.5 s apart, and
    the container's status."""

    first: int
    later: int
    status: Any


def restore_counter(channel: grpc.Channel, spec: PodSpec, logs: Path, image: str) -> Restored:
    """Restore the checkpoint ``image`` (an archive's path or a checkpoint image) in a pod of
    ``spec``, read its counter, and remove the pod again."""
    restored = run_pod(channel, spec, logs, image=image)
    try:
        first = read_counter(channel, restored.container_id)
        time.sleep(1.5)
        later = read_counter(channel, restored.container_id)
        status = container_status(channel, restored.container_id)
    finally:
        remove_pod(channel, restored.sandbox_id)
    return Restored(first, later, status)


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


def remove_all(endpoint: str) -> None:
    """Stop and remove every pod (so no shim or container process stays behind)."""
    with grpc.insecure_channel(endpoint) as channel:
        sandboxes = call(
            channel,
            "ListPodSandbox",
            api_pb2.ListPodSandboxRequest(),
            api_pb2.ListPodSandboxResponse,
        ).items
        for sandbox in sandboxes:
            with contextlib.suppress(grpc.RpcError):
                remove_pod(channel, sandbox.id)


@contextlib.contextmanager
def pods(endpoint: str, logs: Path, *specs: PodSpec) -> Iterator[list[RunningPod]]:
    """Run pods for the duration, and always remove them."""
    with grpc.insecure_channel(endpoint) as channel:
        started: list[RunningPod] = []
        try:
            for spec in specs:
                started.append(run_pod(channel, spec, logs))
            yield started
        finally:
            for pod in started:
                with contextlib.suppress(grpc.RpcError):
                    remove_pod(channel, pod.sandbox_id)
