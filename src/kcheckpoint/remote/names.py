"""Which names are remote: a URL of an fsspec protocol. Light to import: the CLI asks at start-up
whether the reader needs the remote resolver at all."""

from __future__ import annotations

import re

#: Names with these schemes belong to other resolvers (images) or to the plain file reader.
_NOT_OURS = {"file", "docker", "oci", "oci-archive"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def remote_protocol(name: str) -> str | None:
    """The fsspec protocol of ``name`` (``https``, ``s3``...), or None for a local path."""
    match = _SCHEME.match(name)
    if match is None:
        return None
    protocol = match.group(1).lower()
    return None if protocol in _NOT_OURS else protocol
