"""Many inputs at once: a capture service's listing, an object-store prefix, a file of URLs, globs.

Each argument expands, in the order given, to the archives it names (sorted within one
argument; a listing keeps the service's order, oldest first). An argument that cannot be
expanded (a node that is down, a prefix that cannot be listed) becomes one failed input, so
that the rest of the run goes on.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from kcheckpoint.errors import InputError, KCheckpointError, RemoteInputError

from .inputs import current_token, translate_remote_errors
from .names import remote_protocol

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Target:
    """One archive to read, or the argument that could not be expanded and why."""

    name: str
    error: KCheckpointError | None = None


def is_listing_url(name: str) -> bool:
    """``http(s)://HOST[:PORT]/checkpoints`` (a capture service's list of archives)."""
    parts = urlsplit(name)
    return parts.scheme in ("http", "https") and parts.path.rstrip("/") == "/checkpoints"


def is_many(name: str) -> bool:
    """True when the argument may stand for more than one archive."""
    if name.startswith("@") or is_listing_url(name):
        return True
    if remote_protocol(name) is not None:
        return _lists(name)
    return name != "-" and (os.path.isdir(name) or (_has_glob(name) and not os.path.exists(name)))


def expand(arguments: list[str], *, token: str | None = None) -> list[Target]:
    """Every archive the arguments name, in order."""
    targets: list[Target] = []
    for argument in arguments:
        try:
            targets.extend(Target(n) for n in _expand_one(argument, token, from_file=False))
        except KCheckpointError as exc:
            targets.append(Target(argument, exc))
    return targets


def _expand_one(argument: str, token: str | None, *, from_file: bool) -> list[str]:
    if argument.startswith("@") and not from_file:
        names: list[str] = []
        for line in _url_file(argument[1:]):
            names.extend(_expand_one(line, token, from_file=True))
        return names
    if is_listing_url(argument):
        return list_service(argument, token)
    if remote_protocol(argument) is not None:
        return _list_remote(argument) if _lists(argument) else [argument]
    if argument != "-" and os.path.isdir(argument):
        return sorted(
            str(c)
            for c in Path(argument).iterdir()
            if c.name.startswith("checkpoint-") and c.is_file()
        )
    if _has_glob(argument) and not os.path.exists(argument):
        found = sorted(glob.glob(argument))
        if not found:
            raise InputError(f"{argument}: no file matches")
        return found
    return [argument]


def _url_file(path: str) -> list[str]:
    """The lines of a file of inputs; blank lines and # comments are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"@{path}: cannot read the list of inputs ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"@{path}: the list of inputs is not UTF-8 text") from exc
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def list_service(url: str, token: str | None = None) -> list[str]:
    """The download URL of every archive a capture service lists (oldest first)."""
    from fsspec.implementations.http_sync import HTTPFileSystem

    token = token or current_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    with translate_remote_errors(url):
        fs = HTTPFileSystem(headers=headers, skip_instance_cache=True)
        try:
            body = fs.cat_file(base)
        finally:
            fs.session.close()
    try:
        items = json.loads(body)["items"]
        names = [str(item["name"]) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteInputError(f"{url}: not a capture service's list of archives") from exc
    return [f"{base}/{quote(name, safe=':')}" for name in names]


def _list_remote(url: str) -> list[str]:
    """Every object under a prefix (``s3://bucket/prefix/``) or matching a glob."""
    from fsspec.core import url_to_fs

    protocol = remote_protocol(url) or ""
    with translate_remote_errors(url):
        fs, path = url_to_fs(url)
        found = fs.glob(path) if _has_glob(path) else fs.find(path)
    names = sorted(p if "://" in p else f"{protocol}://{p}" for p in found)
    if not names:
        raise RemoteInputError(f"{url}: nothing there")
    return names


def _lists(url: str) -> bool:
    """A prefix (``s3://bucket/dir/``) or a glob; http(s) URLs name one archive (or a listing)."""
    if remote_protocol(url) in ("http", "https"):
        return False
    return url.endswith("/") or _has_glob(url.split("://", 1)[1])


def _has_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)
