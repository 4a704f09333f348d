"""Bearer tokens from a static token file, compared in constant time, scoped to namespaces.

File format (CSV, like the API server's --token-auth-file, plus a namespace column)::

    # token,user,uid,namespaces
    3f9c...e1,alice,1001,"team-a,team-b"
    77ab...0c,ops,1002,*

Blank lines and lines starting with ``#`` are skipped. Tokens are never logged: errors name the
line number only.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from dataclasses import dataclass
from pathlib import Path

from kcheckpoint.errors import InputError

ANONYMOUS_USER = "system:anonymous"


@dataclass(frozen=True)
class Identity:
    """Who is calling, and which namespaces they may act on (``*``: all)."""

    user: str
    uid: str
    namespaces: frozenset[str]

    def may_access(self, namespace: str | None) -> bool:
        """True for an allowed namespace; an archive of unknown namespace needs ``*``."""
        if "*" in self.namespaces:
            return True
        return namespace is not None and namespace in self.namespaces


ANONYMOUS = Identity(ANONYMOUS_USER, "", frozenset({"*"}))


class AuthenticationFailed(Exception):
    """No valid credential (the HTTP layer answers 401)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenAuthenticator:
    """Checks ``Authorization: Bearer <token>`` against the token file."""

    def __init__(self, entries: list[tuple[str, Identity]], *, allow_anonymous: bool) -> None:
        self._entries = [(_digest(token), ident) for token, ident in entries]
        self.allow_anonymous = allow_anonymous

    @classmethod
    def from_file(cls, path: Path | None, *, allow_anonymous: bool) -> TokenAuthenticator:
        if path is None:
            return cls([], allow_anonymous=allow_anonymous)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the token file ({exc.strerror})") from exc
        return cls(parse_token_file(text, str(path)), allow_anonymous=allow_anonymous)

    def authenticate(self, authorization: str | None) -> Identity:
        """The caller's identity; AuthenticationFailed without a valid token.

        A presented but invalid credential fails even when anonymous access is allowed, as in
        the kubelet. Every entry is compared, in constant time, whatever matches.
        """
        if not authorization:
            if self.allow_anonymous:
                return ANONYMOUS
            raise AuthenticationFailed("no credentials")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("not a bearer token")
        presented = _digest(token)
        found: Identity | None = None
        for digest, ident in self._entries:
            if hmac.compare_digest(digest, presented):
                found = ident
        if found is None:
            raise AuthenticationFailed("invalid token")
        return found


def parse_token_file(text: str, source: str = "token file") -> list[tuple[str, Identity]]:
    """``token,user,uid,namespaces`` rows; raises InputError naming the line, never the token."""
    entries: list[tuple[str, Identity]] = []
    seen: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            (row,) = list(csv.reader(io.StringIO(line), skipinitialspace=True, strict=True))
        except (csv.Error, ValueError) as exc:
            raise InputError(f"{source}:{number}: not a CSV line") from exc
        if len(row) != 4:
            raise InputError(
                f"{source}:{number}: expected 4 fields (token,user,uid,namespaces), got {len(row)}"
            )
        token, user, uid, namespaces = (field.strip() for field in row)
        if not token or not user:
            raise InputError(f"{source}:{number}: the token and the user must not be empty")
        if _digest(token) in seen:
            raise InputError(f"{source}:{number}: this token is already on an earlier line")
        seen.add(_digest(token))
        allowed = frozenset(ns.strip() for ns in namespaces.split(",") if ns.strip())
        if not allowed:
            raise InputError(f"{source}:{number}: no namespaces (use * for all)")
        entries.append((token, Identity(user, uid, allowed)))
    return entries
