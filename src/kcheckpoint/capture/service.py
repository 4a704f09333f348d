"""One checkpoint, from names to a verified archive: limits, lookup, CRI call, store, retention.

The kubelet's semantics are kept where it has them (lookup, the timeout rules, the negative
timeout error after the lookup); around them the service adds a global concurrency limit, a
per-container queue, and a store that never shows a partial archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from kcheckpoint.errors import CheckpointFailed, ServiceBusy

from .metrics import Metrics
from .retention import Removal, apply_retention
from .runtime import CriClient
from .settings import Settings
from .store import ArchiveInfo, ArchiveStore, Reservation

log = logging.getLogger(__name__)

#: After a failed CRI call, how often and how long to look for an archive the runtime writes
#: late (containerd 2.1.9 finishes writing the tar it had begun when the deadline passed).
LATE_WRITE_POLL = 0.25
LATE_WRITE_WINDOW = 30.0


@dataclass(frozen=True)
class CheckpointTiming:
    """What is sent to the runtime for a requested ``timeout`` (the kubelet's CRI client rule)."""

    field: int
    deadline: float


def timing_for(timeout: int | None, default: float) -> CheckpointTiming:
    """0 or absent, or anything up to the default: the default deadline, and the request's
    field rewritten to the default in seconds. Longer: that many seconds, unchanged."""
    if timeout is None or timeout <= default:
        return CheckpointTiming(int(default), default)
    return CheckpointTiming(timeout, float(timeout))


@dataclass
class _Limiter:
    """At most ``limit`` checkpoints running or queued; refuses (never waits) when full."""

    limit: int
    active: int = 0

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


@dataclass
class _ContainerLocks:
    """One asyncio lock per container, dropped when nobody holds or waits for it."""

    locks: dict[tuple[str, str, str], tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        lock, users = self.locks.get(key, (asyncio.Lock(), 0))
        self.locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[key]
            if users == 1:
                del self.locks[key]
            else:
                self.locks[key] = (lock, users - 1)


@dataclass(frozen=True)
class CaptureResult:
    """A finished checkpoint and what retention removed after it."""

    archive: ArchiveInfo
    removed: list[Removal]


class CaptureService:
    """Checkpoints containers through a CRI runtime into an ArchiveStore."""

    def __init__(
        self, settings: Settings, runtime: CriClient, store: ArchiveStore, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.store = store
        self.metrics = metrics
        self._limiter = _Limiter(settings.max_concurrent)
        self._locks = _ContainerLocks()
        self._retention_lock = threading.Lock()
        self._late_watchers: set[asyncio.Task[None]] = set()
        self._late_paths: set[str] = set()

    @property
    def active(self) -> int:
        return self._limiter.active

    async def checkpoint(
        self, namespace: str, pod: str, container: str, timeout: int | None
    ) -> CaptureResult:
        """Checkpoint one container. Names must be validated before this is called."""
        if not self._limiter.try_acquire():
            raise ServiceBusy(
                f"{self.settings.max_concurrent} checkpoints are already running or queued",
                retry_after=self.settings.retry_after_seconds,
            )
        self.metrics.inflight.inc()
        start = time.monotonic()
        try:
            async with self._locks.hold((namespace, pod, container)):
                result = await self._checkpoint(namespace, pod, container, timeout)
            self.metrics.duration.observe(time.monotonic() - start)
            self.metrics.archive_bytes.inc(result.archive.size)
            self.metrics.retention_removed.inc(len(result.removed))
            return result
        finally:
            self.metrics.inflight.dec()
            self._limiter.release()

    async def _checkpoint(
        self, namespace: str, pod: str, container: str, timeout: int | None
    ) -> CaptureResult:
        ref = await self.runtime.find_container(namespace, pod, container)
        if timeout is not None and timeout < 0:
            raise CheckpointFailed("CheckpointContainer requires the timeout value to be > 0")
        timing = timing_for(timeout, self.settings.runtime_request_timeout)
        # a few metadata syscalls: cheaper inline than a hop to a worker thread
        reservation = self.store.reserve(namespace, pod, container, datetime.now())
        try:
            await self.runtime.checkpoint(
                ref.id,
                str(reservation.temp),
                timeout_field=timing.field,
                deadline=timing.deadline,
            )
        except BaseException:
            await asyncio.to_thread(self.store.discard, reservation)
            self._watch_for_late_write(str(reservation.temp), timing.field)
            raise
        return await asyncio.to_thread(self._finish, reservation)

    def _watch_for_late_write(self, path: str, runtime_timeout: int) -> None:
        """The runtime may still write the archive after its call failed (a deadline, a lost
        connection): remove whatever appears at the temporary name for a while."""
        window = max(LATE_WRITE_WINDOW, float(runtime_timeout))
        task = asyncio.get_running_loop().create_task(self._remove_late_writes(path, window))
        self._late_watchers.add(task)
        self._late_paths.add(path)
        task.add_done_callback(self._late_watchers.discard)

    async def _remove_late_writes(self, path: str, window: float) -> None:
        deadline = time.monotonic() + window
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(LATE_WRITE_POLL)
                if _remove(path):
                    log.warning("removed %s: the runtime wrote it after the request failed", path)
        finally:
            self._late_paths.discard(path)

    async def close(self) -> None:
        """Stop watching for late writes, removing what they left one last time."""
        for task in list(self._late_watchers):
            task.cancel()
        paths = list(self._late_paths)
        await asyncio.gather(*self._late_watchers, return_exceptions=True)
        for path in paths:
            _remove(path)

    def _finish(self, reservation: Reservation) -> CaptureResult:
        """Check, hash and name the archive, then apply retention (in a worker thread)."""
        archive = self.store.commit(reservation)
        return CaptureResult(archive, self.apply_retention(frozenset({archive.name})))

    def apply_retention(self, keep: frozenset[str] = frozenset()) -> list[Removal]:
        """Apply the retention policy and sweep temporary files nobody waits for."""
        with self._retention_lock:  # one run at a time: they would race to delete the same files
            archives, temporaries = self.store.scan(sidecars=False)
            for name in self.store.sweep_temporaries(temporaries):
                log.info("removed the stale temporary file %s", name)
            removed = apply_retention(
                self.store, self.settings.retention, keep=keep, archives=archives
            )
        for removal in removed:
            log.info("retention removed %s (%s)", removal.info.name, removal.reason)
        return removed


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
