"""Shared memory: which processes map a byte of a shared segment or of a tmpfs file.

* Anonymous shared memory, SysV shm and memfd: ``pagemap-shmem-<shmid>.img`` points to a
  ``pages-N.img`` like a task's pagemap, but its ``vaddr`` is a byte offset in the segment. A
  byte at segment offset X is at ``vma.start + (X - vma.pgoff)`` in every process with a VMA of
  that shmid (reference/criu-images.md §3.4).
* POSIX shm and other tmpfs files: their bytes are in ``devshm-checkpoint.tar`` (``/dev/shm``)
  or ``checkpoint/tmpfs-dev-<root_dev>.tar.gz.img`` (the tmpfs mounted wherever
  mountpoints-*.img puts that device), and a process maps them through a file-backed shared
  VMA of that path.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kcheckpoint.inspect.criu.memory import (
    SHMEM_PAGEMAP_RE,
    MemoryModel,
    PageRun,
    decode_image,
    runs_of,
)

_SHMID = re.compile(r"^\[shared shmid=(\d+)\]$")
_TMPFS = re.compile(r"^checkpoint/tmpfs-dev-(\d+)\.tar(?:\.gz)?\.img$")


@dataclass(frozen=True, slots=True)
class MappedAt:
    """One process that maps a shared byte, and where."""

    pid: int
    comm: str | None
    address: str
    #: The mapping, as ``search`` and ``secrets`` show it (``MappingRef``).
    mapping: Any


@dataclass(frozen=True, slots=True)
class _Segment:
    shmid: int
    runs: list[PageRun]
    offsets: list[int]


class SharedMemory:
    """Maps positions in shared segments and tmpfs files to the processes that map them."""

    def __init__(self, model: MemoryModel, images: Mapping[str, bytes]) -> None:
        from .search import MappingRef

        self._ref = MappingRef
        self._segments: dict[str, _Segment] = {}
        for name, data in images.items():
            m = SHMEM_PAGEMAP_RE.match(name)
            image = decode_image(name, data, []) if m else None
            head = image.head if image is not None else None
            if m is None or image is None or head is None or not head.HasField("pages_id"):
                continue
            runs = [r for r in runs_of(list(image.entries), 4096) if r.offset is not None]
            runs.sort(key=lambda r: r.offset or 0)
            self._segments[f"checkpoint/pages-{int(head.pages_id)}.img"] = _Segment(
                int(m.group(1)), runs, [r.offset or 0 for r in runs]
            )
        self._by_shmid: dict[int, list[tuple[Any, Any]]] = {}
        self._by_path: dict[str, list[tuple[Any, Any]]] = {}
        for pmem in sorted(model.processes.values(), key=lambda p: p.pid):
            if not pmem.live:
                continue
            for vma in pmem.vmas:
                if vma.kind != "shared":
                    continue
                if sm := _SHMID.match(vma.backing):
                    self._by_shmid.setdefault(int(sm.group(1)), []).append((pmem, vma))
                else:
                    path = vma.backing.split(" +0x", 1)[0]
                    self._by_path.setdefault(path, []).append((pmem, vma))
        self._mounts = _tmpfs_mounts(images)

    def is_shared_pages(self, member: str) -> bool:
        """Whether ``member`` holds the pages of a shared segment."""
        return member in self._segments

    def pages(self, member: str, offset: int) -> list[MappedAt]:
        """Who maps the byte at ``offset`` of a shared segment's pages file."""
        seg = self._segments.get(member)
        if seg is None:
            return []
        i = bisect.bisect_right(seg.offsets, offset) - 1
        if i < 0 or offset >= seg.offsets[i] + seg.runs[i].length:
            return []
        at = seg.runs[i].vaddr + offset - seg.offsets[i]
        return self._mapped(self._by_shmid.get(seg.shmid, []), at)

    def file(self, member: str, path: str | None, offset: int) -> list[MappedAt]:
        """Who maps the byte at ``offset`` of a file in the /dev/shm or a tmpfs tarball."""
        if path is None:
            return []
        inner = path.removeprefix("./").strip("/")
        if member == "devshm-checkpoint.tar":
            fulls = [f"/dev/shm/{inner}"]
        elif m := _TMPFS.match(member):
            fulls = [f"{p.rstrip('/')}/{inner}" for p in self._mounts.get(int(m.group(1)), [])]
        else:
            return []
        maps = [item for full in dict.fromkeys(fulls) for item in self._by_path.get(full, [])]
        return self._mapped(maps, offset)

    def _mapped(self, maps: list[tuple[Any, Any]], at: int) -> list[MappedAt]:
        out = []
        for pmem, vma in maps:
            if vma.pgoff <= at < vma.pgoff + (vma.end - vma.start):
                ref = self._ref(
                    f"0x{vma.start:x}", f"0x{vma.end:x}", vma.perms, vma.kind, vma.backing
                )
                out.append(MappedAt(pmem.pid, pmem.comm, f"0x{vma.start + at - vma.pgoff:x}", ref))
        return out


def _tmpfs_mounts(images: Mapping[str, bytes]) -> dict[int, list[str]]:
    """root_dev (kernel format, the N of tmpfs-dev-N) -> the mountpoints of that device."""
    out: dict[int, list[str]] = {}
    for name, data in sorted(images.items()):
        if not name.startswith("checkpoint/mountpoints-"):
            continue
        image = decode_image(name, data, [])
        for e in image.entries if image is not None else []:
            point = e.mountpoint
            text = point if isinstance(point, str) else point.decode("utf-8", "replace")
            out.setdefault(int(e.root_dev), []).append(text)
    return out
