"""A secret scan of one archive: memory pages, spec.dump and config.dump env, rootfs-diff files,
logs, tmpfs and /dev/shm tarballs, with findings located, redacted, fingerprinted and grouped.

One walk runs the rules (``rules.secrets``), in ASCII and UTF-16LE; AWS secrets are paired with
their key ids (``pairs``); a second walk finds every copy of every flagged value (``copies``).
Bytes of shared segments and tmpfs files are attributed to every process that maps them
(``shmem``).
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kcheckpoint.inspect.rules.secrets import (
    CANDIDATE_RULES,
    ENTROPY_RULE,
    RULES,
    RULESET_VERSION,
    Fingerprinter,
    RawFinding,
    Rule,
    SecretMatcher,
    drop_shadowed,
    redacted_preview,
    ruleset_digest,
    scan_chunks,
)

from .copies import Copy, CopySink, propagatable
from .pairs import PAIR_RULES, pair_of, pair_secrets, scope_of
from .search import CountingSink
from .shmem import MappedAt, SharedMemory


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is: in a process's memory, or in a file of the archive."""

    #: "memory", "shared-memory" (a shared segment's pages), "stale-memory" (pages no live
    #: process points to) or "file".
    source: str
    pid: int | None
    comm: str | None
    address: str | None
    mapping: Any
    member: str
    offset: int
    path: str | None
    #: Every process that maps these bytes: of a shared segment, or of a /dev/shm or tmpfs file.
    mapped_by: list[MappedAt]


@dataclass(frozen=True, slots=True)
class PairedId:
    """The id a paired secret goes with (an AWS access key id)."""

    rule: str
    preview: str
    length: int
    fingerprint: str
    location: Location


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret found, redacted unless asked otherwise."""

    rule: str
    location: Location
    #: The public prefix of the secret and a redaction marker; never the secret itself.
    preview: str
    length: int
    fingerprint: str
    #: The variable or key name the secret was assigned to, when the rule saw one.
    name: str | None
    #: The secret in clear: only with --show-secrets, else None.
    secret: str | None
    #: high (the format says so), medium (a name or a pair in memory says so), low (entropy).
    confidence: str
    #: How the bytes were written: "ascii" or "utf-16le".
    encoding: str
    #: For an exact copy of a value a rule flagged elsewhere: where the rule flagged it.
    copy_of: Location | None
    #: For a pair (an AWS secret with its key id): the id.
    key_id: PairedId | None


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """The same secret (same fingerprint) seen in several places."""

    fingerprint: str
    rules: list[str]
    preview: str
    length: int
    count: int
    #: How many of ``count`` are copies (found as a known value, not by a rule).
    copies: int
    confidence: str
    pids: list[int]
    members: list[str]
    names: list[str]


@dataclass(frozen=True, slots=True)
class RuleSetInfo:
    version: str
    digest: str
    engine: str
    rules: list[str]


@dataclass(frozen=True, slots=True)
class SecretsResult:
    """A secret scan of one archive."""

    input: Any
    ruleset: RuleSetInfo
    findings: list[Finding]
    groups: list[FindingGroup]
    by_rule: dict[str, int]
    memory_bytes: int
    other_bytes: int
    #: False when --memory-only left the files out.
    files_scanned: bool
    #: False when the input could not be read twice (stdin): copies were not searched.
    copies_searched: bool
    #: Copies found but not listed: past MAX_COPIES_PER_VALUE of one value.
    copies_dropped: int
    #: Whether the --entropy rule ran.
    entropy: bool
    problems: list[Any]
    warnings: list[Any]


class _SecretSink(CountingSink):
    def __init__(self, matcher: SecretMatcher) -> None:
        super().__init__()
        self.matcher = matcher
        self.raw: list[tuple[Any, RawFinding]] = []

    def segment(self, info: Any, chunks: Iterable[bytes]) -> None:
        base = info.base
        self.count(info)
        found = list(scan_chunks(self.matcher, chunks, base))
        self.raw.extend((info, f) for f in drop_shadowed(found))


def _strings(doc: Any) -> Iterator[tuple[str, str]]:
    """Every string in a JSON document, with its path (``spec.process.env[2]``); iterative,
    so that a deeply nested document cannot exhaust the stack."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node))))
        elif isinstance(node, dict):
            stack.extend(
                (item, f"{path}.{key}" if path else str(key))
                for key, item in reversed(list(node.items()))
            )


def _feed_config(sink: Any, blobs: dict[str, bytes]) -> None:
    """The strings of config.dump (Podman and CRI-O keep the env and the create command there),
    each as its own small file."""
    from kcheckpoint.inspect.criu.walk import SegmentInfo

    try:
        doc = json.loads(blobs.get("config.dump", b""))
    except (ValueError, RecursionError):
        return
    for path, text in _strings(doc):
        data = text.encode("utf-8", "surrogateescape")
        if len(data) >= 4:
            sink.segment(SegmentInfo("config.dump", None, None, 0, len(data), path), iter([data]))


def _location(info: Any, pos: int, model: Any, shm: SharedMemory) -> Location:
    from .search import MappingRef

    if info.vaddr is None:
        offset = pos
        if info.path is None and info.member.startswith("checkpoint/pages-"):
            if shm.is_shared_pages(info.member):
                mapped = shm.pages(info.member, offset)
                return Location(
                    "shared-memory", None, None, None, None, info.member, offset, None, mapped
                )
            return Location("stale-memory", None, None, None, None, info.member, offset, None, [])
        mapped = shm.file(info.member, info.path, offset)
        return Location("file", None, None, None, None, info.member, offset, info.path, mapped)
    offset = info.offset + (pos - info.vaddr)
    pmem = model.processes.get(info.pid)
    if pmem is None or not pmem.live:
        return Location("stale-memory", None, None, None, None, info.member, offset, None, [])
    vma = pmem.vma_at(pos)
    ref = (
        None
        if vma is None
        else MappingRef(f"0x{vma.start:x}", f"0x{vma.end:x}", vma.perms, vma.kind, vma.backing)
    )
    return Location("memory", pmem.pid, pmem.comm, f"0x{pos:x}", ref, info.member, offset, None, [])


_RANK = {"high": 0, "medium": 1, "low": 2}


def _pids(loc: Location) -> set[int]:
    return ({loc.pid} if loc.pid is not None else set()) | {m.pid for m in loc.mapped_by}


def group_findings(findings: list[Finding]) -> list[FindingGroup]:
    """Findings with the same fingerprint, as one group with a count."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.fingerprint, []).append(f)
    out = []
    for fp, items in groups.items():
        first = next((f for f in items if f.copy_of is None), items[0])
        out.append(
            FindingGroup(
                fingerprint=fp,
                rules=sorted({f.rule for f in items}),
                preview=first.preview,
                length=first.length,
                count=len(items),
                copies=sum(1 for f in items if f.copy_of is not None),
                confidence=min((f.confidence for f in items), key=_RANK.__getitem__),
                pids=sorted(set().union(*(_pids(f.location) for f in items))),
                members=sorted({f.location.member for f in items}),
                names=sorted({f.name for f in items if f.name}),
            )
        )
    out.sort(key=lambda g: (-g.count, g.rules, g.fingerprint))
    return out


def scan_archive_secrets(
    path: str,
    *,
    stdin: Any = None,
    engine: str = "auto",
    fingerprint_key: bytes | None = None,
    show_secrets: bool = False,
    memory_only: bool = False,
    pids: set[int] | None = None,
    hash_input: bool | None = None,
    progress: Any = None,
    entropy: bool = False,
    copies: bool = True,
) -> SecretsResult:
    """Scan memory pages, spec.dump and config.dump env, rootfs-diff files, logs, tmpfs and shm
    tarballs; then find every copy of every flagged value (unless the input is stdin)."""
    from kcheckpoint.inspect.criu.walk import walk_memory

    rescannable = copies and stdin is None and path != "-"
    # Read twice: the AWS candidates are looked for in the second walk, only where a key id
    # was seen (a bounded regex costs more than all the keywords together).
    rules = (
        *RULES,
        *((ENTROPY_RULE,) if entropy else ()),
        *(() if rescannable else CANDIDATE_RULES),
    )
    matcher = SecretMatcher(rules, engine=engine, utf16=True)
    sink = _SecretSink(matcher)
    everywhere = not memory_only
    scan, model = walk_memory(
        path,
        sink,
        stdin=stdin,
        pids=pids,
        everywhere=everywhere,
        hash_input=hash_input,
        progress=progress,
    )
    if everywhere:
        _feed_config(sink, scan.blobs)
    shm = SharedMemory(model, scan.images)
    keyed_hash = Fingerprinter(fingerprint_key)
    by_confidence = {r.id: r.confidence for r in rules}
    by_confidence["kubernetes-service-account-token"] = "high"
    walk = _Rewalk(path, engine, pids, everywhere, scan.blobs)
    raw = list(sink.raw)
    known = _known(raw) if rescannable else []
    second: CopySink | None = None
    dropped = 0
    if rescannable:
        scopes: dict[tuple[Any, ...], set[Rule]] = {}
        for i, f in raw:
            if (spec := pair_of(f)) is not None:
                scopes.setdefault(scope_of(i), set()).add(spec.candidate)
        second = walk.run(known, {k: frozenset(v) for k, v in scopes.items()})
        raw += second.raw

    def finding(info: Any, f: RawFinding, rule: str, confidence: str, key: Any = None) -> Finding:
        return Finding(
            rule=rule,
            location=_location(info, f.start, model, shm),
            preview=redacted_preview(f.public, len(f.value)),
            length=len(f.value),
            fingerprint=keyed_hash(f.value),
            name=f.name,
            secret=f.value.decode("utf-8", "backslashreplace") if show_secrets else None,
            confidence=confidence,
            encoding=f.encoding,
            copy_of=None,
            key_id=key,
        )

    kept, pairs = pair_secrets(raw)
    findings = [finding(info, f, f.rule, by_confidence.get(f.rule, "high")) for info, f in kept]
    for pair in pairs:
        id_info, id_raw = pair.key_id
        key = PairedId(
            id_raw.rule,
            redacted_preview(id_raw.public, len(id_raw.value)),
            len(id_raw.value),
            keyed_hash(id_raw.value),
            _location(id_info, id_raw.start, model, shm),
        )
        findings.append(finding(*pair.secret, pair.rule, pair.confidence, key))
    if second is not None:
        taken = [*kept, *(p.secret for p in pairs)]
        found = list(second.copies)
        dropped += second.dropped
        fresh = sorted({p.secret[1].value for p in pairs} - set(known))
        if fresh:  # a paired secret is known only now: its copies need one more walk
            third = walk.run(fresh, {})
            dropped += third.dropped
            found += [Copy(c.info, c.start, c.value + len(known), c.encoding) for c in third.copies]
        findings.extend(_copies(found, [*known, *fresh], findings, taken, model, shm, show_secrets))
    findings.sort(
        key=lambda x: (x.location.member, x.location.path or "", x.location.offset, x.rule)
    )
    by_rule: dict[str, int] = {}
    for item in findings:
        by_rule[item.rule] = by_rule.get(item.rule, 0) + 1
    info = RuleSetInfo(
        RULESET_VERSION,
        ruleset_digest((*RULES, *CANDIDATE_RULES, *((ENTROPY_RULE,) if entropy else ()))),
        matcher.engine,
        [r.id for r in RULES]
        + ["kubernetes-service-account-token", *PAIR_RULES]
        + ([ENTROPY_RULE.id] if entropy else []),
    )
    return SecretsResult(
        input=scan.input,
        ruleset=info,
        findings=findings,
        groups=group_findings(findings),
        by_rule=dict(sorted(by_rule.items())),
        memory_bytes=sink.memory_bytes,
        other_bytes=sink.other_bytes,
        files_scanned=everywhere,
        copies_searched=rescannable,
        copies_dropped=dropped,
        entropy=entropy,
        problems=[*scan.problems, *model.problems],
        warnings=model.warnings(),
    )


class _Rewalk:
    """Walks a (re-readable) archive again with a ``CopySink``."""

    def __init__(
        self,
        path: str,
        engine: str,
        pids: set[int] | None,
        everywhere: bool,
        blobs: dict[str, bytes],
    ) -> None:
        self.path, self.engine, self.pids = path, engine, pids
        self.everywhere, self.blobs = everywhere, blobs

    def run(
        self, values: list[bytes], id_scopes: dict[tuple[Any, ...], frozenset[Rule]]
    ) -> CopySink:
        """Copies of ``values`` everywhere; candidates of each scope's providers in it."""
        from kcheckpoint.inspect.criu.walk import walk_memory

        matchers = {
            rules: SecretMatcher(tuple(sorted(rules, key=lambda r: r.id)), engine=self.engine)
            for rules in set(id_scopes.values())
        }

        def matcher_for(info: Any) -> SecretMatcher | None:
            rules = id_scopes.get(scope_of(info))
            return matchers[rules] if rules else None

        csink = CopySink(values, self.engine, matcher_for=matcher_for)
        if not values and not matchers:
            return csink
        walk_memory(self.path, csink, pids=self.pids, everywhere=self.everywhere, hash_input=False)
        if self.everywhere:
            _feed_config(csink, self.blobs)
        return csink


def _known(raw: list[tuple[Any, RawFinding]]) -> list[bytes]:
    """The values whose copies are searched for: every flagged one but the entropy rule's."""
    values = {f.value for _, f in raw if f.rule != ENTROPY_RULE.id and propagatable(f.value)}
    return sorted(values)


def _copies(
    found: list[Copy],
    values: list[bytes],
    findings: list[Finding],
    taken: list[tuple[Any, RawFinding]],
    model: Any,
    shm: SharedMemory,
    show_secrets: bool,
) -> list[Finding]:
    """A finding for every copy that no rule reported already, pointing to where a rule
    flagged the value."""
    origins: dict[bytes, Finding] = {}
    for (_info, f), item in zip(taken, findings, strict=True):
        best = origins.get(f.value)
        if item.confidence != "low" and (best is None or _origin_order(item) < _origin_order(best)):
            origins[f.value] = item
    reported = _Spans(taken)
    out = []
    for c in found:
        value = values[c.value]
        origin = origins.get(value)
        end = c.start + len(value) * (2 if c.encoding == "utf-16le" else 1)
        if origin is None or reported.overlaps(_stream(c.info), c.start, end):
            continue
        out.append(
            Finding(
                rule=origin.rule,
                location=_location(c.info, c.start, model, shm),
                preview=origin.preview,
                length=origin.length,
                fingerprint=origin.fingerprint,
                name=origin.name,
                secret=origin.secret if show_secrets else None,
                confidence=origin.confidence,
                encoding=c.encoding,
                copy_of=origin.location,
                key_id=None,
            )
        )
    return out


class _Spans:
    """The byte ranges the rules reported, per stream, to tell a copy from a finding."""

    def __init__(self, taken: list[tuple[Any, RawFinding]]) -> None:
        by_stream: dict[Any, list[tuple[int, int]]] = {}
        for info, f in taken:
            by_stream.setdefault(_stream(info), []).append((f.start, max(f.end, f.secret_end)))
        self._starts: dict[Any, list[int]] = {}
        self._reach: dict[Any, list[int]] = {}  # the furthest end of the ranges up to each one
        for key, ranges in by_stream.items():
            ranges.sort()
            self._starts[key] = [lo for lo, _ in ranges]
            self._reach[key] = list(itertools.accumulate((hi for _, hi in ranges), max))

    def overlaps(self, key: Any, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts.get(key, []), end) - 1
        return i >= 0 and self._reach[key][i] > start


def _stream(info: Any) -> tuple[Any, ...]:
    return (info.member, info.path, info.pid)


def _origin_order(f: Finding) -> tuple[int, str, str, int]:
    """Which flagged place a copy points to: metadata and files first, then memory."""
    loc = f.location
    return (0 if loc.source == "file" else 1, loc.member, loc.path or "", loc.offset)
