"""Text for ``kcheckpoint search``: one row per hit."""

from __future__ import annotations

from kcheckpoint.inspect.memory.search import Hit, SearchResult

from .text import table


def where(hit: Hit) -> str:
    """The mapping of a memory hit, or the file of a file hit."""
    if hit.mapping is not None:
        m = hit.mapping
        return f"{m.start}-{m.end} {m.perms} {m.backing}"
    if hit.path is not None:
        return f"{hit.member}!{hit.path}"
    if hit.source == "stale-memory":
        return "(stale pages: no live process)"
    return hit.member if hit.address is None else "(no mapping)"


def search_text(result: SearchResult, context: bool) -> str:
    headers = ["pid", "comm", "address", "mapping", "member", "offset", "enc"]
    if context:
        headers.append("context")
    rows = []
    for h in result.hits:
        row: list[object] = [h.pid, h.comm, h.address, where(h), h.member, h.offset, h.encoding]
        if context:
            row.append(h.context)
        rows.append(row)
    body = table(headers, rows) if rows else ""
    searched = result.memory_bytes + result.other_bytes
    shown = "" if not result.truncated else f" ({len(result.hits)} shown)"
    return body + f"{result.total_hits} hit(s){shown} in {searched} bytes searched\n"


def csv_rows(result: SearchResult) -> list[list[object]]:
    return [
        [
            h.pid,
            h.comm,
            h.address,
            h.mapping.start if h.mapping else None,
            h.mapping.end if h.mapping else None,
            h.mapping.perms if h.mapping else None,
            h.mapping.backing if h.mapping else None,
            h.member,
            h.offset,
            h.path,
            h.length,
            h.encoding,
            h.source,
            h.context,
        ]
        for h in result.hits
    ]


CSV_COLUMNS = [
    "pid",
    "comm",
    "address",
    "mapping_start",
    "mapping_end",
    "perms",
    "backing",
    "member",
    "offset",
    "path",
    "length",
    "encoding",
    "source",
    "context",
]
