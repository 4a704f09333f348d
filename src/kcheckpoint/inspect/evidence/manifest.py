"""SHA-256 of every member, and of every file inside rootfs-diff.tar, in one pass.

Paths in a manifest are where ``kcheckpoint extract`` writes each file: archive members under their
own (normalised) names, and the files inside ``rootfs-diff.tar`` under ``rootfs-diff/``. So a
manifest checks an extracted tree with ``sha256sum -c``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from kcheckpoint.errors import FormatError, InputError
from kcheckpoint.inspect.model import InputInfo, Problem
from kcheckpoint.inspect.reader.archive import Entry, TarMember, walk_input, walk_nested
from kcheckpoint.inspect.reader.source import CHUNK, HashingReader, ProgressCallback, open_input

#: The directory the files of rootfs-diff.tar are extracted to and named under.
ROOTFS_PREFIX = "rootfs-diff/"
ROOTFS_MEMBER = "rootfs-diff.tar"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of the archive (or of its rootfs diff) and its digest."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Unlisted:
    """A member no manifest can vouch for: unsafe, a device or FIFO, sparse, a dangling link."""

    path: str
    type: str
    reason: str


@dataclass(frozen=True, slots=True)
class Structure:
    """A member that is not a regular file (a directory, a link...), as a JSON manifest lists
    it, so that verify can check what a sha256sum manifest cannot say."""

    path: str
    type: str
    linkname: str | None

    @property
    def key(self) -> str:
        """What verify compares, in place of a digest."""
        return f"{self.type}:{self.linkname}" if self.linkname else self.type


@dataclass
class Manifest:
    """Digests of every regular file, in archive order."""

    input: InputInfo
    entries: list[ManifestEntry] = field(default_factory=list)
    #: Members that are not regular files (directories, links, devices) are not hashed.
    skipped: list[str] = field(default_factory=list)
    #: Members a manifest cannot list, which ``verify`` reports as extra unless listed.
    unlisted: list[Unlisted] = field(default_factory=list)
    #: Every member that is not a regular file, in the archive and in rootfs-diff.tar.
    structure: list[Structure] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Paths of the files hashed so far (hard links are checked against it); not in JSON.
    file_paths: set[str] = field(default_factory=set, metadata={"json": False})


def build_manifest(
    path: str | os.PathLike[str],
    *,
    stdin: BinaryIO | None = None,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Hash every member and every file in rootfs-diff.tar, reading the archive once."""
    with open_input(path, stdin=stdin, hash_input=True, progress=progress) as src:
        manifest = Manifest(InputInfo(src.path, src.size, src.compression, "", None))
        for entry in walk_input(src, manifest.problems):
            _add(manifest, entry)
        manifest.input = src.info(hash_seekable=True)
    return manifest


def unlisted_reason(member: TarMember, files: set[str], prefix: str = "") -> str | None:
    """Why a member that is not a hashed file must still be reported by ``verify``, or None
    for structure a manifest leaves out (directories, links inside the archive)."""
    if member.unsafe:
        return member.unsafe
    if member.sparse:
        return "a sparse member"
    if member.type in ("char", "block", "fifo", "other"):
        return f"a {member.type} member"
    if member.type == "hardlink" and prefix + member.linkname.removeprefix("./") not in files:
        return f"a hard link to {member.linkname}, which is not a file in the archive"
    return None


def _add(manifest: Manifest, entry: Entry) -> None:
    member = entry.member
    files = manifest.file_paths
    reason = unlisted_reason(member, files)
    if reason is not None:
        manifest.unlisted.append(Unlisted(member.raw_name, member.type, reason))
    if member.type != "file" or member.unsafe:
        manifest.structure.append(
            Structure(
                member.raw_name if member.unsafe else member.name,
                member.type,
                member.linkname or None,
            )
        )
    if member.unsafe:
        manifest.problems.append(Problem(member.raw_name, "unsafe-name", member.unsafe))
        return
    if member.type != "file":
        manifest.skipped.append(member.name)
        return
    with entry.open() as fh:
        digest = _hash_rootfs(fh, manifest) if member.name == ROOTFS_MEMBER else hash_stream(fh)
    manifest.entries.append(ManifestEntry(member.name, member.size, digest))
    files.add(member.name)


def hash_stream(fh: BinaryIO) -> str:
    """SHA-256 of what is left in a stream, read in chunks."""
    sha = hashlib.sha256()
    while chunk := fh.read(CHUNK):  # allocates what the member holds, not 1 MiB each time
        sha.update(chunk)
    return sha.hexdigest()


def _hash_rootfs(fh: BinaryIO, manifest: Manifest) -> str:
    """Hash rootfs-diff.tar whole while hashing each file inside it, in the same read."""
    counter = HashingReader(fh, hash_input=True, total=None)
    tee = io.BufferedReader(counter, buffer_size=CHUNK)
    try:
        for inner in walk_nested(cast(BinaryIO, tee), ROOTFS_MEMBER):
            m = inner.member
            reason = unlisted_reason(m, manifest.file_paths, ROOTFS_PREFIX)
            if reason is not None:
                manifest.unlisted.append(Unlisted(ROOTFS_PREFIX + m.raw_name, m.type, reason))
            if (m.type != "file" or m.unsafe) and m.name != ".":
                path = ROOTFS_PREFIX + (m.raw_name if m.unsafe else m.name)
                manifest.structure.append(Structure(path, m.type, m.linkname or None))
            if m.unsafe:
                manifest.problems.append(
                    Problem(f"{ROOTFS_MEMBER}:{m.raw_name}", "unsafe-name", m.unsafe)
                )
                continue
            if m.type != "file" or m.name.rsplit("/", 1)[-1].startswith(".wh."):
                continue
            with inner.open() as inner_fh:
                digest = hash_stream(inner_fh)
            manifest.entries.append(ManifestEntry(ROOTFS_PREFIX + m.name, m.size, digest))
            manifest.file_paths.add(ROOTFS_PREFIX + m.name)
    except (FormatError, InputError) as exc:  # a damaged nested tar: the rest still reads
        manifest.problems.append(Problem(ROOTFS_MEMBER, "bad-nested-tar", str(exc)))
    while tee.read(CHUNK):
        pass
    return counter.sha256 or ""


def sha256sum_lines(entries: list[ManifestEntry]) -> Iterator[str]:
    """Lines in ``sha256sum`` format, with its escaping for names holding ``\\`` or a newline."""
    for e in entries:
        name = e.path
        if "\\" in name or "\n" in name:
            escaped = name.replace("\\", "\\\\").replace("\n", "\\n")
            yield f"\\{e.sha256}  {escaped}\n"
        else:
            yield f"{e.sha256}  {name}\n"


def parse_sha256sum(text: str) -> dict[str, str]:
    """Read ``sha256sum`` output back: path -> digest. Raises FormatError on a bad line."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        digest, sep, name = body.partition("  ")
        if not sep:
            digest, sep, name = body.partition(" *")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise FormatError(f"manifest line {number} is not in sha256sum format")
        if escaped:
            name = name.replace("\\n", "\n").replace("\\\\", "\\")
        result[name] = digest.lower()
    return result


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A path whose digest differs, or that is only on one side."""

    path: str
    #: "changed", "missing" (in the manifest, not in the archive) or "extra" (the reverse).
    status: str
    expected: str | None
    actual: str | None


def compare(
    expected: dict[str, str], manifest: Manifest, structure: dict[str, str] | None = None
) -> list[Mismatch]:
    """Differences between a manifest's digests and an archive's, sorted by path.

    ``structure`` (from a JSON manifest: path -> type and link target) adds every member that is
    not a regular file to the comparison: an added, removed or retargeted link or directory.
    """
    actual = {e.path: e.sha256 for e in manifest.entries}
    if structure is not None:
        expected = {**expected, **structure}
        actual.update((s.path, s.key) for s in manifest.structure)
    out: list[Mismatch] = []
    for path in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(path), actual.get(path)
        if want == got:
            continue
        status = "missing" if got is None else "extra" if want is None else "changed"
        out.append(Mismatch(path, status, want, got))
    # Every member is in the manifest or reported: those a manifest cannot list, always.
    listed = {m.path for m in out}
    for u in manifest.unlisted:
        if u.path not in listed:
            out.append(Mismatch(u.path, "extra", None, None))
            listed.add(u.path)
    return sorted(out, key=lambda m: m.path)
