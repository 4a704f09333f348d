"""The audit log: one JSON object per line for every checkpoint, download, delete and refusal.

Fields: ``time`` (UTC, RFC 3339), ``user``, ``uid``, ``remote``, ``action``, ``target``
(namespace/pod/container or an archive name), ``status`` (the HTTP status), ``result``
(``ok``/``error``), and, when known, ``path``, ``size``, ``sha256``, ``error`` and
``duration_ms``. Credentials are never written.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("kcheckpoint.audit")


class AuditLog:
    """Appends records to a 0600 file, or to the ``kcheckpoint.audit`` logger."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, action: str, *, status: int, **fields: object) -> None:
        entry: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "action": action,
            "status": status,
            "result": "ok" if status < 400 else "error",
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        if self._fd is None:
            log.info(line.rstrip("\n"))
            return
        with self._lock:
            os.write(self._fd, line.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
