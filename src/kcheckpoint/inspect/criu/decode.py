"""Protobuf entries -> the process model: tree, credentials, open files, memory, argv and env.

Protobuf types stay inside ``kcheckpoint.inspect.criu``; callers get ``model`` dataclasses.
The command line and environment are read from the process's own memory pages through a
``ReadMemory`` callable (``read(pid, start, end) -> bytes | None``), so any memory backend (the
seekable index or the one-pass stream) can serve them.

References:
    reference/criu-images.md §1.3 (file names and keys), §2.2-2.8, §4.1 (argv and envp).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kcheckpoint.inspect.model import Problem
from kcheckpoint.inspect.rules.secrets import redact_secrets

from .imageset import ImageSet
from .memory import entry_flags, entry_pages, runs_of
from .memory import page_size_of as page_size
from .model import Credentials, EnvVar, Memory, OpenFile, Process
from .sockets import describe
from .tables import (
    FD_TYPES,
    PE_PARENT,
    PE_PRESENT,
    SECCOMP_MODES,
    TASK_STATES,
    caps,
    name,
)
from .text import text

#: Bytes ``[start, end)`` of process ``pid``'s memory, or None when the archive lacks them.
ReadMemory = Callable[[int, int, int], bytes | None]

#: argv or envp larger than this is not read (the kernel's own limit is far lower in practice).
MAX_ARGS_BYTES = 4 << 20
_NS_KINDS = ("mnt", "net", "pid", "ipc", "uts", "user", "cgroup", "time")


def state_name(value: int) -> str:
    return TASK_STATES.get(value, f"unknown({value})")


def has_memory(state: str) -> bool:
    """Only alive and stopped tasks have mm, pagemap, fs and fdinfo images."""
    return state in ("alive", "stopped")


def pagemap_pages(entries: list[Any]) -> tuple[int, int, int]:
    """``(present, parent, lazy-only)`` page counts of pagemap entries (CRIU 3.x and 4.x)."""
    present = parent = lazy = 0
    for e in entries:
        count = entry_pages(e)
        flags = entry_flags(e)
        if flags & PE_PRESENT:
            present += count
        elif flags & PE_PARENT:
            parent += count
        else:
            lazy += count
    return present, parent, lazy


def split_args(data: bytes) -> list[str]:
    """argv: NUL-separated strings; the final NUL ends the last one, it does not add one."""
    if data.endswith(b"\0"):
        data = data[:-1]
    return [text(part) or "" for part in data.split(b"\0")] if data else []


def split_env(data: bytes, show_values: bool) -> list[EnvVar]:
    """envp: NUL-separated ``NAME=VALUE``; values stay out unless ``show_values``."""
    out = []
    for item in data.split(b"\0"):
        if not item:
            continue
        key, sep, value = item.partition(b"=")
        if not sep:
            out.append(EnvVar(name=text(item) or "", value=None, redacted=False))
            continue
        out.append(
            EnvVar(
                name=text(key) or "",
                value=text(value) if show_values else None,
                redacted=not show_values,
            )
        )
    return out


def credentials(core: Any | None) -> Credentials | None:
    if core is None or not core.HasField("thread_core") or not core.thread_core.HasField("creds"):
        return None
    c = core.thread_core.creds
    tc = core.thread_core
    seccomp = None
    if tc.HasField("seccomp_mode"):
        seccomp = name(SECCOMP_MODES, tc.seccomp_mode)
    elif core.HasField("tc") and core.tc.HasField("old_seccomp_mode"):
        seccomp = name(SECCOMP_MODES, core.tc.old_seccomp_mode)
    return Credentials(
        uid=c.uid,
        gid=c.gid,
        euid=c.euid,
        egid=c.egid,
        suid=c.suid,
        sgid=c.sgid,
        fsuid=c.fsuid,
        fsgid=c.fsgid,
        groups=list(c.groups),
        cap_effective=caps(list(c.cap_eff)),
        cap_permitted=caps(list(c.cap_prm)),
        cap_inheritable=caps(list(c.cap_inh)),
        cap_bounding=caps(list(c.cap_bnd)),
        cap_ambient=caps(list(c.cap_amb)),
        no_new_privs=bool(c.no_new_privs) if c.HasField("no_new_privs") else None,
        seccomp=seccomp,
    )


class ProcessDecoder:
    """Builds the Process list of one checkpoint."""

    def __init__(
        self,
        images: ImageSet,
        read_memory: ReadMemory | None = None,
        *,
        show_secrets: bool = False,
    ) -> None:
        self.images = images
        self.read_memory = read_memory
        self.show_secrets = show_secrets
        self.problems: list[Problem] = []
        self._files: dict[int, Any] | None = None

    @property
    def files(self) -> dict[int, Any]:
        """files.img entries by id."""
        if self._files is None:
            self._files = {e.id: e for e in self.images.entries("files.img")}
        return self._files

    def tree(self) -> list[Any]:
        """pstree entries; without pstree.img, one per leader core image (ppid unknown)."""
        if self.images.has("pstree.img"):
            return list(self.images.entries("pstree.img"))
        from kcheckpoint._proto.criu import pstree_pb2

        if any(n.startswith("core-") for n in self.images.files):
            self.problems.append(
                Problem(
                    "checkpoint/pstree.img",
                    "missing",
                    "the archive has no pstree.img: the process tree is guessed from core images "
                    "and parents are unknown",
                )
            )
        found = []
        for n in sorted(self.images.files):
            if n.startswith("core-") and n.endswith(".img"):
                core = self.images.first(n)
                if core is not None and core.HasField("tc"):
                    pid = int(n[5:-4])
                    found.append(pstree_pb2.pstree_entry(pid=pid, ppid=0, threads=[pid]))
        return sorted(found, key=lambda e: e.pid)

    def processes(self) -> list[Process]:
        entries = []
        seen: set[int] = set()
        for e in self.tree():
            if e.pid in seen:
                self.problems.append(
                    Problem("checkpoint/pstree.img", "bad-tree", f"pid {e.pid} appears twice")
                )
                continue
            seen.add(e.pid)
            entries.append(e)
        procs = [self.process(e) for e in entries]
        parents = self._tree_parents(procs)
        children: dict[int, list[int]] = {}
        for p in procs:
            if parents[p.pid] is not None:
                children.setdefault(p.ppid, []).append(p.pid)
        for p in procs:
            p.children.extend(sorted(children.get(p.pid, [])))
        return procs

    def _tree_parents(self, procs: list[Process]) -> dict[int, int | None]:
        """Each pid's parent in the tree, None for a root; a loop of parents is cut (reported)
        at its lowest pid, so that the tree stays a tree. Iterative: chains may be deep."""
        ppid = {p.pid: p.ppid for p in procs}
        parents: dict[int, int | None] = {
            pid: (parent if parent in ppid else None) for pid, parent in ppid.items()
        }
        rooted: set[int] = set()
        for start in ppid:
            path: list[int] = []
            on_path: set[int] = set()
            pid: int | None = start
            while pid is not None and pid not in rooted and pid not in on_path:
                path.append(pid)
                on_path.add(pid)
                pid = parents[pid]
            if pid is not None and pid in on_path:  # a loop: cut it at its lowest pid
                loop = path[path.index(pid) :]
                cut = min(loop)
                parents[cut] = None
                self.problems.append(
                    Problem(
                        "checkpoint/pstree.img",
                        "bad-tree",
                        f"pid {cut}'s parents form a loop ({' -> '.join(map(str, loop))}); "
                        "it is shown as a root",
                    )
                )
            rooted.update(path)
        return parents

    def process(self, entry: Any) -> Process:
        pid = entry.pid
        core = self.images.first(f"core-{pid}.img")
        if core is None and not self.images.has(f"core-{pid}.img"):
            self.problems.append(
                Problem(f"checkpoint/core-{pid}.img", "missing", f"pid {pid} has no core image")
            )
        tc = core.tc if core is not None and core.HasField("tc") else None
        state = state_name(tc.task_state) if tc is not None else "unknown"
        threads = list(entry.threads) or [pid]
        thread_names: dict[str, str] = {}
        for tid in threads:
            if tid == pid:
                continue
            tcore = self.images.first(f"core-{tid}.img")
            if tcore is not None and tcore.HasField("thread_core"):
                label = text(tcore.thread_core.comm)
                if label:
                    thread_names[str(tid)] = label
        ids = self.images.first(f"ids-{pid}.img") if has_memory(state) else None
        mm = self.images.first(f"mm-{pid}.img") if has_memory(state) else None
        exe = None
        if mm is not None and mm.exe_file_id in self.files:
            exe_entry = self.files[mm.exe_file_id]
            exe = text(exe_entry.reg.name) if exe_entry.HasField("reg") else None
        cmdline, env = self._args(pid, mm)
        return Process(
            pid=pid,
            ppid=entry.ppid,
            pgid=entry.pgid,
            sid=entry.sid,
            comm=text(tc.comm) if tc is not None else None,
            state=state,
            exit_code=tc.exit_code if tc is not None and state == "zombie" else None,
            threads=threads,
            thread_names=thread_names,
            creds=credentials(core),
            exe=exe,
            cmdline=cmdline,
            env=env,
            files=self._open_files(pid, ids) if has_memory(state) else [],
            namespaces=self._namespaces(ids),
            memory=self._memory(pid, mm) if has_memory(state) else None,
        )

    def _namespaces(self, ids: Any | None) -> dict[str, int]:
        if ids is None:
            return {}
        return {
            kind: getattr(ids, f"{kind}_ns_id")
            for kind in _NS_KINDS
            if ids.HasField(f"{kind}_ns_id")
        }

    def _memory(self, pid: int, mm: Any | None) -> Memory | None:
        name_ = f"pagemap-{pid}.img"
        if not self.images.has(name_):
            return None
        head = self.images.head(name_)
        entries = list(self.images.entries(name_))
        psize = page_size(mm)
        kept = len(runs_of(entries, psize, self.problems, f"checkpoint/{name_}"))
        present, parent, lazy = pagemap_pages(entries[:kept])  # entries past damage are ignored
        return Memory(
            pages_id=head.pages_id if head is not None and head.HasField("pages_id") else None,
            present_pages=present,
            parent_pages=parent,
            lazy_pages=lazy,
            page_size=page_size(mm),
            vmas=len(mm.vmas) if mm is not None else 0,
        )

    def _read(self, pid: int, start: int, end: int, what: str) -> bytes | None:
        if self.read_memory is None or end <= start:
            return None
        if end - start > MAX_ARGS_BYTES:
            self.problems.append(
                Problem(
                    f"checkpoint/mm-{pid}.img",
                    "bad-range",
                    f"pid {pid}: the {what} range is {end - start} bytes; not read",
                )
            )
            return None
        return self.read_memory(pid, start, end)

    def _args(self, pid: int, mm: Any | None) -> tuple[list[str] | None, list[EnvVar] | None]:
        if mm is None:
            return None, None
        argv = self._read(pid, mm.mm_arg_start, mm.mm_arg_end, "argument")
        envp = self._read(pid, mm.mm_env_start, mm.mm_env_end, "environment")
        cmdline = split_args(argv) if argv is not None else None
        if cmdline is not None and not self.show_secrets:
            cmdline = [redact_secrets(arg) for arg in cmdline]
        env = split_env(envp, self.show_secrets) if envp is not None else None
        return cmdline, env

    def _open_files(self, pid: int, ids: Any | None) -> list[OpenFile]:
        out: list[OpenFile] = []
        if ids is not None and ids.HasField("files_id"):
            for fd in self.images.entries(f"fdinfo-{ids.files_id}.img"):
                out.append(self._open_file(str(fd.fd), fd.type, fd.id, fd.flags))
        fs = self.images.first(f"fs-{pid}.img")
        if fs is not None:
            out.append(self._open_file("cwd", 1, fs.cwd_id, 0))
            out.append(self._open_file("root", 1, fs.root_id, 0))
        return out

    def _open_file(self, fd: str, ftype: int, file_id: int, fd_flags: int) -> OpenFile:
        entry = self.files.get(file_id)
        description, path = describe(entry, ftype, file_id)
        flags = pos = None
        if entry is not None:
            detail = None
            for field_name in ("reg", "pipe", "usk", "isk", "psk", "efd", "tfd", "sgfd"):
                if entry.HasField(field_name):
                    detail = getattr(entry, field_name)
                    break
            if detail is not None and detail.HasField("flags"):
                flags = f"0o{detail.flags:o}"
            if entry.HasField("reg"):
                pos = entry.reg.pos
        return OpenFile(
            fd=fd,
            type=name(FD_TYPES, ftype),
            file_id=file_id,
            description=description,
            path=path,
            flags=flags,
            pos=pos,
            cloexec=bool(fd_flags & 1),
        )
