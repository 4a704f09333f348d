"""The CRIU images of one checkpoint, decoded on demand, with damage kept as problems."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kcheckpoint.errors import ImageError
from kcheckpoint.inspect.model import Problem

from .images import Image, read_image

#: Where the CRIU images sit inside the archive.
PREFIX = "checkpoint/"


class ImageSet:
    """Decode images by base name (``core-1.img``) and remember each failure once.

    ``files`` maps base names to bytes (the small images of ``checkpoint/``, plus ``stats-dump``,
    which sits at the archive root). A missing image reads as no entries, as CRIU reads it.
    """

    def __init__(self, files: Mapping[str, bytes], *, members: Mapping[str, int] | None = None):
        self.files = dict(files)
        #: Every checkpoint/ file in the archive (base name -> size), pages included.
        self.members = (
            dict(members) if members is not None else {n: len(d) for n, d in files.items()}
        )
        self.problems: list[Problem] = []
        self._cache: dict[str, Image | None] = {}

    def source(self, name: str) -> str:
        return name if name == "stats-dump" else PREFIX + name

    def image(self, name: str) -> Image | None:
        """The decoded image, or None when it is absent or damaged (then a problem is kept)."""
        if name in self._cache:
            return self._cache[name]
        image: Image | None = None
        data = self.files.get(name)
        if data is not None:
            try:
                image = read_image(name, data)
            except ImageError as exc:
                self.problems.append(Problem(self.source(name), "bad-image", exc.message))
        self._cache[name] = image
        return image

    def entries(self, name: str) -> list[Any]:
        image = self.image(name)
        return image.entries if image is not None else []

    def first(self, name: str) -> Any | None:
        """The single entry of a one-entry image (core, ids, mm, fs...), or None."""
        entries = self.entries(name)
        return entries[0] if entries else None

    def head(self, name: str) -> Any | None:
        image = self.image(name)
        return image.head if image is not None else None

    def has(self, name: str) -> bool:
        return name in self.members
