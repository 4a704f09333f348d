"""A digest computed on a worker thread, so that hashing overlaps the reader's own work."""

from __future__ import annotations

import hashlib
import queue
import threading


class BackgroundHash:
    """Hashes what it is given on a worker thread: hashlib releases the GIL for large updates,
    so on two cores the digest costs the reader little. The queue is bounded, so at most a few
    chunks wait whatever the input size. Updates smaller than ``direct`` that come before the
    first large one are hashed inline, where handing them over would cost more.

    ``size`` counts the bytes given. ``hexdigest`` (or ``stop``, on a failure) ends the thread.
    """

    def __init__(self, algorithm: str = "sha256", *, direct: int = 64 << 10) -> None:
        self.algorithm = algorithm
        self.size = 0
        self._hash = hashlib.new(algorithm)
        self._direct = direct
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self._thread is None:
            if len(data) < self._direct:
                self._hash.update(data)
                return
            self._thread = threading.Thread(
                target=self._run, name=f"kcheckpoint-{self.algorithm}", daemon=True
            )
            self._thread.start()
        self._queue.put(data if isinstance(data, bytes) else bytes(data))

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def stop(self) -> None:
        """End the worker thread: after the last update, or when the input failed."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.stop()
        return self._hash.hexdigest()
