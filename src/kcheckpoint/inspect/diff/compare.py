"""Compare the decoded parts of two checkpoints: metadata, processes, open files, sockets,
filesystem and members. Every function is symmetric: swapping its inputs mirrors its result.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from kcheckpoint.inspect.criu.model import Inspection, Mount, Process, ProcessRef, Socket, SpecMount
from kcheckpoint.inspect.model import Container
from kcheckpoint.inspect.reader.archive import TarMember

from .model import (
    ADDED,
    CHANGED,
    DELETED,
    REMOVED,
    REPLACED,
    FileChange,
    FsChange,
    FsState,
    MemberChange,
    MetadataChange,
    ProcessChange,
    SocketChange,
    ValueChange,
)

SAME = "same"
_TIME_FIELDS = ("created", "checkpointed")
_CONTAINER_FIELDS = ("engine", "name", "id", "image", "runtime", "pod", "namespace", "ip")


def _changed(key: str, a: str | None, b: str | None, redacted: bool = False) -> MetadataChange:
    status = ADDED if a is None else REMOVED if b is None else CHANGED
    if redacted:
        return MetadataChange(key, status, None, None, True)
    return MetadataChange(key, status, a, b, False)


def _looks_like_time(value: str | None) -> bool:
    if not value or len(value) < 19 or value[4] != "-" or value[10] not in "T ":
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00")[:26])
    except ValueError:
        return False
    return True


def compare_maps(
    prefix: str,
    a: Mapping[str, str],
    b: Mapping[str, str],
    *,
    redact: bool = False,
    ignore_time: bool = False,
) -> list[MetadataChange]:
    """Keys only in A, only in B, or with another value; values hidden under ``redact``."""
    out = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if ignore_time and _looks_like_time(va) and _looks_like_time(vb):
            continue
        out.append(_changed(f"{prefix}{key}", va, vb, redact))
    return out


def env_map(env: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings by name; for a repeated name the first one, as getenv(3) finds."""
    out: dict[str, str] = {}
    for item in env:
        name, _, value = item.partition("=")
        out.setdefault(name, value)
    return out


def _spec_mount(m: SpecMount) -> str:
    return " ".join([m.type or "-", m.source or "-", ",".join(m.options) or "-"])


def _criu_mount(m: Mount) -> str:
    return " ".join([m.fstype, m.source, m.root, m.options or "-", m.flags or "-"])


def _by_key(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Key -> value; a repeated key keeps every value (``KEY#2``...)."""
    out: dict[str, str] = {}
    for key, value in items:
        unique, n = key, 1
        while unique in out:
            n += 1
            unique = f"{key}#{n}"
        out[unique] = value
    return out


def compare_metadata(
    a: Inspection,
    b: Inspection,
    env_a: Sequence[str],
    env_b: Sequence[str],
    *,
    show_secrets: bool,
    ignore_time: bool,
    dumped: tuple[str | None, str | None] = (None, None),
) -> list[MetadataChange]:
    """Container fields, the CRIU dump (run id, time), annotations, spec.dump env (by name)
    and mounts. ``dumped`` is when CRIU wrote each dump (inventory.img's mtime): Podman
    archives have no other checkpoint time."""
    out: list[MetadataChange] = []
    for name in _CONTAINER_FIELDS + (() if ignore_time else _TIME_FIELDS):
        va, vb = getattr(a.container, name), getattr(b.container, name)
        if va != vb:
            out.append(_changed(name, va, vb))
    if not ignore_time and dumped[0] != dumped[1]:
        out.append(_changed("dumped", *dumped))
    run_a = a.inventory.dump_criu_run_id if a.inventory else None
    run_b = b.inventory.dump_criu_run_id if b.inventory else None
    if run_a != run_b:
        out.append(_changed("criu-run-id", run_a, run_b))
    out += compare_maps(
        "annotations/", a.metadata.annotations, b.metadata.annotations, ignore_time=ignore_time
    )
    out += compare_maps("env/", env_map(env_a), env_map(env_b), redact=not show_secrets)
    out += compare_maps(
        "mounts/",
        _by_key((m.destination, _spec_mount(m)) for m in a.spec_mounts),
        _by_key((m.destination, _spec_mount(m)) for m in b.spec_mounts),
    )
    out += compare_maps(
        "criu-mounts/",
        _by_key((m.mountpoint, _criu_mount(m)) for m in a.mounts),
        _by_key((m.mountpoint, _criu_mount(m)) for m in b.mounts),
    )
    return out


def same_container(a: Container, b: Container) -> tuple[bool, str | None]:
    """Whether both archives are of one container (by id, else by name), and a note if not."""
    if a.id and b.id:
        same = a.id == b.id
    else:
        same = (a.name, a.pod, a.namespace) == (b.name, b.pod, b.namespace)
    if same:
        return True, None

    def who(c: Container) -> str:
        return f"{c.name or '-'} ({(c.id or '-')[:12]})"

    return False, f"checkpoints of different containers: A: {who(a)}, B: {who(b)}"


# ---------------------------------------------------------------------------------------------
# Processes


def identity(p: Process) -> tuple[str | None, tuple[str, ...] | None]:
    """What a process is, whatever its pid: its comm and command line."""
    return p.comm, tuple(p.cmdline) if p.cmdline is not None else None


def _ref(p: Process) -> ProcessRef:
    return ProcessRef(p.pid, p.ppid, p.comm, p.cmdline, p.state)


@dataclass(frozen=True, slots=True)
class Pair:
    """Processes matched across the two sides; one of them is None for added/removed."""

    status: str
    a: Process | None
    b: Process | None


def match_processes(a: Sequence[Process], b: Sequence[Process]) -> list[Pair]:
    """Match by pid and identity, then by identity alone (replaced), then by pid (changed)."""
    by_pid_b = {p.pid: p for p in b}
    pairs: list[Pair] = []
    left_a: list[Process] = []
    used_b: set[int] = set()
    for p in a:
        q = by_pid_b.get(p.pid)
        if q is not None and identity(p) == identity(q):
            pairs.append(Pair(SAME, p, q))
            used_b.add(q.pid)
        else:
            left_a.append(p)
    left_b = [q for q in b if q.pid not in used_b]
    # a restarted process: the same comm and command line under another pid
    groups_a: dict[object, list[Process]] = {}
    groups_b: dict[object, list[Process]] = {}
    for p in sorted(left_a, key=lambda x: x.pid):
        if p.cmdline is not None:
            groups_a.setdefault(identity(p), []).append(p)
    for q in sorted(left_b, key=lambda x: x.pid):
        if q.cmdline is not None:
            groups_b.setdefault(identity(q), []).append(q)
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    for key, group in groups_a.items():
        for p, q in zip(group, groups_b.get(key, []), strict=False):
            pairs.append(Pair(REPLACED, p, q))
            taken_a.add(p.pid)
            taken_b.add(q.pid)
    left_a = [p for p in left_a if p.pid not in taken_a]
    left_b = [q for q in left_b if q.pid not in taken_b]
    rest_b = {q.pid: q for q in left_b}
    for p in left_a:
        q = rest_b.pop(p.pid, None)
        pairs.append(Pair(CHANGED, p, q) if q is not None else Pair(REMOVED, p, None))
    pairs += [Pair(ADDED, None, q) for q in rest_b.values()]
    pairs.sort(key=pair_key)
    return pairs


def pair_key(pair: Pair) -> tuple[int, int, str]:
    """A sort key that does not depend on which side is A: the pids, then the identity (two
    restarted processes can swap pids, and a replaced pair has one identity on both sides)."""
    pids = [p.pid for p in (pair.a, pair.b) if p is not None]
    one = pair.a or pair.b
    assert one is not None
    return min(pids), max(pids), repr(identity(one))


def _creds(p: Process) -> dict[str, object]:
    if p.creds is None:
        return {}
    return {f"creds.{f.name}": getattr(p.creds, f.name) for f in fields(p.creds)}


def _env(p: Process) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for var in p.env or []:
        out.setdefault(var.name, var.value)
    return out


def process_changes(
    a: Process, b: Process, *, show_secrets: bool, env_known: bool = True
) -> list[ValueChange]:
    """The fields that differ between two matched processes (pid aside)."""
    out: list[ValueChange] = []

    def cmp(name: str, va: object, vb: object) -> None:
        if va != vb:
            out.append(ValueChange(name, va, vb))

    cmp("comm", a.comm, b.comm)
    cmp("cmdline", a.cmdline, b.cmdline)
    cmp("ppid", a.ppid, b.ppid)
    cmp("state", a.state, b.state)
    cmp("exit_code", a.exit_code, b.exit_code)
    cmp("threads", len(a.threads), len(b.threads))
    cmp("exe", a.exe, b.exe)
    ca, cb = _creds(a), _creds(b)
    for key in sorted(ca.keys() | cb.keys()):
        cmp(key, ca.get(key), cb.get(key))
    if env_known and a.env is not None and b.env is not None:
        ea, eb = _env(a), _env(b)
        for key in sorted(ea.keys() | eb.keys()):
            va, vb = ea.get(key, _MISSING), eb.get(key, _MISSING)
            if va == vb:
                continue
            if show_secrets:
                out.append(ValueChange(f"env/{key}", _present(va), _present(vb)))
            else:
                # only which side has the name is shown; the values stay hidden
                out.append(
                    ValueChange(
                        f"env/{key}",
                        None if va is _MISSING else "<redacted>",
                        None if vb is _MISSING else "<redacted>",
                        redacted=True,
                    )
                )
    return out


_MISSING = object()


def _present(value: object) -> object:
    return None if value is _MISSING else value


def compare_processes(pairs: Sequence[Pair], *, show_secrets: bool) -> list[ProcessChange]:
    """Process records that differ (unchanged processes are left out)."""
    out: list[ProcessChange] = []
    for pair in pairs:
        if pair.a is not None and pair.b is not None:
            changes = process_changes(pair.a, pair.b, show_secrets=show_secrets)
            status = pair.status
            if status in (SAME, CHANGED):
                if not changes:
                    continue
                status = CHANGED
            out.append(ProcessChange(status, _ref(pair.a), _ref(pair.b), changes))
        else:
            one = pair.a or pair.b
            assert one is not None
            ref = _ref(one)
            out.append(ProcessChange(pair.status, ref if pair.a else None, ref if pair.b else None))
    return out


def process_label(p: Process) -> str:
    if p.cmdline:
        return shlex.join(p.cmdline)
    return p.comm or "?"


# ---------------------------------------------------------------------------------------------
# Open files and sockets


def compare_files(pairs: Sequence[Pair]) -> list[FileChange]:
    """Descriptors added or removed, per matched process, keyed by fd, type and description."""
    out: list[FileChange] = []
    for pair in sorted(pairs, key=pair_key):
        if pair.a is None or pair.b is None:
            continue
        fa = {(f.fd, f.type, f.description) for f in pair.a.files}
        fb = {(f.fd, f.type, f.description) for f in pair.b.files}
        changes = [FileChange(REMOVED, pair.a.pid, *key) for key in fa - fb]
        changes += [FileChange(ADDED, pair.b.pid, *key) for key in fb - fa]
        changes.sort(key=lambda c: (_fd_order(c.fd), c.type, c.description))
        out += changes
    return out


def _fd_order(fd: str) -> tuple[int, str]:
    return (int(fd), "") if fd.isdigit() else (1 << 30, fd)


def _socket_keys(sockets: Sequence[Socket]) -> dict[int, set[tuple[object, ...]]]:
    out: dict[int, set[tuple[object, ...]]] = {}
    for s in sockets:
        key = (s.family, s.type, s.protocol, s.state, s.local, s.peer)
        for holder in s.holders:
            pid = holder.partition(":")[0]
            if pid.isdigit():
                out.setdefault(int(pid), set()).add(key)
    return out


def compare_sockets(
    pairs: Sequence[Pair], a: Sequence[Socket], b: Sequence[Socket]
) -> list[SocketChange]:
    """Sockets added or removed per matched process."""
    ka, kb = _socket_keys(a), _socket_keys(b)
    out: list[SocketChange] = []
    for pair in sorted(pairs, key=pair_key):
        if pair.a is None or pair.b is None:
            continue
        sa, sb = ka.get(pair.a.pid, set()), kb.get(pair.b.pid, set())
        changes = [SocketChange(REMOVED, pair.a.pid, *key) for key in sa - sb]  # type: ignore[arg-type]
        changes += [SocketChange(ADDED, pair.b.pid, *key) for key in sb - sa]  # type: ignore[arg-type]
        changes.sort(key=lambda s: repr((s.local, s.peer, s.family, s.type, s.protocol, s.state)))
        out += changes
    return out


# ---------------------------------------------------------------------------------------------
# Filesystem and members


def fs_status(a: FsState | None, b: FsState | None) -> str | None:
    """How a path's state moved from A to B (None: equal). Absent means the image's content."""
    if _fs_same(a, b):
        return None
    if a is None:
        return DELETED if b is not None and b.type == "deleted" else ADDED
    if b is None:
        return ADDED if a.type == "deleted" else DELETED
    if a.type == "deleted":
        return ADDED
    if b.type == "deleted":
        return DELETED
    return CHANGED


def _fs_same(a: FsState | None, b: FsState | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.type == "deleted" or b.type == "deleted":
        return a.type == b.type  # deleted.files and a whiteout say the same thing
    return (a.type, a.size, a.sha256, a.mode, a.linkname) == (
        b.type,
        b.size,
        b.sha256,
        b.mode,
        b.linkname,
    )


def compare_fs(a: Mapping[str, FsState], b: Mapping[str, FsState]) -> list[FsChange]:
    """Paths whose state differs, sorted by path."""
    out = []
    for path in sorted(a.keys() | b.keys()):
        sa, sb = a.get(path), b.get(path)
        status = fs_status(sa, sb)
        if status is not None:
            out.append(FsChange(path, status, sa, sb))
    return out


def compare_members(
    a: Sequence[TarMember],
    b: Sequence[TarMember],
    digests_a: Mapping[str, str] | None = None,
    digests_b: Mapping[str, str] | None = None,
) -> list[MemberChange]:
    """Members only in A or only in B, by name, and members whose bytes differ.

    Every member but the pages files (compared page by page in the memory section) has a
    SHA-256 on each side: a member whose bytes differ is changed, whatever the other sections
    make of it, so that no damage or edit goes unreported.
    """
    da, db = digests_a or {}, digests_b or {}
    ma = {m.name: m for m in a}
    mb = {m.name: m for m in b}

    def removed(m: TarMember) -> MemberChange:
        return MemberChange(m.name, REMOVED, m.type, m.size, m.size, None, da.get(m.name), None)

    def added(m: TarMember) -> MemberChange:
        return MemberChange(m.name, ADDED, m.type, m.size, None, m.size, None, db.get(m.name))

    out = [removed(ma[n]) for n in ma.keys() - mb.keys()]
    out += [added(mb[n]) for n in mb.keys() - ma.keys()]
    for n in ma.keys() & mb.keys():
        old, new = ma[n], mb[n]
        if old.type != new.type:  # another kind of member under the same name
            out += [removed(old), added(new)]
        elif old.linkname != new.linkname or da.get(n) != db.get(n):
            out.append(
                MemberChange(n, CHANGED, new.type, None, old.size, new.size, da.get(n), db.get(n))
            )
    out.sort(key=lambda m: (m.name, m.status))
    return out
