"""A plain tar on disk is searched through a read-only map; a stream through chunks.
Both must give the same hits, also when a match crosses a map window."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from kcheckpoint.inspect.memory import search as search_module
from kcheckpoint.inspect.memory.search import compile_needle, search_archive
from kcheckpoint.render.jsonout import to_data

from .conftest import PODMAN_T1

NEEDLES = [
    ("sk_live_", False, False),
    ("hunter2-fixture-pw", False, True),
    (r"AKIA[A-Z0-9]{16}", True, False),
]


def _hits(path: Path, text: str, regex: bool, utf16: bool) -> list[object]:
    needle = compile_needle(text, regex=regex, utf16=utf16)
    result = search_archive(str(path), needle, context=12)
    return [to_data(h) for h in result.hits]


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("s") / "t1.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(PODMAN_T1.read_bytes()))
    return path


@pytest.mark.parametrize(("text", "regex", "utf16"), NEEDLES)
def test_mapped_and_streamed_search_agree(
    streamed: Path, text: str, regex: bool, utf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _hits(streamed, text, regex, utf16)
    assert expected, "the fixture holds these strings (FIXTURES.md)"
    assert _hits(PODMAN_T1, text, regex, utf16) == expected
    # windows far smaller than a pages file: every match near a window edge still counts once
    monkeypatch.setattr(search_module._SearchSink, "WINDOW", 4096 + 7)
    assert _hits(PODMAN_T1, text, regex, utf16) == expected
