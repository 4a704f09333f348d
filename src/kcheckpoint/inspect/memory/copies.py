"""Known-value propagation: once a rule has flagged a value, every exact copy of it is the same
secret, wherever it sits and whatever is (or is not) written beside it.

The known values (and their UTF-16LE forms) become one set of literals for the anchor engine
(Hyperscan when installed); a second walk over the archive finds every copy in one pass over
memory, files and logs. Short values and common words are not propagated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kcheckpoint.inspect.rules.engine import AnchorFinder, literal_finder, wide
from kcheckpoint.inspect.rules.secrets import RawFinding, SecretMatcher, StreamSecrets

from .search import CountingSink

#: Values shorter than this are not searched for: too many chance copies.
MIN_KNOWN_LENGTH = 8
#: At most this many copies are kept per value; the rest are counted.
MAX_COPIES_PER_VALUE = 10_000

#: Values that are words people use as placeholders or defaults, not secrets worth tracking.
ALLOW_LIST = frozenset(
    {
        b"password",
        b"passw0rd",
        b"password1",
        b"changeme",
        b"changeit",
        b"letmein1",
        b"secret123",
        b"12345678",
        b"123456789",
        b"1234567890",
        b"qwertyuiop",
        b"abcdefgh",
        b"administrator",
        b"postgres",
        b"localhost",
        b"undefined",
        b"example1",
        b"xxxxxxxx",
    }
)


def propagatable(value: bytes) -> bool:
    """Whether copies of ``value`` are searched for."""
    return (
        len(value) >= MIN_KNOWN_LENGTH
        and value.lower() not in ALLOW_LIST
        and len(set(value)) > 2  # aaaaaaaa, abababab
    )


@dataclass(frozen=True, slots=True)
class Copy:
    """An occurrence of a known value: in which segment, at which stream position."""

    info: Any
    start: int
    #: Index of the value in the known list.
    value: int
    encoding: str


class CopySink(CountingSink):
    """Receives segments from the walk and finds every known value in them.

    With ``matcher_for``, a segment for which it gives a matcher also goes through that
    matcher in the same pass (the candidate secrets of a provider, only where its key id was
    seen): ``raw`` gets their findings.
    """

    def __init__(
        self,
        values: list[bytes],
        engine: str = "auto",
        *,
        matcher_for: Callable[[Any], SecretMatcher | None] | None = None,
    ) -> None:
        super().__init__()
        self.matcher_for = matcher_for
        self.raw: list[tuple[Any, RawFinding]] = []
        literals: list[bytes] = []
        self._meta: list[tuple[int, str]] = []
        for i, value in enumerate(values):
            literals.append(value)
            self._meta.append((i, "ascii"))
            literals.append(wide(value)[:-1])  # its last NUL is checked after (see _scan)
            self._meta.append((i, "utf-16le"))
        self.finder: AnchorFinder = literal_finder(literals, engine if literals else "python")
        # dict.fromkeys in the finder keeps the first of equal literals, in order
        index = {lit: n for n, lit in reversed(list(enumerate(literals)))}
        self._anchor_meta = [self._meta[index[a.pattern]] for a in self.finder.anchors]
        #: The whole length of each occurrence (a UTF-16LE one ends in the NUL left out).
        self._lens = [
            len(a.pattern) + (enc == "utf-16le")
            for a, (_, enc) in zip(self.finder.anchors, self._anchor_meta, strict=True)
        ]
        self.copies: list[Copy] = []
        self.dropped = 0
        self._per_value = [0] * len(values)

    def segment(self, info: Any, chunks: Iterable[bytes]) -> None:
        keep = max(self._lens, default=1) - 1
        carry = b""
        at = info.base  # stream position of carry[0]
        matcher = self.matcher_for(info) if self.matcher_for is not None else None
        rules = StreamSecrets(matcher, info.base) if matcher is not None else None
        for chunk in chunks:
            if rules is not None:
                self.raw.extend((info, f) for f in rules.feed(chunk))
            if not self._lens:
                continue
            if len(chunk) > 2 * keep:  # in place: only the junction with the carry is copied
                if carry:
                    self._scan(info, carry + bytes(chunk[:keep]), at, len(carry))
                    at += len(carry)
                hi = len(chunk) - keep
                self._scan(info, chunk, at, hi)
                carry = bytes(chunk[hi:])
                at += hi
                continue
            buf = carry + bytes(chunk)
            hi = len(buf) - keep
            if hi > 0:
                self._scan(info, buf, at, hi)
                carry = buf[hi:]
                at += hi
            else:
                carry = buf
        if carry:
            self._scan(info, carry, at, len(carry))
        if rules is not None:
            self.raw.extend((info, f) for f in rules.finish())

    def _scan(self, info: Any, buf: bytes, at: int, hi: int) -> None:
        for pos, aid in sorted(self.finder.find(buf, 0, hi)):
            end = pos + self._lens[aid]
            if end > len(buf):
                continue
            value, encoding = self._anchor_meta[aid]
            if encoding == "utf-16le" and buf[end - 1] != 0:
                continue
            if self._per_value[value] >= MAX_COPIES_PER_VALUE:
                self.dropped += 1
                continue
            self._per_value[value] += 1
            self.copies.append(Copy(info, at + pos, value, encoding))
