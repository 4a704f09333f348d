"""Walk the members of a tar archive with the stdlib ``tarfile`` module, seekable or streamed.

A seekable plain tar is indexed by its headers (``tarfile`` seeks over member data), and a member
is read only when a consumer asks for it, at its data offset. Any other input is read in one
forward pass (``r|``), and a member's bytes can be read only while it is the current one.

Member names are normalised (leading ``./`` removed). Names that would leave the archive root
(``..``, absolute paths, links pointing out) are flagged, never followed.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from kcheckpoint.errors import CorruptArchive, FormatError, NotAnArchive, TruncatedArchive
from kcheckpoint.inspect.model import Problem

from .source import OpenedInput, translate_decompression_errors

BLOCK = 512

_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


@dataclass(frozen=True, slots=True)
class TarMember:
    """One tar header, with its name normalised."""

    name: str
    raw_name: str
    type: str
    size: int
    mode: int
    mtime: int
    uid: int
    gid: int
    linkname: str
    #: Why the name or link is unsafe to follow or extract, or None.
    unsafe: str | None
    offset_data: int
    #: A GNU sparse member (old or PAX format): never read, whatever size it declares.
    sparse: bool = False


def normalise_name(raw: str) -> str:
    """Strip leading ``./`` and trailing ``/``; the root directory becomes ``.``."""
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    return name or "."


#: Limits past which a name cannot be created safely (Linux: NAME_MAX 255 bytes per component,
#: PATH_MAX 4096 for a whole path, which must leave room for the output directory's own path).
MAX_COMPONENT = 255
MAX_PATH = 2048
MAX_DEPTH = 128


def unsafe_reason(name: str, type_: str, linkname: str) -> str | None:
    """Say why a member would escape the archive root or cannot be created, or None."""
    if too_long := _length_reason(name, linkname):
        return too_long
    if name.startswith("/"):
        return "absolute path"
    if ".." in name.split("/"):
        return "path with '..'"
    if type_ in ("symlink", "hardlink") and linkname:
        if linkname.startswith("/"):
            return f"{type_} to an absolute path ({linkname})"
        base = posixpath.dirname(name) if type_ == "symlink" else ""
        target = posixpath.normpath(posixpath.join(base, linkname))
        if target == ".." or target.startswith("../"):
            return f"{type_} that leaves the archive ({linkname})"
    return None


def _length_reason(name: str, linkname: str) -> str | None:
    if len(name) <= MAX_COMPONENT // 4 and len(linkname) <= MAX_COMPONENT // 4:
        return None  # the common case: short enough whatever its UTF-8 length
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_PATH:
        return f"name of {len(encoded)} bytes (more than {MAX_PATH})"
    parts = encoded.split(b"/")
    if len(parts) > MAX_DEPTH:
        return f"name of {len(parts)} components (more than {MAX_DEPTH})"
    longest = max(len(p) for p in parts)
    if longest > MAX_COMPONENT:
        return f"name with a component of {longest} bytes (more than {MAX_COMPONENT})"
    target = len(linkname.encode("utf-8", "surrogateescape"))
    if target > MAX_PATH:
        return f"link target of {target} bytes (more than {MAX_PATH})"
    return None


def _member(info: tarfile.TarInfo) -> TarMember:
    sparse = info.type == tarfile.GNUTYPE_SPARSE or getattr(info, "sparse", None) is not None
    # A sparse member's size is what it stands for, not what it stores: one reading of it for
    # every command is to read none of it ("other", size 0), and to say so.
    type_ = "other" if sparse else _TYPES.get(info.type, "other")
    name = normalise_name(info.name)
    linkname = info.linkname or ""
    return TarMember(
        name=name,
        raw_name=info.name,
        type=type_,
        size=int(info.size) if type_ == "file" else 0,
        mode=int(info.mode),
        mtime=int(info.mtime),
        uid=int(info.uid),
        gid=int(info.gid),
        linkname=linkname,
        unsafe=unsafe_reason(name, type_, linkname),
        offset_data=int(info.offset_data),
        sparse=sparse,
    )


class _EndCheckingTarInfo(tarfile.TarInfo):
    """Records why ``tarfile`` stopped reading headers, so that truncation is not silent.

    ``tarfile`` ends iteration quietly on an empty, short or invalid header after the first
    one. Only an all-zero block is a real end of archive.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _EndCheckingTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            tarfile_._kc_end = type(exc).__name__  # type: ignore[attr-defined]
            raise


#: The end-of-archive marker is two zero blocks. The first one is required (without it, a
#: stream cut between two members would look whole); a second one missing, cut short or not
#: zero is a warning-level problem, as GNU tar warns of "a lone zero block".
END_MARKER_MESSAGE = "the end-of-archive marker is incomplete (one zero block, not two)"


def _check_end(
    tf: tarfile.TarFile, label: str, problems: list[Problem] | None, file: Any = None
) -> None:
    end = getattr(tf, "_kc_end", None)
    if end == "EOFHeaderError":
        if problems is not None and file is not None:
            file.seek(tf.offset + BLOCK)
            if _read_block(file) != bytes(BLOCK):
                problems.append(Problem("end-of-archive", "end-marker", END_MARKER_MESSAGE))
        return
    if end in ("EmptyHeaderError", "TruncatedHeaderError", None):
        raise TruncatedArchive(f"{label}: the tar archive is truncated (no end-of-archive marker)")
    raise CorruptArchive(f"{label}: a tar header is damaged ({end})")


@contextlib.contextmanager
def translate_tar_errors(label: str, compression: str = "none") -> Iterator[None]:
    """Map ``tarfile`` and decompressor errors to our FormatError/InputError classes."""
    try:
        with translate_decompression_errors(compression):
            yield
    except tarfile.ReadError as exc:
        text = str(exc)
        if "unexpected end of data" in text or "truncated" in text:
            raise TruncatedArchive(f"{label}: the tar archive is truncated") from exc
        if text in ("empty file", "invalid header", "bad checksum") or "header" in text:
            raise NotAnArchive(f"{label}: not a tar archive ({text})") from exc
        raise CorruptArchive(f"{label}: {text}") from exc
    except tarfile.TarError as exc:
        raise CorruptArchive(f"{label}: {exc}") from exc
    except (ValueError, OverflowError) as exc:  # tarfile's own parsing of PAX numbers
        raise CorruptArchive(f"{label}: a tar header is damaged ({exc})") from exc


class ForwardSeekable(io.RawIOBase):
    """A forward-only stream that ``tarfile`` can open in its seekable mode (``r:``).

    ``tarfile``'s own stream mode (``r|``) copies every byte three times through its internal
    buffer, even when skipping member data. Here a forward seek skips by reading into one scratch
    buffer, and a short window of recent bytes allows the small backward seek ``tarfile`` makes
    to check for the end of data. Any other backward seek is an error.
    """

    _WINDOW = 4096
    _SKIP = 1 << 20

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._pos = 0
        self._window = b""  # the bytes just before self._end
        self._end = 0  # how far the underlying stream has been read
        self._scratch = bytearray(self._SKIP)
        #: The first block of the stream, kept to tell a damaged tar from something else.
        self.head = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a stream")
        if pos < self._end - len(self._window):
            raise io.UnsupportedOperation("backward seek in a forward-only stream")
        while self._end < pos:
            want = min(self._SKIP, pos - self._end)
            n = self._raw.readinto(memoryview(self._scratch)[:want])  # type: ignore[attr-defined]
            if not n:
                break
            self._remember(memoryview(self._scratch)[:n])
        self._pos = min(pos, self._end)
        return self._pos

    def _remember(self, data: memoryview) -> None:
        if len(self.head) < BLOCK:
            self.head += bytes(data[: BLOCK - len(self.head)])
        self._end += len(data)
        if len(data) >= self._WINDOW:
            self._window = bytes(data[-self._WINDOW :])
        else:
            self._window = (self._window + bytes(data))[-self._WINDOW :]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if self._pos < self._end:  # replay bytes from the window after a backward seek
            start = len(self._window) - (self._end - self._pos)
            chunk = self._window[start : start + len(view)]
            view[: len(chunk)] = chunk
            self._pos += len(chunk)
            return len(chunk)
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return 0
        self._remember(view[:n])
        self._pos = self._end
        return int(n)


class MemberReader(io.RawIOBase):
    """One member's bytes inside an archive file: seekable, or forward-only for a stream."""

    def __init__(
        self, file: BinaryIO, offset: int, size: int, label: str, *, forward_only: bool = False
    ) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self._size = size
        self._pos = 0
        self._label = label
        self._forward_only = forward_only

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return not self._forward_only

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if self._forward_only:
            raise io.UnsupportedOperation("a streamed member is read forward only")
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence == io.SEEK_END:
            pos += self._size
        self._pos = max(0, min(pos, self._size))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        target = self._offset + self._pos
        try:
            if self._file.tell() != target:
                self._file.seek(target)
            n = self._file.readinto(view[:want])  # type: ignore[attr-defined]
        except io.UnsupportedOperation as exc:
            raise FormatError(f"{self._label}: read after the stream moved on") from exc
        if not n:
            raise TruncatedArchive(f"{self._label}: member data ends early")
        self._pos += n
        return int(n)


@dataclass
class Entry:
    """A member as the walk reaches it, with a way to read its bytes."""

    member: TarMember
    _open: Any
    #: For a member of a plain tar on disk: the file and the offset of the member's data, so
    #: that a reader may map it instead of copying it. None in stream mode.
    location: tuple[BinaryIO, int] | None = None

    def open(self) -> BinaryIO:
        """Read the member's bytes. In stream mode, only until the walk moves on."""
        return self._open()  # type: ignore[no-any-return]

    def read_all(self, limit: int) -> bytes:
        """The whole member, refusing members larger than ``limit`` bytes."""
        if self.member.size > limit:
            raise FormatError(f"{self.member.name}: {self.member.size} bytes is too large to read")
        with self.open() as fh:
            return fh.read()


def _has_tar_magic(block: bytes) -> bool:
    """A ustar (POSIX) or GNU magic: the block is a tar header, even when it is damaged."""
    return block[257:262] == b"ustar"


@contextlib.contextmanager
def _damaged_first_header(label: str, first_block: Callable[[], bytes]) -> Iterator[None]:
    """A first header with a tar magic but a bad checksum is a corrupt archive (exit 4), not
    something else than a tar (exit 3), as the same damage is in any later header."""
    try:
        yield
    except NotAnArchive as exc:
        if _has_tar_magic(first_block()):
            why = str(exc.__cause__ or "invalid header")
            raise CorruptArchive(f"{label}: the first tar header is damaged ({why})") from exc
        raise


def _read_block(file: Any) -> bytes:
    data = b""
    while len(data) < BLOCK:
        chunk = file.read(BLOCK - len(data))
        if not chunk:
            break
        data += chunk
    return data


def buffer_size_for(size: int) -> int:
    """A read buffer fit for a member: up to 1 MiB, no more than it holds (an archive of 100k
    small members must not allocate and fault in 100k MiB-sized buffers)."""
    return max(BLOCK, min(size, 1 << 20))


def _headers(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Each header in turn, without ``tarfile``'s list of every one read so far (100k members
    would hold 100k TarInfo objects): only our compact TarMember records are kept."""
    while (info := tf.next()) is not None:
        tf.members.clear()  # type: ignore[attr-defined]
        yield info


def walk_seekable(
    file: BinaryIO, label: str, problems: list[Problem] | None = None
) -> Iterator[Entry]:
    """Index a seekable plain tar by its headers, then yield each member in archive order."""

    def first_block() -> bytes:
        file.seek(0)
        return file.read(BLOCK)

    with _damaged_first_header(label, first_block), translate_tar_errors(label):
        file.seek(0)
        tf = tarfile.open(fileobj=file, mode="r:", tarinfo=_EndCheckingTarInfo)  # noqa: SIM115
        members = [_member(info) for info in _headers(tf)]
        _check_end(tf, label, problems, file)
    for member in members:
        if member.type != "file":
            yield Entry(member, lambda: io.BytesIO(b""))
            continue
        yield Entry(member, _seekable_opener(file, member, label), (file, member.offset_data))


def _seekable_opener(file: BinaryIO, member: TarMember, label: str) -> Any:
    def opener() -> BinaryIO:
        raw = MemberReader(file, member.offset_data, member.size, f"{label}: {member.name}")
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=buffer_size_for(member.size)))

    return opener


def walk_stream(
    stream: BinaryIO,
    label: str,
    compression: str = "none",
    problems: list[Problem] | None = None,
) -> Iterator[Entry]:
    """Read a tar stream in one forward pass and yield each member as it arrives."""
    forward = ForwardSeekable(stream)
    with (
        _damaged_first_header(label, lambda: forward.head),
        translate_tar_errors(label, compression),
    ):
        tf = tarfile.open(fileobj=forward, mode="r:", tarinfo=_EndCheckingTarInfo)  # noqa: SIM115
    iterator = _headers(tf)
    while True:
        with translate_tar_errors(label, compression):
            info = next(iterator, None)
            member = _member(info) if info is not None else None
        if info is None or member is None:
            break
        if member.type != "file":
            yield Entry(member, lambda: io.BytesIO(b""))
            continue
        yield Entry(member, _stream_opener(forward, member, label, compression))
    with translate_tar_errors(label, compression):
        _check_end(tf, label, problems, forward)


def _stream_opener(
    forward: ForwardSeekable, member: TarMember, label: str, compression: str
) -> Any:
    def opener() -> BinaryIO:
        name = f"{label}: {member.name}"
        raw = MemberReader(
            cast(BinaryIO, forward), member.offset_data, member.size, name, forward_only=True
        )
        return cast(BinaryIO, _TranslatingReader(raw, compression, buffer_size_for(member.size)))

    return opener


class _TranslatingReader(io.BufferedReader):
    """Buffered reads of a streamed member, with decompressor errors translated."""

    def __init__(self, raw: io.RawIOBase, compression: str, buffer_size: int) -> None:
        super().__init__(raw, buffer_size=buffer_size)
        self._compression = compression

    def readinto(self, buffer: Any) -> int:
        with translate_decompression_errors(self._compression):
            return super().readinto(buffer)

    def read(self, size: int | None = -1) -> bytes:
        with translate_decompression_errors(self._compression):
            return super().read(size)

    def peek(self, size: int = 0) -> bytes:
        with translate_decompression_errors(self._compression):
            return super().peek(size)


def walk_nested(fh: BinaryIO, label: str) -> Iterator[Entry]:
    """Walk a tar held inside a member (plain or gzip), indexing it when it is seekable."""
    head = fh.peek(2)[:2] if hasattr(fh, "peek") else b""
    if head == b"\x1f\x8b":
        import gzip

        yield from walk_stream(gzip.GzipFile(fileobj=fh, mode="rb"), label, "gzip")  # type: ignore[arg-type]
    elif fh.seekable():
        yield from walk_seekable(fh, label)
    else:
        yield from walk_stream(fh, label)


def walk_input(src: OpenedInput, problems: list[Problem] | None = None) -> Iterator[Entry]:
    """Walk an opened input: indexed at offsets when seekable, else in one forward pass.

    What the walk finds wrong without stopping (an incomplete end marker) goes to ``problems``.
    """
    if src.seekable:
        return walk_seekable(src.stream, src.path, problems)
    return walk_stream(src.stream, src.path, src.compression, problems)
