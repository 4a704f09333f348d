"""Extract archive members, and the files inside rootfs-diff.tar, without ever leaving the output.

Rules, because these bytes may be secrets and the archive may be hostile:
- names with ``..``, absolute names, and links whose target leaves the output are refused;
- nothing is written through a symlink: every parent is checked, files are created with
  ``O_EXCL`` under a temporary name and renamed into place, and links are created last;
- an existing file is never overwritten without ``force``;
- directories are created 0700 and files 0600, whatever the archive says;
- a file is either written whole or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import posixpath
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from kcheckpoint.errors import FormatError, InputError
from kcheckpoint.inspect.model import InputInfo, Problem
from kcheckpoint.inspect.reader.archive import Entry, TarMember, walk_input, walk_nested
from kcheckpoint.inspect.reader.source import CHUNK, ProgressCallback, open_input

from .manifest import ROOTFS_MEMBER, ROOTFS_PREFIX


@dataclass(frozen=True, slots=True)
class Written:
    """Something extract created, relative to the output directory."""

    path: str
    type: str
    size: int
    sha256: str | None
    linkname: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """A member extract would not write, and why."""

    path: str
    #: "unsafe" (it would leave the output), "exists" (no --force), or "unsupported" (devices...).
    reason: str
    message: str


@dataclass
class ExtractResult:
    """What one extraction wrote and refused."""

    input: InputInfo
    output: str
    written: list[Written] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    #: Selectors that matched nothing in the archive.
    unmatched: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Selection:
    """Which paths to extract: everything, or exact names and directory prefixes."""

    def __init__(self, selectors: Sequence[str]) -> None:
        self._selectors = [s.strip("/") or "." for s in selectors]
        self.matched: set[str] = set()

    def wants(self, path: str) -> bool:
        if not self._selectors:
            return True
        for sel in self._selectors:
            if sel in (".", path) or path.startswith(sel + "/"):
                self.matched.add(sel)
                return True
        return False

    def wants_inside(self, prefix: str) -> bool:
        """Could anything below ``prefix`` be wanted (e.g. rootfs-diff/...)?"""
        if not self._selectors:
            return True
        return any(
            s == "." or s.startswith(prefix) or prefix.startswith(s + "/") for s in self._selectors
        )

    @property
    def unmatched(self) -> list[str]:
        return [s for s in self._selectors if s not in self.matched]


class _Writer:
    """Creates files, directories and links below one root, refusing anything that escapes."""

    def __init__(self, root: str, force: bool, result: ExtractResult) -> None:
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.root = os.path.realpath(root)
        self.force = force
        self.result = result
        self._links: list[tuple[str, str]] = []

    def refuse(self, path: str, reason: str, message: str) -> None:
        self.result.refused.append(Refused(path, reason, message))

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def _parent(self, rel: str) -> str | None:
        """Create the parent directories of ``rel`` (0700), refusing symlinked components."""
        current = self.root
        for part in rel.split("/")[:-1]:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o700)
                continue
            if not stat.S_ISDIR(st.st_mode):
                return None
        real = os.path.realpath(current)
        return real if self._inside(real) else None

    def _target(self, rel: str) -> str | None:
        parent = self._parent(rel)
        if parent is None:
            self.refuse(rel, "unsafe", "a parent directory is a link or a file")
            return None
        target = os.path.join(parent, rel.rsplit("/", 1)[-1])
        if os.path.lexists(target) and not self.force:
            if os.path.isdir(target) and not os.path.islink(target):
                return target
            self.refuse(rel, "exists", "already exists (use --force to overwrite)")
            return None
        return target

    def directory(self, rel: str) -> None:
        target = self._target(rel + "/.")
        if target is None:
            return
        path = os.path.dirname(target)
        if not os.path.isdir(path):
            os.mkdir(path, 0o700)
        self.result.written.append(Written(rel, "dir", 0, None, None))

    def file(self, rel: str, source: BinaryIO, size: int) -> None:
        target = self._target(rel)
        if target is None:
            return
        parent = os.path.dirname(target)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".kcheckpoint-")  # 0600, O_EXCL
        try:
            sha = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                buf = bytearray(max(1, min(size, CHUNK)))
                view = memoryview(buf)
                while n := source.readinto(buf):  # type: ignore[attr-defined]
                    out.write(view[:n])
                    sha.update(view[:n])
            if os.path.isdir(target) and not os.path.islink(target):
                raise IsADirectoryError(target)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.result.written.append(Written(rel, "file", size, sha.hexdigest(), None))

    def symlink(self, rel: str, linkname: str) -> None:
        """Queue a link; links are made after every file, so nothing is written through them."""
        if _link_escapes(rel, linkname):
            self.refuse(rel, "unsafe", f"link to {linkname} would leave the output directory")
            return
        self._links.append((rel, linkname))

    def finish_links(self) -> None:
        for rel, linkname in self._links:
            target = self._target(rel)
            if target is None:
                continue
            if os.path.lexists(target):
                if os.path.isdir(target) and not os.path.islink(target):
                    self.refuse(rel, "exists", "a directory of that name was extracted")
                    continue
                os.unlink(target)
            os.symlink(linkname, target)
            self.result.written.append(Written(rel, "symlink", 0, None, linkname))


def _link_escapes(rel: str, linkname: str) -> bool:
    if linkname.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), linkname))
    return resolved == ".." or resolved.startswith("../")


class _TeeReader(io.RawIOBase):
    """Reads from ``source`` and copies every byte read into ``sink``."""

    def __init__(self, source: BinaryIO, sink: Any) -> None:
        super().__init__()
        self._source = source
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._source.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._sink.write(memoryview(buffer)[:n])
        return int(n or 0)


def extract_archive(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    selectors: Sequence[str] = (),
    *,
    force: bool = False,
    stdin: BinaryIO | None = None,
    progress: ProgressCallback | None = None,
) -> ExtractResult:
    """Extract the selected members (all when none is given) into ``output``, in one pass.

    Selectors are member names or directory prefixes (``checkpoint/``), and ``rootfs-diff/PATH``
    for files inside rootfs-diff.tar.
    """
    selection = _Selection(selectors)
    with open_input(path, stdin=stdin, hash_input=True, progress=progress) as src:
        result = ExtractResult(
            InputInfo(src.path, src.size, src.compression, "", None), str(output)
        )
        writer = _Writer(os.fspath(output), force, result)
        for entry in walk_input(src, result.problems):
            _extract_entry(entry, writer, selection)
        writer.finish_links()
        result.input = src.info(hash_seekable=True)
    result.unmatched = selection.unmatched
    return result


def _extract_entry(entry: Entry, writer: _Writer, selection: _Selection) -> None:
    member = entry.member
    wanted = selection.wants(member.name)
    nested = member.name == ROOTFS_MEMBER and selection.wants_inside(ROOTFS_PREFIX)
    if not wanted and not nested:
        return
    if member.unsafe:
        writer.refuse(member.raw_name, "unsafe", member.unsafe)
        return
    if not nested:
        _write_member(member, entry, writer, member.name)
        return
    # rootfs-diff.tar: write the member itself (if wanted) and its files, reading it once.
    with entry.open() as fh:
        if wanted:
            target = writer._target(member.name)
            if target is None:
                _extract_rootfs(fh, writer, selection)
                return
            with _tee_into(writer, member.name, member.size) as sink:
                _extract_rootfs(
                    cast(BinaryIO, io.BufferedReader(_TeeReader(fh, sink))), writer, selection
                )
        else:
            _extract_rootfs(fh, writer, selection)


@contextlib.contextmanager
def _tee_into(writer: _Writer, rel: str, size: int) -> Iterator[Any]:
    """A private spool for ``rel``, copied into place (whole) only when the read completes."""

    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115
    try:
        yield spool
        spool.seek(0)
        writer.file(rel, cast(BinaryIO, spool), size)
    finally:
        spool.close()


def _extract_rootfs(fh: BinaryIO, writer: _Writer, selection: _Selection) -> None:
    try:
        for inner in walk_nested(fh, ROOTFS_MEMBER):
            m = inner.member
            if m.name == "." or m.name.rsplit("/", 1)[-1].startswith(".wh."):
                continue
            rel = ROOTFS_PREFIX + m.name
            if not selection.wants(rel):
                continue
            if m.unsafe:
                writer.refuse(f"{ROOTFS_MEMBER}:{m.raw_name}", "unsafe", m.unsafe)
                continue
            _write_member(m, inner, writer, rel)
    except (FormatError, InputError) as exc:  # a damaged nested tar: the rest still reads
        writer.result.problems.append(Problem(ROOTFS_MEMBER, "bad-nested-tar", str(exc)))
    while fh.read(CHUNK):
        pass


#: Errors that say the name, not the machine, is at fault: the member is refused as unsafe.
_NAME_ERRORS = (errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL, errno.EILSEQ)


def _write_member(member: TarMember, entry: Entry, writer: _Writer, rel: str) -> None:
    try:
        _write(member, entry, writer, rel)
    except OSError as exc:
        if exc.errno not in _NAME_ERRORS:
            raise
        writer.refuse(rel, "unsafe", f"cannot be created here ({os.strerror(exc.errno)})")


def _write(member: TarMember, entry: Entry, writer: _Writer, rel: str) -> None:
    if rel == ".":
        return
    if member.type == "dir":
        writer.directory(rel)
    elif member.type == "file":
        with entry.open() as fh:
            writer.file(rel, fh, member.size)
    elif member.type == "symlink":
        writer.symlink(rel, member.linkname)
    elif member.type == "hardlink":
        _hardlink(writer, rel, member.linkname)
    else:
        writer.refuse(rel, "unsupported", f"{member.type} files are not extracted")


def _hardlink(writer: _Writer, rel: str, linkname: str) -> None:
    """A hard link becomes a copy of a file already extracted inside the output."""
    source_rel = linkname.removeprefix("./")
    if rel.startswith(ROOTFS_PREFIX):
        source_rel = ROOTFS_PREFIX + source_rel
    if _link_escapes("", source_rel):
        writer.refuse(rel, "unsafe", f"hard link to {linkname} would leave the output directory")
        return
    source = os.path.realpath(os.path.join(writer.root, source_rel))
    if not writer._inside(source) or not os.path.isfile(source):
        writer.refuse(rel, "unsupported", f"hard link to {linkname}, which was not extracted")
        return
    with open(source, "rb") as fh:
        writer.file(rel, fh, os.path.getsize(source))


def check_output_dir(output: str | os.PathLike[str]) -> None:
    """The output must be a directory or not exist yet."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise InputError(f"{os.fspath(output)}: exists and is not a directory")
