"""JSON and JSON Lines: the stable, machine-readable output (sorted keys, no silent renames)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import Any


def to_data(obj: Any) -> Any:
    """Model objects (dataclasses, lists, dicts) as plain JSON-ready values."""
    return _plain(obj, lazy=False)


def lazy_data(obj: Any) -> Any:
    """``to_data`` for the encoder alone: lists are converted item by item while they are
    written, so a document of many records is never whole as plain data."""
    return _plain(obj, lazy=True)


def _plain(obj: Any, lazy: bool) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _plain(getattr(obj, f.name), lazy)
            for f in dataclasses.fields(obj)
            if f.metadata.get("json", True)  # working state, not output
        }
    if isinstance(obj, dict):
        return {str(k): _plain(v, lazy) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return _ConvertedOnRead(obj) if lazy else [_plain(v, False) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


class _ConvertedOnRead(list):  # type: ignore[type-arg]
    """A list whose items become JSON data only as the encoder reaches them, one at a time."""

    def __iter__(self) -> Iterator[Any]:
        return (_plain(v, True) for v in super().__iter__())


def dumps(obj: Any) -> str:
    """One JSON document, indented, with sorted keys and a final newline."""
    return "".join(dump_pieces(obj))


def dump_pieces(obj: Any) -> Iterator[str]:
    """The text of ``dumps`` in pieces, to be written as they come: a document of many records
    is never held whole as one string, nor as plain data (``lazy_data``). The indented encoder
    is json's own Python one, which iterates lists as lists."""
    encoder = json.JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False)
    batch: list[str] = []
    for piece in encoder.iterencode(lazy_data(obj)):
        batch.append(piece)
        if len(batch) == 4096:  # the encoder's pieces are a few bytes each: write them in bulk
            yield "".join(batch)
            batch.clear()
    batch.append("\n")
    yield "".join(batch)


def dump_line(record: Any) -> str:
    """One JSON Lines record: a compact object with sorted keys, and a newline."""
    return (
        json.dumps(to_data(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        + "\n"
    )


def dumps_lines(records: Iterable[Any]) -> str:
    """JSON Lines: one compact object per record, sorted keys."""
    return "".join(dump_line(r) for r in records)
