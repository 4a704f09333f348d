"""Render ``summary`` rows and ``list`` listings as text."""

from __future__ import annotations

from collections.abc import Sequence

from kcheckpoint.inspect.model import FileEntry, Listing, Summary

from .text import ABSENT, printable, size, table

SUMMARY_HEADERS = (
    "namespace",
    "pod",
    "container",
    "engine",
    "image",
    "checkpointed",
    "processes",
    "command",
    "memory",
    "rootfs changes",
    "size",
    "archive",
)


#: Columns -w/--wide adds, as checkpointctl show prints them.
WIDE_HEADERS = ("id", "runtime", "created", "ip")


def archive_size(s: Summary) -> str:
    """The archive's size as read; for a compressed one, the tar's size too."""
    read = s.input.size if s.input.size is not None else s.sizes.total
    if s.input.compression == "none":
        return size(read)
    return f"{size(read)} ({size(s.sizes.total)} tar)"


def summary_row(s: Summary, *, wide: bool = False) -> list[str]:
    """One table row for an archive; with ``wide``, the WIDE_HEADERS columns before the last."""
    c = s.container
    when = (
        c.checkpointed
        or (f"{c.dumped} (dumped)" if c.dumped else None)
        or (f"{c.created} (created)" if c.created else None)
    )
    pod = c.pod if c.pod else ("(no pod)" if c.engine == "podman" else None)
    changes = f"{s.rootfs_changed} changed, {s.rootfs_deleted} deleted"
    if s.rootfs_mount_points:
        changes += f" (+{s.rootfs_mount_points} mount points)"
    extra = [(c.id or ABSENT)[:12], c.runtime or ABSENT, c.created or ABSENT, c.ip or ABSENT]
    return [
        c.namespace or ABSENT,
        pod or ABSENT,
        c.name or ABSENT,
        c.engine,
        c.image or ABSENT,
        when or ABSENT,
        str(s.processes),
        _short(s.main_command),
        size(s.sizes.memory_pages),
        changes,
        archive_size(s),
        *(extra if wide else []),
        s.input.path,
    ]


def _short(command: str | None, width: int = 40) -> str:
    if not command:
        return ABSENT
    command = printable(command)
    return command if len(command) <= width else command[: width - 1] + "…"


def error_row(path: str, message: str, *, wide: bool = False) -> list[str]:
    """A table row for an archive that could not be read."""
    text = message if message.startswith(path) else f"{path}: {message}"
    width = len(SUMMARY_HEADERS) + (len(WIDE_HEADERS) if wide else 0)
    return [ABSENT] * (width - 1) + [f"error: {text}"]


def summary_table(rows: Sequence[Sequence[str]], *, wide: bool = False) -> str:
    headers = SUMMARY_HEADERS[:-1] + (WIDE_HEADERS if wide else ()) + SUMMARY_HEADERS[-1:]
    return table(headers, rows)


def listing_text(listing: Listing) -> str:
    """Members, rootfs changes, deleted paths and nested tarballs, as tables with headings."""
    parts: list[str] = []
    rows = [
        [
            m.name + ("/" if m.type == "dir" else ""),
            m.type,
            size(m.size) if m.type == "file" else ABSENT,
            m.mode,
            m.mtime,
            m.category,
            m.secrets or "",
        ]
        for m in listing.members
    ]
    parts.append(f"Members of {listing.input.path} ({len(listing.members)})\n")
    parts.append(
        table(("name", "type", "size", "mode", "mtime", "category", "may hold secrets"), rows)
    )

    rootfs = listing.rootfs
    label = "rootfs-diff.tar" + (" (gzip)" if rootfs.compression == "gzip" else "")
    parts.append(f"\nAdded or changed files in {label} ({len(rootfs.changed)})\n")
    parts.append(_file_table(rootfs.changed))
    if rootfs.mount_points:
        parts.append(
            f"\nEmpty mount points the runtime created, not the workload's changes "
            f"({len(rootfs.mount_points)})\n"
        )
        parts.append(_file_table(rootfs.mount_points))
    parts.append(f"\nDeleted paths ({len(rootfs.deleted)})\n")
    if rootfs.deleted:
        parts.append(table(("path", "source"), [[d.path, d.source] for d in rootfs.deleted]))
    for nested in listing.nested:
        what = "/dev/shm" if nested.kind == "devshm" else f"tmpfs mount {nested.mount_id}"
        parts.append(f"\nFiles in {nested.member} ({what}, {len(nested.entries)})\n")
        if nested.entries:
            parts.append(
                table(
                    ("path", "type", "size", "mode", "link"),
                    [
                        [e.path, e.type, size(e.size), e.mode, e.linkname or ""]
                        for e in nested.entries
                    ],
                )
            )
    return "".join(parts)


def _file_table(files: list[FileEntry]) -> str:
    """Files of rootfs-diff.tar as a table (nothing when there are none)."""
    if not files:
        return ""
    rows = [
        [
            _absolute(f.path) + ("/" if f.type == "dir" else ""),
            f.type,
            size(f.size),
            f.mode,
            f.mtime,
        ]
        for f in files
    ]
    return table(("path", "type", "size", "mode", "mtime"), rows)


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path
