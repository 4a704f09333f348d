"""Open an input (a path or ``-``), detect its compression by magic bytes, hash it as it is read.

References:
    gzip RFC 1952, bzip2 ``BZh``, xz ``FD 37 7A 58 5A 00``, zstd RFC 8878 (frame and
    skippable magics), POSIX ustar header (magic at offset 257).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from kcheckpoint.errors import (
    ArchiveNotFound,
    CorruptCompression,
    FormatError,
    InputError,
    NotAnArchive,
)
from kcheckpoint.inspect.model import InputInfo

from .digest import BackgroundHash
from .zstdstream import ZstdReader

#: Called with (bytes of input read so far, total input size or None).
ProgressCallback = Callable[[int, int | None], None]

#: How much one read asks for (and one buffer holds): what a pass holds of a member at once.
CHUNK = 1 << 20
_PROGRESS_STEP = 8 << 20
_SNIFF = 512

_ZSTD_FRAME = b"\x28\xb5\x2f\xfd"
_LZ4_FRAME = b"\x04\x22\x4d\x18"


def detect_compression(head: bytes) -> str:
    """Name the compression of a stream from its first bytes: none, gzip, bzip2, xz or zstd.

    Raises NotAnArchive for an empty input, a compression we cannot read, or bytes that are
    neither compressed nor a tar header.
    """
    if not head:
        raise NotAnArchive("the input is empty")
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(_ZSTD_FRAME) or _is_zstd_skippable(head):
        return "zstd"
    if head.startswith(_LZ4_FRAME):
        raise NotAnArchive(
            "the input is lz4-compressed, which kcheckpoint does not read",
            hint="decompress it first: lz4 -dc FILE | kcheckpoint ... -",
        )
    if looks_like_tar(head):
        return "none"
    raise NotAnArchive("the input is not a tar archive and not a compressed one")


def _is_zstd_skippable(head: bytes) -> bool:
    if len(head) < 4:
        return False
    magic = int.from_bytes(head[:4], "little")
    return 0x184D2A50 <= magic <= 0x184D2A5F


def looks_like_tar(block: bytes) -> bool:
    """True when ``block`` starts with a tar header: ustar magic, or a valid header checksum."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == unsigned


#: Opens an input named by something other than a path (an image reference, say): returns
#: None when the name is not one it knows, else a context manager giving (display name, the
#: archive's raw bytes as a forward-only stream, their size or None). Registered by the rooms
#: above the reader (``kcheckpoint.oci``), which the reader may not import.
InputResolver = Callable[
    [str], contextlib.AbstractContextManager[tuple[str, BinaryIO, int | None]] | None
]
_RESOLVERS: list[InputResolver] = []


def register_resolver(resolver: InputResolver) -> None:
    """Let ``open_input`` open names that ``resolver`` knows (once per resolver)."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def _resolve(name: str, stack: contextlib.ExitStack) -> tuple[str, BinaryIO, int | None] | None:
    for resolver in _RESOLVERS:
        opener = resolver(name)
        if opener is not None:
            return stack.enter_context(opener)
    return None


class ChunkReader(io.RawIOBase):
    """Byte chunks from an iterator (a streamed response body, generated content) as a
    forward-only binary file."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class HashingReader(io.RawIOBase):
    """A forward-only reader that hashes and counts every byte it passes on."""

    def __init__(
        self,
        raw: IO[bytes],
        *,
        hash_input: bool,
        total: int | None,
        progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._sha = BackgroundHash() if hash_input else None
        self.count = 0
        self._total = total
        self._progress = progress
        self._next_report = _PROGRESS_STEP

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return 0
        if self._sha is not None:
            self._sha.update(view[:n])
        self.count += n
        if self._progress is not None and self.count >= self._next_report:
            self._next_report = self.count + _PROGRESS_STEP
            self._progress(self.count, self._total)
        return int(n)

    def drain(self) -> None:
        """Read to the end, so that the digest and count cover the whole input."""
        buf = bytearray(CHUNK)
        while self.readinto(buf):
            pass

    @property
    def sha256(self) -> str | None:
        return self._sha.hexdigest() if self._sha is not None else None


@dataclass
class OpenedInput:
    """An input ready to read: where it came from, how it is compressed, and how to read it."""

    path: str
    size: int | None
    compression: str
    #: A regular, uncompressed file: members can be read at their offsets.
    seekable: bool
    #: The raw bytes, hashed and counted as they are read (stream mode).
    counter: HashingReader | None
    #: The decompressed tar stream (stream mode) or the file itself (seekable mode).
    stream: BinaryIO
    #: Told the input's SHA-256 once it has been read whole (a resolver's digest check).
    on_digest: Callable[[str], None] | None = None

    def finish(self) -> str | None:
        """Consume what is left of the input and return its SHA-256 (stream mode)."""
        if self.counter is None:
            return None
        with translate_decompression_errors(self.compression):
            while self.stream.read(CHUNK):
                pass
        self.counter.drain()
        digest = self.counter.sha256
        if digest is not None and self.on_digest is not None:
            check, self.on_digest = self.on_digest, None
            check(digest)
        return digest

    def info(self, *, hash_seekable: bool) -> InputInfo:
        """The input's record once it has been read: a stream is hashed as it went by, a file
        on disk only when ``hash_seekable`` asks for it (that reads every byte once more)."""
        if self.seekable:
            digest = None
            if hash_seekable:
                self.stream.seek(0)
                digest = hashlib.file_digest(self.stream, "sha256").hexdigest()  # type: ignore[arg-type]
            return InputInfo(self.path, self.size, self.compression, "seekable", digest)
        digest = self.finish()
        # a pipe has no size up front: the bytes read stand for it
        size = self.size if self.size is not None or self.counter is None else self.counter.count
        return InputInfo(self.path, size, self.compression, "stream", digest)


@contextlib.contextmanager
def translate_decompression_errors(compression: str) -> Iterator[None]:
    """Turn the errors of gzip, bz2, lzma and zstd into CorruptCompression."""
    try:
        yield
    except EOFError as exc:
        raise CorruptCompression(
            f"the {compression} stream ends early ({exc})",
            hint="the archive was probably cut short during copy or download",
        ) from exc
    except Exception as exc:
        if isinstance(exc, _corrupt_data_errors()):
            raise CorruptCompression(f"the {compression} data is corrupt ({exc})") from exc
        if (
            compression == "bzip2"
            and isinstance(exc, OSError)
            and "Invalid data stream" in str(exc)
        ):
            raise CorruptCompression(f"the bzip2 data is corrupt ({exc})") from exc
        raise


def _gzip_reader(raw: BinaryIO) -> BinaryIO:
    """ISA-L's gzip reader (igzip, about twice zlib's speed), or the stdlib's without it."""
    try:
        from isal import igzip
    except ImportError:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return cast(BinaryIO, igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]


def _corrupt_data_errors() -> tuple[type[BaseException], ...]:
    """What the decompressors raise for bad data (ISA-L's own error too, when it is in use)."""
    errors: tuple[type[BaseException], ...] = (gzip.BadGzipFile, zlib.error, lzma.LZMAError)
    try:
        from isal import isal_zlib
    except ImportError:
        return errors
    isal_error: Any = isal_zlib.error
    return (*errors, isal_error)


def _decompressor(compression: str, raw: BinaryIO) -> BinaryIO:
    if compression == "gzip":
        return _gzip_reader(raw)
    if compression == "bzip2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if compression == "xz":
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if compression == "zstd":
        # Podman writes long-distance-matching frames; ZstdReader accepts windows up to 2 GiB.
        return cast(BinaryIO, io.BufferedReader(ZstdReader(raw), buffer_size=CHUNK))
    raise AssertionError(compression)


@contextlib.contextmanager
def open_input(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    hash_input: bool = True,
    progress: ProgressCallback | None = None,
) -> Iterator[OpenedInput]:
    """Open ``path`` (or standard input for ``-``) for reading as a checkpoint archive.

    A regular, uncompressed file opens in seekable mode. Anything else is read in one forward
    pass through a decompressor, hashed as it goes.
    """
    name = os.fspath(path)
    with contextlib.ExitStack() as stack:
        resolved = _resolve(name, stack)
        if resolved is not None:
            yield from _open_stream(*resolved, hash_input, progress)
            return
        if name == "-":
            raw_file: BinaryIO = stdin if stdin is not None else sys.stdin.buffer
            size: int | None = None
            regular = False
        else:
            try:
                raw_file = stack.enter_context(open(name, "rb"))
                st = os.fstat(raw_file.fileno())
            except FileNotFoundError as exc:
                raise ArchiveNotFound(f"{name}: no such file") from exc
            except IsADirectoryError as exc:
                raise InputError(f"{name}: is a directory, not an archive") from exc
            except PermissionError as exc:
                raise InputError(f"{name}: permission denied") from exc
            except OSError as exc:
                raise InputError(f"{name}: cannot open ({exc.strerror})") from exc
            regular = stat.S_ISREG(st.st_mode)
            size = st.st_size if regular else None

        try:
            if regular:
                head = raw_file.read(_SNIFF)
                raw_file.seek(0)
            else:
                buffered = io.BufferedReader(cast(Any, raw_file), buffer_size=CHUNK)
                head = buffered.peek(_SNIFF)[:_SNIFF]
                raw_file = cast(BinaryIO, buffered)
        except OSError as exc:
            raise InputError(f"{name}: cannot read ({exc})") from exc

        display = "<stdin>" if name == "-" else name
        try:
            compression = detect_compression(head)
        except NotAnArchive as exc:
            raise NotAnArchive(f"{display}: {exc.message}", hint=exc.hint) from exc
        if regular and compression == "none":
            with _named_errors(display):
                yield OpenedInput(display, size, compression, True, None, raw_file)
            return
        yield from _stream_input(display, raw_file, size, compression, hash_input, progress)


def _open_stream(
    display: str,
    raw_file: BinaryIO,
    size: int | None,
    hash_input: bool,
    progress: ProgressCallback | None,
) -> Iterator[OpenedInput]:
    """A resolved input (an image layer, a URL): always read in one forward pass.

    A resolver's stream may check a digest its server advertised. When this reader hashes
    every byte anyway, the stream hands that check over (``take_over_sha256``) instead of
    hashing the same bytes a second time.
    """
    take_over = getattr(raw_file, "take_over_sha256", None)
    on_digest = take_over() if hash_input and callable(take_over) else None
    buffered = io.BufferedReader(cast(Any, raw_file), buffer_size=CHUNK)
    try:
        head = buffered.peek(_SNIFF)[:_SNIFF]
    except OSError as exc:
        raise InputError(f"{display}: cannot read ({exc})") from exc
    try:
        compression = detect_compression(head)
    except NotAnArchive as exc:
        raise NotAnArchive(f"{display}: {exc.message}", hint=exc.hint) from exc
    yield from _stream_input(
        display, cast(BinaryIO, buffered), size, compression, hash_input, progress, on_digest
    )


def _stream_input(
    display: str,
    raw_file: BinaryIO,
    size: int | None,
    compression: str,
    hash_input: bool,
    progress: ProgressCallback | None,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[OpenedInput]:
    """Hash, count and decompress a forward-only input."""
    counter = HashingReader(raw_file, hash_input=hash_input, total=size, progress=progress)
    reader = io.BufferedReader(counter, buffer_size=CHUNK)
    stream: BinaryIO = reader
    if compression != "none":
        stream = _decompressor(compression, cast(BinaryIO, reader))
        with _named_errors(display), translate_decompression_errors(compression):
            first = stream.peek(_SNIFF) if hasattr(stream, "peek") else b""
        if first and not looks_like_tar(first[:_SNIFF]) and len(first) >= _SNIFF:
            raise NotAnArchive(f"{display}: {compression}-compressed, but not a tar archive")
    with _named_errors(display):
        yield OpenedInput(display, size, compression, False, counter, stream, on_digest)


@contextlib.contextmanager
def _named_errors(display: str) -> Iterator[None]:
    """Every input or format error met while an input is read names that input first."""
    try:
        yield
    except (InputError, FormatError) as exc:
        if not exc.message.startswith(display):
            exc.message = f"{display}: {exc.message}"
            exc.args = (exc.message,)
        raise
