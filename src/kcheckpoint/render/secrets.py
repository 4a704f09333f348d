"""Text for ``kcheckpoint secrets``: findings, groups by fingerprint, counts by rule."""

from __future__ import annotations

from kcheckpoint.inspect.memory.secrets import Finding, Location, SecretsResult

from .text import size, table


def _mapped(loc: Location) -> str:
    if not loc.mapped_by:
        return ""
    return " (mapped by " + ", ".join(f"pid {m.pid} {m.address}" for m in loc.mapped_by) + ")"


def location_text(loc: Location) -> str:
    if loc.source == "memory":
        mapping = loc.mapping.backing if loc.mapping is not None else "(no mapping)"
        return f"pid {loc.pid} {loc.comm or '?'} {loc.address} {mapping}"
    if loc.source == "shared-memory":
        return f"{loc.member}+{loc.offset} (shared memory){_mapped(loc)}"
    if loc.source == "stale-memory":
        return f"{loc.member}+{loc.offset} (stale pages: no live process)"
    if loc.path is not None:
        return f"{loc.member}!{loc.path}+{loc.offset}{_mapped(loc)}"
    return f"{loc.member}+{loc.offset}"


def _via(f: Finding) -> str:
    """How the finding was made: by its rule, as a copy of a flagged value, or as a pair."""
    if f.copy_of is not None:
        return "copy"
    if f.key_id is not None:
        return f"pair {f.key_id.preview.split('…', 1)[0]}"
    return "rule"


def _enc(f: Finding) -> str:
    return " (utf-16le)" if f.encoding == "utf-16le" else ""


def _value(f: Finding) -> str:
    return f.secret if f.secret is not None else f.preview


def secrets_text(result: SecretsResult) -> str:
    parts = []
    if result.findings:
        rows = [
            [
                f.rule,
                location_text(f.location) + _enc(f),
                f.name,
                _value(f),
                f.length,
                f.confidence,
                _via(f),
                f.fingerprint,
            ]
            for f in result.findings
        ]
        parts.append(
            table(
                ["rule", "location", "name", "preview", "length", "conf", "via", "fingerprint"],
                rows,
            )
        )
        groups = [
            [
                g.fingerprint,
                ",".join(g.rules),
                g.preview,
                g.count,
                g.copies,
                g.confidence,
                ",".join(str(p) for p in g.pids) or None,
                ",".join(g.names) or None,
            ]
            for g in result.groups
        ]
        parts.append(
            "\n"
            + table(
                ["fingerprint", "rules", "preview", "count", "copies", "conf", "pids", "names"],
                groups,
            )
        )
    scanned = size(result.memory_bytes + result.other_bytes)
    by_rule = ", ".join(f"{k} {v}" for k, v in result.by_rule.items()) or "none"
    parts.append(
        f"\n{len(result.findings)} finding(s), {len(result.groups)} distinct secret(s) "
        f"in {scanned} scanned ({by_rule}); rule set {result.ruleset.version}/"
        f"{result.ruleset.digest}, engine {result.ruleset.engine}"
        + ("" if result.copies_searched else "; copies not searched (stdin)")
        + (f"; {result.copies_dropped} more copies not listed" if result.copies_dropped else "")
        + "\n"
    )
    return "".join(parts).lstrip("\n")


CSV_COLUMNS = [
    "rule",
    "source",
    "pid",
    "comm",
    "address",
    "backing",
    "member",
    "offset",
    "path",
    "name",
    "preview",
    "length",
    "fingerprint",
    "confidence",
    "encoding",
    "copy_of",
]


def csv_rows(result: SecretsResult) -> list[list[object]]:
    return [
        [
            f.rule,
            f.location.source,
            f.location.pid,
            f.location.comm,
            f.location.address,
            f.location.mapping.backing if f.location.mapping is not None else None,
            f.location.member,
            f.location.offset,
            f.location.path,
            f.name,
            _value(f),
            f.length,
            f.fingerprint,
            f.confidence,
            f.encoding,
            location_text(f.copy_of) if f.copy_of is not None else None,
        ]
        for f in result.findings
    ]
