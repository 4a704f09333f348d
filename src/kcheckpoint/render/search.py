"""Text for ``kcheckpoint search``: one row per hit."""

from __future__ import annotations

from kcheckpoint.inspect.memory.search import Hit, SearchResult

from .text import fixed_head, fixed_row


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


#: Text columns, and widths that hold what the kernel allows (pid_max 2^22, a 15-byte comm,
#: 47-bit user addresses) and common mappings, so each row can be written as soon as it is found.
_COLUMNS = (
    ("pid", 7),
    ("comm", 15),
    ("address", 14),
    ("mapping", 46),
    ("member", 22),
    ("offset", 10),
    ("enc", 8),
    ("context", 0),
)


def _columns(context: bool) -> tuple[list[str], list[int]]:
    chosen = _COLUMNS if context else _COLUMNS[:-1]
    return [name for name, _ in chosen], [width for _, width in chosen]


def hits_head(context: bool) -> str:
    """The header of the hit table."""
    return fixed_head(*_columns(context))


def hit_line(hit: Hit, context: bool) -> str:
    """One row of the hit table."""
    row: list[object] = [
        hit.pid,
        hit.comm,
        hit.address,
        where(hit),
        hit.member,
        hit.offset,
        hit.encoding,
    ]
    if context:
        row.append(hit.context)
    return fixed_row(row, _columns(context)[1])


def hits_foot(result: SearchResult) -> str:
    """The count line under the table."""
    searched = result.memory_bytes + result.other_bytes
    shown = "" if not result.truncated else f" ({len(result.hits)} shown)"
    return f"{result.total_hits} hit(s){shown} in {searched} bytes searched\n"


def search_text(result: SearchResult, context: bool) -> str:
    """The whole hit table: the same text as a search that writes each row as it is found."""
    body = ""
    if result.hits:
        body = hits_head(context) + "".join(hit_line(h, context) for h in result.hits)
    return body + hits_foot(result)


def csv_row(h: Hit) -> list[object]:
    """One hit's CSV values, in the order of ``CSV_COLUMNS``."""
    m = h.mapping
    return [
        h.pid,
        h.comm,
        h.address,
        m.start if m else None,
        m.end if m else None,
        m.perms if m else None,
        m.backing if m else None,
        h.member,
        h.offset,
        h.path,
        h.length,
        h.encoding,
        h.source,
        h.context,
    ]


def csv_rows(result: SearchResult) -> list[list[object]]:
    return [csv_row(h) for h in result.hits]


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
