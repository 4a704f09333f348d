"""Checkpoint-wide records: inventory, dump statistics, mounts, namespaces, sockets, and the
images that nothing references.

References:
    reference/criu-images.md §1.3 (keys: pid, files_id, namespace ids, pages_id), §2.1, §2.9-2.11;
    FIXTURES.md "Known traps" (stale images Podman leaves in its reused work directory).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from kcheckpoint.inspect.model import Problem

from .decode import has_memory
from .imageset import ImageSet
from .model import DumpStats, Inventory, Mount, Namespace, Process, Socket, SpecMount
from .sockets import SOCKET_TYPES, socket_of
from .tables import FSTYPES, LSM_TYPES, mount_flags, name
from .text import text

_PER_PID = re.compile(r"^(core|ids|mm|fs|pagemap|creds)-(\d+)\.img$")
_PAGES = re.compile(r"^pages-(\d+)\.img$")
_FDINFO = re.compile(r"^fdinfo-(\d+)\.img$")
_SHMEM = re.compile(r"^pagemap-shmem-(\d+)\.img$")
_NS_IMAGES = {
    "mnt": "mountpoints-{}.img",
    "uts": "utsns-{}.img",
    "net": "netns-{}.img",
    "ipc": "ipcns-var-{}.img",
    "time": "timens-{}.img",
    "user": "userns-{}.img",
    "pid": "pidns-{}.img",
}


def _pagemap_counts_in_field_5(images: ImageSet) -> bool:
    """CRIU 4.2 moved a pagemap entry's page count to field 5 (nr_pages)."""
    for image in images.files:
        if image.startswith("pagemap-") and not image.startswith("pagemap-shmem-"):
            entries = images.entries(image)
            if entries:
                return any(e.HasField("nr_pages") for e in entries)
    return False


def inventory(images: ImageSet) -> Inventory | None:
    inv = images.first("inventory.img")
    if inv is None:
        return None
    hint = None
    if inv.HasField("allow_uprobes") or _pagemap_counts_in_field_5(images):
        hint = ">= 4.2"
    elif inv.HasField("plugins_entry") or inv.HasField("dump_criu_run_id"):
        hint = ">= 4.1"
    elif inv.HasField("network_lock_method"):
        hint = ">= 3.16"
    return Inventory(
        img_version=inv.img_version if inv.HasField("img_version") else None,
        criu_version_hint=hint,
        dump_criu_run_id=inv.dump_criu_run_id if inv.HasField("dump_criu_run_id") else None,
        lsm=name(LSM_TYPES, inv.lsmtype) if inv.HasField("lsmtype") else None,
        ns_per_id=inv.ns_per_id if inv.HasField("ns_per_id") else None,
        dump_uptime_us=inv.dump_uptime if inv.HasField("dump_uptime") else None,
        network_lock_method=(
            inv.network_lock_method if inv.HasField("network_lock_method") else None
        ),
        plugins=list(inv.plugins_entry.plugins) if inv.HasField("plugins_entry") else [],
    )


def dump_stats(images: ImageSet) -> DumpStats | None:
    entry = images.first("stats-dump")
    if entry is None or not entry.HasField("dump"):
        return None
    d = entry.dump

    def get(field: str) -> int | None:
        return int(getattr(d, field)) if d.HasField(field) else None

    return DumpStats(
        freezing_time_us=get("freezing_time"),
        frozen_time_us=get("frozen_time"),
        memdump_time_us=get("memdump_time"),
        memwrite_time_us=get("memwrite_time"),
        irmap_resolve_us=get("irmap_resolve"),
        pages_scanned=get("pages_scanned"),
        pages_skipped_parent=get("pages_skipped_parent"),
        pages_written=get("pages_written"),
        pages_lazy=get("pages_lazy"),
        page_pipes=get("page_pipes"),
        page_pipe_bufs=get("page_pipe_bufs"),
        shpages_scanned=get("shpages_scanned"),
        shpages_skipped_parent=get("shpages_skipped_parent"),
        shpages_written=get("shpages_written"),
    )


def mounts(images: ImageSet, processes: Iterable[Process]) -> list[Mount]:
    """Mounts of every mount namespace the processes are in (else of every mountpoints image)."""
    ids = sorted({p.namespaces["mnt"] for p in processes if "mnt" in p.namespaces})
    names = [f"mountpoints-{i}.img" for i in ids] or sorted(
        n for n in images.files if n.startswith("mountpoints-")
    )
    out = []
    for image in names:
        for m in images.entries(image):
            fstype = name(FSTYPES, m.fstype)
            if m.fstype == 16 and m.HasField("fsname"):
                fstype = text(m.fsname) or fstype
            out.append(
                Mount(
                    mnt_id=m.mnt_id,
                    parent_mnt_id=m.parent_mnt_id,
                    mountpoint=text(m.mountpoint) or "",
                    fstype=fstype,
                    source=text(m.source) or "",
                    root=text(m.root) or "",
                    options=text(m.options) or "",
                    flags=mount_flags(m.flags),
                    shared_id=m.shared_id or None,
                    master_id=m.master_id or None,
                    ext_key=text(m.ext_key) if m.HasField("ext_key") else None,
                    image=image,
                )
            )
    return out


def spec_mounts(spec: dict[str, Any]) -> list[SpecMount]:
    """The OCI spec's mounts (what checkpointctl's --mounts shows)."""
    value = spec.get("mounts")
    out = []
    for m in value if isinstance(value, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            continue
        options = m.get("options")
        out.append(
            SpecMount(
                destination=m["destination"],
                type=m.get("type") if isinstance(m.get("type"), str) else None,
                source=m.get("source") if isinstance(m.get("source"), str) else None,
                options=[o for o in options if isinstance(o, str)]
                if isinstance(options, list)
                else [],
            )
        )
    return out


def namespaces(images: ImageSet, processes: Iterable[Process]) -> list[Namespace]:
    members: dict[tuple[str, int], list[int]] = {}
    for p in processes:
        for kind, ns_id in p.namespaces.items():
            members.setdefault((kind, ns_id), []).append(p.pid)
    timens = sorted(n for n in images.files if n.startswith("timens-"))
    out = []
    for (kind, ns_id), pids in sorted(members.items()):
        pattern = _NS_IMAGES.get(kind)
        image = pattern.format(ns_id) if pattern else None
        if image is not None and not images.has(image):
            image = None
        if kind == "time" and image is None and len(timens) == 1:
            image = timens[0]  # CRIU keys the one time namespace image 0, not by its id
        out.append(
            Namespace(
                kind=kind,
                id=ns_id,
                pids=sorted(pids),
                image=image,
                details=_details(images, kind, image),
            )
        )
    return out


def _details(images: ImageSet, kind: str, image: str | None) -> dict[str, str]:
    entry = images.first(image) if image else None
    if entry is None:
        return {}
    if kind == "uts":
        return {"hostname": text(entry.nodename) or "", "domainname": text(entry.domainname) or ""}
    if kind == "time":
        return {
            "monotonic_offset": f"{entry.monotonic.tv_sec}.{entry.monotonic.tv_nsec:09d}",
            "boottime_offset": f"{entry.boottime.tv_sec}.{entry.boottime.tv_nsec:09d}",
        }
    return {}


def sockets(images: ImageSet, processes: Iterable[Process]) -> list[Socket]:
    holders: dict[int, list[str]] = {}
    for p in processes:
        for f in p.files:
            if f.fd not in ("cwd", "root"):
                holders.setdefault(f.file_id, []).append(f"{p.pid}:{f.fd}")
    out = []
    for entry in images.entries("files.img"):
        if entry.type not in SOCKET_TYPES:
            continue
        sock = socket_of(entry)
        if sock is None:
            continue
        out.append(replace(sock, holders=holders.get(sock.file_id, [])))
    by_ino = {s.ino: s for s in out if s.family == "unix" and s.ino}
    resolved = []
    for s in out:
        if s.family == "unix" and s.peer_ino and s.peer is None:
            other = by_ino.get(s.peer_ino)
            peer = (other.local or f"unix[{other.ino}]") if other else f"unix[{s.peer_ino}]"
            s = replace(s, peer=peer)
        resolved.append(s)
    return sorted(resolved, key=lambda s: (s.family, s.ino or 0, s.file_id))


def unreferenced(images: ImageSet, processes: list[Process]) -> tuple[list[str], list[Problem]]:
    """Images nothing in the live process tree points to, and a problem for each."""
    live = {p.pid for p in processes if has_memory(p.state)}
    tids = {t for p in processes for t in p.threads} | {p.pid for p in processes}
    zombies = {p.pid for p in processes if not has_memory(p.state)}
    pages_ids: set[int] = set()
    files_ids: set[int] = set()
    for pid in live:
        head = images.head(f"pagemap-{pid}.img")
        if head is not None and head.HasField("pages_id"):
            pages_ids.add(head.pages_id)
        ids = images.first(f"ids-{pid}.img")
        if ids is not None and ids.HasField("files_id"):
            files_ids.add(ids.files_id)
    for n in images.members:
        if _SHMEM.match(n):
            head = images.head(n)
            if head is not None and head.HasField("pages_id"):
                pages_ids.add(head.pages_id)
    found: list[str] = []
    problems: list[Problem] = []

    def flag(n: str, why: str) -> None:
        found.append(n)
        problems.append(Problem(images.source(n), "unreferenced-image", why))

    have_tree = images.has("pstree.img")
    for n in sorted(images.members):
        if m := _PAGES.match(n):
            if int(m.group(1)) not in pages_ids:
                flag(n, f"no live process's pagemap points to pages_id {m.group(1)} (stale dump?)")
        elif (m := _PER_PID.match(n)) and have_tree:
            kind, pid = m.group(1), int(m.group(2))
            if kind == "core":
                if pid not in tids:
                    flag(n, f"pid {pid} is not in pstree.img (stale dump?)")
            elif pid in zombies:
                flag(n, f"pid {pid} is a zombie (dead) task, which has no {kind} image")
            elif pid not in live:
                flag(n, f"pid {pid} is not in pstree.img (stale dump?)")
        elif (m := _FDINFO.match(n)) and have_tree and int(m.group(1)) not in files_ids:
            flag(n, f"no process uses files_id {m.group(1)} (stale dump?)")
    return found, problems
