"""Turning kernel bytes into text that is safe to print and to put in JSON."""

from __future__ import annotations


def text(value: bytes | str | None) -> str | None:
    """UTF-8 text; undecodable bytes become ``\\xNN`` escapes (never surrogates)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "backslashreplace")


def socket_name(value: bytes) -> str:
    """A unix socket name: a path (its trailing NUL dropped) or ``@abstract``."""
    if not value:
        return ""
    if value.startswith(b"\0"):
        return "@" + (text(value[1:].rstrip(b"\0")) or "")
    return text(value.rstrip(b"\0")) or ""
