"""Render an ``Inspection`` as a tree (the default of ``kcheckpoint inspect``) or as JSON data."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kcheckpoint.inspect.criu.model import Inspection, Process
from kcheckpoint.inspect.reader.engines import load_json

from .jsonout import to_data
from .text import ABSENT, printable, size

SECTIONS = ("ps_tree", "files", "sockets", "mounts", "stats", "metadata", "env", "namespaces")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sections to show; files, sockets and env imply the process tree."""

    ps_tree: bool = True
    files: bool = False
    sockets: bool = False
    mounts: bool = False
    stats: bool = False
    metadata: bool = False
    env: bool = False
    namespaces: bool = False

    @classmethod
    def of(cls, *, all_: bool = False, **flags: bool) -> Selection:
        if all_:
            return cls(**{s: True for s in SECTIONS})
        chosen = {k: v for k, v in flags.items() if v}
        if not chosen:
            return cls()
        sel = {s: bool(flags.get(s)) for s in SECTIONS}
        if sel["files"] or sel["sockets"] or sel["env"]:
            sel["ps_tree"] = True
        return cls(**sel)


def subtree(procs: list[Process], pid: int) -> list[Process]:
    """The process ``pid`` and its descendants, in tree order; empty when it is absent."""
    by_pid = {p.pid: p for p in procs}
    if pid not in by_pid:
        return []
    keep: list[Process] = []
    seen: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        keep.append(by_pid[current])
        stack.extend(reversed([c for c in by_pid[current].children if c in by_pid]))
    return keep


def limit_to(result: Inspection, pid: int) -> Inspection:
    """The inspection with processes (and the sockets they hold) cut to one subtree."""
    procs = subtree(result.processes, pid)
    pids = {str(p.pid) for p in procs}
    socks = [s for s in result.sockets if any(h.split(":")[0] in pids for h in s.holders)]
    return replace(result, processes=procs, sockets=socks)


def json_data(result: Inspection, sel: Selection) -> dict[str, Any]:
    """The JSON document: every key always present, unselected sections null."""
    data: dict[str, Any] = to_data(result)
    if not sel.ps_tree:
        data["processes"] = None
    else:
        for p in data["processes"]:
            if not sel.env:
                p["env"] = None
            if not sel.files:
                p["files"] = None
    for key, on in (
        ("sockets", sel.sockets),
        ("mounts", sel.mounts),
        ("spec_mounts", sel.mounts),
        ("stats", sel.stats),
        ("metadata", sel.metadata),
        ("namespaces", sel.namespaces),
    ):
        if not on:
            data[key] = None
    return data


def annotation_node(key: str, value: str) -> Any:
    """An annotation as a line, or, when its value is a JSON object or list, as a tree of the
    parsed value (as checkpointctl --metadata shows them)."""
    parsed = _json_value(value)
    if parsed is None:
        return f"{key}: {value}"
    return (key, _json_nodes(parsed))


def _json_value(value: str) -> Any:
    if not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = load_json(value)  # depth-bounded: _json_nodes recurses into it
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) and parsed else None


def _json_nodes(value: Any) -> list[Any]:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    nodes: list[Any] = []
    for key, item in items:
        if isinstance(item, dict | list) and item:
            nodes.append((str(key), _json_nodes(item)))
        else:
            nodes.append(f"{key}: {json.dumps(item, ensure_ascii=False)}")
    return nodes


def _interface_line(i: Any) -> str:
    parts = [f"{i.interface} ({i.network})"]
    parts.append(f"IP {', '.join(i.ips)}" if i.ips else "no IP")
    if i.mac:
        parts.append(f"MAC {i.mac}")
    if i.gateways:
        parts.append(f"gateway {', '.join(i.gateways)}")
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else "")


#: Levels of indentation drawn; deeper levels are drawn at this one, so that a chain of
#: thousands of processes does not print quadratic whitespace.
MAX_INDENT = 40


class _Tree:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def node(self, label: str, children: Iterable[Any], prefix: str = "") -> None:
        stack: list[tuple[list[Any], int, str]] = [(list(children), 0, prefix)]
        while stack:  # iterative: a process chain may be thousands deep
            kids, i, pre = stack.pop()
            if i >= len(kids):
                continue
            stack.append((kids, i + 1, pre))
            last = i == len(kids) - 1
            text, grand = kids[i] if isinstance(kids[i], tuple) else (kids[i], [])
            self.lines.append(pre + ("└── " if last else "├── ") + printable(text))
            grand = list(grand)
            if grand:
                deeper = pre + ("    " if last else "│   ") if len(stack) < MAX_INDENT else pre
                stack.append((grand, 0, deeper))


def _us(value: int | None) -> str:
    if value is None:
        return ABSENT
    if value < 1000:
        return f"{value} µs"
    if value < 1_000_000:
        return f"{value / 1000:.3f} ms"
    return f"{value / 1_000_000:.3f} s"


def command_of(p: Process) -> str:
    if p.cmdline:
        return shlex.join(p.cmdline)
    return p.comm or ABSENT


def _process_nodes(procs: list[Process], sel: Selection) -> list[tuple[str, list[Any]]]:
    """The tree's top nodes; each node's children are attached by reference, not recursion."""
    nodes = {p.pid: _process_node(p, sel) for p in procs}
    listed = {c for p in procs for c in p.children if c in nodes}
    for p in procs:
        nodes[p.pid][1].extend(nodes[c] for c in p.children if c in nodes)
    return [nodes[p.pid] for p in procs if p.pid not in listed]


def _process_node(p: Process, sel: Selection) -> tuple[str, list[Any]]:
    state = "" if p.state == "alive" else f" ({p.state})"
    label = f"[{p.pid}{state}]  {command_of(p)}"
    kids: list[Any] = []
    if p.cmdline is not None and p.comm:
        kids.append(f"comm: {p.comm}")
    if p.exe:
        kids.append(f"exe: {p.exe}")
    if p.creds is not None:
        c = p.creds
        kids.append(f"uid/gid: {c.uid}/{c.gid} (euid {c.euid}, egid {c.egid})")
        kids.append(f"capabilities: {', '.join(c.cap_effective) or 'none'}")
    if p.memory is not None:
        m = p.memory
        kids.append(
            f"memory: {m.present_pages} pages ({size(m.present_pages * m.page_size)}) "
            f"in pages-{m.pages_id}.img, {m.vmas} mappings"
        )
    if len(p.threads) > 1:
        kids.append(f"threads: {', '.join(str(t) for t in p.threads)}")
    if sel.env:
        if p.env is None:
            kids.append("Environment variables: not available")
        else:
            kids.append(
                (
                    "Environment variables",
                    [f"{e.name}=" + ("<redacted>" if e.redacted else e.value or "") for e in p.env],
                )
            )
    if sel.files:
        kids.append(
            (
                "Open files",
                [
                    f"[{f.fd}]  {f.description}"
                    if f.fd in ("cwd", "root")
                    else f"[{f.type} {f.fd}]  {f.description}"
                    for f in p.files
                ],
            )
        )
    return label, kids


def tree_text(result: Inspection, sel: Selection) -> str:
    """The whole inspection as an indented tree, checkpointctl style."""
    c = result.container
    root: list[Any] = []
    for label, value in (
        ("Engine", c.engine),
        ("Image", c.image),
        ("ID", c.id),
        ("Runtime", c.runtime),
        ("Created", c.created),
        ("Checkpointed", c.checkpointed),
        ("State", c.state),
        ("Restored from a checkpoint of", c.restored_from),
        ("Pod", c.pod),
        ("Namespace", c.namespace),
        ("IP", c.ip),
    ):
        if value:
            root.append(f"{label}: {value}")
    s = result.sizes
    root.append(
        (
            f"Checkpoint size: {size(s.checkpoint)}",
            [f"Memory pages size: {size(s.memory_pages)}"],
        )
    )
    if s.rootfs_diff:
        root.append(f"Root FS diff size: {size(s.rootfs_diff)}")
    if result.inventory is not None:
        inv = result.inventory
        bits = [f"image version {inv.img_version}"]
        if inv.criu_version_hint:
            bits.append(f"CRIU {inv.criu_version_hint}")
        root.append("CRIU: " + ", ".join(bits))
    if sel.stats:
        st = result.stats
        if st is None:
            root.append("CRIU dump statistics: not available")
        else:
            root.append(
                (
                    "CRIU dump statistics",
                    [
                        f"Freezing time: {_us(st.freezing_time_us)}",
                        f"Frozen time: {_us(st.frozen_time_us)}",
                        f"Memdump time: {_us(st.memdump_time_us)}",
                        f"Memwrite time: {_us(st.memwrite_time_us)}",
                        f"Pages scanned: {st.pages_scanned}",
                        f"Pages written: {st.pages_written}",
                    ],
                )
            )
    if sel.metadata:
        m = result.metadata
        root.append(
            (
                "Metadata",
                [
                    f"Pod name: {m.pod or ABSENT}",
                    f"Kubernetes namespace: {m.namespace or ABSENT}",
                    f"Environment names (spec.dump): {', '.join(m.spec_env_names) or ABSENT}",
                    ("Annotations", [annotation_node(k, v) for k, v in m.annotations.items()]),
                    *([("Network", [_interface_line(i) for i in m.network])] if m.network else []),
                ],
            )
        )
    if sel.ps_tree:
        root.append(("Process tree", _process_nodes(result.processes, sel)))
    if sel.sockets:
        rows = []
        for sk in result.sockets:
            what = f"{sk.family.upper()} {sk.protocol or ''} ({sk.type}, {sk.state or ABSENT})"
            ends = sk.local or (f"unix[{sk.ino}]" if sk.family == "unix" else ABSENT)
            if sk.peer:
                ends += f" -> {sk.peer}"
            bufs = f"↑ {size(sk.send_buf)} ↓ {size(sk.recv_buf)}"
            rows.append(
                f"[{' '.join(what.split())}]  {ends}  ({bufs})  held by {', '.join(sk.holders)}"
            )
        root.append(("Sockets", rows))
    if sel.namespaces:
        rows = []
        for ns in result.namespaces:
            detail = ", ".join(f"{k}={v}" for k, v in ns.details.items())
            where = ns.image or "not dumped (external)"
            rows.append(
                f"{ns.kind} {ns.id}: pids {ns.pids} ({where}){' ' + detail if detail else ''}"
            )
        root.append(("Namespaces", rows))
    if sel.mounts:
        root.append(
            (
                "Mounts (CRIU)",
                [
                    f"{m.mountpoint}  type {m.fstype}, source {m.source or ABSENT}, {m.flags}"
                    for m in result.mounts
                ],
            )
        )
        root.append(
            (
                "Mounts (OCI spec)",
                [
                    f"{m.destination}  type {m.type or ABSENT}, source {m.source or ABSENT}"
                    for m in result.spec_mounts
                ],
            )
        )
    if result.problems:
        root.append(("Problems", [f"{p.source}: {p.kind}: {p.message}" for p in result.problems]))
    tree = _Tree()
    title = c.name or "Container"
    tree.lines.append(printable(f"{title}  ({result.input.path})"))
    tree.node(title, root)
    return "\n".join(tree.lines) + "\n"
