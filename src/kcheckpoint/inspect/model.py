"""The archive-level model: plain dataclasses that renderers turn into tables, trees or JSON.

Field names are the JSON keys (the JSON output is a contract; see README "JSON output").
Times are ISO 8601 UTC strings, modes are octal strings, sizes are bytes. ``None`` means the
archive does not say.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong that the archive itself shows; the rest can still be read."""

    source: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class InputInfo:
    """Where the archive came from and how it was read."""

    path: str
    size: int | None
    compression: str
    #: "seekable" (indexed by headers, read at offsets) or "stream" (one forward pass).
    read_mode: str
    #: SHA-256 of the input bytes as given (compressed or not); None when not computed.
    sha256: str | None


@dataclass(frozen=True, slots=True)
class Member:
    """One member of the checkpoint archive."""

    name: str
    type: str
    size: int
    mode: str
    mtime: str
    category: str
    #: Why this member may hold secrets, or None.
    secrets: str | None
    linkname: str | None
    #: Why the name or link is unsafe (it would leave the archive), or None.
    unsafe: str | None


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file inside a nested tar (rootfs-diff.tar, a tmpfs or /dev/shm dump)."""

    path: str
    type: str
    size: int
    mode: str
    mtime: str
    linkname: str | None


@dataclass(frozen=True, slots=True)
class DeletedPath:
    """A path the container deleted, from deleted.files or a ``.wh.`` whiteout."""

    path: str
    source: str


@dataclass(frozen=True, slots=True)
class RootfsDiff:
    """The container's filesystem changes, from rootfs-diff.tar and deleted.files."""

    #: "none" when rootfs-diff.tar is a plain tar, "gzip" for containerd's layer tar.
    compression: str | None
    #: Regular files, directories and links added or changed (the archive does not tell which).
    changed: list[FileEntry] = field(default_factory=list)
    deleted: list[DeletedPath] = field(default_factory=list)
    #: Empty files and directories the OCI runtime created as targets of the spec's bind
    #: mounts (runc's /etc/hostname, /etc/hosts, /etc/resolv.conf): not the workload's changes.
    mount_points: list[FileEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NestedArchive:
    """A tarball CRIU or the engine stored for a tmpfs mount or for /dev/shm."""

    member: str
    kind: str
    #: CRIU's mount id for tmpfs dumps (the N in tmpfs-dev-N.tar.gz.img).
    mount_id: int | None
    entries: list[FileEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SecretsWarning:
    """The archive holds memory pages, which may hold secrets."""

    processes: int
    memory_bytes: int
    message: str


def secrets_warning(processes: int, memory_bytes: int) -> list[SecretsWarning]:
    """The warning every command gives for an archive that holds memory pages."""
    if memory_bytes <= 0:
        return []
    message = (
        f"this checkpoint holds {memory_bytes} bytes of memory pages from {processes} "
        "process(es); memory may hold passwords, keys and tokens: handle it as a secret"
    )
    return [SecretsWarning(processes=processes, memory_bytes=memory_bytes, message=message)]


@dataclass(frozen=True, slots=True)
class Container:
    """Who was checkpointed, read from config.dump and spec.dump annotations."""

    engine: str
    name: str | None
    id: str | None
    image: str | None
    runtime: str | None
    created: str | None
    checkpointed: str | None
    pod: str | None
    namespace: str | None
    ip: str | None
    #: When CRIU wrote the images: the tar mtime of checkpoint/inventory.img. The only
    #: checkpoint time a Podman archive records (its config.dump has none).
    dumped: str | None = None
    #: The container's state when it was checkpointed (containerd's status.dump: "running").
    state: str | None = None
    #: When the checkpoint this container had been restored from was taken (containerd's
    #: status.dump annotations); None for a container that was started, not restored.
    restored_from: str | None = None


@dataclass(frozen=True, slots=True)
class Sizes:
    """Sizes from the tar headers, in bytes."""

    total: int
    checkpoint: int
    memory_pages: int
    rootfs_diff: int


@dataclass(frozen=True, slots=True)
class Summary:
    """One archive in a line: the result of ``kcheckpoint summary``."""

    input: InputInfo
    container: Container
    sizes: Sizes
    #: Processes in the dump: pstree.img entries (threads not counted); without a readable
    #: pstree.img, the count of core-*.img.
    processes: int
    rootfs_changed: int
    rootfs_deleted: int
    #: Empty mount targets the runtime created (RootfsDiff.mount_points), not in rootfs_changed.
    rootfs_mount_points: int
    members: int
    problems: list[Problem]
    warnings: list[SecretsWarning]
    #: The root process's command line, read from its memory (its comm when memory is absent).
    main_command: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """Every member of one archive, and the files inside its nested tars."""

    input: InputInfo
    container: Container
    members: list[Member]
    rootfs: RootfsDiff
    nested: list[NestedArchive]
    problems: list[Problem]
    warnings: list[SecretsWarning]
