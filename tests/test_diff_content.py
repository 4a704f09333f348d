"""``--content``: unified diffs of text files, and why other files get none."""

from __future__ import annotations

import hashlib

from kcheckpoint.inspect.diff.engine import CONTENT_LINES, with_content
from kcheckpoint.inspect.diff.model import FsChange, FsState
from kcheckpoint.inspect.diff.side import CONTENT_LIMIT


def _file(data: bytes) -> FsState:
    return FsState("file", len(data), hashlib.sha256(data).hexdigest(), "0644", None, None)


def test_changed_text_file() -> None:
    a, b = b"one\ntwo\nthree\n", b"one\n2\nthree\nfour\n"
    change = with_content(FsChange("/x", "changed", _file(a), _file(b)), {"/x": a}, {"/x": b})
    assert change.content_diff is not None
    assert change.content_diff[:2] == ["--- a/x", "+++ b/x"]
    assert "-two" in change.content_diff and "+2" in change.content_diff
    assert "+four" in change.content_diff and change.content_note is None


def test_added_and_deleted_files_diff_against_nothing() -> None:
    data = b"hello\n"
    added = with_content(FsChange("/n", "added", None, _file(data)), {}, {"/n": data})
    assert added.content_diff == ["--- /dev/null", "+++ b/n", "@@ -0,0 +1 @@", "+hello"]
    gone = FsChange("/n", "deleted", _file(data), FsState("deleted", None, None, None, None, "x"))
    assert with_content(gone, {"/n": data}, {}).content_diff[-1] == "-hello"  # type: ignore[index]


def test_binary_large_and_long_files() -> None:
    binary = b"\x00\x01\x02"
    change = with_content(
        FsChange("/b", "changed", _file(binary), _file(b"x")), {"/b": binary}, {"/b": b"x"}
    )
    assert change.content_diff is None and change.content_note == "binary file: not shown"
    big = FsState("file", CONTENT_LIMIT + 1, "aa", "0644", None, None)
    change = with_content(FsChange("/big", "changed", big, _file(b"x")), {}, {"/big": b"x"})
    assert change.content_diff is None and "larger than" in (change.content_note or "")
    long_b = "".join(f"line {i}\n" for i in range(CONTENT_LINES * 2)).encode()
    change = with_content(
        FsChange("/l", "changed", _file(b""), _file(long_b)), {"/l": b""}, {"/l": long_b}
    )
    assert change.content_diff is not None and len(change.content_diff) == CONTENT_LINES
    assert "more line(s) not shown" in (change.content_note or "")


def test_directories_get_no_content() -> None:
    d = FsState("dir", None, None, "0755", None, None)
    assert with_content(FsChange("/d", "added", None, d), {}, {}) == FsChange(
        "/d", "added", None, d
    )
