"""remote/inputs.py without a network: digest headers, the digest check on both of its paths
(the stream's own hash, and the reader's hash handed over), and URL recognition."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcheckpoint.errors import DigestMismatch
from kcheckpoint.inspect import summarize_path
from kcheckpoint.inspect.reader.source import register_resolver
from kcheckpoint.remote.expand import is_listing_url, is_many
from kcheckpoint.remote.inputs import Expected, VerifyingReader, _http_digest
from kcheckpoint.remote.names import remote_protocol

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "webapp-t3.tar.zst"


@given(st.binary(min_size=32, max_size=32))
def test_repr_digest_round_trips(raw: bytes) -> None:
    header = f"sha-512=:AAAA:, sha-256=:{base64.b64encode(raw).decode()}:"
    got = _http_digest({"Repr-Digest": header})
    assert got == Expected("sha256", raw.hex(), "Repr-Digest")


@given(st.text(max_size=200), st.text(max_size=80))
def test_digest_headers_never_raise_on_garbage(repr_digest: str, sha: str) -> None:
    got = _http_digest({"Repr-Digest": repr_digest, "X-Checkpoint-Sha256": sha})
    assert got is None or len(got.hexdigest) == 64


def test_the_capture_service_header_wins() -> None:
    sha = "ab" * 32
    got = _http_digest({"X-Checkpoint-Sha256": sha.upper(), "Repr-Digest": "sha-256=:AAAA:"})
    assert got == Expected("sha256", sha, "X-Checkpoint-Sha256")


def _reader(data: bytes, digest: str) -> VerifyingReader:
    source = io.BytesIO(data)
    return VerifyingReader(source.read, "mem://x", Expected("sha256", digest, "test"))


def test_the_stream_checks_its_own_digest_at_the_end() -> None:
    data = b"x" * (3 << 20)
    good = _reader(data, hashlib.sha256(data).hexdigest())
    assert io.BufferedReader(good).read() == data
    bad = _reader(data, "0" * 64)
    with pytest.raises(DigestMismatch, match="does not match the server's test 0000"):
        io.BufferedReader(bad).read()


@pytest.mark.parametrize("hash_input", [None, False])
def test_a_mismatch_is_found_whoever_hashes(hash_input: bool | None) -> None:
    """hash_input None: the reader hashes and the stream hands its check over; False: the
    stream hashes by itself."""
    data = SAMPLE.read_bytes()
    digests = {"mem://good": hashlib.sha256(data).hexdigest(), "mem://bad": "1" * 64}

    @contextlib.contextmanager
    def opener(name: str) -> Iterator[tuple[str, BinaryIO, int | None]]:
        reader = VerifyingReader(
            io.BytesIO(data).read, name, Expected("sha256", digests[name], "t")
        )
        try:
            yield name, cast(BinaryIO, reader), len(data)
            reader.finish()
        finally:
            reader.stop()

    register_resolver(lambda n: opener(n) if n.startswith("mem://") else None)
    assert summarize_path("mem://good", hash_input=hash_input).container.name == "webapp"
    with pytest.raises(DigestMismatch):
        summarize_path("mem://bad", hash_input=hash_input)


def test_names_that_are_remote() -> None:
    assert remote_protocol("https://n:10270/checkpoints/a.tar") == "https"
    assert remote_protocol("S3://bucket/key") == "s3"
    for local in ("a.tar", "/x/y.tar", "-", "file:///x", "docker://r/i:t", "oci:dir"):
        assert remote_protocol(local) is None
    assert is_listing_url("https://n:10270/checkpoints/")
    assert not is_listing_url("https://n:10270/checkpoints/a.tar")
    assert is_many("s3://bucket/prefix/") and is_many("s3://b/*.tar") and is_many("@urls")
    assert not is_many("https://n/checkpoints/a.tar?x=1")
