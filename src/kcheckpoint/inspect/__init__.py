"""Pure archive inspection: bytes in, model out. Never prints, exits, or imports typer, fastapi,
grpc or tabulate.

Rooms, lowest first (each may import the ones before it, never one after):
``model`` (the archive-level records) · ``rules`` (what looks secret) · ``reader`` (bytes in,
members out) · ``criu`` (CRIU images and process memory -> model) · ``evidence`` (manifest,
verify, extract) · ``memory`` (search, secret scan, memory extraction) · ``diff`` ·
``summary`` (the summary and list of one archive). ``tests/test_layering.py`` holds the table.
"""

from __future__ import annotations

from .reader.scan import ArchiveScan, scan_archive
from .summary import list_path, listing, summarize, summarize_path

__all__ = ["ArchiveScan", "list_path", "listing", "scan_archive", "summarize", "summarize_path"]
