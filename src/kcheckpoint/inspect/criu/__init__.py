"""CRIU images -> model: where a byte of ``checkpoint/`` becomes a field.

``images`` frames and decodes image files into protobuf messages; ``decode`` and ``system`` turn
them into the plain dataclasses of ``model`` (nothing outside this package sees a protobuf type);
``memory`` maps pagemaps to pages files; ``walk`` streams process memory in one pass (the one
reader of memory during a scan) to sinks, and ``sinks`` holds those that keep bytes (a range;
every process's argv and env); ``checkpoint`` puts a whole ``Inspection`` together.

May import: ``kcheckpoint.errors``, ``kcheckpoint._proto``, ``inspect.model``, ``inspect.rules``
and ``inspect.reader``.
"""

from __future__ import annotations

from .images import Image, ImageType, entries_of, image_type, read_image, write_image

__all__ = ["Image", "ImageType", "entries_of", "image_type", "read_image", "write_image"]
