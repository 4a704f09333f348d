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
import math
import re
import secrets as _random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: Bump when a rule changes, so that reports say which rule set produced them.
RULESET_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Rule:
    """One secret rule."""

    id: str
    description: str
    #: Case-sensitive literals; the rule runs only near one of them.
    keywords: tuple[bytes, ...]
    #: Must define group ``secret``; may define ``name`` (a variable name, not secret).
    regex: re.Pattern[bytes]
    #: A POSIX ERE with about the same matches (for benchmarking against ``grep -E``).
    ere: str
    #: How many leading bytes of the secret are public structure (a prefix such as ``ghp_``).
    public_prefix: int = 0
    #: Bytes before a keyword where a match may start, and the longest match.
    back: int = 0
    max_len: int = 256
    #: Generic rules yield to a specific rule that finds the same bytes.
    generic: bool = False
    #: Extra check on the secret (placeholders, entropy); False drops the match.
    accept: Callable[[bytes], bool] | None = None


def shannon_entropy(data: bytes) -> float:
    """Bits per byte of ``data``."""
    if not data:
        return 0.0
    counts: dict[int, int] = {}
    for b in data:
        counts[b] = counts.get(b, 0) + 1
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_PLACEHOLDERS = re.compile(
    rb"^(?:none|null|nil|true|false|undefined|changeme|password|secret|token|x+|\*+|<[^>]*>"
    rb"|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%\(?[a-z_]*\)?s?|\{\{.*\}\})$",
    re.IGNORECASE,
)


_CODE_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _plausible_value(value: bytes) -> bool:
    """A generic assignment's value looks like a credential, not code or a placeholder."""
    if len(value) < 6 or _PLACEHOLDERS.match(value):
        return False
    if _CODE_NAME.fullmatch(value) and not any(48 <= b <= 57 for b in value):
        return False  # self.token, os.environ: code, not a value
    classes = sum(
        1
        for test in (bytes.islower, bytes.isupper, bytes.isdigit)
        if any(test(bytes([b])) for b in value)
    ) + (1 if re.search(rb"[^A-Za-z0-9]", value) else 0)
    return classes >= 2 and shannon_entropy(value) >= 2.5


def _env_value(value: bytes) -> bool:
    return len(value) >= 4 and not _PLACEHOLDERS.match(value)


_B64URL = rb"[A-Za-z0-9_-]"
_SECRET_NAME_SUFFIX = rb"(?:_TOKEN|_PASSWORD|_PASSWD|_PWD|_PASS|_KEY|_SECRET|_CREDENTIALS?)"

RULES: tuple[Rule, ...] = (
    Rule(
        "aws-access-key-id",
        "AWS access key ID (public half of an AWS credential)",
        (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
        re.compile(rb"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})"),
        "(AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
        public_prefix=4,
        max_len=20,
    ),
    Rule(
        "aws-secret-access-key",
        "AWS secret access key assigned to its usual name",
        (b"ecret", b"ECRET"),
        re.compile(
            rb"(?P<name>(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY|SecretAccessKey"
            rb"|aws_secret_key|AWS_SECRET_KEY|secret_access_key))[\"']?\s{0,3}[:=]{1,2}\s{0,3}"
            rb"[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        "(aws_secret|AWS_SECRET|SecretAccessKey|secret_access_key)[A-Za-z_]*[\"']?[ ]*[:=]+[ ]*"
        "[\"']?[A-Za-z0-9/+]{40}",
        back=24,
        max_len=120,
    ),
    Rule(
        "github-token",
        "GitHub token (personal, OAuth, user-to-server, server-to-server, refresh)",
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
        re.compile(rb"(?<![A-Za-z0-9])(?P<secret>gh[pousr]_[A-Za-z0-9]{30,80})(?![A-Za-z0-9])"),
        "gh[pousr]_[A-Za-z0-9]{30,}",
        public_prefix=4,
        max_len=84,
    ),
    Rule(
        "github-fine-grained-token",
        "GitHub fine-grained personal access token",
        (b"github_pat_",),
        re.compile(rb"(?P<secret>github_pat_[A-Za-z0-9_]{50,255})"),
        "github_pat_[A-Za-z0-9_]{50,}",
        public_prefix=11,
        max_len=266,
    ),
    Rule(
        "slack-token",
        "Slack bot, user, app or refresh token",
        (b"xox",),
        re.compile(rb"(?P<secret>xox(?:[bpars]-|e\.xox[a-z]-|e-)[A-Za-z0-9-]{10,250})"),
        "xox([bpars]-|e\\.xox[a-z]-|e-)[A-Za-z0-9-]{10,}",
        public_prefix=5,
        max_len=260,
    ),
    Rule(
        "slack-webhook",
        "Slack incoming-webhook URL",
        (b"hooks.slack.com/",),
        re.compile(
            rb"hooks\.slack\.com/(?:services|workflows)/(?P<secret>[A-Za-z0-9+/_-]{20,120})"
        ),
        "hooks\\.slack\\.com/(services|workflows)/[A-Za-z0-9+/_-]{20,}",
        max_len=160,
    ),
    Rule(
        "stripe-key",
        "Stripe secret or restricted key",
        (b"k_live_", b"k_test_"),
        re.compile(rb"(?P<secret>[sr]k_(?:live|test)_[A-Za-z0-9]{10,247})(?![A-Za-z0-9])"),
        "[sr]k_(live|test)_[A-Za-z0-9]{10,}",
        public_prefix=8,
        back=1,
        max_len=255,
    ),
    Rule(
        "private-key",
        "PEM private key (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted)",
        (b"-----BEGIN",),
        re.compile(
            rb"(?P<head>-----BEGIN[ A-Z0-9]{0,30} PRIVATE KEY(?: BLOCK)?-----)\s*"
            rb"(?P<secret>(?:[A-Za-z0-9+/=]{16,80}\s{0,2}){1,160})"
        ),
        "-----BEGIN[ A-Z0-9]* PRIVATE KEY( BLOCK)?-----",
        max_len=13_000,
    ),
    Rule(
        "jwt",
        "JSON Web Token (a Kubernetes service-account token is reported as such)",
        (b"eyJ",),
        re.compile(
            rb"(?<![A-Za-z0-9_-])(?P<secret>eyJ"
            + _B64URL
            + rb"{10,4096}\.eyJ"
            + _B64URL
            + rb"{10,8192}\."
            + _B64URL
            + rb"{10,2048})(?![A-Za-z0-9_-])"
        ),
        "eyJ[A-Za-z0-9_-]{10,}\\.eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}",
        public_prefix=3,
        max_len=14_400,
    ),
    Rule(
        "secret-env-var",
        "an environment variable whose name says secret (*_TOKEN, *_PASSWORD, *_KEY, *SECRET*)",
        (b"OKEN=", b"_PASS", b"_PWD=", b"_KEY=", b"ECRET", b"REDENTIAL"),
        re.compile(
            rb"(?<![A-Za-z0-9_])(?P<name>(?:[A-Z][A-Z0-9_]{0,62})?SECRET[A-Z0-9_]{0,40}"
            rb"|[A-Z][A-Z0-9_]{0,62}" + _SECRET_NAME_SUFFIX + rb")="
            rb"(?P<secret>[^\x00\r\n]{1,512})"
        ),
        "[A-Z][A-Z0-9_]*(SECRET[A-Z0-9_]*|_TOKEN|_PASSWORD|_PASSWD|_PWD|_PASS|_KEY"
        "|_CREDENTIALS?)=[^[:cntrl:]]{4,}",
        back=110,
        max_len=640,
        generic=True,
        accept=_env_value,
    ),
    Rule(
        "password-assignment",
        'a password, secret or token assigned in text (password=..., "token": "...")',
        (
            b"assword",
            b"ASSWORD",
            b"asswd",
            b"ASSWD",
            b"ecret",
            b"ECRET",
            b"oken",
            b"OKEN",
            b"pikey",
            b"PIKEY",
            b"pi_key",
            b"PI_KEY",
        ),
        re.compile(
            rb"(?<![A-Za-z0-9])(?P<name>(?:[A-Za-z0-9]{1,30}[_.-])?(?:password|Password|PASSWORD"
            rb"|passwd|Passwd|PASSWD|secret|Secret|SECRET|token|Token|TOKEN|apikey|Apikey|APIKEY"
            rb"|api_key|Api_key|API_KEY))[\"']?[ \t]{0,3}(?::=|=|:)[ \t]{0,3}[\"']?"
            rb"(?P<secret>[^\s\"'`;,&<>(){}\[\]\x00]{6,128})"
        ),
        "(password|Password|PASSWORD|passwd|secret|Secret|SECRET|token|Token|TOKEN|apikey"
        "|api_key|API_KEY)[\"']?[ ]*(:=|=|:)[ ]*[\"']?[^[:space:]\"';,&<>(){}]{6,}",
        back=36,
        max_len=180,
        generic=True,
        accept=_plausible_value,
    ),
)

_PRIORITY = {r.id: i for i, r in enumerate(RULES)}


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


class KeywordFinder:
    """Finds every keyword position in a buffer: Hyperscan when present, else ``bytes.find``."""

    def __init__(self, keywords: Iterable[bytes], engine: str = "auto") -> None:
        self.keywords = tuple(dict.fromkeys(keywords))
        self.engine = "python"
        self._db: Any = None
        if engine in ("auto", "hyperscan"):
            self._db = _hyperscan_db(self.keywords)
            if self._db is not None:
                self.engine = "hyperscan"
            elif engine == "hyperscan":
                raise ValueError("the hyperscan engine is not installed (pip install hyperscan)")

    def find(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, bytes]]:
        """(position, keyword) for each keyword that starts in buf[lo:hi], unsorted."""
        kws = self.keywords
        if self._db is not None:
            out: list[tuple[int, bytes]] = []

            def on_match(kid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                kw = kws[kid]
                pos = to - len(kw)
                if lo <= pos < hi:
                    out.append((pos, kw))

            end = min(len(buf), hi + max(len(k) for k in kws))
            view = memoryview(buf)[lo:end] if (lo or end < len(buf)) else buf
            self._db.scan(view, match_event_handler=_shift(on_match, lo))
            return out
        found: list[tuple[int, bytes]] = []
        for kw in kws:
            find = buf.find
            pos = find(kw, lo)
            while 0 <= pos < hi:
                found.append((pos, kw))
                pos = find(kw, pos + 1)
        return found


def _shift(fn: Callable[[int, int, int, int, object], None], by: int) -> Callable[..., None]:
    if not by:
        return fn

    def shifted(kid: int, frm: int, to: int, flags: int, ctx: object) -> None:
        fn(kid, frm + by, to + by, flags, ctx)

    return shifted


def _hyperscan_db(keywords: tuple[bytes, ...]) -> Any:
    try:
        import hyperscan  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[re.escape(k) for k in keywords],
        ids=list(range(len(keywords))),
        elements=len(keywords),
        flags=[0] * len(keywords),
    )
    return db


class SecretMatcher:
    """Runs the rules on a buffer, keyword first. Stateless between calls; see StreamSecrets."""

    def __init__(self, rules: Iterable[Rule] = RULES, engine: str = "auto") -> None:
        self.rules = tuple(rules)
        self._by_keyword: dict[bytes, list[Rule]] = {}
        for rule in self.rules:
            for kw in rule.keywords:
                self._by_keyword.setdefault(kw, []).append(rule)
        self.finder = KeywordFinder(self._by_keyword, engine)
        self.back = max(r.back for r in self.rules)
        self.ahead = max(r.max_len for r in self.rules)

    @property
    def engine(self) -> str:
        return self.finder.engine

    def find(self, buf: bytes, lo: int, hi: int) -> list[RawFinding]:
        """Findings whose keyword starts in buf[lo:hi], with offsets in ``buf``."""
        seen: set[tuple[str, int]] = set()
        found: list[RawFinding] = []
        for pos, kw in sorted(self.finder.find(buf, lo, hi)):
            for rule in self._by_keyword[kw]:
                w_lo = max(0, pos - rule.back)
                w_hi = min(len(buf), pos + len(kw) + rule.max_len)
                for m in rule.regex.finditer(buf, w_lo, w_hi):
                    if m.start() > pos:
                        break
                    if m.end() <= pos or (rule.id, m.start()) in seen:
                        continue
                    seen.add((rule.id, m.start()))
                    value = m.group("secret")
                    if rule.accept is not None and not rule.accept(value):
                        continue
                    rule_id = _classify_jwt(value) if rule.id == "jwt" else rule.id
                    name = m.groupdict().get("name")
                    found.append(
                        RawFinding(
                            rule=rule_id,
                            start=m.start(),
                            end=m.end(),
                            secret_start=m.start("secret"),
                            value=value,
                            name=name.decode("ascii", "replace") if name else None,
                            public=_public_part(rule, m),
                        )
                    )
        return found


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
    longest = max((len(f.value) for f in findings), default=0)
    names: dict[int, str] = {}
    dropped: set[int] = set()
    for idx, f in enumerate(findings):
        mine = _PRIORITY.get(f.rule, -1)
        if mine < 0 or not RULES[mine].generic:
            continue
        lo, hi = f.secret_start, f.secret_start + len(f.value)
        j = bisect.bisect_left(starts, hi) - 1
        while j >= 0 and starts[j] > lo - longest:
            other = findings[order[j]]
            if (
                other.secret_start < hi
                and lo < other.secret_start + len(other.value)
                and _PRIORITY.get(other.rule, -1) < mine
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
            f = RawFinding(f.rule, f.start, f.end, f.secret_start, f.value, names[idx], f.public)
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
