"""Retention: at most N archives per container, B bytes in total, A seconds of age.

Applied after each capture and at start. Oldest archives go first. Archives named in ``keep``
(the one just captured) are never removed, so a 200 answer never names a deleted file.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass

from .names import parse_archive_name
from .settings import RetentionPolicy
from .store import ArchiveInfo, ArchiveMissing, ArchiveStore


@dataclass(frozen=True)
class Removal:
    """An archive retention removed, and why."""

    info: ArchiveInfo
    reason: str


def select_removals(
    archives: list[tuple[ArchiveInfo, float]],
    policy: RetentionPolicy,
    *,
    now: float,
    keep: frozenset[str] = frozenset(),
) -> list[Removal]:
    """Which archives to remove. ``archives`` are (info, mtime) pairs, in any order."""
    ordered = sorted(archives, key=lambda pair: (pair[1], pair[0].name))
    removals: dict[str, Removal] = {}

    def remove(info: ArchiveInfo, reason: str) -> None:
        if info.name not in keep and info.name not in removals:
            removals[info.name] = Removal(info, reason)

    if policy.max_age_seconds is not None:
        for info, mtime in ordered:
            if now - mtime > policy.max_age_seconds:
                remove(info, f"older than {policy.max_age_seconds:g}s")

    if policy.max_per_container is not None:
        groups: dict[str, list[ArchiveInfo]] = defaultdict(list)
        for info, _ in ordered:
            if info.name not in removals:
                groups[parse_archive_name(info.name).group].append(info)
        for members in groups.values():
            excess = len(members) - policy.max_per_container
            for info in members:
                if excess <= 0:
                    break
                if info.name not in keep:
                    remove(info, f"more than {policy.max_per_container} for this container")
                    excess -= 1

    if policy.max_total_bytes is not None:
        total = sum(info.size for info, _ in ordered if info.name not in removals)
        for info, _ in ordered:
            if total <= policy.max_total_bytes:
                break
            if info.name not in removals and info.name not in keep:
                remove(info, f"more than {policy.max_total_bytes} bytes in total")
                total -= info.size
    return list(removals.values())


def apply_retention(
    store: ArchiveStore,
    policy: RetentionPolicy,
    *,
    keep: frozenset[str] = frozenset(),
    archives: list[tuple[ArchiveInfo, float]] | None = None,
) -> list[Removal]:
    """Remove what the policy selects from the store; return what was removed.

    ``archives``: (info, mtime) pairs from a scan just made, to avoid another one.
    """
    if not policy.enabled:
        return []
    pairs = store.list_with_mtime(sidecars=False) if archives is None else archives
    removed = []
    for removal in select_removals(pairs, policy, now=time.time(), keep=keep):
        with contextlib.suppress(ArchiveMissing):  # a DELETE got there first
            store.delete(removal.info.name)
            removed.append(removal)
    return removed
