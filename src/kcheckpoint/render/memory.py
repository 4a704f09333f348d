"""Text for ``kcheckpoint memory``: per-process sizes, mappings, and a lossless hexdump."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kcheckpoint.inspect.criu.memory import MappingRow, ProcessMemoryRow

from .text import size, table


def processes_text(rows: Sequence[ProcessMemoryRow], stale: Sequence[str]) -> str:
    body = table(
        [
            "pid",
            "comm",
            "present",
            "heap",
            "stack",
            "anonymous",
            "file",
            "shared",
            "other",
            "not in archive",
            "pages",
        ],
        [
            [
                r.pid,
                r.comm,
                size(r.present),
                size(r.heap),
                size(r.stack),
                size(r.anonymous),
                size(r.file),
                size(r.shared),
                size(r.other),
                size(r.parent + r.lazy),
                r.pages_member,
            ]
            for r in rows
        ],
    )
    for name in stale:
        body += f"stale: {name} (no live process's pagemap points to it)\n"
    return body


def mappings_text(rows: Sequence[MappingRow]) -> str:
    return table(
        ["start", "end", "size", "perms", "kind", "backing", "present", "offset"],
        [
            [
                r.start,
                r.end,
                size(r.size),
                r.perms,
                r.kind,
                r.backing,
                size(r.present),
                r.first_offset,
            ]
            for r in rows
        ],
    )


def hexdump_lines(data: bytes, address: int) -> Iterator[str]:
    """16 bytes a row: address, hex bytes, printable ASCII. Every row is shown (no ``*``)."""
    for i in range(0, len(data), 16):
        row = data[i : i + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        yield f"{address + i:016x}  {hexes:<47}  |{text}|\n"
