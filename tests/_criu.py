"""Helpers for the CRIU tests: the images of the real fixtures, read once per session."""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path

from kcheckpoint.inspect.reader.scan import scan_archive
from kcheckpoint.inspect.reader.source import open_input

from .conftest import PODMAN_T1


@functools.cache
def fixture_images(path: Path = PODMAN_T1) -> dict[str, bytes]:
    """Every small image of one fixture by base name, plus stats-dump."""
    scan = scan_archive(path, read_images=True)
    images = {name.rsplit("/", 1)[1]: data for name, data in scan.images.items()}
    if "stats-dump" in scan.blobs:
        images["stats-dump"] = scan.blobs["stats-dump"]
    return images


def extract(path: Path, dest: Path) -> Path:
    """Extract the small members of an archive (not pages) for crit; returns the directory."""
    with open_input(path, hash_input=False) as src:
        src.stream.seek(0) if src.seekable else None
        with tarfile.open(fileobj=src.stream, mode="r|") as tf:
            for m in tf:
                if m.isfile() and "/pages-" not in m.name:
                    tf.extract(m, dest, filter="data")
    return dest
