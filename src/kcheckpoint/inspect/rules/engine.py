"""The anchor engine: every position of a set of literals (and a few bounded regexes) in a
buffer, in one pass. Hyperscan when it is installed, else ``bytes.find`` and ``re``.

An anchor is a literal keyword (``AKIA``), its UTF-16LE form (``A\\0K\\0I\\0A\\0``), or a short
regex with a fixed width that finds candidates no keyword announces (a bare 40-character AWS
secret). Hyperscan only prefilters a regex anchor: the caller checks it again with ``re``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def wide(data: bytes) -> bytes:
    """``data`` (ASCII) in UTF-16LE: a NUL after every byte."""
    out = bytearray(2 * len(data))
    out[0::2] = data
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What the engine looks for."""

    #: A literal, or a Hyperscan-compatible regex when ``regex`` is set.
    pattern: bytes
    #: The regex for the pure-Python engine (``None`` for a literal).
    regex: re.Pattern[bytes] | None = None
    #: Bytes a regex anchor may span; a literal's length.
    width: int = 0

    @property
    def span(self) -> int:
        return self.width or len(self.pattern)


class AnchorFinder:
    """Finds every anchor position in a buffer: Hyperscan when present, else ``bytes.find``."""

    def __init__(self, anchors: Iterable[Anchor], engine: str = "auto") -> None:
        self.anchors = tuple(dict.fromkeys(anchors))
        self.engine = "python"
        self.longest = max((a.span for a in self.anchors), default=1)
        self._db: Any = None
        if engine in ("auto", "hyperscan"):
            self._db = _hyperscan_db(self.anchors)
            if self._db is not None:
                self.engine = "hyperscan"
            elif engine == "hyperscan":
                raise ValueError("the hyperscan engine is not installed (pip install hyperscan)")

    def find(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        """(position, anchor index) for each anchor that starts in buf[lo:hi], unsorted."""
        anchors = self.anchors
        end = min(len(buf), hi + self.longest)
        if self._db is not None:
            out: list[tuple[int, int]] = []

            def on_match(aid: int, frm: int, to: int, _flags: int, _ctx: object) -> None:
                anchor = anchors[aid]
                if anchor.regex is not None:  # compiled with SOM_LEFTMOST: frm is exact
                    out.append((frm + lo, aid))
                elif lo <= (pos := to + lo - anchor.span) < hi:
                    out.append((pos, aid))

            view = memoryview(buf)[lo:end] if (lo or end < len(buf)) else buf
            self._db.scan(view, match_event_handler=on_match)
            return [(p, a) for p, a in out if p < hi]
        found: list[tuple[int, int]] = []
        find = buf.find
        for aid, anchor in enumerate(anchors):
            if anchor.regex is not None:
                for m in anchor.regex.finditer(buf, lo, end):
                    if m.start() >= hi:
                        break
                    found.append((m.start(), aid))
                continue
            kw = anchor.pattern
            pos = find(kw, lo)
            while 0 <= pos < hi:
                found.append((pos, aid))
                pos = find(kw, pos + 1)
        return found


def literal_finder(literals: Iterable[bytes], engine: str = "auto") -> AnchorFinder:
    """A finder of literals only."""
    return AnchorFinder([Anchor(lit) for lit in literals], engine)


def _hyperscan_db(anchors: tuple[Anchor, ...]) -> Any:
    try:
        import hyperscan  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    if not anchors:
        return None
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[a.pattern if a.regex is not None else _hs_literal(a.pattern) for a in anchors],
        ids=list(range(len(anchors))),
        elements=len(anchors),
        flags=[hyperscan.HS_FLAG_SOM_LEFTMOST if a.regex is not None else 0 for a in anchors],
    )
    return db


def _hs_literal(data: bytes) -> bytes:
    """A literal as a Hyperscan expression: every byte as ``\\xNN`` (NUL included)."""
    return b"".join(b"\\x%02x" % b for b in data)
