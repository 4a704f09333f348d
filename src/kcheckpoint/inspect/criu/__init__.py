"""Pure-Python reading of the CRIU images inside a checkpoint archive.

``images`` frames and decodes image files into protobuf messages; ``decode`` turns them into the
plain dataclasses of ``model``; nothing outside this package sees a protobuf type.
"""

from __future__ import annotations

from .images import Image, ImageType, entries_of, image_type, read_image, write_image

__all__ = ["Image", "ImageType", "entries_of", "image_type", "read_image", "write_image"]
