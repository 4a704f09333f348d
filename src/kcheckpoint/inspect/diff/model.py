"""The diff model: what differs between checkpoint A and checkpoint B.

Field names are the JSON keys of ``kcheckpoint diff --format json`` (README "diff"). Every
record is written from A to B: ``added`` means only B has it, ``removed`` (``deleted`` for
files) only A; fields ending in ``_a`` / ``_b`` hold each side's value. Swapping A and B swaps
those fields and turns added into removed; nothing else changes (``diff A B`` and ``diff B A``
are mirror images). Addresses are integers, sizes bytes, ``None`` means absent or redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kcheckpoint.inspect.criu.model import ProcessRef
from kcheckpoint.inspect.model import Container, InputInfo, Problem, SecretsWarning, Sizes

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
REPLACED = "replaced"
DELETED = "deleted"
RESIZED = "resized"

#: Which status is the mirror image of which (diff B A of a record of diff A B).
MIRROR = {ADDED: REMOVED, REMOVED: ADDED, DELETED: ADDED}

#: The SectionCount field each status is counted in: a deleted path counts as removed, a
#: resized mapping as changed.
COUNTED_AS = {
    ADDED: ADDED,
    REMOVED: REMOVED,
    DELETED: REMOVED,
    CHANGED: CHANGED,
    RESIZED: CHANGED,
    REPLACED: REPLACED,
}


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One field whose value differs; ``a``/``b`` are None when absent or redacted."""

    field: str
    a: object
    b: object
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class MetadataChange:
    """A container-level field: ``image``, ``runtime``, ``checkpointed``, ``annotations/KEY``,
    ``env/NAME`` (spec.dump), ``mounts/DEST`` (spec.dump) or ``criu-mounts/PATH``."""

    key: str
    status: str
    a: str | None
    b: str | None
    #: True when both values are hidden (env values, without --show-secrets).
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ProcessChange:
    """A process only in A (removed), only in B (added), in both with other values (changed),
    or restarted under another pid with the same comm and command line (replaced)."""

    status: str
    a: ProcessRef | None
    b: ProcessRef | None
    changes: list[ValueChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FileChange:
    """An open file descriptor (or cwd/root) of a process present on both sides."""

    status: str
    #: The pid on the side that holds the descriptor (B for added, A for removed).
    pid: int
    fd: str
    type: str
    description: str


@dataclass(frozen=True, slots=True)
class SocketChange:
    """A socket held by a process present on both sides."""

    status: str
    pid: int
    family: str
    type: str
    protocol: str | None
    state: str | None
    local: str | None
    peer: str | None


@dataclass(frozen=True, slots=True)
class PageRange:
    """``[start, end)`` virtual addresses."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class MappingDiff:
    """One mapping that differs: only on one side, another size, or pages whose bytes differ."""

    #: added, removed, resized or changed (same bounds, different page contents).
    status: str
    kind: str
    backing: str
    start_a: int | None
    end_a: int | None
    start_b: int | None
    end_b: int | None
    perms_a: str | None
    perms_b: str | None
    #: Bytes of the mapping the archive holds (present pages).
    present_a: int
    present_b: int
    #: Pages present on both sides whose bytes differ, and their total size.
    changed_pages: int
    changed_bytes: int
    #: Pages present on one side only (inside the part both sides map).
    pages_only_a: int
    pages_only_b: int
    #: The changed byte ranges, merged where adjacent; at most ``RANGE_LIMIT`` are listed.
    changed_ranges: list[PageRange]
    changed_ranges_total: int


@dataclass(frozen=True, slots=True)
class ProcessMemoryDiff:
    """One process's memory on both sides, and the mappings that differ."""

    #: same, changed, replaced, added or removed (the process's status).
    status: str
    pid_a: int | None
    pid_b: int | None
    comm_a: str | None
    comm_b: str | None
    present_a: int
    present_b: int
    #: False when pages were not compared (a process on one side only, or a restarted one).
    compared: bool
    changed_pages: int
    changed_bytes: int
    pages_only_a: int
    pages_only_b: int
    mappings: list[MappingDiff] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FsState:
    """A path on one side: in rootfs-diff.tar (a file, dir or link), or deleted."""

    #: file, dir, symlink, hardlink..., or "deleted".
    type: str
    size: int | None
    sha256: str | None
    mode: str | None
    linkname: str | None
    #: For deleted paths: deleted.files, whiteout or opaque-whiteout.
    source: str | None


@dataclass(frozen=True, slots=True)
class FsChange:
    """A path whose state differs. A path in neither diff has the image's content.

    ``added``: B wrote it (or removed A's deletion); ``deleted``: B deleted it or it is no longer
    in B's diff (removed, or back to the image's content); ``changed``: both hold it, differently.
    """

    path: str
    status: str
    a: FsState | None
    b: FsState | None
    #: With --content: a unified diff of a changed text file, or why none is shown.
    content_diff: list[str] | None = None
    content_note: str | None = None


@dataclass(frozen=True, slots=True)
class MemberChange:
    """A tar member only in A (removed), only in B (added), or whose bytes differ (changed)."""

    name: str
    status: str
    type: str
    #: The size on the side that has it; null for a changed member (see size_a, size_b).
    size: int | None
    size_a: int | None = None
    size_b: int | None = None
    #: SHA-256 on each side (null for a side without it, or for pages files and non-files).
    sha256_a: str | None = None
    sha256_b: str | None = None


@dataclass(frozen=True, slots=True)
class SideProblem(Problem):
    """A problem found in one of the two archives; ``side`` is "a" or "b"."""

    side: str


@dataclass(frozen=True, slots=True)
class DiffSide:
    """One of the two archives."""

    input: InputInfo
    container: Container
    sizes: Sizes
    processes: int
    #: The memory-may-hold-secrets warning of this archive (empty without memory pages).
    warnings: list[SecretsWarning]
    #: When CRIU wrote the dump (checkpoint/inventory.img's mtime), or None.
    dumped: str | None = None


@dataclass(frozen=True, slots=True)
class SectionCount:
    """How many records of a section have each status."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    replaced: int = 0


@dataclass(frozen=True, slots=True)
class CheckpointDiff:
    """Everything ``kcheckpoint diff A B`` reports."""

    a: DiffSide
    b: DiffSide
    #: Same SHA-256: nothing else was compared.
    identical: bool
    same_container: bool
    #: Said at the top when the archives are of different containers.
    note: str | None
    ignore_time: bool
    #: Section name -> counts; a section with no difference has all zeros.
    counts: dict[str, SectionCount]
    metadata: list[MetadataChange]
    processes: list[ProcessChange]
    files: list[FileChange]
    sockets: list[SocketChange]
    memory: list[ProcessMemoryDiff]
    filesystem: list[FsChange]
    members: list[MemberChange]
    problems: list[SideProblem]
    #: The number of records that differ, all sections together (0: exit code 0).
    differences: int = 0


def problems_of(side: str, problems: list[Problem]) -> list[SideProblem]:
    return [SideProblem(p.source, p.kind, p.message, side) for p in problems]
