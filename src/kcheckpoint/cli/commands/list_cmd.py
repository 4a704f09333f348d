"""kcheckpoint list: every member, the files inside rootfs-diff.tar, deleted paths, tmpfs dumps."""

from __future__ import annotations

from typing import Annotated

import typer

from kcheckpoint.inspect import list_path
from kcheckpoint.inspect.model import Listing
from kcheckpoint.render.jsonout import dumps, dumps_lines
from kcheckpoint.render.summary import listing_text

from ..common import FormatOption, HashOption, StrictOption, enforce_strict, report, stdin_for
from ..output import OutputFormat, Progress, out


def list_members(
    archive: Annotated[
        str, typer.Argument(help="The archive, or '-' for stdin.", show_default=False)
    ],
    fmt: FormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
) -> int:
    """List every member of a checkpoint archive.

    Each member shows its type, size, mode, mtime, category (metadata, process, memory,
    filesystem, network, log) and whether it may hold secrets. Then the files inside
    rootfs-diff.tar, the deleted paths (deleted.files or .wh. whiteouts) and the tarballs CRIU
    stores for tmpfs mounts and /dev/shm.
    """
    progress = Progress(archive)
    try:
        result = list_path(
            archive, stdin=stdin_for(archive), hash_input=hash_input, progress=progress
        )
    finally:
        progress.done()
    report(result.input, result.problems, result.warnings)
    enforce_strict(strict, result.input.path, result.problems)
    if fmt is OutputFormat.json:
        out(dumps(result))
    elif fmt is OutputFormat.jsonl:
        out(dumps_lines(_records(result)))
    else:
        out(listing_text(result))
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
