"""Settings of the capture service: one frozen value, built by ``kcheckpoint serve`` from flags
and environment variables, or directly by tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: The kubelet's --runtime-request-timeout default: the CRI deadline when none (or less) is asked.
DEFAULT_RUNTIME_REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class RetentionPolicy:
    """At most N archives per container, B bytes in total, and A seconds of age (None: no limit)."""

    max_per_container: int | None = None
    max_total_bytes: int | None = None
    max_age_seconds: float | None = None

    @property
    def enabled(self) -> bool:
        return any(
            v is not None
            for v in (self.max_per_container, self.max_total_bytes, self.max_age_seconds)
        )


@dataclass(frozen=True)
class Settings:
    """Everything the app needs. TLS is uvicorn's business and lives in the serve command."""

    #: Like the kubelet's --root-dir: archives go to <root_dir>/checkpoints.
    root_dir: Path = Path("/var/lib/kubelet")
    #: unix:///path/to/cri.sock; None auto-detects containerd and CRI-O.
    runtime_endpoint: str | None = None
    runtime_request_timeout: float = DEFAULT_RUNTIME_REQUEST_TIMEOUT
    #: The ContainerCheckpoint feature gate; off, POST /checkpoint/... answers 404.
    checkpoint_enabled: bool = True
    token_auth_file: Path | None = None
    allow_anonymous: bool = False
    #: Checkpoints running or queued at once; more answer 429.
    max_concurrent: int = 4
    retry_after_seconds: int = 5
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    #: JSON-lines audit log; None logs audit records to the "kcheckpoint.audit" logger.
    audit_log: Path | None = None
    #: Shown in /healthz and the OpenAPI title: this service runs against the demo runtime.
    demo: bool = False

    @property
    def checkpoint_dir(self) -> Path:
        return self.root_dir / "checkpoints"


_SIZE = re.compile(r"(\d+)\s*([kmgt]i?)?b?\Z", re.I)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``1048576``, ``500M``, ``10Gi``, ``2T``: bytes (k/M/G/T decimal, Ki/Mi/Gi/Ti binary)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 500M, 10Gi, 1048576)")
    unit = (match[2] or "").lower()
    factor = 1024 ** ("kmgt".index(unit[0]) + 1) if unit.endswith("i") else _UNITS[unit]
    return int(match[1]) * factor


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w``: seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (examples: 3600, 12h, 7d)")
    return float(match[1]) * _SECONDS[match[2]]
