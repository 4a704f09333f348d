"""One checkpoint, from names to a verified archive: limits, lookup, CRI call, store, retention.

The kubelet's semantics are kept where it has them (lookup, the timeout rules, the negative
timeout error after the lookup); around them the service adds a global concurrency limit, a
per-container queue, and a store that never shows a partial archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
            raise
        return await asyncio.to_thread(self._finish, reservation)

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
