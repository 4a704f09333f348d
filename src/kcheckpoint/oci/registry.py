"""A client of the OCI distribution API: pull a checkpoint image's documents and stream its
layer, push its blobs and manifests. Token and basic auth; https, or http on loopback only.

References: OCI distribution-spec v1.1 (pull, push: POST/PATCH/PUT uploads, HEAD of blobs,
manifests by tag and digest); the Docker token authentication spec (``WWW-Authenticate: Bearer
realm=,service=,scope=``, ``token``/``access_token``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urljoin

import httpx

from kcheckpoint.errors import ArchiveNotFound, InputError, KCheckpointError, RegistryError
from kcheckpoint.inspect.reader.source import ChunkReader

from .spec import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Reference

ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
USER_ENV, PASSWORD_ENV = "KCHECKPOINT_REGISTRY_USER", "KCHECKPOINT_REGISTRY_PASSWORD"


def credentials_for(host: str, authfile: Path | None = None) -> tuple[str, str] | None:
    """User and password for ``host``: the environment first, then an auth file in the
    format of ``docker login`` and ``podman login`` (``{"auths": {HOST: {"auth": b64}}}``)."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return user, password
    candidates = [authfile] if authfile else []
    if not authfile:
        if env := os.environ.get("REGISTRY_AUTH_FILE"):
            candidates.append(Path(env))
        if runtime := os.environ.get("XDG_RUNTIME_DIR"):
            candidates.append(Path(runtime) / "containers" / "auth.json")
        candidates.append(Path.home() / ".docker" / "config.json")
    for path in candidates:
        try:
            auths = json.loads(path.read_text()).get("auths", {})
        except FileNotFoundError:
            if authfile:
                raise InputError(f"{path}: no such auth file") from None
            continue
        except (OSError, ValueError, AttributeError) as exc:
            raise InputError(f"{path}: cannot read the auth file ({exc})") from exc
        for key in (host, f"https://{host}", f"http://{host}"):
            entry = auths.get(key) if isinstance(auths, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except ValueError as exc:
                    raise InputError(f"{path}: the entry for {host} is not base64") from exc
                return user, password
    return None


class Registry:
    """One repository on one registry, for pulling or for pushing.

    ``error`` is the class raised on refusal: an InputError when reading an input, a
    RegistryError when pushing.
    """

    def __init__(
        self,
        ref: Reference,
        *,
        push: bool = False,
        insecure: bool = False,
        credentials: tuple[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        if insecure and not ref.loopback:
            raise InputError(
                f"{ref.host}: --insecure is only for a registry on this machine (loopback)",
                hint="a remote registry must be reached over https",
            )
        self.ref = ref
        self._push = push
        self._error: type[KCheckpointError] = RegistryError if push else InputError
        self._credentials = credentials
        self._token: str | None = None
        self._basic = False
        self.scheme = "http" if insecure else "https"
        # reading from loopback falls back to http, as containerd does; pushing asks --insecure
        self._fallback = not push and not insecure and ref.loopback
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.ref.host}/v2/{self.ref.repository}/"

    # --- requests and auth ---------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        if self._basic and self._credentials:
            raw = ":".join(self._credentials).encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _send(self, method: str, url: str, *, stream: bool = False, **kw: Any) -> httpx.Response:
        headers = {**kw.pop("headers", {}), **self._headers()}
        if self.scheme == "http":
            url = url.replace("https://", "http://", 1)
        try:
            request = self._client.build_request(method, url, headers=headers, **kw)
            return self._client.send(request, stream=stream)
        except httpx.ConnectError as exc:
            if self._fallback and self.scheme == "https":
                self.scheme = "http"
                return self._send(method, url, stream=stream, headers=headers, **kw)
            hint = None
            if "SSL" in str(exc) and self.ref.loopback:
                hint = "the registry speaks plain http: add --insecure (loopback only)"
            raise self._error(f"{self.ref.host}: cannot connect ({exc})", hint=hint) from exc
        except httpx.HTTPError as exc:
            raise self._error(f"{self.ref.host}: {method} failed ({exc})") from exc

    def request(self, method: str, path: str, *, stream: bool = False, **kw: Any) -> httpx.Response:
        """A request to the repository, authenticated on the registry's first 401."""
        url = path if "://" in path else urljoin(self.base, path)
        response = self._send(method, url, stream=stream, **kw)
        if response.status_code == 401 and self._authenticate(response):
            response.close()
            for key in ("content",):
                if key in kw and hasattr(kw[key], "seek"):
                    kw[key].seek(0)
            response = self._send(method, url, stream=stream, **kw)
        if response.status_code == 401:
            response.close()
            raise self._error(
                f"{self.ref.host}: authentication refused for {self.ref.repository}",
                hint=f"set {USER_ENV} and {PASSWORD_ENV}, or log in (--authfile)",
            )
        if response.status_code == 403:
            response.close()
            raise self._error(f"{self.ref.host}: access to {self.ref.repository} denied (403)")
        return response

    def _authenticate(self, response: httpx.Response) -> bool:
        challenge = response.headers.get("www-authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self._basic or not self._credentials:
                return False
            self._basic = True
            return True
        if scheme.lower() != "bearer" or self._token is not None:
            return False
        fields = dict(_CHALLENGE_RE.findall(params))
        realm = fields.get("realm")
        if not realm:
            return False
        action = "pull,push" if self._push else "pull"
        query = {"scope": f"repository:{self.ref.repository}:{action}"}
        if service := fields.get("service"):
            query["service"] = service
        auth = httpx.BasicAuth(*self._credentials) if self._credentials else None
        try:
            answer = self._client.get(realm, params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise self._error(f"{realm}: the token service failed ({exc})") from exc
        if answer.status_code in (401, 403):
            return False
        try:
            body = answer.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if answer.status_code != 200 or not isinstance(token, str):
            raise self._error(f"{realm}: the token service answered {answer.status_code}")
        self._token = token
        return True

    def _fail(self, response: httpx.Response, what: str) -> KCheckpointError:
        try:
            detail = response.read()[:300].decode(errors="replace").strip()
        except httpx.HTTPError:
            detail = ""
        response.close()
        return self._error(f"{self.ref.host}: {what}: HTTP {response.status_code} {detail}".strip())

    # --- pull ----------------------------------------------------------------------------------
    def manifest(self, target: str) -> tuple[bytes, str | None]:
        """A manifest or index by tag or digest: its bytes and media type."""
        response = self.request("GET", f"manifests/{target}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            response.close()
            raise ArchiveNotFound(f"{self.ref}: no such image on the registry")
        if response.status_code != 200:
            raise self._fail(response, f"manifest {target}")
        return response.content, response.headers.get("content-type")

    def fetch(self, desc: dict[str, Any]) -> bytes:
        """A small document (index, manifest, config) by its descriptor."""
        media = desc.get("mediaType", "")
        if desc.get("size", 0) > 4 << 20:
            raise self._error(f"{self.ref}: a {media or 'document'} of {desc['size']} bytes")
        if media in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST):
            return self.manifest(desc["digest"])[0]
        response = self.request("GET", f"blobs/{desc['digest']}")
        if response.status_code != 200:
            raise self._fail(response, f"blob {desc['digest']}")
        return response.content

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        """A blob's bytes as a forward-only stream, read as they arrive."""
        response = self.request("GET", f"blobs/{digest}", stream=True)
        try:
            if response.status_code == 404:
                raise ArchiveNotFound(f"{self.ref}: the registry has no blob {digest}")
            if response.status_code != 200:
                raise self._fail(response, f"blob {digest}")
            yield cast(BinaryIO, ChunkReader(_body(response, self._error, f"{self.ref}")))
        finally:
            response.close()

    # --- push ----------------------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        response = self.request("HEAD", f"blobs/{digest}")
        response.close()
        return response.status_code == 200

    def upload(
        self,
        source: BinaryIO,
        digest: str,
        size: int,
        chunk: int | None,
        mount_from: str | None = None,
    ) -> bool:
        """Upload one blob: monolithic (``chunk`` None) or in chunks of ``chunk`` bytes.

        With ``mount_from``, ask the registry first to mount the blob from that repository;
        returns True when it did (nothing sent). A registry that does not have it there (or does
        not mount) opens an upload instead, and the bytes go as usual.
        """
        params = {"mount": digest, "from": mount_from} if mount_from else None
        start = self.request("POST", "blobs/uploads/", params=params)
        if start.status_code == 201 and mount_from:
            start.close()
            return True
        if start.status_code not in (202, 201):
            raise self._fail(start, f"starting the upload of {digest}")
        location = self._location(start)
        try:
            if chunk is None:
                body = _FileBody(source, size)
                done = self.request(
                    "PUT",
                    _with_digest(location, digest),
                    content=body,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                )
            else:
                offset = 0
                while offset < size:
                    data = source.read(min(chunk, size - offset))
                    if not data:
                        raise RegistryError(f"{digest}: the staged blob ended early")
                    answer = self.request(
                        "PATCH",
                        location,
                        content=data,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + len(data) - 1}",
                        },
                    )
                    if answer.status_code != 202:
                        raise self._fail(answer, f"uploading {digest} at byte {offset}")
                    location = self._location(answer)
                    offset += len(data)
                done = self.request("PUT", _with_digest(location, digest))
        except KCheckpointError as exc:
            with contextlib.suppress(KCheckpointError):
                self.request("DELETE", location).close()
            raise RegistryError(
                f"{self.ref}: the upload of {digest} failed: {exc.message}"
            ) from exc
        if done.status_code != 201:
            raise self._fail(done, f"finishing the upload of {digest}")
        done.close()
        return False

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        response.close()
        if not location:
            raise self._error(f"{self.ref.host}: the registry gave no upload location")
        return str(urljoin(f"{self.scheme}://{self.ref.host}/", location))

    def put_manifest(self, target: str, data: bytes, media_type: str) -> str:
        """Store a manifest or index under a tag or digest; returns the registry's digest."""
        response = self.request(
            "PUT", f"manifests/{target}", content=data, headers={"Content-Type": media_type}
        )
        if response.status_code != 201:
            raise self._fail(response, f"storing manifest {target}")
        response.close()
        return str(response.headers.get("docker-content-digest", ""))


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={digest}"


class _FileBody:
    """A staged blob as an httpx request body, read in 1 MiB pieces, restartable for a retry."""

    def __init__(self, source: BinaryIO, size: int) -> None:
        self._source = source
        self._start = source.tell()
        self.size = size

    def seek(self, _pos: int) -> None:
        self._source.seek(self._start)

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.size
        while remaining > 0:
            data = self._source.read(min(1 << 20, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


def _body(response: httpx.Response, error: type[KCheckpointError], label: str) -> Iterator[bytes]:
    """A streaming response body as received (re-chunking copies every byte); a broken
    download is ``error``."""
    try:
        yield from response.iter_raw()
    except httpx.HTTPError as exc:
        raise error(f"{label}: the download broke off ({exc})") from exc
