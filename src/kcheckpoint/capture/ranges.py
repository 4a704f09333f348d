"""Range requests on archive downloads, as RFC 9110 §14 has them, one range per request.

- One valid byte range (``bytes=A-B``, ``bytes=A-``, ``bytes=-N``): 206 with that range, or 416
  with ``Content-Range: bytes */SIZE`` when it starts past the end.
- An invalid Range (another unit, bad syntax, ``bytes=10-5``) is ignored: 200 with the whole
  archive (§14.2: "a server MUST ignore a Range header field received with a request method
  that is unrecognized... [and] MAY ignore" any other; an invalid one is not an error).
- Several ranges are ignored too (§14.2 allows it): 200 with the whole archive, never a
  multipart answer.
- ``If-Range`` that does not match the ETag: 200 with the whole archive (starlette's rule).
"""

from __future__ import annotations

import re

from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(?:(\d+)\s*-\s*(\d*)|-\s*(\d+))\s*$", re.IGNORECASE)


def single_range(header: str | None) -> str | None:
    """The Range header to honour, normalised, or None to send the whole representation."""
    if header is None:
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        return f"bytes=-{int(suffix)}"
    if last and int(last) < int(first):
        return None
    return f"bytes={int(first)}-{int(last) if last else ''}"


class SingleRangeFileResponse(FileResponse):
    """A FileResponse that honours one valid range and ignores any other Range header."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"range"]
        raw = [v for k, v in scope.get("headers", []) if k.lower() == b"range"]
        usable = single_range(raw[0].decode("latin-1")) if len(raw) == 1 else None
        if usable is not None:
            headers.append((b"range", usable.encode("latin-1")))
        await super().__call__({**scope, "headers": headers}, receive, send)
