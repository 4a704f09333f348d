"""Tell Podman, CRI-O and containerd archives apart, and read who was checkpointed.

Identity comes from ``spec.dump`` annotations and ``config.dump``, never from the file name.

References:
    reference/kubelet-cri.md §3.3-3.5 (config.dump schema, annotations, member fingerprints);
    reference/checkpointctl.md §1.1 and §7.4 (engine rule, container name per engine).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kcheckpoint.inspect.model import Container, FileEntry, Problem, RootfsDiff

PODMAN = "podman"
CRIO = "cri-o"
CONTAINERD = "containerd"
UNKNOWN = "unknown"

_ZERO_TIME = "0001-01-01T00:00:00Z"

#: CRI's ContainerState, as containerd writes it (an integer) into status.dump.
CRI_STATES = {0: "created", 1: "running", 2: "exited", 3: "unknown"}


#: The deepest nesting accepted in a metadata document. An OCI spec is about 6 levels deep; a
#: document nested thousands of levels deep is hostile, and is refused before anything walks it.
MAX_JSON_DEPTH = 64


def load_json(data: bytes | str) -> Any:
    """Parse a metadata JSON document; ValueError when it is not JSON or nested too deeply."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return value


@dataclass
class Metadata:
    """The parsed JSON metadata members of one archive."""

    config: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    #: containerd's status.dump: the CRI ContainerStatus at checkpoint time.
    status: dict[str, Any] = field(default_factory=dict)
    network_status: Any = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def annotations(self) -> dict[str, str]:
        value = self.spec.get("annotations")
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(v, str)}

    @property
    def env(self) -> list[str]:
        """``KEY=VALUE`` strings of the container's process, from spec.dump."""
        process = self.spec.get("process")
        env = process.get("env") if isinstance(process, dict) else None
        return [e for e in env if isinstance(e, str)] if isinstance(env, list) else []

    @property
    def mount_destinations(self) -> set[str]:
        """The spec's mount destinations, without their leading slash."""
        mounts = self.spec.get("mounts")
        if not isinstance(mounts, list):
            return set()
        found = [m.get("destination") for m in mounts if isinstance(m, dict)]
        return {d.strip("/") for d in found if isinstance(d, str) and d.strip("/")}


def parse_metadata(blobs: Mapping[str, bytes]) -> Metadata:
    """Parse config.dump, spec.dump, status.dump and network.status; a damaged one becomes a
    Problem."""
    meta = Metadata()
    for name, attr in (("config.dump", "config"), ("spec.dump", "spec"), ("status.dump", "status")):
        if name not in blobs:
            continue
        value = _load_json(name, blobs[name], meta.problems)
        if isinstance(value, dict):
            setattr(meta, attr, value)
        elif value is not None:
            meta.problems.append(Problem(name, "bad-metadata", f"{name} is not a JSON object"))
    if "network.status" in blobs:
        meta.network_status = _load_json("network.status", blobs["network.status"], meta.problems)
    return meta


def _load_json(name: str, data: bytes, problems: list[Problem]) -> Any:
    if not data.strip():
        problems.append(Problem(name, "bad-metadata", f"{name} is empty"))
        return None
    try:
        return load_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, "bad-metadata", f"{name} is not valid JSON ({exc})"))
        return None


def detect_engine(annotations: Mapping[str, str], member_names: Collection[str]) -> str:
    """Podman, CRI-O or containerd, by the spec annotations first, then by member fingerprints."""
    manager = annotations.get("io.container.manager")
    if manager == "libpod":
        return PODMAN
    if manager == "cri-o":
        return CRIO
    if any(k.startswith("io.kubernetes.cri.") for k in annotations):
        return CONTAINERD
    if any(k.startswith("io.kubernetes.cri-o.") for k in annotations):
        return CRIO
    if "bind.mounts" in member_names or "io.kubernetes.cri-o.LogPath" in member_names:
        return CRIO
    if "network.status" in member_names or "ctr.log" in member_names:
        return PODMAN
    if "status" in member_names or "status.dump" in member_names:
        return CONTAINERD
    return UNKNOWN


def container_of(
    meta: Metadata, member_names: Collection[str], *, dumped: str | None = None
) -> Container:
    """Build the Container record of an archive (``dumped``: see Container.dumped)."""
    ann = meta.annotations
    engine = detect_engine(ann, member_names)
    config = meta.config
    if engine == CRIO:
        name = ann.get("io.kubernetes.container.name") or _crio_metadata_name(ann)
        pod = ann.get("io.kubernetes.pod.name")
        namespace = ann.get("io.kubernetes.pod.namespace")
    elif engine == CONTAINERD:
        # status.dump first: in a checkpoint of a restored container, containerd 2.1 writes
        # the container name "containerd" into spec.dump's annotations, but not here.
        name = _status_name(meta.status) or ann.get("io.kubernetes.cri.container-name")
        pod = ann.get("io.kubernetes.cri.sandbox-name")
        namespace = ann.get("io.kubernetes.cri.sandbox-namespace")
    else:
        name, pod, namespace = None, None, None
    if not name:
        name = _str(config.get("name"))
    return Container(
        engine=engine,
        name=name,
        id=_str(config.get("id")),
        image=_str(config.get("rootfsImageName"))
        or _str(config.get("rootfsImage"))
        or ann.get("io.kubernetes.cri.image-name")
        or ann.get("io.kubernetes.cri-o.ImageName"),
        runtime=_str(config.get("runtime")),
        created=_time(config.get("createdTime")) or _time(ann.get("io.kubernetes.cri-o.Created")),
        checkpointed=_time(config.get("checkpointedTime")),
        pod=pod or None,
        namespace=namespace or None,
        ip=_ip(meta, ann),
        dumped=dumped,
        state=_cri_state(meta.status.get("state")),
        restored_from=_restored_from(meta.status),
    )


def _status_name(status: Mapping[str, Any]) -> str | None:
    metadata = status.get("metadata")
    labels = status.get("labels")
    name = _str(metadata.get("name")) if isinstance(metadata, dict) else None
    if name is None and isinstance(labels, dict):
        name = _str(labels.get("io.kubernetes.container.name"))
    return name


def _cri_state(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):  # a runtime that spells it out: CONTAINER_RUNNING
        return value.removeprefix("CONTAINER_").lower() or None
    return CRI_STATES.get(value, str(value))


def _restored_from(status: Mapping[str, Any]) -> str | None:
    annotations = status.get("annotations")
    if not isinstance(annotations, dict) or annotations.get("restored") != "true":
        return None
    return _time(annotations.get("checkpointedAt")) or "unknown"


def split_mount_points(rootfs: RootfsDiff, meta: Metadata) -> RootfsDiff:
    """Move the empty mount targets the OCI runtime created out of ``changed``.

    runc and crun create a missing bind-mount destination as an empty file or directory in the
    container's upper layer, so every containerd or CRI-O diff shows /etc/hostname, /etc/hosts
    and /etc/resolv.conf. They are mount points when the spec mounts something there and they
    are empty; anything with content is the workload's.
    """
    destinations = meta.mount_destinations
    if not destinations:
        return rootfs
    changed: list[FileEntry] = []
    mount_points: list[FileEntry] = []
    for entry in rootfs.changed:
        path = entry.path.strip("/")
        empty = entry.type == "dir" or (entry.type == "file" and entry.size == 0)
        is_target = path in destinations and empty
        (mount_points if is_target else changed).append(entry)
    if not mount_points:
        return rootfs
    return RootfsDiff(
        compression=rootfs.compression,
        changed=changed,
        deleted=rootfs.deleted,
        mount_points=[*rootfs.mount_points, *mount_points],
    )


def _crio_metadata_name(ann: Mapping[str, str]) -> str | None:
    raw = ann.get("io.kubernetes.cri-o.Metadata")
    try:
        value = load_json(raw) if raw else None
    except ValueError:
        return None
    return _str(value.get("name")) if isinstance(value, dict) else None


def _ip(meta: Metadata, ann: Mapping[str, str]) -> str | None:
    ips = [ann[k] for k in sorted(ann) if k.startswith("io.kubernetes.cri-o.IP.")]
    if ips:
        return ",".join(ips)
    found: list[str] = []
    _collect_ips(meta.network_status, found)
    return ",".join(found) if found else None


def _collect_ips(root: Any, found: list[str]) -> None:
    """Podman's network.status: {net: {interfaces: {eth0: {subnets: [{ipnet: ...}]}}}}."""
    stack = [root]
    while stack:  # depth first, keys in order, without recursion
        node = stack.pop()
        if isinstance(node, dict):
            for key in sorted(node, reverse=True):
                value = node[key]
                if key == "ipnet" and isinstance(value, str):
                    stack.append(_Found(value))
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, _Found):
            found.append(node.value)


@dataclass(frozen=True, slots=True)
class _Found:
    value: str


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> str | None:
    """Normalise an RFC 3339 time to ISO 8601 UTC, keeping the source's sub-second digits (Go
    writes nanoseconds, more than a datetime holds); the zero time is None."""
    if not isinstance(value, str) or not value or value == _ZERO_TIME:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    digits = ""
    if dot:
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = head + rest[len(digits) :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    fraction = f".{digits}" if digits else ""
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def iso_time(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
