"""Damaged images never crash the decoder: each becomes a problem, the rest still decodes."""

from __future__ import annotations

import copy
import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcheckpoint.inspect.criu.checkpoint import inspect_scan
from kcheckpoint.inspect.reader.scan import ArchiveScan, scan_archive
from kcheckpoint.render.inspect_tree import SECTIONS, Selection, json_data, tree_text
from kcheckpoint.render.jsonout import dumps

from .conftest import IDLE


@functools.cache
def _scan() -> ArchiveScan:
    return scan_archive(IDLE, read_images=True)


NAMES = sorted(_scan().images)


def _damaged(name: str, data: bytes) -> ArchiveScan:
    scan = copy.copy(_scan())
    scan.images = {**scan.images, name: data}
    return scan


def _check(scan: ArchiveScan) -> None:
    result = inspect_scan(scan, lambda pid, start, end: b"\0" * (end - start))
    every = Selection.of(**{s: True for s in SECTIONS})
    tree_text(result, every)
    dumps(json_data(result, every))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_truncated_or_flipped_images_decode_to_problems(name: str, data: st.DataObject) -> None:
    original = _scan().images[name]
    if data.draw(st.booleans()) or not original:
        cut = data.draw(st.integers(0, max(0, len(original) - 1)))
        damaged = original[:cut]
    else:
        pos = data.draw(st.integers(0, len(original) - 1))
        bit = data.draw(st.integers(0, 7))
        damaged = original[:pos] + bytes([original[pos] ^ (1 << bit)]) + original[pos + 1 :]
    _check(_damaged(name, damaged))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), blob=st.binary(max_size=256))
def test_random_image_bytes_decode_to_problems(name: str, blob: bytes) -> None:
    _check(_damaged(name, blob))
