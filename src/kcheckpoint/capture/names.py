"""Kubernetes names and archive names: validated before anything touches a runtime or a disk.

References:
    Kubernetes design-proposals "identifiers": DNS-1123 label (63 characters) and subdomain
    (253 characters); kubelet ``checkpoint-<pod>_<namespace>-<container>-<RFC3339>.tar``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"{_LABEL}\Z")
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")

_TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})"
ARCHIVE_NAME = re.compile(
    rf"checkpoint-(?P<pod>[a-z0-9.-]+)_(?P<rest>[a-z0-9-]+)-(?P<time>{_TIMESTAMP})\.tar\Z"
)
MAX_ARCHIVE_NAME = 255


class InvalidName(ValueError):
    """A name that is not a valid Kubernetes name (the HTTP layer answers 400)."""


def check_namespace(value: str) -> str:
    return _check(value, "namespace", _DNS1123_LABEL, 63, "a DNS-1123 label")


def check_pod(value: str) -> str:
    return _check(value, "pod", _DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain")


def check_container(value: str) -> str:
    return _check(value, "container", _DNS1123_LABEL, 63, "a DNS-1123 label")


def _check(value: str, what: str, pattern: re.Pattern[str], limit: int, kind: str) -> str:
    if len(value) > limit or not pattern.match(value):
        shown = value if len(value) <= 80 and value.isprintable() else repr(value[:80])
        raise InvalidName(
            f"invalid {what} name {shown!r}: must be {kind} (lower-case letters, digits and "
            f"'-'{', and dots between labels' if kind.endswith('subdomain') else ''}; "
            f"at most {limit} characters)"
        )
    return value


def rfc3339(moment: datetime, *, fraction: bool = False) -> str:
    """Go's ``time.RFC3339`` (``Z`` for UTC); with ``fraction``, microseconds are added."""
    text = moment.isoformat(timespec="microseconds" if fraction else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def archive_name(namespace: str, pod: str, container: str, timestamp: str) -> str:
    """The kubelet's file name: ``checkpoint-<pod>_<namespace>-<container>-<timestamp>.tar``."""
    return f"checkpoint-{pod}_{namespace}-{container}-{timestamp}.tar"


@dataclass(frozen=True)
class ParsedName:
    """What a file name says. ``namespace``/``container`` are None when ambiguous."""

    name: str
    pod: str
    namespace: str | None
    container: str | None
    timestamp: str
    #: The name without its timestamp: one value per container.
    group: str


@functools.lru_cache(maxsize=8192)
def parse_archive_name(name: str) -> ParsedName:
    """Parse a checkpoint archive name strictly; raise InvalidName for anything else.

    ``<namespace>-<container>`` cannot be split when either holds a '-'; then both are None.
    """
    match = ARCHIVE_NAME.match(name) if len(name) <= MAX_ARCHIVE_NAME else None
    if match is None:
        raise InvalidName(f"invalid archive name {name[:80]!r}: not checkpoint-<pod>_<ns>-...tar")
    pod, rest, stamp = match["pod"], match["rest"], match["time"]
    try:
        check_pod(pod)
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (InvalidName, ValueError) as exc:
        raise InvalidName(f"invalid archive name {name[:80]!r}") from exc
    namespace = container = None
    if rest.count("-") == 1:
        namespace, container = rest.split("-")
    return ParsedName(name, pod, namespace, container, stamp, f"{pod}_{rest}")
