"""``kcheckpoint diff`` as text: the two archives, counts first, then one group per section,
each line led by a marker: ``A`` added (only in B), ``D`` removed or deleted (only in A),
``C`` changed (or resized), ``R`` replaced (restarted under another pid).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from kcheckpoint.inspect.criu.model import ProcessRef
from kcheckpoint.inspect.diff.model import (
    ADDED,
    CHANGED,
    COUNTED_AS,
    REMOVED,
    REPLACED,
    RESIZED,
    CheckpointDiff,
    DiffSide,
    FsChange,
    FsState,
    MappingDiff,
    ProcessChange,
    ProcessMemoryDiff,
    SectionCount,
    ValueChange,
)

from .text import ABSENT, printable, size

#: One marker per count: a deleted path is marked as removed, a resized mapping as changed.
MARKERS = {
    status: {ADDED: "A", REMOVED: "D", CHANGED: "C", REPLACED: "R"}[counted]
    for status, counted in COUNTED_AS.items()
}
TITLES = {
    "metadata": "Metadata",
    "processes": "Processes",
    "files": "Open files",
    "sockets": "Sockets",
    "memory": "Memory",
    "filesystem": "Filesystem",
    "members": "Members",
}
_RANGES_SHOWN = 8


def marker(status: str) -> str:
    return MARKERS.get(status, "?")


def _side(label: str, side: DiffSide, ignore_time: bool) -> str:
    c = side.container
    who = c.name or ABSENT
    if c.pod:
        who = f"{c.namespace or ABSENT}/{c.pod}/{who}"
    parts = [f"{label}: {side.input.path}", f"{c.engine} {who}"]
    when = c.checkpointed or side.dumped
    if not ignore_time and (when or c.created):
        parts.append(f"checkpointed {when}" if when else f"created {c.created}")
    parts.append(f"{side.processes} process(es), {size(side.sizes.memory_pages)} of memory")
    return ", ".join(parts)


def _counts(name: str, c: SectionCount) -> str:
    text = f"  {TITLES[name]:<11} A {c.added:<4} D {c.removed:<4} C {c.changed:<4}"
    if name == "processes":
        text += f" R {c.replaced}"
    return text.rstrip()


def diff_text(diff: CheckpointDiff) -> str:
    """The whole diff as text."""
    lines = [
        _side("A", diff.a, diff.ignore_time),
        _side("B", diff.b, diff.ignore_time),
    ]
    if diff.note:
        lines.insert(0, f"NOTE: {diff.note}")
    if diff.identical:
        lines.append(f"identical: both archives have SHA-256 {diff.a.input.sha256}")
        return "\n".join(printable(line, keep_tab=True) for line in lines) + "\n"
    if not diff.differences:
        lines.append("no differences")
        return "\n".join(printable(line, keep_tab=True) for line in lines) + "\n"
    lines.append(f"{diff.differences} difference(s)")
    lines += [_counts(name, c) for name, c in diff.counts.items() if _any(c)]
    sections = (
        ("metadata", _metadata(diff)),
        ("processes", _processes(diff.processes)),
        ("files", _files(diff)),
        ("sockets", _sockets(diff)),
        ("memory", _memory(diff.memory)),
        ("filesystem", _filesystem(diff.filesystem)),
        ("members", _members(diff)),
    )
    for name, body in sections:
        if body:
            lines += ["", TITLES[name], *body]
    return "\n".join(printable(line, keep_tab=True) for line in lines) + "\n"


def _any(c: SectionCount) -> bool:
    return bool(c.added or c.removed or c.changed or c.replaced)


def _value(v: object) -> str:
    if v is None:
        return ABSENT
    if isinstance(v, list):
        return shlex.join(str(x) for x in v) if v else "[]"
    return str(v)


def _metadata(diff: CheckpointDiff) -> list[str]:
    out = []
    for m in diff.metadata:
        if m.redacted:
            detail = "value changed (redacted)" if m.status == CHANGED else "(value redacted)"
        elif m.status == CHANGED:
            detail = f"{_value(m.a)} -> {_value(m.b)}"
        else:
            detail = _value(m.a if m.status == REMOVED else m.b)
        out.append(f"  {marker(m.status)} {m.key}: {detail}")
    return out


def _who(ref: ProcessRef) -> str:
    command = shlex.join(ref.cmdline) if ref.cmdline else (ref.comm or "?")
    return command.replace("\n", "\\n")


def _change(c: ValueChange) -> str:
    if c.redacted:
        if c.a is None:
            return f"      {c.field}: added (value redacted)"
        if c.b is None:
            return f"      {c.field}: removed (value redacted)"
        return f"      {c.field}: value changed (redacted)"
    return f"      {c.field}: {_value(c.a)} -> {_value(c.b)}".replace("\n", "\\n")


def _processes(changes: Iterable[ProcessChange]) -> list[str]:
    out = []
    for p in changes:
        if p.a is not None and p.b is not None:
            pid = f"{p.a.pid}" if p.a.pid == p.b.pid else f"{p.a.pid} -> {p.b.pid}"
            out.append(f"  {marker(p.status)} [{pid}] {_who(p.b)}")
        else:
            ref = p.a or p.b
            assert ref is not None
            out.append(f"  {marker(p.status)} [{ref.pid}] {_who(ref)} (ppid {ref.ppid})")
        out += [_change(c) for c in p.changes]
    return out


def _files(diff: CheckpointDiff) -> list[str]:
    return [
        f"  {marker(f.status)} [{f.pid}] fd {f.fd} {f.type} {f.description}" for f in diff.files
    ]


def _sockets(diff: CheckpointDiff) -> list[str]:
    out = []
    for s in diff.sockets:
        kind = " ".join(x for x in (s.family, s.type, s.protocol, s.state) if x)
        out.append(
            f"  {marker(s.status)} [{s.pid}] {kind} {s.local or ABSENT} -> {s.peer or ABSENT}"
        )
    return out


def _hex_range(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return ABSENT
    return f"{start:x}-{end:x}"


def _mapping(m: MappingDiff) -> list[str]:
    if m.status == RESIZED:
        where = f"{_hex_range(m.start_a, m.end_a)} -> {_hex_range(m.start_b, m.end_b)}"
    elif m.status == ADDED:
        where = _hex_range(m.start_b, m.end_b)
    else:
        where = _hex_range(m.start_a, m.end_a)
    perms = m.perms_b or m.perms_a or ""
    if m.perms_a and m.perms_b and m.perms_a != m.perms_b:
        perms = f"{m.perms_a}->{m.perms_b}"
    head = f"      {marker(m.status)} {where} {perms} {m.backing}"
    details = []
    if m.status in (ADDED, REMOVED):
        details.append(f"{size(m.present_b if m.status == ADDED else m.present_a)} present")
    elif m.present_a != m.present_b:
        details.append(f"{size(m.present_a)} -> {size(m.present_b)} present")
    if m.changed_pages:
        details.append(f"{m.changed_pages} page(s) changed ({size(m.changed_bytes)})")
    if m.pages_only_a:
        details.append(f"{m.pages_only_a} page(s) only in A")
    if m.pages_only_b:
        details.append(f"{m.pages_only_b} page(s) only in B")
    if m.status == RESIZED:
        details.insert(0, "resized")
    out = [head + (": " + ", ".join(details) if details else "")]
    if m.changed_ranges:
        shown = ", ".join(_hex_range(r.start, r.end) for r in m.changed_ranges[:_RANGES_SHOWN])
        more = m.changed_ranges_total - min(len(m.changed_ranges), _RANGES_SHOWN)
        out.append(f"          at {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return out


def _memory(changes: Iterable[ProcessMemoryDiff]) -> list[str]:
    out = []
    for p in changes:
        if p.pid_a is not None and p.pid_b is not None and p.pid_a != p.pid_b:
            pid = f"{p.pid_a} -> {p.pid_b}"
        else:
            pid = str(p.pid_a if p.pid_a is not None else p.pid_b)
        parts = [f"{size(p.present_a)} -> {size(p.present_b)} present"]
        if p.compared:
            parts.append(f"{p.changed_pages} page(s) changed ({size(p.changed_bytes)})")
        elif p.pid_a is not None and p.pid_b is not None:
            parts.append("pages not compared (different processes)")
        comm = p.comm_b or p.comm_a or "?"
        if p.comm_a and p.comm_b and p.comm_a != p.comm_b:
            comm = f"{p.comm_a} -> {p.comm_b}"
        out.append(f"  {marker(p.status)} [{pid}] {comm}: " + ", ".join(parts))
        for m in p.mappings:
            out += _mapping(m)
    return out


def _fs_state(s: FsState | None) -> str:
    if s is None:
        return "image"
    if s.type == "deleted":
        return f"deleted ({s.source})"
    if s.type != "file":
        return s.type + (f" -> {s.linkname}" if s.linkname else "")
    digest = (s.sha256 or "")[:12]
    return f"{size(s.size)} sha256:{digest}"


def _filesystem(changes: Iterable[FsChange]) -> list[str]:
    out = []
    for c in changes:
        if c.status == CHANGED:
            detail = f"{_fs_state(c.a)} -> {_fs_state(c.b)}"
        elif c.status == ADDED:
            detail = _fs_state(c.b) if c.b is not None else "restored to the image's content"
            if c.a is not None:
                detail += f" (was {_fs_state(c.a)})"
        else:
            if c.b is None:
                detail = f"{_fs_state(c.a)}; no longer in rootfs-diff.tar"
            else:
                detail = f"{_fs_state(c.b)}" + (f" (was {_fs_state(c.a)})" if c.a else "")
        out.append(f"  {marker(c.status)} {c.path}  {detail}")
        if c.content_diff:
            out += ["      " + line for line in c.content_diff]
        if c.content_note:
            out.append(f"      ({c.content_note})")
    return out


def _members(diff: CheckpointDiff) -> list[str]:
    lines = []
    for m in diff.members:
        if m.status == "changed":
            line = (
                f"  {marker(m.status)} {m.name} ({m.type})  {size(m.size_a or 0)} "
                f"sha256:{_short(m.sha256_a)} -> {size(m.size_b or 0)} sha256:{_short(m.sha256_b)}"
            )
        else:
            line = f"  {marker(m.status)} {m.name} ({m.type}, {size(m.size or 0)})"
        lines.append(line)
    return lines


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "-"
