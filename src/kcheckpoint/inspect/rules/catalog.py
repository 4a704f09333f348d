"""The secret rules: what each looks for, the keywords it is anchored on, and how sure a match is.

``RULES`` run by default; ``ENTROPY_RULE`` only with ``--entropy``; ``AWS_SECRET_CANDIDATE`` is
never reported alone: a candidate becomes a finding only beside an AWS key id (``pairs``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

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
    #: How sure a match is: high (the format says so), medium (a name says so), low (entropy).
    confidence: str = "high"
    #: Anchors that are bounded regexes rather than keywords: (regex, the width of a match),
    #: for Hyperscan and ``re`` alike. ASCII only: the same regex over UTF-16LE has no literal
    #: to start from and runs at about 17 MiB/s in Hyperscan.
    anchor_regexes: tuple[tuple[bytes, int], ...] = ()


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
        "alibaba-access-key-id",
        "Alibaba Cloud AccessKey ID (public half of an Alibaba credential)",
        (b"LTAI",),
        re.compile(rb"(?<![A-Za-z0-9])(?P<secret>LTAI[A-Za-z0-9]{12,20})(?![A-Za-z0-9])"),
        "LTAI[A-Za-z0-9]{12,20}",
        public_prefix=4,
        max_len=24,
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
        confidence="medium",
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
        confidence="medium",
    ),
)


#: ``--entropy``: a token at least this long, with at least this many bits of Shannon entropy
#: per character, assigned to a name with a keyword in it (gitleaks' generic rule uses 3.5).
ENTROPY_MIN_LENGTH = 20
ENTROPY_THRESHOLD = 3.5


def _high_entropy(value: bytes) -> bool:
    return (
        len(value) >= ENTROPY_MIN_LENGTH
        and not _PLACEHOLDERS.match(value)
        and shannon_entropy(value) >= ENTROPY_THRESHOLD
    )


ENTROPY_RULE = Rule(
    "high-entropy-assignment",
    f"(--entropy) a token of {ENTROPY_MIN_LENGTH}+ characters with at least "
    f"{ENTROPY_THRESHOLD} bits of entropy per character, assigned to a name with key, secret, "
    "token, auth, passw or credential in it",
    (
        b"key",
        b"Key",
        b"KEY",
        b"ecret",
        b"ECRET",
        b"oken",
        b"OKEN",
        b"uth",
        b"UTH",
        b"assw",
        b"ASSW",
        b"redential",
        b"REDENTIAL",
    ),
    re.compile(
        rb"(?<![A-Za-z0-9_])(?P<name>[A-Za-z0-9_.-]{0,40}(?:key|Key|KEY|ecret|ECRET|oken|OKEN"
        rb"|uth|UTH|assw|ASSW|redential|REDENTIAL)[A-Za-z0-9_.-]{0,40})[\"']?[ \t]{0,3}"
        rb"(?::=|=>|=|:)[ \t]{0,3}[\"']?(?P<secret>[A-Za-z0-9+/_=.~-]{20,200})"
        rb"(?![A-Za-z0-9+/_=.~-])"
    ),
    "[A-Za-z0-9_.-]*(key|Key|KEY|ecret|ECRET|oken|OKEN|uth|UTH|assw|ASSW|redential)"
    "[A-Za-z0-9_.-]*[\"']?[ ]*(:=|=>|=|:)[ ]*[\"']?[A-Za-z0-9+/_=.~-]{20,}",
    back=90,
    max_len=300,
    generic=True,
    accept=_high_entropy,
    confidence="low",
)


def _random_shape(value: bytes) -> bool:
    """Characters that look random: all three letter/digit classes, not a JWT segment, and
    at least 4 bits of entropy per character."""
    return (
        not value.startswith(b"eyJ")
        and re.search(rb"[a-z]", value) is not None
        and re.search(rb"[A-Z]", value) is not None
        and re.search(rb"[0-9]", value) is not None
        and shannon_entropy(value) >= 4.0
    )


_B64_EDGE = rb"A-Za-z0-9/+=._-"


def _bare_token(rule_id: str, description: str, chars: str, length: int) -> Rule:
    """A token of exactly ``length`` characters of ``chars`` (a character class), with no
    base-64 character on either side. Anchored on a bounded regex, not a keyword."""
    token = f"{chars}{{{length}}}"
    raw = token.encode()
    return Rule(
        rule_id,
        description,
        (),
        re.compile(
            rb"(?<![" + _B64_EDGE + rb"])(?P<secret>" + raw + rb")(?![" + _B64_EDGE + rb"])"
        ),
        token,
        max_len=length + 2,
        back=1,
        accept=_random_shape,
        anchor_regexes=(
            (rb"(?:^|[^" + _B64_EDGE + rb"])" + raw + rb"(?:[^" + _B64_EDGE + rb"]|$)", length + 2),
        ),
    )


#: A bare 40-character AWS secret access key: never a finding alone (``pairs`` pairs it with
#: an AKIA/ASIA key id).
AWS_SECRET_CANDIDATE = _bare_token(
    "aws-secret-candidate",
    "a 40-character base-64 token that may be an AWS secret access key",
    "[A-Za-z0-9/+]",
    40,
)

#: A bare 30-character Alibaba Cloud AccessKey secret: paired with an ``LTAI`` id, never alone.
ALIBABA_SECRET_CANDIDATE = _bare_token(
    "alibaba-secret-candidate",
    "a 30-character alphanumeric token that may be an Alibaba Cloud AccessKey secret",
    "[A-Za-z0-9]",
    30,
)

#: Rules whose matches are only candidates, for ``memory.pairs``.
CANDIDATE_RULES = (AWS_SECRET_CANDIDATE, ALIBABA_SECRET_CANDIDATE)
