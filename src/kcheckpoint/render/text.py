"""Text building blocks: sizes, tables (tabulate) and absent values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ABSENT = "-"

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: int | None) -> str:
    """Bytes in binary units with one decimal, as ``ls -h`` and checkpointctl show them."""
    if n is None:
        return ABSENT
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def cell(value: Any) -> str:
    """A table cell: None shows as '-'."""
    if value is None or value == "":
        return ABSENT
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned plain-text table with upper-case headers and a final newline."""
    from tabulate import tabulate  # imported on first use: commands printing JSON skip it

    body = [[cell(v) for v in row] for row in rows]
    return (
        tabulate(
            body, headers=[h.upper() for h in headers], tablefmt="simple", disable_numparse=True
        )
        + "\n"
    )
