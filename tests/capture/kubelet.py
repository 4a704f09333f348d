"""Run a DaemonSet's pod on a real CRI runtime as the kubelet would, for deploy/daemonset.yaml.

``render`` puts a node's values (image, host paths, port) into the manifest's text, where the
manifest names the defaults. ``pod_configs`` translates the rendered pod template into the CRI
sandbox and container configs the kubelet sends: args, env, volumes as host-path mounts (a
Secret or ConfigMap becomes a directory of files with its mode, an emptyDir a directory) and the
security contexts. What the test ran is what the manifest says, field by field.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kcheckpoint._proto.cri import api_pb2, lifecycle_pb2

#: the values deploy/daemonset.yaml holds, which a node's values replace
DEFAULTS = {
    "image": "kcheckpoint:0.1.0",
    "root_dir": "/var/lib/kubelet",
    "socket": "/run/containerd/containerd.sock",
    "audit_dir": "/var/log/kcheckpoint",
    "port": "10270",
}


@dataclass(frozen=True)
class NodeValues:
    """Where things are on the test's node."""

    image: str
    root_dir: Path
    socket: Path
    audit_dir: Path
    port: int

    def replacements(self) -> dict[str, str]:
        return {
            DEFAULTS["image"]: self.image,
            DEFAULTS["root_dir"]: str(self.root_dir),
            DEFAULTS["socket"]: str(self.socket),
            DEFAULTS["audit_dir"]: str(self.audit_dir),
            DEFAULTS["port"]: str(self.port),
        }


def render(text: str, values: NodeValues) -> list[dict[str, Any]]:
    """The manifest's documents with the node's values in place of the defaults."""
    for default, value in values.replacements().items():
        if default not in text:
            raise ValueError(f"the manifest no longer names {default!r}")
        text = text.replace(default, value)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def daemonset(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return found


@dataclass
class PodConfigs:
    sandbox: Any  # lifecycle_pb2.PodSandboxConfig
    container: Any  # lifecycle_pb2.ContainerConfig
    #: volume name -> the host directory or file mounted for it
    volume_paths: dict[str, Path]


def _seccomp(context: Mapping[str, Any]) -> Any:
    profile = context.get("seccompProfile")
    if profile is None:
        return None
    kinds = lifecycle_pb2.SecurityProfile.ProfileType
    return lifecycle_pb2.SecurityProfile(profile_type=kinds.Value(profile["type"]))


def _int64(value: int | None) -> Any:
    return None if value is None else lifecycle_pb2.Int64Value(value=value)


def _materialise(
    volume: Mapping[str, Any],
    pod_dir: Path,
    secrets: Mapping[str, Mapping[str, bytes]],
    config_maps: Mapping[str, Mapping[str, bytes]],
) -> Path:
    """The host path the kubelet would mount for a volume, made ready as it would make it."""
    name = volume["name"]
    if "hostPath" in volume:
        host = Path(volume["hostPath"]["path"])
        kind = volume["hostPath"].get("type", "")
        if kind == "DirectoryOrCreate":
            host.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif kind == "Socket" and not stat.S_ISSOCK(os.stat(host).st_mode):
            raise ValueError(f"hostPath {host} is not a socket")
        return host
    if "secret" in volume or "configMap" in volume:
        source = volume.get("secret") or volume["configMap"]
        data = secrets[source["secretName"]] if "secret" in volume else config_maps[source["name"]]
        directory = pod_dir / "volumes" / name
        directory.mkdir(parents=True)
        for key, value in data.items():
            path = directory / key
            path.write_bytes(value)
            path.chmod(source.get("defaultMode", 0o644))
        return directory
    if "emptyDir" in volume:
        directory = pod_dir / "volumes" / name
        directory.mkdir(parents=True, mode=0o777)
        directory.chmod(0o777)
        return directory
    raise ValueError(f"volume {name}: a kind this translation does not know")


def pod_configs(
    ds: Mapping[str, Any],
    *,
    image_ref: str,
    uid: str,
    pod_dir: Path,
    cgroup_parent: str,
    secrets: Mapping[str, Mapping[str, bytes]],
    config_maps: Mapping[str, Mapping[str, bytes]],
) -> PodConfigs:
    """The CRI configs for the DaemonSet's one container on a node.

    One difference from a cluster: the sandbox shares the node's network (there is no CNI in
    the harness), so the container's port is the node's port, as with ``hostPort``.
    """
    template = ds["spec"]["template"]
    spec = template["spec"]
    (container,) = spec["containers"]
    pod_ctx = spec.get("securityContext", {})
    ctr_ctx = container.get("securityContext", {})
    name, namespace = f"{ds['metadata']['name']}-node", ds["metadata"]["namespace"]
    labels = {
        **template["metadata"].get("labels", {}),
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.uid": uid,
    }
    namespaces = lifecycle_pb2.NamespaceOption(
        network=lifecycle_pb2.NODE, pid=lifecycle_pb2.CONTAINER, ipc=lifecycle_pb2.POD
    )
    log_dir = pod_dir / "logs"
    (log_dir / container["name"]).mkdir(parents=True)
    sandbox = lifecycle_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=0),
        log_directory=str(log_dir),
        labels=labels,
        linux=lifecycle_pb2.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent,
            security_context=lifecycle_pb2.LinuxSandboxSecurityContext(
                namespace_options=namespaces,
                run_as_user=_int64(pod_ctx.get("runAsUser")),
                run_as_group=_int64(pod_ctx.get("runAsGroup")),
                seccomp=_seccomp(pod_ctx),
            ),
        ),
    )
    volumes = {v["name"]: v for v in spec["volumes"]}
    volume_paths: dict[str, Path] = {}
    mounts = []
    for mount in container["volumeMounts"]:
        host = _materialise(volumes[mount["name"]], pod_dir, secrets, config_maps)
        volume_paths[mount["name"]] = host
        mounts.append(
            lifecycle_pb2.Mount(
                container_path=mount["mountPath"],
                host_path=str(host),
                readonly=bool(mount.get("readOnly", False)),
            )
        )
    capabilities = ctr_ctx.get("capabilities", {})
    security = lifecycle_pb2.LinuxContainerSecurityContext(
        capabilities=lifecycle_pb2.Capability(
            add_capabilities=capabilities.get("add", []),
            drop_capabilities=capabilities.get("drop", []),
        ),
        privileged=bool(ctr_ctx.get("privileged", False)),
        namespace_options=namespaces,
        run_as_user=_int64(ctr_ctx.get("runAsUser", pod_ctx.get("runAsUser"))),
        run_as_group=_int64(ctr_ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))),
        readonly_rootfs=bool(ctr_ctx.get("readOnlyRootFilesystem", False)),
        no_new_privs=ctr_ctx.get("allowPrivilegeEscalation") is False,
        seccomp=_seccomp(ctr_ctx) or _seccomp(pod_ctx),
    )
    config = lifecycle_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=container["name"]),
        image=api_pb2.ImageSpec(image=image_ref),
        command=container.get("command", []),
        args=container.get("args", []),
        envs=[lifecycle_pb2.KeyValue(key=e["name"], value=e["value"]) for e in container["env"]],
        mounts=mounts,
        labels={**labels, "io.kubernetes.container.name": container["name"]},
        log_path=f"{container['name']}/0.log",
        linux=lifecycle_pb2.LinuxContainerConfig(security_context=security),
    )
    return PodConfigs(sandbox, config, volume_paths)
