"""The archive store: ``<root>/checkpoints`` (0700), archives 0600, no partial file ever visible.

The runtime writes to a hidden temporary name in the same directory. Only when it has answered
OK is the file checked (a regular file, not a link, mode 0600), hashed, and linked under its
final name, which never replaces an existing file. A failure removes the temporary file. A small
hidden sidecar (``.<name>.json``) keeps the namespace, pod, container and SHA-256, so listing and
downloading need not re-read the archive. Blocking methods run in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from kcheckpoint.errors import CheckpointFailed

from .names import InvalidName, archive_name, parse_archive_name, rfc3339

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


class ArchiveMissing(LookupError):
    """No archive of that name (the HTTP layer answers 404)."""


@dataclass(frozen=True)
class ArchiveInfo:
    """One archive in the store."""

    name: str
    path: str
    namespace: str | None
    pod: str
    container: str | None
    time: str
    size: int
    sha256: str | None

    def public(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Reservation:
    """A name taken for one capture: the runtime writes ``temp``; ``commit`` makes it ``final``."""

    namespace: str
    pod: str
    container: str
    final: Path
    temp: Path


class ArchiveStore:
    """Archives under one directory, with names reserved in memory so none is used twice."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._directory = str(directory)
        #: final name -> temporary path, for captures in flight
        self._reserved: dict[str, Path] = {}
        #: names handed out in the last seconds, so a name is not reused right after retention
        #: or a DELETE removed its archive (audit records stay unambiguous)
        self._recent: dict[str, float] = {}
        self._lock = threading.Lock()

    # --- directory -----------------------------------------------------------------------
    def ensure_directory(self) -> None:
        """Create the directory 0700 (as the kubelet does at start), or check and fix it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(self.directory)  # a symlink to a bigger disk is fine; its target is checked
        if not stat.S_ISDIR(st.st_mode):
            raise CheckpointFailed(f"{self.directory} is not a directory")
        if stat.S_IMODE(st.st_mode) != 0o700:
            log.warning("%s had mode %o; setting 0700", self.directory, stat.S_IMODE(st.st_mode))
            os.chmod(self.directory, 0o700)

    # --- capture -------------------------------------------------------------------------
    def reserve(self, namespace: str, pod: str, container: str, now: datetime) -> Reservation:
        """Take a fresh final name (the kubelet's, in local time) and a temporary name.

        Two captures of one container in the same second would get the same kubelet name, and
        runtimes neither truncate nor refuse existing files. The second one gets microseconds
        in its timestamp instead (still RFC 3339).
        """
        self.ensure_directory()
        moment = now.astimezone()
        with self._lock:
            horizon = time.monotonic() - 5.0
            self._recent = {n: t for n, t in self._recent.items() if t > horizon}
            for fraction in (False, True, True, True):
                name = archive_name(namespace, pod, container, rfc3339(moment, fraction=fraction))
                taken = name in self._reserved or name in self._recent
                if not taken and not os.path.lexists(self.directory / name):
                    break
                moment = moment.replace(microsecond=(moment.microsecond + 1) % 1_000_000)
            else:  # pragma: no cover - four collisions within microseconds
                raise CheckpointFailed(f"no free archive name for {namespace}/{pod}/{container}")
            temp = self.directory / f"{TEMP_PREFIX}{name[:-4]}-{secrets.token_hex(4)}.tar"
            self._reserved[name] = temp
            self._recent[name] = time.monotonic()
        return Reservation(namespace, pod, container, self.directory / name, temp)

    def commit(self, res: Reservation) -> ArchiveInfo:
        """Check the runtime's file, hash it and give it its final name; else remove it."""
        try:
            try:
                fd = os.open(res.temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise CheckpointFailed(
                    f"the runtime reported success but wrote no archive at {res.temp}"
                ) from exc
            except OSError as exc:
                raise CheckpointFailed(f"cannot open the runtime's archive: {exc}") from exc
            with os.fdopen(fd, "rb") as handle:
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise CheckpointFailed("the runtime's archive is not a regular file")
                if stat.S_IMODE(st.st_mode) != 0o600:
                    log.warning(
                        "the runtime wrote %s with mode %o; setting 0600",
                        res.final.name,
                        stat.S_IMODE(st.st_mode),
                    )
                    os.fchmod(handle.fileno(), 0o600)
                digest = _sha256(handle)
            _place(res.temp, res.final)
            info = ArchiveInfo(
                name=res.final.name,
                path=str(res.final),
                namespace=res.namespace,
                pod=res.pod,
                container=res.container,
                time=parse_archive_name(res.final.name).timestamp,
                size=st.st_size,
                sha256=digest,
            )
            self._write_sidecar(info, st)
            return info
        except BaseException:
            self.discard(res)
            raise
        finally:
            self._release(res)

    def discard(self, res: Reservation) -> None:
        """Remove what the runtime may have written, and free the name."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(res.temp)
        self._release(res)

    def _release(self, res: Reservation) -> None:
        with self._lock:
            self._reserved.pop(res.final.name, None)

    def sweep_temporaries(self, names: list[str] | None = None) -> list[str]:
        """Remove temporary files no capture is waiting for (left by a crash, or written late
        by a runtime that ignored its deadline, as CRI-O does). ``names``: from ``scan()``."""
        if names is None:
            names = self.scan(sidecars=False)[1]
        removed = []
        for name in names:
            # decided under the lock, against the captures in flight *now*: a capture that
            # started after the scan began must keep its file
            with self._lock, contextlib.suppress(FileNotFoundError):
                if name not in {p.name for p in self._reserved.values()}:
                    os.unlink(os.path.join(self._directory, name))
                    removed.append(name)
        return removed

    # --- reading -------------------------------------------------------------------------
    def _scan(self) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as it:
                yield from it
        except FileNotFoundError:
            return

    def archives(self, *, sidecars: bool = True) -> list[ArchiveInfo]:
        """Every archive, oldest first (by modification time, then name).

        Without ``sidecars``, names and sizes only (what retention needs): no file is read.
        """
        return [info for info, _ in self.list_with_mtime(sidecars=sidecars)]

    def list_with_mtime(self, *, sidecars: bool = True) -> list[tuple[ArchiveInfo, float]]:
        return self.scan(sidecars=sidecars)[0]

    def scan(self, *, sidecars: bool = True) -> tuple[list[tuple[ArchiveInfo, float]], list[str]]:
        """One pass over the directory: the archives with their modification times (oldest
        first), and the names of temporary files."""
        found: list[tuple[ArchiveInfo, float]] = []
        temporaries: list[str] = []
        for entry in self._scan():
            name = entry.name
            if name.startswith(TEMP_PREFIX):
                temporaries.append(name)
                continue
            if not (name.startswith("checkpoint-") and name.endswith(".tar")):
                continue  # sidecars and anything else: no need to parse
            try:
                parsed = parse_archive_name(name)
                st = entry.stat(follow_symlinks=False)
            except (InvalidName, FileNotFoundError):
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if sidecars:
                info = self._info(name, st)
            else:  # the hot path of retention: what the name says, nothing read
                info = ArchiveInfo(
                    name,
                    entry.path,
                    parsed.namespace,
                    parsed.pod,
                    parsed.container,
                    parsed.timestamp,
                    st.st_size,
                    None,
                )
            found.append((info, st.st_mtime))
        found.sort(key=lambda pair: (pair[1], pair[0].name))
        return found, temporaries

    def describe(self, name: str) -> ArchiveInfo:
        """The archive called ``name`` (validated: InvalidName; absent: ArchiveMissing),
        without hashing it: ``sha256`` is None unless the sidecar knows it."""
        parse_archive_name(name)
        try:
            st = os.lstat(self.directory / name)
        except FileNotFoundError as exc:
            raise ArchiveMissing(name) from exc
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveMissing(name)
        return self._info(name, st)

    def get(self, name: str) -> ArchiveInfo:
        """The archive called ``name`` with its SHA-256, computed and cached when unknown."""
        info = self.describe(name)
        st = os.lstat(self.directory / name)
        if info.sha256 is None:
            with open(self.directory / name, "rb") as handle:
                digest = _sha256(handle)
            info = ArchiveInfo(**{**asdict(info), "sha256": digest})
            self._write_sidecar(info, st)
        return info

    def delete(self, name: str) -> ArchiveInfo:
        """Remove an archive and its sidecar (without hashing it first)."""
        info = self.describe(name)
        os.unlink(self.directory / name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._sidecar(name))
        return info

    # --- sidecar -------------------------------------------------------------------------
    def _sidecar(self, name: str) -> Path:
        return self.directory / f".{name}.json"

    def _info(self, name: str, st: os.stat_result) -> ArchiveInfo:
        parsed = parse_archive_name(name)
        meta: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(self._sidecar(name).read_text())
        fresh = meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns
        return ArchiveInfo(
            name=name,
            path=os.path.join(self._directory, name),
            namespace=_str(meta.get("namespace")) or parsed.namespace,
            pod=parsed.pod,
            container=_str(meta.get("container")) or parsed.container,
            time=parsed.timestamp,
            size=st.st_size,
            sha256=_str(meta.get("sha256")) if fresh else None,
        )

    def _write_sidecar(self, info: ArchiveInfo, st: os.stat_result) -> None:
        data = {
            "namespace": info.namespace,
            "container": info.container,
            "sha256": info.sha256,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
        }
        path = self._sidecar(info.name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
        except OSError as exc:  # the sidecar is a cache; the archive is what matters
            log.warning("cannot write %s: %s", path, exc)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _sha256(handle: object) -> str:
    sha = hashlib.sha256()
    read = handle.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


def _place(temp: Path, final: Path) -> None:
    """Give ``temp`` the name ``final`` without ever replacing an existing file.

    A hard link fails when the name exists. On a file system without hard links, a rename
    after a check is the fallback (the name is reserved in memory, so only a foreign writer
    could race it).
    """
    try:
        os.link(temp, final)
    except FileExistsError as exc:  # someone else wrote that name meanwhile
        raise CheckpointFailed(f"{final} appeared during the checkpoint") from exc
    except OSError:
        if os.path.lexists(final):
            raise CheckpointFailed(f"{final} appeared during the checkpoint") from None
        os.rename(temp, final)
        return
    os.unlink(temp)
