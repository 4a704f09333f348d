"""A secret scan of one archive: memory pages, spec.dump env, rootfs-diff files, logs, tmpfs and
/dev/shm tarballs, with findings located, redacted, fingerprinted and grouped.

The rules and the chunked scanner are in ``kcheckpoint.inspect.rules.secrets``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kcheckpoint.inspect.model import secrets_warning
from kcheckpoint.inspect.rules.secrets import (
    RULES,
    RULESET_VERSION,
    Fingerprinter,
    RawFinding,
    SecretMatcher,
    drop_shadowed,
    redacted_preview,
    ruleset_digest,
    scan_chunks,
)

from .search import CountingSink


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is: in a process's memory, or in a file of the archive."""

    #: "memory", "stale-memory" (pages no live process points to) or "file".
    source: str
    pid: int | None
    comm: str | None
    address: str | None
    mapping: Any
    member: str
    offset: int
    path: str | None


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


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """The same secret (same fingerprint) seen in several places."""

    fingerprint: str
    rules: list[str]
    preview: str
    length: int
    count: int
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


def _location(info: Any, f: RawFinding, model: Any) -> Location:
    from .search import MappingRef

    if info.vaddr is None:
        stale = info.path is None and info.member.startswith("checkpoint/pages-")
        source = "stale-memory" if stale else "file"
        return Location(source, None, None, None, None, info.member, f.start, info.path)
    offset = info.offset + (f.start - info.vaddr)
    pmem = model.processes.get(info.pid)
    if pmem is None or not pmem.live:
        return Location("stale-memory", None, None, None, None, info.member, offset, None)
    vma = pmem.vma_at(f.start)
    ref = (
        None
        if vma is None
        else MappingRef(f"0x{vma.start:x}", f"0x{vma.end:x}", vma.perms, vma.kind, vma.backing)
    )
    return Location("memory", pmem.pid, pmem.comm, f"0x{f.start:x}", ref, info.member, offset, None)


def group_findings(findings: list[Finding]) -> list[FindingGroup]:
    """Findings with the same fingerprint, as one group with a count."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.fingerprint, []).append(f)
    out = []
    for fp, items in groups.items():
        first = items[0]
        out.append(
            FindingGroup(
                fingerprint=fp,
                rules=sorted({f.rule for f in items}),
                preview=first.preview,
                length=first.length,
                count=len(items),
                pids=sorted({f.location.pid for f in items if f.location.pid is not None}),
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
) -> SecretsResult:
    """Scan memory pages, spec.dump env, rootfs-diff files, logs, tmpfs and shm tarballs."""
    from kcheckpoint.inspect.criu.walk import walk_memory

    matcher = SecretMatcher(engine=engine)
    sink = _SecretSink(matcher)
    scan, model = walk_memory(
        path,
        sink,
        stdin=stdin,
        pids=pids,
        everywhere=not memory_only,
        hash_input=hash_input,
        progress=progress,
    )
    keyed_hash = Fingerprinter(fingerprint_key)
    findings = []
    for info, f in sink.raw:
        findings.append(
            Finding(
                rule=f.rule,
                location=_location(info, f, model),
                preview=redacted_preview(f.public, len(f.value)),
                length=len(f.value),
                fingerprint=keyed_hash(f.value),
                name=f.name,
                secret=f.value.decode("utf-8", "backslashreplace") if show_secrets else None,
            )
        )
    findings.sort(
        key=lambda x: (x.location.member, x.location.path or "", x.location.offset, x.rule)
    )
    by_rule: dict[str, int] = {}
    for finding in findings:
        by_rule[finding.rule] = by_rule.get(finding.rule, 0) + 1
    live = [p for p in model.processes.values() if p.live]
    info = RuleSetInfo(
        RULESET_VERSION,
        ruleset_digest(),
        matcher.engine,
        [r.id for r in RULES] + ["kubernetes-service-account-token"],
    )
    return SecretsResult(
        input=scan.input,
        ruleset=info,
        findings=findings,
        groups=group_findings(findings),
        by_rule=dict(sorted(by_rule.items())),
        memory_bytes=sink.memory_bytes,
        other_bytes=sink.other_bytes,
        files_scanned=not memory_only,
        problems=[*scan.problems, *model.problems],
        warnings=secrets_warning(len(live), sum(model.pages_sizes.values())),
    )
