"""Archives where they live, as inputs of every reading command, through fsspec.

``http(s)://`` (a capture service's ``GET /checkpoints/NAME``, with the bearer token from
``--token-file`` or ``KCHECKPOINT_TOKEN``), ``s3://`` (s3fs, the usual AWS environment and
profiles) and any other protocol fsspec has installed. Each is streamed: nothing is downloaded
to disk first. A digest the server advertises (the capture service's ``X-Checkpoint-Sha256`` or
``Repr-Digest``, an S3 object's full-object ``ChecksumSHA256``) is checked as the bytes go by.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from kcheckpoint.errors import (
    ArchiveNotFound,
    DigestMismatch,
    InputError,
    KCheckpointError,
    RemoteInputError,
)
from kcheckpoint.inspect.reader.digest import BackgroundHash

from .names import remote_protocol

Opened = tuple[str, BinaryIO, int | None]

_READ_SIZE = 1 << 20
TOKEN_ENV = "KCHECKPOINT_TOKEN"
_token: dict[str, str | None] = {"value": None}


def set_token(token: str | None) -> None:
    """The bearer token for http(s) inputs (from --token-file); else $KCHECKPOINT_TOKEN."""
    _token["value"] = token


def current_token() -> str | None:
    return _token["value"] or os.environ.get(TOKEN_ENV) or None


def read_token_file(path: str | os.PathLike[str]) -> str | None:
    """The token in a file (surrounding white space stripped), or None when it is empty."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read the token ({exc.strerror})") from exc


def resolve(name: str) -> contextlib.AbstractContextManager[Opened] | None:
    """The reader's resolver: an opener for remote names, None for anything else."""
    protocol = remote_protocol(name)
    if protocol is None or not _fsspec_knows(protocol):
        return None
    return open_remote(name)


def _fsspec_knows(protocol: str) -> bool:
    """True for a protocol fsspec has an implementation of (installed or not: a missing one is
    reported with a hint); other schemes are left to other resolvers."""
    try:
        from fsspec.registry import known_implementations, registry
    except ImportError:
        return protocol in ("http", "https", "s3", "s3a")
    return protocol in known_implementations or protocol in registry


def register() -> None:
    """Let every reading command open remote archives (the CLI calls this once)."""
    from kcheckpoint.inspect.reader.source import register_resolver

    register_resolver(resolve)


@dataclass(frozen=True, slots=True)
class Expected:
    """A digest the server advertised for the whole object."""

    algorithm: str  # hashlib name
    hexdigest: str
    source: str  # where it came from, for the error message


@contextlib.contextmanager
def open_remote(name: str, token: str | None = None) -> Iterator[Opened]:
    """Stream the remote object ``name``; its advertised digest is checked as it is read."""
    protocol = remote_protocol(name) or ""
    with translate_remote_errors(name):
        if protocol in ("http", "https"):
            read, close, size, expected = _open_http(name, token or current_token())
        else:
            read, close, size, expected = _open_fsspec(name, protocol)
    reader = VerifyingReader(read, name, expected)
    try:
        yield name, cast(BinaryIO, reader), size
        # the consumer is done: read what it left, so that the digest covers every byte
        reader.finish()
    finally:
        reader.stop()
        with contextlib.suppress(Exception):
            close()


@contextlib.contextmanager
def translate_remote_errors(name: str) -> Iterator[None]:
    """fsspec, aiohttp and botocore errors, once, as kcheckpoint's own."""
    try:
        yield
    except KCheckpointError:
        raise
    except FileNotFoundError as exc:
        raise ArchiveNotFound(f"{name}: not found") from exc
    except PermissionError as exc:
        raise RemoteInputError(f"{name}: access denied ({exc})") from exc
    except ImportError as exc:
        raise InputError(
            f"{name}: this protocol needs a package that is not installed ({exc})",
            hint="pip install 'kcheckpoint[fleet]' for http(s) and s3",
        ) from exc
    except ValueError as exc:
        if "protocol" in str(exc).lower():
            hint = "no fsspec implementation is installed for it"
            raise InputError(f"{name}: {exc}", hint=hint) from exc
        raise RemoteInputError(f"{name}: {describe(exc)}") from exc
    except Exception as exc:
        if not _is_transport_error(exc):
            raise  # a bug of ours: the CLI reports it as an internal error
        raise RemoteInputError(f"{name}: {describe(exc)}", hint=_hint(exc)) from exc


_TRANSPORT_MODULES = (
    "requests",
    "urllib3",
    "aiohttp",
    "botocore",
    "aiobotocore",
    "fsspec",
    "s3fs",
    "ssl",
    "asyncio",
)


def _is_transport_error(exc: BaseException) -> bool:
    """An error of the network, the server or the storage library, not of kcheckpoint."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    return any(cls.__module__.split(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__[:-2])


def describe(exc: BaseException) -> str:
    """A one-line account of a transport error, never its request headers."""
    status = _status(exc)
    if status is not None:
        response = getattr(exc, "response", None)
        reason = getattr(response, "reason", None) or getattr(exc, "message", "") or ""
        return f"the server answered {status} {reason}".rstrip()
    text = str(exc).strip() or type(exc).__name__
    refused = re.search(r"\[Errno -?\d+\] ([^\"'()]+)", text)
    if refused and type(exc).__module__.split(".")[0] in ("requests", "urllib3"):
        return f"cannot connect ({refused.group(1).strip().lower()})"
    return f"{text.splitlines()[0][:300]}"


def _status(exc: BaseException) -> int | None:
    """The HTTP status of an error answer (aiohttp's ``status``, requests' ``response``)."""
    status = getattr(exc, "status", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _hint(exc: BaseException) -> str | None:
    if _status(exc) in (401, 403):
        return f"give the service's token with --token-file FILE or ${TOKEN_ENV}"
    return None


Reader = Callable[[int], bytes]


def _open_http(url: str, token: str | None) -> tuple[Reader, Callable[[], None], int | None, Any]:
    """One streaming GET through fsspec's blocking http filesystem (requests): no HEAD, no
    range requests, and the body is read in this thread, so that the socket, the scan and
    the hash never wait on each other's turn at the GIL."""
    from fsspec.implementations.http_sync import HTTPFileSystem

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    fs = HTTPFileSystem(headers=headers, skip_instance_cache=True)
    # one GET on the filesystem's session, streamed (fsspec's own stream file reads the body
    # 1 KiB at a time)
    response = fs.session.get(fs.encode_url(url), stream=True, **fs.kwargs)
    try:
        fs._raise_not_found_for_status(response, url)
    except BaseException:
        response.close()
        fs.session.close()
        raise
    raw = response.raw

    def read(n: int) -> bytes:
        with translate_remote_errors(url):
            return cast(bytes, raw.read(n))

    def close() -> None:
        response.close()
        fs.session.close()

    length = response.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    return read, close, size, _http_digest(response.headers)


def _http_digest(headers: Any) -> Expected | None:
    value = headers.get("X-Checkpoint-Sha256")
    if value and re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return Expected("sha256", value.lower(), "X-Checkpoint-Sha256")
    for item in (headers.get("Repr-Digest") or "").split(","):
        algo, _, encoded = item.strip().partition("=")
        if algo.lower() == "sha-256" and encoded.startswith(":") and encoded.endswith(":"):
            with contextlib.suppress(ValueError):
                raw = base64.b64decode(encoded[1:-1], validate=True)
                if len(raw) == 32:
                    return Expected("sha256", raw.hex(), "Repr-Digest")
    return None


def _open_fsspec(name: str, protocol: str) -> tuple[Reader, Callable[[], None], int | None, Any]:
    """Any other fsspec protocol: opened as fsspec opens it, read forward in 1 MiB steps."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(name)
    expected = _s3_checksum(fs, path) if protocol in ("s3", "s3a") else None
    handle = fs.open(path, "rb", block_size=8 << 20, cache_type="readahead")
    size = getattr(handle, "size", None)

    def read(n: int) -> bytes:
        with translate_remote_errors(name):
            return cast(bytes, handle.read(n))

    return read, handle.close, size if isinstance(size, int) else None, expected


def _s3_checksum(fs: Any, path: str) -> Expected | None:
    """An S3 object's full-object SHA-256, when it was stored with one (not a multipart sum)."""
    bucket, _, key = path.partition("/")
    head = fs.call_s3("head_object", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return Expected("sha256", raw.hex(), "S3 ChecksumSHA256") if len(raw) == 32 else None


class VerifyingReader(io.RawIOBase):
    """Passes the bytes on, hashing them (in a thread, beside the reader's own work) when a
    digest is expected; at the end of the object the digest must match."""

    def __init__(self, read: Reader, label: str, expected: Expected | None) -> None:
        super().__init__()
        self._read = read
        self._label = label
        self._expected = expected
        self._hash = BackgroundHash(expected.algorithm) if expected else None
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(min(len(view), _READ_SIZE))
        n = len(data)
        if n == 0:
            self._check()
            return 0
        view[:n] = data
        if self._hash is not None:
            self._hash.update(data)
        return n

    def take_over_sha256(self) -> Callable[[str], None] | None:
        """The reader hashes every byte itself: it checks the digest with the returned
        function, and this stream stops hashing (before it has read anything)."""
        if self._hash is None or self._expected is None or self._expected.algorithm != "sha256":
            return None
        self._hash.hexdigest()  # stops its thread; nothing was hashed yet
        self._hash = None
        return self._compare

    def finish(self) -> None:
        """Read to the end and check the digest."""
        while not self._checked:
            data = self._read(_READ_SIZE)
            if not data:
                self._check()
            elif self._hash is not None:
                self._hash.update(data)

    def stop(self) -> None:
        """Let the hashing thread go, whether or not the object was read to its end."""
        if self._hash is not None:
            self._hash.hexdigest()

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._hash is None or self._expected is None:
            return
        self._compare(self._hash.hexdigest())

    def _compare(self, actual: str) -> None:
        self._checked = True
        if self._expected is not None and actual != self._expected.hexdigest:
            raise DigestMismatch(
                f"{self._label}: SHA-256 {actual} does not match the server's "
                f"{self._expected.source} {self._expected.hexdigest}"
            )
