"""JSON and JSON Lines: the stable, machine-readable output (sorted keys, no silent renames)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any


def to_data(obj: Any) -> Any:
    """Model objects (dataclasses, lists, dicts) as plain JSON-ready values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_data(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.metadata.get("json", True)  # working state, not output
        }
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def dumps(obj: Any) -> str:
    """One JSON document, indented, with sorted keys and a final newline."""
    return json.dumps(to_data(obj), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def dump_line(record: Any) -> str:
    """One JSON Lines record: a compact object with sorted keys, and a newline."""
    return (
        json.dumps(to_data(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        + "\n"
    )


def dumps_lines(records: Iterable[Any]) -> str:
    """JSON Lines: one compact object per record, sorted keys."""
    return "".join(dump_line(r) for r in records)
