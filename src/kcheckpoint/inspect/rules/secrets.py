"""The secret rule set and a chunked scanner: keyword prefilter, then a regex in a window.

Every rule starts from one or more case-sensitive literal keywords (case variants are listed, not
written with ``(?i)``). A scan first finds keywords, with Hyperscan when it is installed (the
``fast`` extra) or with ``bytes.find`` otherwise, then runs only the rules of the keywords found,
on a window around each hit. This is trufflehog's design; merging every rule into one big
alternation is two orders of magnitude slower in Python's ``re``.

A finding never carries the secret in clear unless asked: it holds a redacted preview (the
rule's public prefix only), the length, and a keyed fingerprint (HMAC-SHA-256 with a per-run
key) that groups the same secret seen in many places without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import re
import secrets as _random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .catalog import (
    ALIBABA_SECRET_CANDIDATE,
    AWS_SECRET_CANDIDATE,
    CANDIDATE_RULES,
    ENTROPY_RULE,
    RULES,
    RULESET_VERSION,
    Rule,
    shannon_entropy,
)
from .engine import Anchor, AnchorFinder, wide

__all__ = [
    "ALIBABA_SECRET_CANDIDATE",
    "AWS_SECRET_CANDIDATE",
    "CANDIDATE_RULES",
    "ENTROPY_RULE",
    "RULES",
    "RULESET_VERSION",
    "Rule",
    "shannon_entropy",
]

#: Bump when a rule changes, so that reports say which rule set produced them.
#: Every rule by priority (a specific rule first); generic ones yield to those before them.
_ALL = (*RULES, ENTROPY_RULE)
_PRIORITY = {r.id: i for i, r in enumerate(_ALL)}


def ruleset_digest(rules: Iterable[Rule] = RULES) -> str:
    """A short digest of the rule set, for reports."""
    h = hashlib.sha256(RULESET_VERSION.encode())
    for r in rules:
        h.update(r.id.encode() + b"\0" + r.regex.pattern + b"\0" + b"|".join(r.keywords))
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RawFinding:
    """A rule match at absolute offsets in a stream (the secret itself is kept in ``value``)."""

    rule: str
    start: int
    end: int
    secret_start: int
    value: bytes
    name: str | None
    public: str
    #: "ascii", or "utf-16le" when the rule ran on decoded UTF-16LE text.
    encoding: str = "ascii"

    @property
    def secret_end(self) -> int:
        """Where the secret's bytes end in the stream (twice its length in UTF-16LE)."""
        return self.secret_start + len(self.value) * (2 if self.encoding == "utf-16le" else 1)


def _classify_jwt(value: bytes) -> str:
    """``kubernetes-service-account-token`` when a JWT's payload names Kubernetes."""
    parts = value.split(b".")
    if len(parts) != 3:
        return "jwt"
    payload = parts[1] + b"=" * (-len(parts[1]) % 4)
    try:
        claims = base64.urlsafe_b64decode(payload)
    except (binascii.Error, ValueError):
        return "jwt"
    if b"kubernetes.io" in claims or b"kubernetes/serviceaccount" in claims:
        return "kubernetes-service-account-token"
    return "jwt"


def _public_part(rule: Rule, m: re.Match[bytes]) -> str:
    if rule.id == "private-key":
        return m.group("head").decode("ascii", "replace")
    secret = m.group("secret")
    return secret[: rule.public_prefix].decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class _AnchorUse:
    rules: tuple[Rule, ...]
    #: The anchor's length in decoded (narrow) bytes; 0 for a regex anchor.
    length: int
    #: A match may start this many (narrow) bytes after the anchor's position.
    slack: int
    utf16: bool


class SecretMatcher:
    """Runs the rules on a buffer, anchor first. Stateless between calls; see StreamSecrets.

    With ``utf16``, every anchor is also looked for in UTF-16LE; around such a hit the text is
    decoded (a character whose high byte is not NUL reads as NUL) and the same rule runs on it.
    """

    def __init__(
        self, rules: Iterable[Rule] = RULES, engine: str = "auto", *, utf16: bool = False
    ) -> None:
        self.rules = tuple(rules)
        uses: dict[Anchor, tuple[list[Rule], int, int, bool]] = {}
        for rule in self.rules:
            for kw in rule.keywords:
                # UTF-16LE without its last NUL: a pattern that ends in NUL makes bytes.find
                # crawl through zero pages (the decoded window is checked anyway)
                forms = [(Anchor(kw), False)] + ([(Anchor(wide(kw)[:-1]), True)] if utf16 else [])
                for anchor, is_wide in forms:
                    uses.setdefault(anchor, ([], len(kw), 0, is_wide))[0].append(rule)
            for pattern, width in rule.anchor_regexes:  # ASCII only (see Rule)
                anchor = Anchor(pattern, re.compile(pattern), width)
                uses.setdefault(anchor, ([], 0, width, False))[0].append(rule)
        self.finder = AnchorFinder(uses, engine)
        self._uses = [
            _AnchorUse(tuple(uses[a][0]), uses[a][1], uses[a][2], uses[a][3])
            for a in self.finder.anchors
        ]
        scale = 2 if utf16 else 1
        self.back = scale * max(r.back for r in self.rules)
        self.ahead = scale * max(r.max_len + 16 for r in self.rules)

    @property
    def engine(self) -> str:
        return self.finder.engine

    def find(self, buf: bytes, lo: int, hi: int) -> list[RawFinding]:
        """Findings whose anchor starts in buf[lo:hi], with offsets in ``buf``."""
        seen: set[tuple[str, int]] = set()
        found: list[RawFinding] = []
        for pos, aid in sorted(self.finder.find(buf, lo, hi)):
            use = self._uses[aid]
            for rule in use.rules:
                if use.utf16:
                    found.extend(_find_wide(rule, use, buf, pos, seen))
                    continue
                w_lo = max(0, pos - rule.back)
                w_hi = min(len(buf), pos + use.length + use.slack + rule.max_len)
                found.extend(_matches(rule, buf, w_lo, w_hi, pos, use.slack, seen, 0, 1))
        return found


def _matches(
    rule: Rule,
    buf: bytes,
    w_lo: int,
    w_hi: int,
    pos: int,
    slack: int,
    seen: set[tuple[str, int]],
    base: int,
    scale: int,
) -> Iterator[RawFinding]:
    """The rule's matches in buf[w_lo:w_hi] that hold position ``pos``; offsets are
    ``base + scale * offset`` (scale 2 for text decoded from UTF-16LE)."""
    for m in rule.regex.finditer(buf, w_lo, w_hi):
        if m.start() > pos + slack:
            break
        start = base + scale * m.start()
        if m.end() <= pos or (rule.id, start) in seen:
            continue
        seen.add((rule.id, start))
        value = m.group("secret")
        if rule.accept is not None and not rule.accept(value):
            continue
        rule_id = _classify_jwt(value) if rule.id == "jwt" else rule.id
        name = m.groupdict().get("name")
        yield RawFinding(
            rule=rule_id,
            start=start,
            end=base + scale * m.end(),
            secret_start=base + scale * m.start("secret"),
            value=value,
            name=name.decode("ascii", "replace") if name else None,
            public=_public_part(rule, m),
            encoding="utf-16le" if scale == 2 else "ascii",
        )


def _find_wide(
    rule: Rule, use: _AnchorUse, buf: bytes, pos: int, seen: set[tuple[str, int]]
) -> Iterator[RawFinding]:
    """The rule on UTF-16LE text around an anchor at ``pos``, decoded to narrow bytes."""
    w_lo = max(pos % 2, pos - 2 * rule.back)
    w_hi = min(len(buf), pos + 2 * (use.length + use.slack + rule.max_len))
    low = buf[w_lo:w_hi:2]
    high = buf[w_lo + 1 : w_hi : 2]
    narrow = bytearray(low[: len(high)])
    for i, h in enumerate(high):
        if h:
            narrow[i] = 0
    at = (pos - w_lo) // 2
    return _matches(rule, bytes(narrow), 0, len(narrow), at, use.slack // 2, seen, w_lo, 2)


class StreamSecrets:
    """Feed one contiguous stream in chunks; get each finding once, at absolute offsets.

    A chunk is only read during the call (its buffer may be reused). Most of it is scanned in
    place; only the junction with the previous chunk is copied.
    """

    def __init__(self, matcher: SecretMatcher, base: int = 0) -> None:
        self._m = matcher
        self._carry = b""
        self._carry_at = base
        self._next = base  # keywords before this were looked at already
        self._recent: dict[tuple[str, int], None] = {}

    def feed(self, data: bytes) -> list[RawFinding]:
        if not data:
            return []
        back, ahead = self._m.back, self._m.ahead
        if len(data) <= 2 * (back + ahead):
            return self._feed_joined(data)
        out: list[RawFinding] = []
        data_at = self._carry_at + len(self._carry)
        lo = self._next - data_at
        if self._carry:
            junction = self._carry + data[: back + ahead]
            out = self._scan(
                junction, self._carry_at, self._next - self._carry_at, len(self._carry) + back
            )
            lo = max(lo, back)
        hi = len(data) - ahead
        out.extend(self._scan(data, data_at, max(lo, 0), hi))
        keep = hi - back
        self._carry = bytes(data[keep:])
        self._carry_at = data_at + keep
        self._next = data_at + hi
        return out

    def _feed_joined(self, data: bytes) -> list[RawFinding]:
        buf = self._carry + data if self._carry else bytes(data)
        hi = len(buf) - self._m.ahead
        if hi <= self._next - self._carry_at:
            self._carry = bytes(buf)
            return []
        out = self._scan(buf, self._carry_at, self._next - self._carry_at, hi)
        self._next = self._carry_at + hi
        keep = max(0, hi - self._m.back)
        self._carry = buf[keep:]
        self._carry_at += keep
        return out

    def finish(self) -> list[RawFinding]:
        buf, self._carry = self._carry, b""
        out = self._scan(buf, self._carry_at, self._next - self._carry_at, len(buf)) if buf else []
        self._carry_at += len(buf)
        self._next = self._carry_at
        return out

    def _scan(self, buf: bytes, base: int, lo: int, hi: int) -> list[RawFinding]:
        out = []
        for f in self._m.find(buf, max(lo, 0), hi):
            key = (f.rule, f.start + base)
            if key in self._recent:
                continue  # one match holding two keywords, seen from both sides of a boundary
            self._recent[key] = None
            out.append(
                RawFinding(
                    f.rule,
                    f.start + base,
                    f.end + base,
                    f.secret_start + base,
                    f.value,
                    f.name,
                    f.public,
                    f.encoding,
                )
            )
        if len(self._recent) > 4096:
            horizon = base - self._m.ahead - self._m.back
            self._recent = {k: None for k in self._recent if k[1] >= horizon}
        return out


def scan_chunks(
    matcher: SecretMatcher, chunks: Iterable[bytes], base: int = 0
) -> Iterator[RawFinding]:
    """Every finding in a stream given as chunks."""
    stream = StreamSecrets(matcher, base)
    for chunk in chunks:
        yield from stream.feed(chunk)
    yield from stream.finish()


def drop_shadowed(findings: list[RawFinding]) -> list[RawFinding]:
    """Remove generic findings whose secret overlaps a more specific finding's (same stream).

    The specific finding inherits the generic one's variable name (``API_TOKEN=sk_live_...``
    is a Stripe key assigned to ``API_TOKEN``).
    """
    order = sorted(range(len(findings)), key=lambda i: findings[i].secret_start)
    starts = [findings[i].secret_start for i in order]
    longest = max((f.secret_end - f.secret_start for f in findings), default=0)
    names: dict[int, str] = {}
    dropped: set[int] = set()
    for idx, f in enumerate(findings):
        mine = _PRIORITY.get(f.rule, -1)
        if mine < 0 or not _ALL[mine].generic:
            continue
        lo, hi = f.secret_start, f.secret_end
        j = bisect.bisect_left(starts, hi) - 1
        while j >= 0 and starts[j] > lo - longest:
            other = findings[order[j]]
            if (
                other.secret_start < hi
                and lo < other.secret_end
                and _PRIORITY.get(other.rule, -1) < mine
                and all(other.rule != c.id for c in CANDIDATE_RULES)
            ):
                dropped.add(idx)
                if f.name and not other.name:
                    names.setdefault(order[j], f.name)
                break
            j -= 1
    out = []
    for idx, f in enumerate(findings):
        if idx in dropped:
            continue
        if idx in names:
            f = RawFinding(
                f.rule, f.start, f.end, f.secret_start, f.value, names[idx], f.public, f.encoding
            )
        out.append(f)
    return out


class Fingerprinter:
    """HMAC-SHA-256 of a secret under a key that is random per run unless one is given."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key is not None else _random.token_bytes(32)

    def __call__(self, value: bytes) -> str:
        return hmac.new(self.key, value, hashlib.sha256).hexdigest()[:24]


def redacted_preview(public: str, length: int) -> str:
    """The public prefix of a secret, then a marker: never any of the secret part."""
    return f"{public}…[REDACTED {length} bytes]" if public else f"[REDACTED {length} bytes]"


_text_matcher: list[SecretMatcher] = []


def redact_secrets(text: str) -> str:
    """``text`` with each secret a rule finds replaced by its redacted preview.

    For short strings shown to people, such as command lines read from memory
    (``--db-password=...``, ``AWS_SECRET_ACCESS_KEY=...``).
    """
    if not _text_matcher:
        _text_matcher.append(SecretMatcher(engine="python"))
    data = text.encode("utf-8", "surrogateescape")
    findings = drop_shadowed(_text_matcher[0].find(data, 0, len(data)))
    if not findings:
        return text
    out, pos = bytearray(), 0
    for f in sorted(findings, key=lambda f: f.secret_start):
        if f.secret_start < pos:
            continue
        out += data[pos : f.secret_start]
        out += redacted_preview(f.public, len(f.value)).encode()
        pos = f.secret_start + len(f.value)
    out += data[pos:]
    return out.decode("utf-8", "surrogateescape")
