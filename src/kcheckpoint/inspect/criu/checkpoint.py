"""One archive -> an ``Inspection``: the process tree with argv and env, files, sockets, mounts,
namespaces, dump statistics, and the problems the images show.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any, BinaryIO

from kcheckpoint.inspect.model import Problem, secrets_warning
from kcheckpoint.inspect.reader.engines import container_of, load_json, parse_metadata
from kcheckpoint.inspect.reader.scan import ArchiveScan, scan_archive, sizes_of
from kcheckpoint.inspect.reader.source import ProgressCallback

from . import system
from .decode import ProcessDecoder, ReadMemory
from .imageset import PREFIX, ImageSet
from .memory import MemoryReader
from .model import Inspection, Metadata, NetworkInterface, Process
from .sinks import ArgsReader, scan_with_args


def image_set(scan: ArchiveScan) -> ImageSet:
    """The checkpoint/ images of a scan (read with ``read_images=True``) and stats-dump."""
    files = {n[len(PREFIX) :]: d for n, d in scan.images.items() if n.startswith(PREFIX)}
    if "stats-dump" in scan.blobs:
        files["stats-dump"] = scan.blobs["stats-dump"]
    members = {
        m.name[len(PREFIX) :]: m.size
        for m in scan.members
        if m.name.startswith(PREFIX) and m.type == "file" and "/" not in m.name[len(PREFIX) :]
    }
    if "stats-dump" in files:
        members["stats-dump"] = len(files["stats-dump"])
    return ImageSet(files, members=members)


def process_list(
    scan: ArchiveScan, read_memory: ReadMemory | None = None, *, show_secrets: bool = False
) -> tuple[list[Process], list[Problem]]:
    """Only the process tree of a scan (used by ``summary``)."""
    images = image_set(scan)
    decoder = ProcessDecoder(images, read_memory, show_secrets=show_secrets)
    procs = decoder.processes()
    return procs, [*images.problems, *decoder.problems]


def redact_env_values(value: str) -> str:
    """An annotation with the values of embedded container env lists redacted.

    ``kubectl.kubernetes.io/last-applied-configuration`` and CRI-O's JSON annotations may hold a
    pod spec, whose ``env: [{"name", "value"}]`` entries carry the same values inspect redacts.
    """
    if '"env"' not in value:
        return value
    try:
        data = load_json(value)
    except ValueError:
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "env" and isinstance(v, list):
                    out[k] = [
                        {**e, "value": "<redacted>"} if isinstance(e, dict) and "value" in e else e
                        for e in v
                    ]
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(data), separators=(",", ":"))


def main_command(procs: list[Process]) -> str | None:
    """The root process's command line (shell-quoted), or its comm without one."""
    if not procs:
        return None
    root = procs[0]
    if root.cmdline:
        return shlex.join(root.cmdline)
    return root.comm


def inspect_scan(
    scan: ArchiveScan,
    read_memory: ReadMemory | None = None,
    *,
    show_secrets: bool = False,
    extra_problems: list[Problem] | None = None,
) -> Inspection:
    """Decode every CRIU image of a scanned archive into an Inspection."""
    meta = parse_metadata(scan.blobs)
    images = image_set(scan)
    decoder = ProcessDecoder(images, read_memory, show_secrets=show_secrets)
    procs = decoder.processes()
    stale, stale_problems = system.unreferenced(images, procs)
    ann = meta.annotations
    container = container_of(meta, scan.names, dumped=scan.dumped)
    sizes = sizes_of(scan)
    problems = [
        *scan.problems,
        *meta.problems,
        *images.problems,
        *decoder.problems,
        *stale_problems,
        *(extra_problems or []),
    ]
    return Inspection(
        input=scan.input,
        container=container,
        sizes=sizes,
        metadata=Metadata(
            pod=container.pod,
            namespace=container.namespace,
            annotations={
                k: v if show_secrets else redact_env_values(v) for k, v in sorted(ann.items())
            },
            spec_env_names=[e.partition("=")[0] for e in meta.env],
            network=network_interfaces(meta.network_status),
        ),
        inventory=system.inventory(images),
        processes=procs,
        sockets=system.sockets(images, procs),
        mounts=system.mounts(images, procs),
        spec_mounts=system.spec_mounts(meta.spec),
        stats=system.dump_stats(images),
        namespaces=system.namespaces(images, procs),
        unreferenced_images=stale,
        problems=problems,
        warnings=secrets_warning(len(procs), sizes.memory_pages),
    )


def inspect_path(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    show_secrets: bool = False,
    read_memory: bool = True,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Inspection:
    """Scan one archive in one pass and inspect it."""
    args: ArgsReader | None = None
    if read_memory:
        scan, args = scan_with_args(path, stdin=stdin, hash_input=hash_input, progress=progress)
    else:
        scan = scan_archive(
            path, stdin=stdin, hash_input=hash_input, progress=progress, read_images=True
        )
    return inspect_scan(
        scan,
        memory_reader(path, scan, args) if args else None,
        show_secrets=show_secrets,
        extra_problems=args.problems if args else None,
    )


def memory_reader(path: str | os.PathLike[str], scan: ArchiveScan, args: ArgsReader) -> ReadMemory:
    """The shared memory model's reader for a seekable archive; the one-pass capture otherwise.

    Both attribute memory through pstree -> pagemap -> pages_id; tests check that they agree.
    """
    if scan.input.read_mode != "seekable" or os.fspath(path) == "-":
        return args.read
    model = MemoryReader.from_scan(path, scan)

    def read(pid: int, start: int, end: int) -> bytes | None:
        # The model needs pstree.img; without it, the capture still has the bytes.
        data = model.read(pid, start, end)
        return data if data is not None else args.read(pid, start, end)

    return read


def network_interfaces(status: Any) -> list[NetworkInterface]:
    """Podman's network.status: ``{NETWORK: {"interfaces": {NAME: {"mac_address", "subnets":
    [{"ipnet", "gateway"}]}}}}``; anything else gives no interfaces."""
    found: list[NetworkInterface] = []
    if not isinstance(status, dict):
        return found
    for network in sorted(status):
        interfaces = (
            status[network].get("interfaces") if isinstance(status[network], dict) else None
        )
        if not isinstance(interfaces, dict):
            continue
        for name in sorted(interfaces):
            iface = interfaces[name] if isinstance(interfaces[name], dict) else {}
            subnets = [s for s in iface.get("subnets") or [] if isinstance(s, dict)]
            mac = iface.get("mac_address")
            found.append(
                NetworkInterface(
                    network=str(network),
                    interface=str(name),
                    mac=mac if isinstance(mac, str) and mac else None,
                    ips=[s["ipnet"] for s in subnets if isinstance(s.get("ipnet"), str)],
                    gateways=[s["gateway"] for s in subnets if isinstance(s.get("gateway"), str)],
                )
            )
    return found
