"""Build the ``summary`` and ``list`` models from one archive scan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from kcheckpoint.inspect.reader.archive import TarMember
from kcheckpoint.inspect.reader.engines import (
    container_of,
    iso_time,
    parse_metadata,
    split_mount_points,
)
from kcheckpoint.inspect.reader.members import category, secret_reason
from kcheckpoint.inspect.reader.scan import ArchiveScan, process_count, scan_archive, sizes_of
from kcheckpoint.inspect.reader.source import ProgressCallback

from .model import Listing, Member, Problem, Summary, secrets_warning

if TYPE_CHECKING:
    from .criu.decode import ReadMemory


def summarize(scan: ArchiveScan, read_memory: ReadMemory | None = None) -> Summary:
    """The one-line summary of a scanned archive.

    With CRIU images in the scan (``read_images=True``), processes are counted from pstree.img
    and the main command is the root process's command line (read through ``read_memory``).
    """
    from .criu.checkpoint import main_command, process_list

    meta = parse_metadata(scan.blobs)
    sizes = sizes_of(scan)
    processes = process_count(scan)
    command = None
    tree_problems: list[Problem] = []
    if scan.images:
        procs, tree_problems = process_list(scan, read_memory)
        if procs:
            processes = len(procs)
            command = main_command(procs)
    rootfs = split_mount_points(scan.rootfs, meta)
    return Summary(
        input=scan.input,
        container=container_of(meta, scan.names, dumped=scan.dumped),
        sizes=sizes,
        processes=processes,
        rootfs_changed=sum(1 for f in rootfs.changed if f.type != "dir"),
        rootfs_deleted=len(rootfs.deleted),
        rootfs_mount_points=len(rootfs.mount_points),
        members=len(scan.members),
        problems=[*scan.problems, *meta.problems, *tree_problems],
        warnings=secrets_warning(processes, sizes.memory_pages),
        main_command=command,
    )


def listed(m: TarMember) -> Member:
    """One member as ``list`` shows it: category, secret flag, mode and time as text."""
    return Member(
        name=m.name,
        type=m.type,
        size=m.size,
        mode=f"{m.mode & 0o7777:04o}",
        mtime=iso_time(m.mtime),
        category=category(m.name),
        secrets=secret_reason(m.name),
        linkname=m.linkname or None,
        unsafe=m.unsafe,
    )


def listing(scan: ArchiveScan, *, with_members: bool = True) -> Listing:
    """Every member of a scanned archive, with categories and secret flags.

    Without ``with_members``, ``members`` is left empty, for a caller that streams
    ``listed(m)`` for each of ``scan.members`` instead of holding them all.
    """
    meta = parse_metadata(scan.blobs)
    members = [listed(m) for m in scan.members] if with_members else []
    sizes = sizes_of(scan)
    return Listing(
        input=scan.input,
        container=container_of(meta, scan.names, dumped=scan.dumped),
        members=members,
        rootfs=split_mount_points(scan.rootfs, meta),
        nested=scan.nested,
        problems=[*scan.problems, *meta.problems],
        warnings=secrets_warning(process_count(scan), sizes.memory_pages),
    )


def summarize_path(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Scan and summarise one archive (reading only the memory that holds argv)."""
    from .criu.sinks import scan_with_args

    scan, args = scan_with_args(path, stdin=stdin, hash_input=hash_input, progress=progress)
    return summarize(scan, args.read)


def list_path(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Listing:
    """Scan and list one archive."""
    return listing(scan_archive(path, stdin=stdin, hash_input=hash_input, progress=progress))


def list_stream(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Listing, Iterator[Member]]:
    """Scan one archive; its listing without members, and the members one at a time."""
    scan = scan_archive(path, stdin=stdin, hash_input=hash_input, progress=progress)
    return listing(scan, with_members=False), (listed(m) for m in scan.members)
