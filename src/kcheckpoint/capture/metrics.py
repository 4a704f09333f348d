"""Prometheus metrics, in a registry of their own per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kcheckpoint_http_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "code"],
            registry=self.registry,
        )
        self.checkpoints = Counter(
            "kcheckpoint_checkpoints",
            "Checkpoint requests by result (ok, not_found, runtime_error, timeout, busy, ...).",
            ["result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "kcheckpoint_checkpoint_duration_seconds",
            "Time to checkpoint a container, lookup and hashing included.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.inflight = Gauge(
            "kcheckpoint_checkpoints_inflight",
            "Checkpoints running or queued now.",
            registry=self.registry,
        )
        self.archive_bytes = Counter(
            "kcheckpoint_archive_bytes",
            "Bytes of archives written by successful checkpoints.",
            registry=self.registry,
        )
        self.retention_removed = Counter(
            "kcheckpoint_retention_removed_archives",
            "Archives removed by the retention policy.",
            registry=self.registry,
        )
        self.runtime_errors = Counter(
            "kcheckpoint_runtime_errors",
            "Failed CRI calls by error class.",
            ["error"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
