"""Memory differences per process and per mapping, from both memory models and the changed
page ranges that ``pages`` found.

Mappings are matched by start address and backing, then (for a stack that grew down) by end
address and backing. Interval arithmetic on the pagemaps gives the pages present on one side
only; the changed ranges give the pages present on both whose bytes differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kcheckpoint.inspect.criu.memory import ProcessMemory, Vma

from .compare import SAME, Pair, pair_key
from .model import ADDED, CHANGED, REMOVED, RESIZED, MappingDiff, PageRange, ProcessMemoryDiff

#: Changed ranges listed per mapping (the total is always given).
RANGE_LIMIT = 64

Intervals = list[tuple[int, int]]


def normalise(intervals: Iterable[tuple[int, int]]) -> Intervals:
    """Sorted, merged, non-empty intervals."""
    out: list[list[int]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def clip(intervals: Intervals, lo: int, hi: int) -> Intervals:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if s < hi and lo < e]


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """``a`` minus ``b`` (both normalised)."""
    out: Intervals = []
    j = 0
    for s, e in a:
        pos = s
        while j < len(b) and b[j][1] <= pos:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > pos:
                out.append((pos, b[k][0]))
            pos = max(pos, b[k][1])
            k += 1
        if pos < e:
            out.append((pos, e))
    return out


def intersect(a: Intervals, b: Intervals) -> Intervals:
    """What both hold (both normalised)."""
    return subtract(a, subtract(a, b))


def total(intervals: Intervals) -> int:
    return sum(e - s for s, e in intervals)


def present(p: ProcessMemory | None) -> Intervals:
    if p is None:
        return []
    return normalise((r.vaddr, r.vaddr + r.length) for r in p.runs if r.source == "present")


def _start_key(v: Vma) -> tuple[int, str]:
    return v.start, v.backing


def _end_key(v: Vma) -> tuple[int, str]:
    return v.end, v.backing


def match_mappings(a: Sequence[Vma], b: Sequence[Vma]) -> list[tuple[Vma | None, Vma | None]]:
    """Pairs of mappings: by (start, backing), then by (end, backing); the rest alone."""
    pairs: list[tuple[Vma | None, Vma | None]] = []
    rest_a, rest_b = list(a), list(b)
    for key in (_start_key, _end_key):
        index: dict[object, list[Vma]] = {}
        for w in rest_b:
            index.setdefault(key(w), []).append(w)
        taken: set[int] = set()
        unmatched: list[Vma] = []
        for v in rest_a:
            group = index.get(key(v))
            if group:
                w = group.pop(0)
                pairs.append((v, w))
                taken.add(id(w))
            else:
                unmatched.append(v)
        rest_a = unmatched
        rest_b = [w for w in rest_b if id(w) not in taken]
    pairs += [(v, None) for v in rest_a]
    pairs += [(None, w) for w in rest_b]
    return pairs


def _mapping(
    va: Vma | None,
    vb: Vma | None,
    pres_a: Intervals,
    pres_b: Intervals,
    changed: Intervals | None,
    psize: int,
) -> MappingDiff | None:
    ref = va or vb
    assert ref is not None
    in_a = clip(pres_a, va.start, va.end) if va else []
    in_b = clip(pres_b, vb.start, vb.end) if vb else []
    only_a = only_b = 0
    ranges: Intervals = []
    if va is not None and vb is not None:
        lo, hi = max(va.start, vb.start), min(va.end, vb.end)
        ca, cb = clip(in_a, lo, hi), clip(in_b, lo, hi)
        only_a = total(subtract(ca, cb)) // psize
        only_b = total(subtract(cb, ca)) // psize
        ranges = clip(changed, lo, hi) if changed else []
        if (va.start, va.end) != (vb.start, vb.end):
            status = RESIZED
        elif ranges or only_a or only_b or va.perms != vb.perms:
            status = CHANGED
        else:
            return None
    else:
        status = REMOVED if va is not None else ADDED
    changed_bytes = total(ranges)
    return MappingDiff(
        status=status,
        kind=ref.kind,
        backing=ref.backing,
        start_a=va.start if va else None,
        end_a=va.end if va else None,
        start_b=vb.start if vb else None,
        end_b=vb.end if vb else None,
        perms_a=va.perms if va else None,
        perms_b=vb.perms if vb else None,
        present_a=total(in_a),
        present_b=total(in_b),
        changed_pages=-(-changed_bytes // psize),
        changed_bytes=changed_bytes,
        pages_only_a=only_a,
        pages_only_b=only_b,
        changed_ranges=[PageRange(s, e) for s, e in ranges[:RANGE_LIMIT]],
        changed_ranges_total=len(ranges),
    )


def _mapping_order(m: MappingDiff) -> tuple[int, int, str]:
    starts = [x for x in (m.start_a, m.start_b) if x is not None]
    ends = [x for x in (m.end_a, m.end_b) if x is not None]
    return min(starts), max(ends), m.backing


def process_memory(
    pair: Pair,
    pa: ProcessMemory | None,
    pb: ProcessMemory | None,
    changed: Intervals | None,
) -> ProcessMemoryDiff | None:
    """One process's memory difference, or None when nothing differs."""
    compared = changed is not None and pa is not None and pb is not None
    pres_a, pres_b = present(pa), present(pb)
    psize = (pa or pb).page_size if (pa or pb) is not None else 4096  # type: ignore[union-attr]
    mappings: list[MappingDiff] = []
    # mappings are matched only within one process (same pid): a restarted process has other
    # addresses (ASLR), and a process on one side only would list every mapping
    if pair.status in (SAME, CHANGED) and pa is not None and pb is not None:
        for va, vb in match_mappings(pa.vmas, pb.vmas):
            m = _mapping(va, vb, pres_a, pres_b, changed if compared else None, psize)
            if m is not None:
                mappings.append(m)
    mappings.sort(key=_mapping_order)
    ranges = changed or []
    changed_bytes = total(ranges) if compared else 0
    only_a = total(subtract(pres_a, pres_b)) // psize if pa and pb else 0
    only_b = total(subtract(pres_b, pres_a)) // psize if pa and pb else 0
    diff = ProcessMemoryDiff(
        status=CHANGED if pair.status == SAME else pair.status,
        pid_a=pair.a.pid if pair.a else None,
        pid_b=pair.b.pid if pair.b else None,
        comm_a=pair.a.comm if pair.a else None,
        comm_b=pair.b.comm if pair.b else None,
        present_a=total(pres_a),
        present_b=total(pres_b),
        compared=compared,
        changed_pages=-(-changed_bytes // psize),
        changed_bytes=changed_bytes,
        pages_only_a=only_a,
        pages_only_b=only_b,
        mappings=mappings,
    )
    if pair.status == SAME or pair.status == CHANGED:
        if not (mappings or changed_bytes or only_a or only_b or diff.present_a != diff.present_b):
            return None
    elif not (diff.present_a or diff.present_b):
        return None
    return diff


def compare_memory(
    pairs: Sequence[Pair],
    a: Mapping[int, ProcessMemory],
    b: Mapping[int, ProcessMemory],
    changes: Mapping[int, Intervals] | None,
) -> list[ProcessMemoryDiff]:
    """Memory differences of every matched process; pages are compared only between the two
    sides of one pid (``changes`` is None when no page was compared at all)."""
    out = []
    for pair in sorted(pairs, key=pair_key):
        pa = a.get(pair.a.pid) if pair.a else None
        pb = b.get(pair.b.pid) if pair.b else None
        pa = pa if pa is not None and pa.live else None
        pb = pb if pb is not None and pb.live else None
        same_pid = pair.a is not None and pair.b is not None and pair.a.pid == pair.b.pid
        changed = None
        if changes is not None and same_pid and pair.status in (SAME, CHANGED):
            changed = normalise(changes.get(pair.a.pid, []))  # type: ignore[union-attr]
        diff = process_memory(pair, pa, pb, changed)
        if diff is not None:
            out.append(diff)
    return out
