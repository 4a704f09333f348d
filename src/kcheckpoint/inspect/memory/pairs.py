"""Paired rules: a secret that means something only beside its id, as trufflehog pairs them.

An AWS secret access key is 40 base-64 characters that nothing else announces; beside an
``AKIA``/``ASIA`` key id it is a credential. Likewise an Alibaba Cloud AccessKey secret (30
alphanumerics) beside an ``LTAI`` id. The candidates (``aws-secret-candidate``) and the
ids come from the one scan; here each id takes the nearest candidate in its scope, and the pair
becomes one finding, located at the secret, that names its id.

Scopes: in a file (or a log), the candidate must lie within ``PAIR_DISTANCE`` bytes of the id;
in the environment of ``spec.dump``/``config.dump``, anywhere in it; in a process's memory,
anywhere in that process, because a heap keeps no order (an id and its secret are allocated
wherever the allocator puts them), so a pair there is of ``medium`` confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kcheckpoint.inspect.rules.secrets import (
    ALIBABA_SECRET_CANDIDATE,
    AWS_SECRET_CANDIDATE,
    RawFinding,
    Rule,
)

#: Bytes between an id and its secret in a file.
PAIR_DISTANCE = 4096


@dataclass(frozen=True, slots=True)
class PairSpec:
    """A provider whose secret goes with an id: the id's rule and the secret's candidates."""

    rule: str
    id_rule: str
    id_prefixes: tuple[bytes, ...]
    candidate: Rule


PAIRS = (
    PairSpec("aws-access-key-pair", "aws-access-key-id", (b"AKIA", b"ASIA"), AWS_SECRET_CANDIDATE),
    PairSpec(
        "alibaba-access-key-pair", "alibaba-access-key-id", (b"LTAI",), ALIBABA_SECRET_CANDIDATE
    ),
)
PAIR_RULE = PAIRS[0].rule
PAIR_RULES = tuple(p.rule for p in PAIRS)


@dataclass(frozen=True, slots=True)
class Paired:
    """A candidate secret with the id it goes with."""

    secret: tuple[Any, RawFinding]
    key_id: tuple[Any, RawFinding]
    confidence: str
    rule: str


def scope_of(info: Any) -> tuple[Any, ...]:
    if info.vaddr is not None:
        return ("pid", info.pid)
    if info.path is not None and info.member in ("spec.dump", "config.dump"):
        return ("metadata", info.member)
    return ("file", info.member, info.path)


def pair_of(f: RawFinding) -> PairSpec | None:
    """The pair an id finding may start (an AWS or Alibaba key id), or None."""
    for spec in PAIRS:
        if f.rule == spec.id_rule and f.value.startswith(spec.id_prefixes):
            return spec
    return None


def is_key_id(f: RawFinding) -> bool:
    """A key id that a secret may pair with."""
    return pair_of(f) is not None


def pair_secrets(
    raw: list[tuple[Any, RawFinding]],
) -> tuple[list[tuple[Any, RawFinding]], list[Paired]]:
    """Split a scan's findings into the ones kept as they are and the pairs.

    Candidates that pair with no id are dropped; an id that pairs is reported in its pair only.
    """
    kinds = {spec.candidate.id for spec in PAIRS}
    candidates: dict[tuple[Any, ...], list[tuple[Any, RawFinding]]] = {}
    ids: list[tuple[Any, RawFinding]] = []
    kept: list[tuple[Any, RawFinding]] = []
    for item in raw:
        info, f = item
        if f.rule in kinds:
            candidates.setdefault((f.rule, *scope_of(info)), []).append(item)
            continue
        if is_key_id(f):
            ids.append(item)
        kept.append(item)
    pairs: list[Paired] = []
    paired_ids: set[int] = set()
    for item in ids:
        info, f = item
        spec = pair_of(f)
        assert spec is not None
        scope = scope_of(info)
        best: tuple[int, tuple[Any, RawFinding]] | None = None
        for cand in candidates.get((spec.candidate.id, *scope), []):
            distance = abs(cand[1].secret_start - f.secret_start)
            if scope[0] == "file" and distance > PAIR_DISTANCE:
                continue
            if best is None or distance < best[0]:
                best = (distance, cand)
        if best is None:
            continue
        confidence = "medium" if scope[0] == "pid" and best[0] > PAIR_DISTANCE else "high"
        pairs.append(Paired(best[1], item, confidence, spec.rule))
        paired_ids.add(id(item))
    absorbed = {id(item): p for p in pairs for item in kept if _overlaps(item, p.secret)}
    kept = [item for item in kept if id(item) not in paired_ids and id(item) not in absorbed]
    named = {id(p.secret): item[1].name for item in raw if (p := absorbed.get(id(item)))}
    pairs = [
        Paired(
            (p.secret[0], _named(p.secret[1], named.get(id(p.secret)))),
            p.key_id,
            p.confidence,
            p.rule,
        )
        for p in pairs
    ]
    return kept, pairs


def _overlaps(a: tuple[Any, RawFinding], b: tuple[Any, RawFinding]) -> bool:
    """The same bytes of the same segment (a named rule that found the paired secret)."""
    return (
        a[0] == b[0] and a[1].secret_start < b[1].secret_end and b[1].secret_start < a[1].secret_end
    )


def _named(f: RawFinding, name: str | None) -> RawFinding:
    if not name or f.name:
        return f
    return RawFinding(f.rule, f.start, f.end, f.secret_start, f.value, name, f.public, f.encoding)
