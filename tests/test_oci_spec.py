"""Image references and annotation sets (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcheckpoint.oci.content import select_tag
from kcheckpoint.oci.spec import MARKERS, Identity, Reference, annotations_for, is_checkpoint

segment = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,5})?", fullmatch=True)
hosts = st.one_of(
    st.builds(lambda p: f"127.0.0.1:{p}", st.integers(1, 65535)),
    st.builds(lambda a, b: f"{a}.{b}", segment, st.from_regex(r"[a-z]{2,5}", fullmatch=True)),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digests = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)


@given(
    hosts,
    st.lists(segment, min_size=1, max_size=3),
    st.none() | tags,
    st.none() | digests,
)
def test_a_reference_reads_back_as_it_prints(
    host: str, parts: list[str], tag: str | None, digest: str | None
) -> None:
    ref = Reference(host, "/".join(parts), tag if tag or digest else "latest", digest)
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse("docker://" + str(ref)) == ref
    assert ref.target == (digest or ref.tag)


@pytest.mark.parametrize(
    "text",
    [
        "busybox:1",  # no registry host
        "127.0.0.1:5000/",
        "127.0.0.1:5000/Upper/case:1",
        "127.0.0.1:5000/a@sha256:abc",
        "127.0.0.1:5000/a:bad tag",
    ],
)
def test_a_bad_reference_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=text.split("/")[0].split(":")[0] or "."):
        Reference.parse(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True), ("r.io", False)],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert Reference(host, "a", "1", None).loopback is loopback


def test_annotations_name_the_container_for_every_engine_and_skip_unknowns() -> None:
    who = Identity("web", None, None, "podman", "crun", "img:1", "docker.io/img:1", None)
    notes = annotations_for(who)
    assert all(notes[k] == "web" for k in MARKERS)
    assert is_checkpoint(notes)
    assert not any(k.endswith(("pod.name", "pod.namespace", "rootfsImageID")) for k in notes)
    assert notes["io.podman.annotations.checkpoint.runtime.name"] == "crun"
    assert list(notes) == sorted(notes)
    assert not is_checkpoint({"org.opencontainers.image.ref.name": "1"})


def test_a_layout_index_entry_is_chosen_by_tag() -> None:
    entry = {"digest": "sha256:" + "a" * 64, "size": 1}
    named = {**entry, "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    assert select_tag({"manifests": [named]}, "v1", "x") == named
    assert select_tag({"manifests": [entry]}, None, "x") == entry
