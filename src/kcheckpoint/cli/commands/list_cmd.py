"""kcheckpoint list: every member, the files inside rootfs-diff.tar, deleted paths, tmpfs dumps."""

from __future__ import annotations

import itertools
from dataclasses import replace

from kcheckpoint.inspect import list_path
from kcheckpoint.inspect.model import FileEntry, Listing
from kcheckpoint.inspect.summary import list_stream
from kcheckpoint.render.jsonout import dumps_lines
from kcheckpoint.render.summary import listing_text

from ..common import (
    ArchiveArgument,
    HashOption,
    StrictOption,
    TimelineFormatOption,
    reading,
    settle,
)
from ..output import OutputFormat, out
from ..report import Report, TimelineEvent, emit, epoch, resolve_format


def list_members(
    archive: ArchiveArgument,
    fmt: TimelineFormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
) -> int:
    """List every member of a checkpoint archive.

    Each member shows its type, size, mode, mtime, category (metadata, process, memory,
    filesystem, network, log) and whether it may hold secrets. Then the files inside
    rootfs-diff.tar, the deleted paths (deleted.files or .wh. whiteouts) and the tarballs CRIU
    stores for tmpfs mounts and /dev/shm.
    """
    if resolve_format(fmt) is OutputFormat.jsonl:
        return _stream_jsonl(archive, hash_input, strict)
    with reading(archive, hash_input, fmt) as how:
        result = absolute_rootfs_paths(list_path(archive, **how))
    settle(result, strict)
    emit(
        Report(
            document=result,
            inputs=[result.input],
            text=lambda: listing_text(result),
            records=_records(result),
            csv_columns=CSV_COLUMNS,
            csv_rows=_csv_rows(result),
            timeline=_timeline(result),
        ),
        fmt,
    )
    return 0


def absolute_rootfs_paths(listing: Listing) -> Listing:
    """Paths of rootfs-diff.tar's files as the container sees them, with a leading '/', as
    deleted paths have."""

    def absolute(files: list[FileEntry]) -> list[FileEntry]:
        return [f if f.path.startswith("/") else replace(f, path="/" + f.path) for f in files]

    rootfs = listing.rootfs
    return replace(
        listing,
        rootfs=replace(
            rootfs, changed=absolute(rootfs.changed), mount_points=absolute(rootfs.mount_points)
        ),
    )


CSV_COLUMNS = ("scope", "path", "type", "size", "mode", "mtime", "category", "secrets", "unsafe")


def _csv_rows(listing: Listing) -> list[list[object]]:
    rows: list[list[object]] = []
    for m in listing.members:
        rows.append(
            ["member", m.name, m.type, m.size, m.mode, m.mtime, m.category, m.secrets, m.unsafe]
        )
    for f in listing.rootfs.changed:
        rows.append(["rootfs-changed", f.path, f.type, f.size, f.mode, f.mtime, None, None, None])
    for d in listing.rootfs.deleted:
        rows.append(["rootfs-deleted", d.path, None, None, None, None, None, None, None])
    for n in listing.nested:
        for e in n.entries:
            rows.append(
                [f"nested:{n.member}", e.path, e.type, e.size, e.mode, e.mtime, None, None, None]
            )
    return rows


def _timeline(listing: Listing) -> list[TimelineEvent]:
    """Member and rootfs file mtimes, and the container's creation and checkpoint times."""
    label = listing.input.path
    events = [
        TimelineEvent(f"{label}:{m.name}", mtime=epoch(m.mtime), size=m.size, mode=m.mode)
        for m in listing.members
    ]
    events += [
        TimelineEvent(
            f"{label}:rootfs-diff:{f.path}", mtime=epoch(f.mtime), size=f.size, mode=f.mode
        )
        for f in listing.rootfs.changed
    ]
    c = listing.container
    if created := epoch(c.created):
        events.append(TimelineEvent(f"{label}: {c.name or 'container'} created", crtime=created))
    if checkpointed := epoch(c.checkpointed):
        events.append(
            TimelineEvent(f"{label}: {c.name or 'container'} checkpointed", mtime=checkpointed)
        )
    return events


def _stream_jsonl(archive: str, hash_input: bool | None, strict: bool) -> int:
    """JSON Lines, written as the members are turned into records: memory stays flat however
    many members the archive holds (the other formats hold the whole listing)."""
    with reading(archive, hash_input, OutputFormat.jsonl) as how:
        result, members = list_stream(archive, **how)
    result = absolute_rootfs_paths(result)
    settle(result, strict)
    records = itertools.chain(
        ({"record": "member", "member": m} for m in members), _records(result)
    )
    while batch := list(itertools.islice(records, 1000)):
        out(dumps_lines(batch))
    return 0


def _records(listing: Listing) -> list[dict[str, object]]:
    """JSON Lines records, each tagged with its ``record`` kind."""
    records: list[dict[str, object]] = []
    for m in listing.members:
        records.append({"record": "member", "member": m})
    for f in listing.rootfs.changed:
        records.append({"record": "rootfs-changed", "file": f})
    for d in listing.rootfs.deleted:
        records.append({"record": "rootfs-deleted", "deleted": d})
    for n in listing.nested:
        for e in n.entries:
            records.append({"record": "nested-file", "member": n.member, "kind": n.kind, "file": e})
    return records
