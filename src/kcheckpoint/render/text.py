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
    """A table cell: None shows as '-'; control characters escaped."""
    if value is None or value == "":
        return ABSENT
    return printable(str(value))


#: C0 and C1 controls and DEL as ``\xNN`` (``\n``, ``\t``, ``\r`` by name), and the Unicode
#: bidirectional overrides as ``\uNNNN``, as ``ls -b`` shows names: archive data can then
#: neither forge a line nor drive the terminal.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
_CONTROL.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_CONTROL_KEEP_TAB = {k: v for k, v in _CONTROL.items() if k != ord("\t")}


def printable(text: str, *, keep_tab: bool = False) -> str:
    """Control characters escaped, so that archive data cannot break lines or drive a terminal."""
    return text.translate(_CONTROL_KEEP_TAB if keep_tab else _CONTROL)


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


def fixed_head(headers: Sequence[str], widths: Sequence[int]) -> str:
    """The header and rule lines of a table whose rows are written one at a time."""
    names = [h.upper() for h in headers]
    return fixed_row(names, widths, raw=True) + fixed_row(
        ["-" * max(w, len(n)) for n, w in zip(names, widths, strict=True)], widths, raw=True
    )


def fixed_row(values: Sequence[Any], widths: Sequence[int], *, raw: bool = False) -> str:
    """One table row with set column widths, so that it can be written before the rows after
    it are known; a longer cell shifts the rest of its own row only."""
    cells = [str(v) if raw else cell(v) for v in values]
    padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip() + "\n"
