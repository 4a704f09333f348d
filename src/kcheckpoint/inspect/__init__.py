"""Pure archive inspection: bytes in, model out.

Never prints, exits, or imports typer, fastapi or grpc.
"""

from __future__ import annotations

from .scan import ArchiveScan, scan_archive
from .summary import list_path, listing, summarize, summarize_path

__all__ = ["ArchiveScan", "list_path", "listing", "scan_archive", "summarize", "summarize_path"]
